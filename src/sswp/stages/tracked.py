"""The params keys each stage's result depends on.

dvc.yaml declares the same lists (a test keeps them equal) and Snakemake reads them from
there; the checkpoint key hashes them, so a resumed run always has the same params.
"""

from __future__ import annotations

from typing import Any

from sswp.config import Params

_SUPERVISED = (
    "architecture",
    "epochs",
    "batch_size",
    "lr",
    "momentum",
    "weight_decay",
    "warmup_epochs",
    "cutout",
    "auxiliary_weight",
    "drop_path",
    "grad_clip",
)
_RUN = (
    "seed",
    "runtime.device",
    "runtime.gpus",
    "runtime.threads",
    "runtime.amp",
    "runtime.deterministic",
    "runtime.sync_bn",
    "data.loader",
    "data.workers",
)

STAGE_PARAMS: dict[str, tuple[str, ...]] = {
    "prepare": ("seed", "data.dataset", "data.path", "data.image_size", "data.subset"),
    "search": (*_RUN, "search"),
    "train": (*_RUN, "search.layers", "search.channels", "train"),
    "finetune": (
        *_RUN,
        "search.layers",
        "search.channels",
        *(f"finetune.{key}" for key in _SUPERVISED),
    ),
    "report": ("data.dataset", "finetune.inits", "finetune.label_ratios"),
}


def tracked_params(params: Params, stage: str) -> dict[str, Any]:
    """{dotted key: value} for the stage's keys, e.g. {"search": {...}, "seed": 0}."""
    raw = params.to_dict()
    out = {}
    for key in STAGE_PARAMS[stage]:
        value: Any = raw
        for part in key.split("."):
            value = value[part]
        out[key] = value
    return out
