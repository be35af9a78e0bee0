"""A run's record split in two: the numbers DVC shows as metrics, and the labels beside them.

`metrics/<stage>/<tag>.json` holds only finite numbers, so `dvc metrics show` and
`dvc exp show` list measurements, never names; what a run was (architecture, init, seed,
device, objective, protocol, label ratio, the search's snapshot scores) goes to `info.json`
in the run's artifact folder, which no driver declares as metrics.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from sswp.pipeline import atomic
from sswp.pipeline.paths import INFO_FILE

# Keys that say which run this is: labels even when they are numbers.
LABEL_KEYS = frozenset(
    {
        "architecture",
        "device",
        "init",
        "label_ratio",
        "labelled_images",
        "objective",
        "protocol",
        "seed",
    }
)


def is_metric(key: str, value: Any) -> bool:
    """A finite int or float (not a bool) under a key that is not a label."""
    return (
        key not in LABEL_KEYS
        and isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


def split_record(record: dict[str, Any]) -> tuple[dict[str, float], dict[str, Any]]:
    """(metrics, info): the numbers, and everything else of `record`."""
    metrics = {k: v for k, v in record.items() if is_metric(k, v)}
    info = {k: v for k, v in record.items() if k not in metrics}
    return metrics, info


def write_info(folder: Path, info: dict[str, Any]) -> None:
    """The run's labels as `folder/info.json`, next to its artifacts."""
    atomic.write_json(folder / INFO_FILE, info)
