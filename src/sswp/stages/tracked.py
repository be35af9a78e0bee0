"""The params keys each stage's result depends on.

dvc.yaml declares the same lists (a test keeps them equal) and Snakemake reads them from
there; the checkpoint key hashes them, so a resumed run always has the same params.
"""

from __future__ import annotations

from typing import Any

from sswp.config import Params, schema

_SUPERVISED = (
    "epochs",
    "batch_size",
    "lr",
    "lr_min",
    "lr_step",
    "momentum",
    "weight_decay",
    "warmup_epochs",
    "cutout",
    "auxiliary_weight",
    "drop_path",
    "grad_clip",
    "label_smoothing",
)
# The seed is not here: each run's seed is in its command (`--seed`), so adding a seed to
# `seeds` runs the new seed's stages and leaves the others alone.
_RUN = (
    "runtime.device",
    "runtime.gpus",
    "runtime.threads",
    "runtime.amp",
    "runtime.deterministic",
    "runtime.sync_bn",
    "data.loader",
    "data.workers",
    "data.hflip",
)
_CHILD = (*_RUN, "search.layers", "search.channels", "search.stem", "child.pool_bn_affine")
_FINETUNE = (*_CHILD, "finetune.architecture", *(f"finetune.{key}" for key in _SUPERVISED))

STAGE_PARAMS: dict[str, tuple[str, ...]] = {
    "prepare": ("data.split_seed", "data.dataset", "data.path", "data.image_size", "data.subset"),
    "search": (*_RUN, "data.simclr_min_crop", "search"),
    "train": (*_CHILD, *(f"train.{key}" for key in _SUPERVISED)),
    "train_reference": (*_CHILD, *(f"train.{key}" for key in _SUPERVISED)),
    "pretrain": (*_CHILD, "data.simclr_min_crop", "finetune.architecture", "pretrain"),
    "finetune": _FINETUNE,
    "finetune_two_stage": _FINETUNE,
    "linear_eval": (*_CHILD, "finetune.architecture", "linear_eval"),
    # Every top-level key: the report copies all params into results/params.yaml.
    "report": tuple(schema()["properties"]),
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


# The package files (relative to src/sswp) each stage runs. dvc.yaml's src/ deps and the
# Snakemake rules' code inputs list the same (a test keeps them equal); the code digest that
# provenance records and checkpoint keys hold is taken over exactly these files.
_COMMON_CODE = (
    "cli.py",
    "config.py",
    "yaml12.py",
    "params.schema.yaml",
    "atomic.py",
    "paths.py",
    "provenance.py",
    "stages/plan.py",
    "stages/guard.py",
    "stages/outputs.py",
    "engine/lock.py",
)
_LOOP_CODE = (
    *_COMMON_CODE,
    "data",
    "engine/runtime.py",
    "engine/checkpoint.py",
    "engine/interrupt.py",
    "stages/tracked.py",
    "stages/seeds.py",
    "nas",
)
_CHILD_CODE = (
    *_LOOP_CODE,
    "models",
    "engine/distributed.py",
    "engine/epochs.py",
    "engine/supervised.py",
    "stages/children.py",
)
_TRAIN_CODE = (*_CHILD_CODE, "stages/train.py")
_FINETUNE_CODE = (*_CHILD_CODE, "stages/finetune.py")

STAGE_CODE: dict[str, tuple[str, ...]] = {
    "prepare": (*_COMMON_CODE, "data", "stages/prepare.py"),
    "search": (
        *_LOOP_CODE,
        "ssl",
        "engine/distributed.py",
        "engine/epochs.py",
        "engine/phases.py",
        "engine/objectives.py",
        "engine/search.py",
        "stages/search.py",
    ),
    "train": _TRAIN_CODE,
    "train_reference": _TRAIN_CODE,
    "pretrain": (*_CHILD_CODE, "ssl", "engine/pretrain.py", "stages/pretrain.py"),
    "finetune": _FINETUNE_CODE,
    "finetune_two_stage": _FINETUNE_CODE,
    "linear_eval": (
        *_CHILD_CODE,
        "engine/linear_eval.py",
        "stages/finetune.py",
        "stages/linear_eval.py",
    ),
    "report": (
        *_COMMON_CODE,
        "nas",
        "curves.py",
        "stats.py",
        "fairness.py",
        "report.py",
        "stages/report.py",
    ),
}
