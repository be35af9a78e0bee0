"""Stop a long stage cleanly on SIGTERM/SIGINT: finish the step, checkpoint, exit non-zero.

Cluster schedulers send SIGTERM before a wall-time kill or a preemption; the stage saves
where it is and the rerun (same command, `dvc repro`, or a Snakemake retry) resumes there.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from sswp.engine.distributed import any_rank
from sswp.engine.logs import MetricLogger
from sswp.errors import SswpError

if TYPE_CHECKING:
    from sswp.engine.checkpoint import Checkpointer
    from sswp.engine.hardware import Hardware

T = TypeVar("T", covariant=True)
R = TypeVar("R")


class StageInterrupted(SswpError):
    """Raised after the checkpoint is saved; the CLI exits with 128 + the signal number."""

    def __init__(self, signum: int, where: str, checkpoint: str | None):
        self.signum = signum
        name = signal.Signals(signum).name
        saved = f"checkpoint saved in {checkpoint}" if checkpoint else "no output written"
        super().__init__(
            f"stopped by {name} at {where}; {saved}. "
            "Rerun the same command (or `dvc repro` / `snakemake`) to resume"
        )


class StopFlag:
    """Set by a signal handler; the training loops poll it between steps."""

    def __init__(self) -> None:
        self.signum: int | None = None

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.signum = signum


@contextmanager
def stop_on_signals() -> Iterator[StopFlag]:
    flag = StopFlag()
    previous = {sig: signal.signal(sig, flag._handle) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield flag
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextmanager
def interrupt_on_sigterm() -> Iterator[None]:
    """Outside the training loops (which stop between steps), SIGTERM stops the stage at once.

    The exception unwinds an output write in progress, which removes its temp files, and
    the CLI prints the usual message instead of dying silently with status 143.
    """

    def _raise(signum: int, frame: FrameType | None) -> None:
        raise StageInterrupted(signum, "the start or the output write", None)

    previous = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def halt_if_requested(
    stop: StopFlag,
    hw: Hardware,
    checkpointer: Checkpointer,
    where: str,
    state: Callable[[], dict[str, Any]],
    epoch_end: bool = False,
) -> None:
    """Between steps: if any rank was signalled, save `state()` and stop every rank. At an
    epoch's end (`epoch_end`) also save it when the checkpoint interval has passed.

    All ranks decide together, so none is left waiting in a collective. A rank that got no
    signal itself reports SIGTERM, what schedulers send.
    """
    if epoch_end:
        checkpointer.save_at_epoch_end(state)
    if not any_rank(stop.requested, hw.dist, hw.device):
        return
    checkpointer.save(state())
    raise StageInterrupted(stop.signum or signal.SIGTERM, where, str(checkpointer.dir))


class LoggedLoop(Protocol[T]):
    """What a stage's training loop offers: run every epoch, logging and checkpointing."""

    def run(self, metric_logger: MetricLogger, checkpointer: Checkpointer, stop: StopFlag) -> T: ...


def run_logged(loop: LoggedLoop[R], name: str, checkpointer: Checkpointer, main: bool) -> R:
    """Run `loop` with live metrics under `name` (written by the main process) and a stop
    flag set by SIGINT/SIGTERM; the metric logger is closed however the run ends."""
    metric_logger = MetricLogger(name, enabled=main)
    try:
        with stop_on_signals() as stop:
            return loop.run(metric_logger, checkpointer, stop)
    finally:
        metric_logger.close()
