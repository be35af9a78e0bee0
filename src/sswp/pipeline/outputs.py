"""Write a stage run's outputs all or nothing, with the provenance record that says what made them.

Metrics go to temp files first, so a full disk or a read-only metrics/ fails before the
artifact folder is replaced. The artifact folder, record included, is then swapped in whole
and the metrics renamed after it; any failure before that leaves no temp file behind.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sswp.config.params import Params
from sswp.pipeline import atomic
from sswp.pipeline.contract import Run
from sswp.pipeline.provenance import RECORD_FILE, make_record


def metrics_bytes(metrics: Mapping[str, Any]) -> bytes:
    return (json.dumps(metrics, indent=2, sort_keys=True) + "\n").encode()


@contextmanager
def publish(
    plan: Run, params: Params, metrics: Mapping[Path, Mapping[str, Any]] | None = None
) -> Iterator[Path]:
    """Yield an empty folder to fill; on success it becomes `plan.artifact`, with its record."""
    staged: dict[Path, Path] = {}
    try:
        for path, values in (metrics or {}).items():
            staged[Path(path)] = atomic.temp_beside(path, metrics_bytes(values))
        with atomic.staged_dir(plan.artifact) as tmp:
            yield tmp
            files = {
                (plan.artifact / p.relative_to(tmp)).as_posix(): p
                for p in sorted(tmp.rglob("*"))
                if p.is_file()
            }
            files.update({path.as_posix(): temp for path, temp in staged.items()})
            record = make_record(plan.stage, plan.command, params, plan.inputs, files)
            atomic.write_json(tmp / RECORD_FILE, record)
        for path, temp in staged.items():
            os.replace(temp, path)
    finally:
        for temp in staged.values():
            temp.unlink(missing_ok=True)
