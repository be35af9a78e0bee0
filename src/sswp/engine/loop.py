"""The one epoch skeleton of every training loop: the search's and the child networks'.

It owns the order of events that makes a resumed run equal an uninterrupted one, and every
run stoppable: load the checkpoint and log its finished epochs again; in each epoch, skip
the batches already trained on, then restore the random state, step with a progress bar
and a stop check after every step; at the epoch's end log it and checkpoint (at most once
per `runtime.checkpoint_seconds`), saving whatever the interval when a stop signal came.

A loop says what an epoch does (`train_epoch`, which walks its batches through the
`Steps` it is given) and what a checkpoint holds (`state_dict`, `load_state_dict`,
`restore_random_state`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

from sswp.config.params import RuntimeParams
from sswp.engine.checkpoint import Checkpointer
from sswp.engine.hardware import Hardware
from sswp.engine.interrupt import StopFlag, halt_if_requested
from sswp.engine.logs import EpochClock, MetricLogger, progress

log = logging.getLogger(__name__)


class TrainingLoop:
    """Every epoch of a run, resumable and stoppable; see the module's docstring."""

    name: str  # names the loop in progress bars, log lines and stop messages
    epochs: int
    runtime: RuntimeParams
    hw: Hardware
    history: list[dict[str, float]]

    def train_epoch(self, epoch: int, steps: Steps) -> dict[str, float]:
        """Train one epoch over `steps(loader)`; return its metrics."""
        raise NotImplementedError

    def state_dict(self, epoch: int, step: int) -> dict[str, Any]:
        """Everything a checkpoint taken before `step` of `epoch` must hold."""
        raise NotImplementedError

    def load_state_dict(self, state: dict[str, Any]) -> None:
        raise NotImplementedError

    def restore_random_state(self, state: dict[str, Any]) -> None:
        raise NotImplementedError

    def run_epoch(
        self,
        epoch: int,
        stop: StopFlag,
        checkpointer: Checkpointer | None,
        resume: dict[str, Any] | None = None,
    ) -> dict[str, float]:
        """One epoch, its steps driven by the skeleton (checkpointing only when stopped)."""
        return self.train_epoch(epoch, Steps(self, epoch, stop, checkpointer, resume))

    def epoch_note(self, epoch: int) -> str:
        """What the epoch's log line adds after its status, e.g. the search's phase."""
        return ""

    def run(
        self, metric_logger: MetricLogger, checkpointer: Checkpointer, stop: StopFlag
    ) -> list[dict[str, float]]:
        """Every epoch (resuming from the checkpoint if there is one); returns the history."""
        start, resume = resume_point(self, checkpointer, metric_logger)
        clock = EpochClock(self.epochs, start)
        for epoch in range(start, self.epochs):
            metrics = self.run_epoch(epoch, stop, checkpointer, resume)
            resume = None
            self.history.append(metrics)
            metric_logger.log_epoch(epoch, metrics)
            log.info(
                "%s %s%s: %s",
                self.name,
                clock.status(epoch),
                self.epoch_note(epoch),
                ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()),
            )
            halt_if_requested(
                stop,
                self.hw,
                checkpointer,
                f"the end of {self.name} epoch {epoch}",
                partial(self.state_dict, epoch + 1, 0),
                epoch_end=True,
            )
        return self.history


@dataclass
class Steps:
    """One epoch's batches of a loader as (step, batch): a resumed epoch skips the batches it
    trained on and then restores the random state, and every step ends with a stop check."""

    loop: TrainingLoop
    epoch: int
    stop: StopFlag
    checkpointer: Checkpointer | None  # where a stop saves (None: a stop only stops)
    resume: dict[str, Any] | None  # a mid-epoch checkpoint, or None

    def __call__(self, loader: Any) -> Iterator[tuple[int, Any]]:
        loop = self.loop
        loader.set_epoch(self.epoch)
        batches: Iterator[Any] = iter(loader)
        first = 0
        if self.resume is not None:
            first = self.resume["step"]
            skip(batches, first)
            loop.restore_random_state(self.resume)
        shown = progress(
            batches,
            loop.runtime,
            desc=f"{loop.name} {self.epoch}",
            total=len(loader),
            initial=first,
        )
        for step, batch in enumerate(shown, start=first):
            loop.hw.new_step()
            yield step, batch
            halt_if_requested(
                self.stop,
                loop.hw,
                self.checkpointer,
                f"{loop.name} epoch {self.epoch} step {step + 1}",
                partial(loop.state_dict, self.epoch, step + 1),
            )


def skip(batches: Iterator[Any], count: int) -> None:
    """Drop the batches a resumed epoch already trained on (the random state is restored
    after, so what they drew is forgotten)."""
    for _ in range(count):
        next(batches)


def cycle(loader: Iterable[Any]) -> Iterator[Any]:
    """A loader's batches, epoch after epoch, for a second loader read at its own pace."""
    while True:
        yield from loader


def resume_point(
    loop: TrainingLoop, checkpointer: Checkpointer, metric_logger: MetricLogger
) -> tuple[int, dict[str, Any] | None]:
    """Load the checkpoint (if any) into `loop`: the epoch to start at, and a mid-epoch state.

    The epochs already done are logged again, so live plots stay complete. A checkpoint
    taken at an epoch end restores the random state here; a mid-epoch one is returned, for
    the epoch to skip its trained batches first and restore the random state after.
    """
    resume = checkpointer.load()
    if resume is None:
        return 0, None
    try:
        loop.load_state_dict(resume)
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as exc:
        first_line = next(iter(str(exc).splitlines()), "")
        raise checkpointer.unusable(f"{type(exc).__name__} {first_line}".strip()) from exc
    log.info(
        "resuming from %s (epoch %d, step %d)", checkpointer.path, resume["epoch"], resume["step"]
    )
    for epoch, metrics in enumerate(loop.history):
        metric_logger.log_epoch(epoch, metrics)
    if resume["step"] == 0:
        loop.restore_random_state(resume)
        return resume["epoch"], None
    return resume["epoch"], resume
