"""Output nonlinearities: the fixed ones and the learned Naka-Rushton saturation of the half-squared drive."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from models.v1.nets.output import NAKA_RUSHTON, OUTPUTS, RateOutput, check_output, output_activation


def test_unknown_output_names_the_key_and_the_choices() -> None:
    with pytest.raises(ValueError, match=r"model\.net\.output must be one of .*naka_rushton.*'relu'"):
        check_output("relu")
    with pytest.raises(ValueError, match="RateOutput"):
        output_activation(NAKA_RUSHTON)


@pytest.mark.parametrize("name", OUTPUTS)
def test_init_mean_rates_returns_the_logits_that_give_those_rates(name: str) -> None:
    output = RateOutput(name, 4)
    rates = torch.tensor([1e-3, 0.05, 0.4, 6.0])
    logits = output.init_mean_rates(rates).float()
    torch.testing.assert_close(output(logits), rates, rtol=1e-5, atol=1e-7)


def test_naka_rushton_is_half_squaring_under_a_saturation_above_a_floor() -> None:
    output = RateOutput(NAKA_RUSHTON, 2)
    with torch.no_grad():
        output.floor.fill_(-2.0)
        output.saturation.fill_(1.5)
    floor, saturation = F.softplus(torch.tensor(-2.0)), F.softplus(torch.tensor(1.5))
    logits = torch.tensor([[-3.0, 0.0], [0.5, 2.0], [30.0, 300.0]])
    rates = output(logits)
    drive = logits.clamp_min(0) ** 2
    torch.testing.assert_close(rates, floor + drive / (1 + drive / saturation))
    assert torch.equal(rates[0], floor.expand(2))  # no drive: the floor, whatever the logit's sign
    assert (rates[2] < floor + saturation).all() and (rates[2] > floor + 0.99 * saturation).all()
    small = torch.tensor([[1e-2, 2e-2]])  # far below the saturation: plain half-squaring
    torch.testing.assert_close(output(small) - floor, small**2, rtol=1e-3, atol=0)


def test_naka_rushton_learns_from_its_initial_point() -> None:
    """At init the drive is above 0, so every parameter gets a gradient (relu^2 is flat at and below 0)."""
    output = RateOutput(NAKA_RUSHTON, 3)
    logits = output.init_mean_rates(torch.tensor([0.05, 0.2, 1.0])).float().requires_grad_()
    output(logits).sum().backward()
    assert (logits.grad > 0).all()
    assert (output.floor.grad > 0).all() and (output.saturation.grad > 0).all()


def test_fixed_outputs_hold_no_parameters() -> None:
    for name in ("softplus", "exp"):
        assert not list(RateOutput(name, 3).parameters())
