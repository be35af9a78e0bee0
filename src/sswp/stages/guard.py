"""Before a stage runs: hold its lock, clear what an interrupted write left, refuse stale inputs.

Every check here fails at once with one line, before any training: a second run of the same
stage, outputs that cannot be written (read-only or missing folders), and inputs whose
provenance records do not match the current params and code.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from sswp.config import Params
from sswp.engine.lock import RunLock
from sswp.paths import CHECKPOINT_DIR
from sswp.provenance import check_inputs
from sswp.stages.plan import StagePlan

log = logging.getLogger(__name__)


def remove_orphans(plan: StagePlan) -> None:
    """Temp files and folders of this run's outputs: only an interrupted run leaves them."""
    for orphan in plan.orphans():
        log.info("removing %s, left by an interrupted run", orphan)
        if orphan.is_dir():
            shutil.rmtree(orphan)
        else:
            orphan.unlink(missing_ok=True)


def check_writable(plan: StagePlan) -> None:
    """Create and remove a file where each output goes: fails now, not after the training."""
    for path in (plan.artifact, *plan.files):
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent):
            pass


@contextmanager
def guarded(plan: StagePlan, params: Params, main_process: bool = True) -> Iterator[None]:
    """Run the stage inside this: locked, cleaned and checked (locking by the main process)."""
    with ExitStack() as stack:
        if main_process:
            stack.enter_context(RunLock(CHECKPOINT_DIR / f"{plan.name}.lock", plan.command))
            remove_orphans(plan)
            check_writable(plan)
        check_inputs(params, plan.inputs)
        yield
