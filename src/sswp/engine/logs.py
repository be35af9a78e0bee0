"""What a running stage tells its user: the log file and stderr, a progress bar (or a line
every 30 s in batch logs), per-epoch status with an ETA, and metrics for DVCLive and
TensorBoard."""

from __future__ import annotations

import logging
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TypeVar

from tqdm import tqdm

from sswp.config.params import RuntimeParams
from sswp.errors import SswpError
from sswp.pipeline.paths import LIVE_DIR, LOG_DIR

ATTEMPT_SEPARATOR = "----- new attempt:"

T = TypeVar("T")
log = logging.getLogger("sswp")


class RunClock:
    """Wall-clock hours of a stage, carried across resumed runs through the checkpoint."""

    def __init__(self, hours_before: float = 0.0):
        self.hours_before, self.start = hours_before, time.perf_counter()

    def hours(self) -> float:
        return self.hours_before + (time.perf_counter() - self.start) / 3600


# A log record with this attribute set reaches stderr only if the stage succeeds.
HOLD_ON_STDERR = "hold_on_stderr"


class HoldUntilSuccess(logging.Filter):
    """On the stderr handler: keeps back the records marked HOLD_ON_STDERR until `release`."""

    def __init__(self, handler: logging.Handler) -> None:
        super().__init__()
        self.handler = handler
        self.held: list[logging.LogRecord] = []
        handler.addFilter(self)

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, HOLD_ON_STDERR, False):
            self.held.append(record)
            return False
        return True

    def release(self) -> None:
        held, self.held = self.held, []
        for record in held:
            setattr(record, HOLD_ON_STDERR, False)
            self.handler.handle(record)


_stderr: HoldUntilSuccess | None = None


def release_held_warnings() -> None:
    """Print on stderr what the stage held back there (its log file has it already)."""
    if _stderr is not None:
        _stderr.release()


def setup_logging(stage: str, main_process: bool = True) -> Path:
    """Log to stderr and to logs/<stage>.log (one file per stage run, appended to).

    Each attempt starts with a separator line, so an interrupted run's log stays readable
    above its rerun's. Under DDP only rank 0 writes the file and logs below WARNING.
    """
    global _stderr
    path = LOG_DIR / f"{stage}.log"
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    # A new filter: what an earlier stage of this process held back was about that stage.
    _stderr = HoldUntilSuccess(logging.StreamHandler(sys.stderr))
    handlers: list[logging.Handler] = [_stderr.handler]
    if main_process:
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as handle:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            handle.write(f"{ATTEMPT_SEPARATOR} {stamp}, pid {os.getpid()} -----\n")
        handlers.append(logging.FileHandler(path, mode="a"))
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
    for handler in handlers:
        handler.setFormatter(fmt)
        root.addHandler(handler)
    root.setLevel(logging.INFO if main_process else logging.WARNING)
    return path


PROGRESS_LOG_SECONDS = 30.0


def duration(seconds: float) -> str:
    """Seconds as h:mm:ss, the form of elapsed times and ETAs in the logs."""
    whole = max(0, round(seconds))
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


class EpochClock:
    """ "epoch k/N" with the elapsed time and an ETA, for the per-epoch log lines.

    The ETA extrapolates the mean time of the epochs this process ran, so a resumed run
    does not count the epochs it skipped.
    """

    def __init__(self, total: int, first: int = 0, clock: Callable[[], float] = time.monotonic):
        self.total, self.first, self.clock = total, first, clock
        self.start = clock()

    def status(self, epoch: int) -> str:
        """After 0-based `epoch` finished: e.g. `epoch 3/10, 0:00:12 elapsed, ETA 0:00:28`."""
        elapsed = self.clock() - self.start
        done = epoch + 1 - self.first
        eta = elapsed / done * (self.total - epoch - 1) if done > 0 else 0.0
        return f"epoch {epoch + 1}/{self.total}, {duration(elapsed)} elapsed, ETA {duration(eta)}"


def logged_progress(
    items: Iterable[T],
    desc: str,
    total: int,
    initial: int = 0,
    interval: float = PROGRESS_LOG_SECONDS,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[T]:
    """`items`, logging `desc: batch i/total (p%), elapsed` at most once every `interval` s."""
    start = last = clock()
    for done, item in enumerate(items, start=initial + 1):
        yield item
        now = clock()
        if now - last >= interval:
            last = now
            log.info(
                "%s: batch %d/%d (%d%%), %s elapsed",
                desc,
                done,
                total,
                100 * done // max(1, total),
                duration(now - start),
            )


def progress(
    items: Iterable[T], runtime: RuntimeParams, *, desc: str, total: int, initial: int = 0
) -> Iterator[T]:
    """A progress bar on a terminal; in batch logs a line at most every 30 s (`auto`)."""
    if runtime.progress == "always" or (runtime.progress == "auto" and sys.stderr.isatty()):
        yield from tqdm(
            items, desc=desc, total=total, initial=initial, leave=False, dynamic_ncols=True
        )
    elif runtime.progress == "auto":
        yield from logged_progress(items, desc, total, initial)
    else:
        yield from items


class MetricLogger:
    """Per-epoch metrics to DVCLive (plots for `dvc plots`) and TensorBoard; rank 0 only."""

    def __init__(self, name: str, enabled: bool = True):
        self.live = self.tensorboard = None
        if not enabled:
            return
        from dvclive import Live
        from scmrepo.exceptions import SCMError
        from torch.utils.tensorboard import SummaryWriter

        self.dir = LIVE_DIR / name
        # DVCLive starts its plots afresh and a resumed run logs its finished epochs again;
        # TensorBoard would append, so its events start afresh too.
        shutil.rmtree(self.dir / "tensorboard", ignore_errors=True)
        try:
            self.live = Live(str(self.dir), dvcyaml=False, save_dvc_exp=False, report=None)
        except SCMError as exc:  # DVCLive reads the git revision, which an empty repo lacks
            raise SswpError(
                f"DVCLive cannot log here ({exc}): commit once "
                "(`git add -A && git commit -m start`), then rerun"
            ) from exc
        self.tensorboard = SummaryWriter(str(self.dir / "tensorboard"))

    def log_epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        if self.live is None:
            return
        self.live.step = epoch
        for key, value in metrics.items():
            self.live.log_metric(key, value)
            self.tensorboard.add_scalar(key, value, epoch)
        self.live.next_step()

    def close(self) -> None:
        if self.live is not None:
            self.live.end()
            self.tensorboard.close()
