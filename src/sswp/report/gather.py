"""Reading the report's inputs: every run of the stage contract's run plan, each file checked.

It reads exactly the runs that params.yaml asks for (`sswp.pipeline.contract.runs`), never a
glob, so files left by older runs cannot leak in; each metrics file is checked against its
stage's JSON schema, and every problem names the file and the command that (re)makes it.
Nothing is written here: a missing or malformed input leaves results/ untouched.
"""

from __future__ import annotations

import json
import math
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import torch

from sswp.config.params import Params
from sswp.errors import SswpError
from sswp.nas.genotype import EDGES_PER_CELL, Genotype
from sswp.nas.ops import CANDIDATE_OPS
from sswp.pipeline.contract import LINEAR_EVAL_ARMS, Run, runs
from sswp.pipeline.paths import (
    ALPHA_HISTORY_FILE,
    GENOTYPE_FILE,
    HISTORY_FILE,
    INFO_FILE,
    MANIFEST_FILE,
    PREPARED_DIR,
)
from sswp.report.budget import SSL_KEYS
from sswp.report.curves import Curve, SslCurve, curve_from_history, ssl_curve_from_history
from sswp.report.tables import COST_UNITS

# What each metrics value must be, and how an error names it.
NUMBER = {"type": "number", "description": "a finite number"}
FRACTION = {"type": "number", "minimum": 0, "maximum": 1, "description": "a number in [0, 1]"}
COUNT = {"type": "integer", "minimum": 0, "description": "a non-negative integer"}
PROCESSES = {"type": "integer", "minimum": 1, "description": "a positive integer"}
DEVICE = {"enum": list(COST_UNITS), "description": " or ".join(map(repr, COST_UNITS))}


def keys(**properties: dict[str, Any]) -> dict[str, Any]:
    """The schema of a JSON object that must hold these keys (and may hold others)."""
    return {"type": "object", "required": list(properties), "properties": properties}


ACCURACY = {"test_acc": FRACTION, "best_test_acc": FRACTION, "val_acc": FRACTION}
SCHEMAS = {
    "search": keys(
        search_hours=NUMBER,
        processes=PROCESSES,
        labels_used=COUNT,
        **dict.fromkeys(SSL_KEYS, COUNT),
    ),
    "search info": keys(device=DEVICE),
    "train": keys(test_acc=FRACTION, best_test_acc=FRACTION, params_m=NUMBER),
    "pretrain": keys(pretrain_hours=NUMBER, ssl_steps=COUNT, ssl_pairs=COUNT),
    "finetune": keys(**ACCURACY, steps=COUNT),
    "linear_eval": keys(**ACCURACY),
    "manifest": keys(num_train=COUNT, num_test=COUNT),
}
SCHEMA_OF_STAGE = {
    "train_reference": "train",
    "finetune_two_stage": "finetune",
}


def _finite_numbers(checker: Any, instance: Any) -> bool:
    """JSON schema's numbers, without NaN or infinities (which json.loads reads)."""
    return (
        isinstance(instance, int | float)
        and not isinstance(instance, bool)
        and math.isfinite(instance)
    )


Validator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine("number", _finite_numbers),
)


def read_json(path: Path, command: str) -> Any:
    """Parse one JSON input, or say which command (re)makes it if it is missing or broken."""
    if not path.is_file():
        raise SswpError(f"{path} not found; run `{command}` first")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SswpError(f"{path} is not valid JSON ({exc}); rerun `{command}`") from exc


def read_metrics(path: Path, schema: str, command: str) -> dict[str, Any]:
    """One metrics file checked against SCHEMAS[schema]: the first fault named in one line."""
    data = read_json(path, command)
    if not isinstance(data, dict):
        raise SswpError(f"{path} is not a JSON object; rerun `{command}`")
    spec = SCHEMAS[schema]
    missing = [key for key in spec["required"] if key not in data]
    if missing:
        raise SswpError(f"{path} lacks {', '.join(missing)}; rerun `{command}`")
    for error in Validator(spec).iter_errors(data):
        key = error.path[0]
        expected = spec["properties"][key]["description"]
        raise SswpError(f"{path}: {key} = {data[key]!r} is not {expected}; rerun `{command}`")
    return data


def read_history(path: Path, command: str, need_steps: bool = False) -> Curve:
    """One history.json as a learning curve (finetunes need their cumulative step counts)."""
    try:
        return curve_from_history(read_json(path, command), need_steps)
    except ValueError as exc:
        raise SswpError(f"{path}: {exc}; rerun `{command}`") from exc


def read_ssl_curve(run: Run) -> SslCurve | None:
    """The label-free measure along a self-supervised run (None where it was not taken)."""
    path = run.artifact / HISTORY_FILE
    try:
        return ssl_curve_from_history(read_json(path, run.command))
    except ValueError as exc:
        raise SswpError(f"{path}: {exc}; rerun `{run.command}`") from exc


