"""The epoch loop shared by the child-network stages: resume, checkpoints, stop, logging.

A subclass says what one batch does (`train_step`) and what an epoch reports (`end_epoch`);
this class owns the order of events that makes a resumed run equal an uninterrupted one:
skip the batches already trained on, restore the random state, checkpoint at every epoch
end, and save mid-epoch when a stop signal arrives.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from functools import partial
from typing import Any, Protocol

from sswp.config import RuntimeParams
from sswp.engine.checkpoint import Checkpointer, rng_state, set_rng_state
from sswp.engine.interrupt import StopFlag, halt_if_requested
from sswp.engine.runtime import Hardware, MetricLogger, RunClock, progress

log = logging.getLogger(__name__)


def warmup_cosine(epoch: int, warmup: int, epochs: int) -> float:
    """LR factor: linear warm-up over `warmup` epochs, then cosine to 0 over the rest."""
    if epoch < warmup:
        return (epoch + 1) / warmup
    span = max(1, epochs - warmup)
    return 0.5 * (1 + math.cos(math.pi * (epoch - warmup) / span))


class Resumable(Protocol):
    history: list[dict[str, float]]

    def load_state_dict(self, state: dict[str, Any]) -> None: ...

    def restore_random_state(self, state: dict[str, Any]) -> None: ...


def resume_point(
    loop: Resumable, checkpointer: Checkpointer, metric_logger: MetricLogger
) -> tuple[int, dict[str, Any] | None]:
    """Load the checkpoint (if any) into `loop`: the epoch to start at, and a mid-epoch state.

    The epochs already done are logged again, so live plots stay complete. A checkpoint
    taken at an epoch end restores the random state here; a mid-epoch one is returned, for
    the epoch to skip its trained batches first and restore the random state after.
    """
    resume = checkpointer.load()
    if resume is None:
        return 0, None
    loop.load_state_dict(resume)
    for epoch, metrics in enumerate(loop.history):
        metric_logger.log_epoch(epoch, metrics)
    if resume["step"] == 0:
        loop.restore_random_state(resume)
        return resume["epoch"], None
    return resume["epoch"], resume


class Stateful(Protocol):
    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> Any: ...


class EpochLoop:
    """Runs `epochs` epochs over `train_loader`, one `train_step` per batch."""

    def __init__(
        self,
        name: str,
        epochs: int,
        train_loader,
        runtime: RuntimeParams,
        hw: Hardware,
        sums: dict[str, float],
    ):
        self.name, self.epochs, self.train_loader = name, epochs, train_loader
        self.runtime, self.hw = runtime, hw
        self._zero_sums = dict(sums)
        self.sums = dict(sums)
        self.history: list[dict[str, float]] = []
        self.clock = RunClock()

    # ----- what a subclass provides -----
    def stateful(self) -> dict[str, Stateful]:
        """Model, optimiser, scheduler... whatever a checkpoint must restore."""
        raise NotImplementedError

    def begin_epoch(self, epoch: int) -> None:
        """Train mode, schedules that depend on the epoch."""

    def train_step(self, batch: Any) -> None:
        """One optimisation step; adds to `self.sums`."""
        raise NotImplementedError

    def end_epoch(self, epoch: int, sums: dict[str, float], lr: float) -> dict[str, float]:
        """The epoch's metrics from its summed statistics (and any evaluation)."""
        raise NotImplementedError

    def scheduler_step(self) -> None:
        """Advance the per-epoch learning-rate schedule."""

    def current_lr(self) -> float:
        raise NotImplementedError

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

    # ----- the loop -----
    def train_epoch(
        self, epoch: int, stop: StopFlag, checkpointer: Checkpointer, resume: dict | None
    ) -> dict[str, float]:
        self.begin_epoch(epoch)
        self.train_loader.set_epoch(epoch)
        batches: Iterator[Any] = iter(self.train_loader)
        first = 0
        if resume is not None:
            first = resume["step"]
            for _ in range(first):
                next(batches)
            self.restore_random_state(resume)
        lr = self.current_lr()
        shown = progress(
            batches,
            self.runtime,
            desc=f"{self.name} {epoch}",
            total=len(self.train_loader),
            initial=first,
        )
        for step, batch in enumerate(shown, start=first):
            self.train_step(batch)
            halt_if_requested(
                stop,
                self.hw,
                checkpointer,
                f"{self.name} epoch {epoch} step {step + 1}",
                partial(self.state_dict, epoch, step + 1),
            )
        self.scheduler_step()
        sums, self.sums = self.sums, dict(self._zero_sums)
        return self.end_epoch(epoch, sums, lr)

    def run(
        self, metric_logger: MetricLogger, checkpointer: Checkpointer, stop: StopFlag
    ) -> list[dict[str, float]]:
        """Every epoch (resuming from the checkpoint if there is one); returns the history."""
        start, resume = resume_point(self, checkpointer, metric_logger)
        for epoch in range(start, self.epochs):
            metrics = self.train_epoch(epoch, stop, checkpointer, resume)
            resume = None
            self.history.append(metrics)
            metric_logger.log_epoch(epoch, metrics)
            log.info(
                "%s epoch %d: %s",
                self.name,
                epoch,
                ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()),
            )
            checkpointer.save(self.state_dict(epoch + 1, 0))
            halt_if_requested(stop, self.hw, checkpointer, f"the end of {self.name} epoch {epoch}")
        return self.history
