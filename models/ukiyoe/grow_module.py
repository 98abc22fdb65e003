"""`GrowModel`: an `IntegratedNCA` learns to grow one target print from a single cell (Growing NCA, Distill 2020).

Training follows the paper's "regenerating" recipe: batches come from a `SamplePool` of earlier results
(persistence), the worst sample restarts from the seed (growth), the best few lose a random disc
(regeneration); a random number of steps per batch; Adam with per-parameter gradient normalisation.
Evaluation grows from the seed for `eval_steps` steps (`grow_mse`), keeps running for twice as long
(`persist_mse`), cuts away the right half, regrows for `eval_steps` steps (`regrow_mse`) and again keeps
running for twice as long (`regrow_persist_mse`): per-pixel MSE of RGBA in [0, 1] over the canvas.
Validation runs the same sequence on another seed of the stochastic updates than the test.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence

import pytorch_lightning as pl
import torch
from matplotlib.figure import Figure

from models.ukiyoe.grow_pool import SamplePool, half_plane_mask, prepare_batch, rgba_mse, seed_state
from models.ukiyoe.nets.nca import IntegratedNCA
from training.toolkit.errors import UserError
from training.toolkit.figures import new_figure, report_figure


def to_display(rgba: torch.Tensor) -> torch.Tensor:
    """(4, H, W) premultiplied RGBA -> (H, W, 3) RGB on white paper, clamped to [0, 1]."""
    rgba = rgba.clamp(0, 1)
    return (rgba[:3] + 1 - rgba[3:]).clamp(0, 1).permute(1, 2, 0)


def plot_growth(panels: Sequence[tuple[str, torch.Tensor]]) -> Figure:
    """One row of titled RGBA panels."""
    figure = new_figure(1.6 * len(panels), 2.0)
    for axis, (title, rgba) in zip(figure.subplots(1, len(panels)), panels, strict=True):
        axis.imshow(to_display(rgba).numpy(), interpolation="nearest")
        axis.set_title(title, fontsize=8)
        axis.set_xticks([])  # keep the frame: it shows the canvas around the transparent border
        axis.set_yticks([])
    return figure


class GrowModel(pl.LightningModule):
    """Sample-pool training of `nca` (w_dim 0) towards the datamodule's RGBA target."""

    def __init__(
        self,
        nca: IntegratedNCA,
        optimizer: Callable[[Iterable], torch.optim.Optimizer],
        lr_schedule: dict | None = None,
        canvas: int = 40,
        pool_size: int = 256,
        batch_size: int = 8,
        train_steps: Sequence[int] = (48, 64),
        damage_count: int = 2,
        half_plane_share: float = 0.0,
        normalize_gradients: bool = True,
        eval_steps: int = 64,
        eval_samples: int = 4,
        eval_seed: int = 0,
        num_frames: int = 4,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(logger=False, ignore=["nca", "optimizer", "lr_schedule"])
        low, high = (int(s) for s in train_steps)
        if not 1 <= low <= high:
            raise UserError(
                f"model.train_steps={list(train_steps)} must be [low, high] with 1 <= low <= high."
            )
        if not 0 <= damage_count < batch_size:
            raise UserError(
                f"model.damage_count={damage_count} must be in [0, model.batch_size): one sample is the seed."
            )
        if not 0.0 <= half_plane_share <= 1.0:
            raise UserError(f"model.half_plane_share={half_plane_share} must be a probability in [0, 1].")
        if batch_size > pool_size:
            raise UserError(f"model.batch_size={batch_size} must be <= model.pool_size={pool_size}.")
        self.nca = nca
        self.optimizer_factory = optimizer
        self.lr_schedule = lr_schedule
        self.train_steps = (low, high)
        self.pool = SamplePool(pool_size, seed_state(nca.state_channels, canvas))
        self._panels: list[tuple[str, torch.Tensor]] = []

    def training_step(self, target: torch.Tensor, batch_idx: int) -> torch.Tensor:
        hp = self.hparams
        indices, states = self.pool.sample(hp.batch_size)
        with torch.no_grad():
            losses = rgba_mse(self.nca.rgba(states), target)
        states = prepare_batch(
            states, losses, self.pool.seed, hp.damage_count, half_plane_share=hp.half_plane_share
        )
        # the step count is a host-side random number (seeded and checkpointed with Python's RNG): no sync
        grown = self.nca(states, steps=random.randint(*self.train_steps))
        loss = rgba_mse(self.nca.rgba(grown), target).mean()
        self.pool.update(indices, grown)
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=hp.batch_size)
        return loss

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        """The paper's per-parameter gradient normalisation: every tensor's gradient to unit L2 norm."""
        if not self.hparams.normalize_gradients:
            return
        grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        if grads:
            norms = torch._foreach_norm(grads)
            torch._foreach_div_(grads, torch._foreach_add(norms, 1e-8))

    @torch.no_grad()
    def grow(self, states: torch.Tensor, steps: int, generator: torch.Generator) -> torch.Tensor:
        """`steps` NCA steps with the evaluation generator."""
        return self.nca(states, steps=steps, generator=generator)

    def _trajectory(self, seed: int, frames: int = 1) -> dict[str, torch.Tensor]:
        """The evaluation from `eval_samples` seed cells with stochastic updates drawn from `seed`: the
        states after growing `eval_steps` steps (in `frames` chunks, keyed `step <k>`), persisting twice as long,
        the right half cut away, regrowing `eval_steps` steps and persisting twice as long again."""
        hp = self.hparams
        generator = torch.Generator(device=self.device).manual_seed(seed)
        states = self.pool.seed.expand(hp.eval_samples, -1, -1, -1)
        shown, done = {}, 0
        for i in range(frames):
            frame = hp.eval_steps * (i + 1) // frames
            states = self.grow(states, frame - done, generator)
            shown[f"step {frame}"], done = states, frame
        persisted = self.grow(states, 2 * hp.eval_steps, generator)
        damaged = persisted * ~half_plane_mask(persisted.shape[-1], persisted.device)
        regrown = self.grow(damaged, hp.eval_steps, generator)
        # As growth is read at K and 3K steps, regrowth is read at K and 3K after the cut.
        return shown | {
            "grow_mse": states,
            "persist_mse": persisted,
            "damaged_mse": damaged,
            "regrow_mse": regrown,
            "regrow_persist_mse": self.grow(regrown, 2 * hp.eval_steps, generator),
        }

    def _log_errors(self, stage: str, states: dict[str, torch.Tensor], target: torch.Tensor) -> None:
        errors = {
            f"{stage}/{name}": rgba_mse(self.nca.rgba(state).clamp(0, 1), target).mean()
            for name, state in states.items()
            if name.endswith("_mse")
        }
        self.log_dict(errors, prog_bar=stage == "val", batch_size=1)

    def validation_step(self, target: torch.Tensor, batch_idx: int) -> None:
        # Another seed than the test's: the checkpoint is chosen on updates the test does not replay.
        self._log_errors("val", self._trajectory(self.hparams.eval_seed + 1), target)

    def test_step(self, target: torch.Tensor, batch_idx: int) -> None:
        hp = self.hparams
        states = self._trajectory(hp.eval_seed, frames=hp.num_frames)
        self._log_errors("test", states, target)
        shown = [(name, state) for name, state in states.items() if name.startswith("step ")]
        shown += [
            (f"step {3 * hp.eval_steps}", states["persist_mse"]),
            ("cut in half", states["damaged_mse"]),
        ]
        shown.append(("regrown", states["regrow_mse"]))
        self._panels = [("target", target[0].cpu())]
        self._panels += [(title, self.nca.rgba(state[:1])[0].cpu()) for title, state in shown]

    def on_test_epoch_end(self) -> None:
        if self._panels and self.trainer.is_global_zero:
            report_figure(self, plot_growth(self._panels), "test/growth", "ukiyoe_nca_grow.png")
        self._panels = []

    def configure_optimizers(self) -> dict:
        from training.toolkit.optim import configure_optimization

        return configure_optimization(self, self.optimizer_factory, self.lr_schedule)