def read_alpha_history(path: Path, command: str) -> np.ndarray:
    """softmax(alpha) per search epoch, shaped (epochs, cells, 14 edges, 7 ops)."""
    if not path.is_file():
        raise SswpError(f"{path} not found; run `{command}` first")
    try:
        history = torch.load(path, weights_only=True, map_location="cpu")
    except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SswpError(f"{path} is not a readable tensor ({reason}); rerun `{command}`") from exc
    shape = (EDGES_PER_CELL, len(CANDIDATE_OPS))
    if (
        not isinstance(history, torch.Tensor)
        or history.ndim != 4
        or tuple(history.shape[2:]) != shape
        or 0 in history.shape
    ):
        got = tuple(history.shape) if isinstance(history, torch.Tensor) else type(history).__name__
        raise SswpError(
            f"{path} should be a tensor (epochs, cells, {shape[0]}, {shape[1]}), got {got}; "
            f"rerun `{command}`"
        )
    return history.detach().to(torch.float64).numpy()


def read_genotype(search: Run, architecture: str) -> Genotype:
    """The genotype of one search's snapshot, checked to exist so the error names the seed."""
    path = search.artifact / architecture / GENOTYPE_FILE
    if not path.is_file():
        raise SswpError(f"{path} not found; run `{search.command}` first")
    return Genotype.load(path)


PerSeed = list[Any]  # one entry per seed, in params.yaml's order


@dataclass
class Inputs:
    """Everything the report shows, per seed in params order, read before anything is built.

    `searches` hold each search's metrics and labels (its snapshots' scores among them),
    `search_curves` and `pretrain_curves` the label-free measure per epoch; train[arch] and
    finetune[init][ratio] per-seed metrics, and their *_curves the learning curves;
    linear_eval[arm][ratio] per-seed metrics.
    """

    searches: PerSeed = field(default_factory=list)
    search_curves: PerSeed = field(default_factory=list)
    pretrains: PerSeed = field(default_factory=list)
    pretrain_curves: PerSeed = field(default_factory=list)
    train: dict[str, PerSeed] = field(default_factory=dict)
    train_curves: dict[str, PerSeed] = field(default_factory=dict)
    finetune: dict[str, dict[float, PerSeed]] = field(default_factory=dict)
    finetune_curves: dict[str, dict[float, PerSeed]] = field(default_factory=dict)
    linear_eval: dict[str, dict[float, PerSeed]] = field(default_factory=dict)
    genotypes: dict[int, Genotype] = field(default_factory=dict)
    alpha_history: np.ndarray | None = None
    manifest: dict[str, Any] = field(default_factory=dict)
    validation_images: int | None = None


def gather(params: Params) -> Inputs:
    """Read every run of the run plan, in pipeline order, failing on the first problem."""
    seeds = params.seeds
    seat = {str(seed): index for index, seed in enumerate(seeds)}
    inputs = Inputs(**{name: [None] * len(seeds) for name in PER_SEED_FIELDS})

    def slot(table: dict, *path: Any) -> PerSeed:
        for key in path[:-1]:
            table = table.setdefault(key, {})
        return table.setdefault(path[-1], [None] * len(seeds))

    for run in runs(params):
        if run.stage in ("prepare", "report"):
            continue
        values = dict(run.values)
        seed = seat[values["seed"]]
        schema = SCHEMA_OF_STAGE.get(run.stage, run.stage)
        metrics = [read_metrics(path, schema, run.command) for path in run.files]
        if run.stage == "search":
            info = read_metrics(run.artifact / INFO_FILE, "search info", run.command)
            inputs.searches[seed] = {**metrics[0], **info}
            inputs.search_curves[seed] = read_ssl_curve(run)
            inputs.genotypes[seeds[seed]] = read_genotype(run, params.finetune.architecture)
            if seed == 0:
                alphas = run.artifact / ALPHA_HISTORY_FILE
                inputs.alpha_history = read_alpha_history(alphas, run.command)
        elif run.stage == "pretrain":
            inputs.pretrains[seed] = metrics[0]
            inputs.pretrain_curves[seed] = read_ssl_curve(run)
        elif schema == "train":
            architecture = values["architecture"]
            slot(inputs.train, architecture)[seed] = metrics[0]
            curve = read_history(run.artifact / HISTORY_FILE, run.command)
            slot(inputs.train_curves, architecture)[seed] = curve
        elif schema == "finetune":
            init, ratio = values["init"], float(values["ratio"])
            slot(inputs.finetune, init, ratio)[seed] = metrics[0]
            curve = read_history(run.artifact / HISTORY_FILE, run.command, need_steps=True)
            slot(inputs.finetune_curves, init, ratio)[seed] = curve
        else:  # linear_eval: one metrics file per probed arm
            for arm, arm_metrics in zip(LINEAR_EVAL_ARMS, metrics, strict=True):
                slot(inputs.linear_eval, arm, float(values["ratio"]))[seed] = arm_metrics
    inputs.manifest = read_manifest()
    count = inputs.manifest.get("num_validation")
    inputs.validation_images = count if isinstance(count, int) and count >= 0 else None
    return inputs


PER_SEED_FIELDS = ("searches", "search_curves", "pretrains", "pretrain_curves")


def read_manifest() -> dict[str, Any]:
    path = PREPARED_DIR / MANIFEST_FILE
    manifest = read_metrics(path, "manifest", "sswp prepare")
    if not manifest.get("classes") or not isinstance(manifest.get("image_shape"), list):
        raise SswpError(f"{path} lacks classes or image_shape; rerun `sswp prepare`")
    return manifest
