"""The child networks' loops (train, finetune, pretrain, the augmented linear probe): SGD
with a warm-up and a cosine, on the one epoch skeleton (sswp.engine.loop).

A subclass says what one batch does (`train_step`) and what an epoch reports (`end_epoch`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from functools import partial
from typing import Any, Protocol

import torch
from torch import nn

from sswp.config.params import RuntimeParams
from sswp.engine.checkpoint import rng_state, set_rng_state
from sswp.engine.distributed import sum_scalars
from sswp.engine.divergence import check_finite
from sswp.engine.hardware import Hardware
from sswp.engine.logs import RunClock
from sswp.engine.loop import Steps, TrainingLoop

log = logging.getLogger(__name__)


def warmup_cosine(
    step: int,
    steps_per_epoch: int,
    warmup_epochs: int,
    epochs: int,
    floor: float = 0.0,
    per_iteration: bool = True,
) -> float:
    """LR factor at optimiser step `step`: a linear warm-up from 0 over `warmup_epochs`
    epochs of iterations (as the original warms up), then a cosine from 1 to `floor` over
    the rest, stepped every iteration or, with `per_iteration` false, once an epoch."""
    warmup = warmup_epochs * steps_per_epoch
    if step < warmup:
        return step / warmup
    if per_iteration:
        done, span = step - warmup, epochs * steps_per_epoch - warmup
    else:
        done, span = step // steps_per_epoch - warmup_epochs, epochs - warmup_epochs
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * done / max(1, span)))


def lr_factor(recipe: Recipe, steps_per_epoch: int) -> Callable[[int], float]:
    """The LambdaLR factor of `recipe`, stepped after every optimiser step: its cosine counts
    iterations or epochs (`recipe.lr_step`), its warm-up always iterations."""
    return partial(
        warmup_cosine,
        steps_per_epoch=steps_per_epoch,
        warmup_epochs=recipe.warmup_epochs,
        epochs=recipe.epochs,
        floor=recipe.lr_min / recipe.lr,
        per_iteration=recipe.lr_step == "iteration",
    )


def _fresh_sums() -> dict[str, float]:
    return {"loss": 0.0, "correct": 0.0, "count": 0.0}


class Stateful(Protocol):
    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> Any: ...


class Recipe(Protocol):
    """The optimisation settings every child-network loop shares (train, finetune, pretrain)."""

    epochs: int
    lr: float
    momentum: float
    weight_decay: float
    warmup_epochs: int
    grad_clip: float
    lr_min: float
    lr_step: str


class EpochLoop(TrainingLoop):
    """SGD with warm-up + cosine over `train_loader`, one `train_step` per batch.

    The schedule steps after every optimiser step; see `lr_factor`.

    It owns the model (SyncBN and DDP as the runtime asks), the optimiser, schedule and loss
    scaler, and the per-epoch sums of loss, correct predictions and examples.
    """

    def __init__(
        self,
        name: str,
        model: nn.Module,
        train_loader,
        recipe: Recipe,
        runtime: RuntimeParams,
        hw: Hardware,
        *,
        trainable: list[nn.Parameter] | None = None,
        find_unused: bool = False,
    ):
        self.name, self.epochs, self.train_loader = name, recipe.epochs, train_loader
        self.recipe, self.runtime, self.hw = recipe, runtime, hw
        self.trainable = list(model.parameters()) if trainable is None else trainable
        if hw.dist.enabled and runtime.sync_bn and hw.device.type == "cuda":
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)  # keeps the parameters
        self.model = model
        # Training runs through DDP and the compiler (runtime.compile); test passes and
        # checkpoints use the module itself. Both compiled forms share the module's weights.
        self.forward_module = hw.compiled(hw.ddp(model, find_unused=find_unused))
        self.eval_module = hw.compiled(model)
        self.scaler = hw.grad_scaler()
        self.opt = torch.optim.SGD(
            self.trainable, recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay
        )
        self.sched = torch.optim.lr_scheduler.LambdaLR(
            self.opt, lr_factor(recipe, len(train_loader))
        )
        self.sums = _fresh_sums()
        self.history: list[dict[str, float]] = []
        self.clock = RunClock()

    # ----- what a subclass provides -----
    def begin_epoch(self, epoch: int) -> None:
        """Train mode, schedules that depend on the epoch."""
        self.model.train()

    def train_step(self, batch: Any) -> None:
        """Forward one batch, then `optimise` its loss and `count` its predictions."""
        raise NotImplementedError

    def end_epoch(self, epoch: int, loss: float, acc: float, lr: float) -> dict[str, float]:
        """The epoch's metrics from its mean loss and accuracy (and any evaluation)."""
        raise NotImplementedError

    # ----- shared by every step -----
    def optimise(self, loss: torch.Tensor) -> None:
        """One scaled, clipped SGD step on the trainable parameters."""
        self.opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.opt)
        nn.utils.clip_grad_norm_(self.trainable, self.recipe.grad_clip)
        self.scaler.step(self.opt)
        self.scaler.update()
        self.sched.step()

    def count(self, loss: float, correct: float, examples: int) -> None:
        """Add a batch to the epoch's sums: its mean loss, correct count and size."""
        self.sums["loss"] += loss * examples
        self.sums["correct"] += correct
        self.sums["count"] += examples

    def stateful(self) -> dict[str, Stateful]:
        """What a checkpoint must restore besides the loop's own counters."""
        return {"model": self.model, "opt": self.opt, "sched": self.sched, "scaler": self.scaler}

    # ----- checkpoint state -----
    def state_dict(self, epoch: int, step: int) -> dict[str, Any]:
        return {
            "epoch": epoch,
            "step": step,
            **{name: part.state_dict() for name, part in self.stateful().items()},
            "rng": rng_state(),
            "history": self.history,
            "sums": self.sums,
            "hours": self.clock.hours(),
        }

    def restore_random_state(self, state: dict[str, Any]) -> None:
        set_rng_state(state["rng"])

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, part in self.stateful().items():
            part.load_state_dict(state[name])
        self.history = list(state["history"])
        self.sums = dict(state["sums"])
        self.clock = RunClock(state["hours"])

    # ----- one epoch -----
    def train_epoch(self, epoch: int, steps: Steps) -> dict[str, float]:
        self.begin_epoch(epoch)
        lr = self.sched.get_last_lr()[0]
        stage = self.name.split("/")[0]
        for _, batch in steps(self.train_loader):
            self.train_step(batch)
            check_finite(self.sums["loss"], self.name, epoch, f"{stage}.lr")
        sums, self.sums = self.sums, _fresh_sums()
        loss, correct, count = sum_scalars(
            [sums["loss"], sums["correct"], sums["count"]], self.hw.dist, self.hw.device
        )
        return self.end_epoch(epoch, loss / count, correct / count, lr)
