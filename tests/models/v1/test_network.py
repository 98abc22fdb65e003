"""MultiSessionNet: routing, one core call per batch, identity-at-init parts, bias init, decay exclusions."""

from __future__ import annotations

import logging

import pytest
import torch

from models.v1.nets.network import MultiSessionNet, SessionSpec
from models.v1.nets.output import NAKA_RUSHTON, OUTPUTS
from models.v1.nets.shifter import Shifter
from tests.models.v1.tiny_models import HEIGHT, LAGS, SESSIONS, WIDTH, make_batch, tiny_core, tiny_net
from training.toolkit.errors import UserError
from training.toolkit.optim import parameter_groups


def test_output_shapes_positive_and_keyed_by_session() -> None:
    rates = tiny_net()(make_batch({"alpha": 3, "beta": 2}))
    assert {name: tuple(r.shape) for name, r in rates.items()} == {"alpha": (3, 3), "beta": (2, 5)}
    assert all((r > 0).all() for r in rates.values())


def test_core_runs_once_on_all_sessions_concatenated() -> None:
    net = tiny_net()
    calls = []
    net.core.register_forward_hook(lambda module, inputs, output: calls.append(inputs[0].shape[0]))
    net(make_batch({"alpha": 3, "beta": 2}))
    assert calls == [5]


