"""Before a stage runs: hold its lock, clear what an interrupted write left, refuse stale inputs.

Every check here fails at once with one line, before any training: a second run of the same
stage, outputs that cannot be written (read-only or missing folders), a package that is not
the checkout's code, and inputs whose provenance records do not match the current params and
code.

Two runs of one stage run would share a checkpoint, live plots and outputs. Each run holds
an exclusive file lock beside the checkpoints (outside every declared output); the kernel
drops it when its holder dies, so a killed run never blocks the next one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from filelock import FileLock, Timeout

from sswp.config.params import Params
from sswp.errors import SswpError
from sswp.pipeline.contract import Run
from sswp.pipeline.paths import CHECKPOINT_DIR
from sswp.pipeline.provenance import check_checkout_code, check_inputs

log = logging.getLogger(__name__)


@contextmanager
def run_lock(run: Run) -> Iterator[None]:
    """Hold the run's lock while it runs; a second run stops at once, naming the holder (whose
    pid and host the lock file holds). The file goes when the run ends, so that a finished
    pipeline leaves no checkpoint folder behind (filelock copes with a file removed under it)."""
    path = CHECKPOINT_DIR / f"{run.name}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(path, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        holder = path.read_text(errors="replace").strip() or "another process"
        raise SswpError(
            f"`{run.command}` is already running in this folder ({holder}, holding {path}); "
            "wait for it to finish or stop it, then rerun"
        ) from None
    try:
        path.write_text(f"pid {os.getpid()} on {socket.gethostname()}")
        yield
    finally:
        path.unlink(missing_ok=True)  # still locked: no one else holds this file now
        lock.release()
        with contextlib.suppress(OSError):  # other runs' checkpoints or locks are still there
            path.parent.rmdir()


def remove_orphans(plan: Run) -> None:
    """Temp files and folders of this run's outputs: only an interrupted run leaves them."""
    for orphan in plan.orphans():
        log.info("removing %s, left by an interrupted run", orphan)
        if orphan.is_dir():
            shutil.rmtree(orphan)
        else:
            orphan.unlink(missing_ok=True)


def check_writable(plan: Run) -> None:
    """Create and remove a file where each output goes: fails now, not after the training."""
    for path in (plan.artifact, *plan.files):
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent):
            pass


@contextmanager
def guarded(plan: Run, params: Params, main_process: bool = True) -> Iterator[None]:
    """Run the stage inside this: locked, cleaned and checked (locking by the main process)."""
    check_checkout_code(plan.stage)
    with ExitStack() as stack:
        if main_process:
            stack.enter_context(run_lock(plan))
            remove_orphans(plan)
            check_writable(plan)
        check_inputs(params, plan.inputs)
        yield