def test_each_session_routed_to_its_own_readout_independent_of_batch_mates() -> None:
    net = tiny_net().eval()
    batch = make_batch({"alpha": 3, "beta": 2})
    together = net(batch)
    alone = net({"beta": batch["beta"]})
    reversed_order = net({"beta": batch["beta"], "alpha": batch["alpha"]})
    # GroupNorm has no batch statistics, so a session's output does not depend on the other sessions.
    torch.testing.assert_close(together["beta"], alone["beta"], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(together["alpha"], reversed_order["alpha"], rtol=1e-5, atol=1e-6)
    with torch.no_grad():
        net.readouts["beta"].bias.add_(1.0)
    assert torch.equal(net(batch)["alpha"], together["alpha"])
    assert not torch.allclose(net(batch)["beta"], together["beta"])


def test_unknown_session_and_uint8_stimulus_are_clear_errors() -> None:
    net = tiny_net()
    batch = make_batch({"alpha": 2})
    with pytest.raises(KeyError, match="gamma"):
        net({"gamma": batch["alpha"]})
    batch["alpha"]["stim"] = batch["alpha"]["stim"].to(torch.uint8)
    with pytest.raises(TypeError, match="on_after_batch_transfer"):
        net(batch)


def test_adapter_is_identity_at_init() -> None:
    net = tiny_net()
    stim = torch.randn(2, 1, LAGS, HEIGHT, WIDTH)
    assert torch.equal(net.adapters["alpha"](stim), stim)


def test_shifter_is_zero_at_init_and_the_network_matches_the_unshifted_one() -> None:
    shifted_net = tiny_net(shifter={"hidden_units": 8}).eval()
    plain_net = tiny_net().eval()
    state = {k: v for k, v in shifted_net.state_dict().items() if not k.startswith("shifters.")}
    plain_net.load_state_dict(state)
    batch = make_batch()
    stim = batch["alpha"]["stim"].unsqueeze(1)
    shifter = shifted_net.shifters["alpha"]
    torch.testing.assert_close(shifter(stim, batch["alpha"]["eyepos"]), stim, rtol=0, atol=1e-5)
    assert shifter.penalty() == 0
    for name, rates in shifted_net(batch).items():
        torch.testing.assert_close(rates, plain_net(batch)[name], rtol=1e-5, atol=1e-6)


def test_shifter_samples_the_stimulus_at_p_plus_shift() -> None:
    shifter = Shifter(pixels_per_degree=8.0, frame_shape=(HEIGHT, WIDTH))
    with torch.no_grad():
        shifter.mlp[-1].bias.copy_(torch.tensor([2 / 8.0, -1 / 8.0]))  # +2 px in x, -1 px in y
    stim = torch.zeros(1, 1, 1, HEIGHT, WIDTH)
    stim[..., 5, 7] = 1.0  # row 5, column 7
    out = shifter(stim, torch.zeros(1, 1, 2))
    assert out[0, 0, 0].argmax().item() == (5 + 1) * WIDTH + (7 - 2)
    torch.testing.assert_close(shifter.penalty(), torch.tensor((0.25**2 + 0.125**2) / 2))


def test_shifter_needs_pixels_per_degree() -> None:
    sessions = [SessionSpec("alpha", 3, [1, 2, 3])]
    with pytest.raises(UserError, match="model.shifter.pixels_per_degree"):
        MultiSessionNet(sessions, tiny_core(), shifter={})
    net = MultiSessionNet(
        sessions, tiny_core(), shifter={"pixels_per_degree": 8, "frame_shape": [HEIGHT, WIDTH]}
    )
    assert net.shifters["alpha"].pixels_per_degree == 8


def test_modulator_without_behaviour_is_an_error_naming_session_and_key() -> None:
    net = tiny_net(modulator={"hidden_units": 4})
    batch = make_batch()
    rates = net(batch)  # gain exp(0) = 1 at init: same as without a modulator
    plain = tiny_net()
    plain.load_state_dict({k: v for k, v in net.state_dict().items() if not k.startswith("modulator.")})
    net.eval(), plain.eval()
    torch.testing.assert_close(net(batch)["beta"], plain(batch)["beta"])
    assert set(rates) == {"alpha", "beta"}
    del batch["beta"]["behavior"]
    with pytest.raises(UserError, match=r"model.modulator.*'beta'|'beta'.*model.modulator"):
        net(batch)
    with pytest.raises(UserError, match="behavior_dim=0"):
        tiny_net(sessions=[SessionSpec("gamma", 2, [1, 2])], modulator={})


@pytest.mark.parametrize("output", OUTPUTS)
def test_readout_bias_init_reproduces_mean_rates_when_features_are_zero(output: str) -> None:
    net = tiny_net(output=output)
    mean_rates = {"alpha": torch.tensor([0.01, 0.2, 3.0]), "beta": torch.tensor([0.1, 0.0, 0.5, 1.0, 7.0])}
    for name, rates in mean_rates.items():
        net.init_readout_bias(name, rates)
        with torch.no_grad():
            net.readouts[name].features.zero_()
    out = net(make_batch())
    torch.testing.assert_close(out["alpha"][1], mean_rates["alpha"], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out["beta"][0], mean_rates["beta"].clamp_min(1e-6), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("output", OUTPUTS)
def test_no_weight_decay_names_exist_and_leave_the_decayed_group(output: str) -> None:
    net = tiny_net(shifter={}, modulator={}, output=output)
    names = net.no_weight_decay()
    parameters = dict(net.named_parameters())
    assert names <= set(parameters)
    assert {
        "readouts.alpha.bias",
        "readouts.beta.sigma",
        "readouts.beta.mu",
        "adapters.alpha.weight",
    } <= names
    assert "core.blocks.0.norm.weight" in names and "core.blocks.1.norm.bias" in names
    if output == NAKA_RUSHTON:
        assert {"outputs.alpha.floor", "outputs.beta.saturation"} <= names
    decayed = {id(p) for p in parameter_groups(net)[0]["params"]}
    assert not decayed & {id(parameters[name]) for name in names}
    assert id(parameters["core.blocks.0.spatial.weight"]) in decayed


def test_state_dict_prefixes() -> None:
    keys = tiny_net(shifter={}, modulator={}).state_dict()
    prefixes = {".".join(key.split(".")[:2]) for key in keys if not key.startswith("core.")}
    assert prefixes == {
        f"{part}.{s.name}" for part in ("adapters", "shifters", "modulator", "readouts") for s in SESSIONS
    }  # a fixed output adds nothing: checkpoints from before learned outputs keep their layout
    learned = tiny_net(output=NAKA_RUSHTON).state_dict()
    assert {key for key in learned if key.startswith("outputs.")} == {
        f"outputs.{s.name}.{p}" for s in SESSIONS for p in ("floor", "saturation")
    }
    assert any(key.startswith("core.frontend") for key in keys)


def test_regularizers() -> None:
    net = tiny_net(shifter={})
    with torch.no_grad():
        net.readouts["alpha"].features.fill_(1.0)  # 4 channels -> L1 of 4 per unit
        net.readouts["beta"].features.zero_()
    torch.testing.assert_close(net.readout_regularization(), torch.tensor(4.0 * 3 / 8))
    assert net.shifter_regularization() == 0
    assert net.core_regularization() > 0


def test_every_parameter_gets_a_gradient_in_a_normal_step() -> None:
    net = tiny_net(shifter={}, modulator={})
    rates = net(make_batch())
    sum(r.sum() for r in rates.values()).backward()
    # Zero-initialised last layers make the hidden layers' first gradients 0, but they are in the graph.
    assert all(p.grad is not None for p in net.parameters())


def test_a_valid_core_reads_each_unit_where_the_same_core_does() -> None:
    """Readout positions stay in frame coordinates; the network scales them to the valid core's smaller map."""
    same = tiny_net(core=tiny_core(norm="none")).eval()
    valid = tiny_net(core=tiny_core(norm="none", padding="valid")).eval()
    valid.load_state_dict(same.state_dict())
    with torch.no_grad():  # inside the 10 x 10 centre (|position| <= 1 - 2 * 3 / 16 = 0.625, less a pixel)
        for net in (same, valid):
            net.readouts["alpha"].mu.copy_(torch.tensor([[0.0, 0.0], [0.31, -0.5], [-0.5, 0.22]]))
            net.readouts["beta"].mu.uniform_(-0.5, 0.5, generator=torch.Generator().manual_seed(1))
    batch = make_batch()
    for name, rates in valid(batch).items():
        torch.testing.assert_close(rates, same(batch)[name])


def test_units_starting_outside_a_valid_core_s_map_are_named_with_the_fix(caplog) -> None:
    """One unit of many (an energy-STA peak of a unit without a clear receptive field) is noted; more than
    10 % of a session's units are a warning."""
    many = SessionSpec("many", 20, list(range(20)), frame_shape=(HEIGHT, WIDTH))
    net = tiny_net(sessions=[*SESSIONS, many], core=tiny_core(padding="valid"))
    with caplog.at_level(logging.INFO, logger="models.v1.nets.network"):
        net.init_readout_positions("many", torch.tensor([[0.9, 0.0]] + [[0.0, 0.0]] * 19))
        net.init_readout_positions("alpha", torch.tensor([[0.0, 0.0], [0.9, 0.0], [0.0, -0.7]]))
    levels = {record.getMessage().split(":")[0]: record.levelno for record in caplog.records}
    assert levels == {"Session 'many'": logging.INFO, "Session 'alpha'": logging.WARNING}
    assert "2 of 3 units start outside the 10 x 10 centre" in caplog.text
    assert "model.core.padding=same" in caplog.text
