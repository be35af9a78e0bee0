"""Reading the report's inputs: every run that params.yaml asks for, each file checked.

It reads exactly the runs that params.yaml asks for, never a glob, so files left by older
runs cannot leak in; and it builds every output in memory before writing any, so a missing
or malformed input leaves results/ untouched. Each problem names the file and the command
that (re)makes it."""

from __future__ import annotations

import json
import math
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sswp.config.params import Params
from sswp.errors import SswpError
from sswp.nas.genotype import EDGES_PER_CELL, Genotype
from sswp.nas.ops import CANDIDATE_OPS
from sswp.pipeline.contract import LINEAR_EVAL_ARMS
from sswp.pipeline.paths import (
    ALPHA_HISTORY_FILE,
    GENOTYPE_FILE,
    HISTORY_FILE,
    INFO_FILE,
    MANIFEST_FILE,
    PREPARED_DIR,
    artifact_dir,
    metrics_path,
    ratio_tag,
    search_dir,
    seed_tag,
    snapshot_dir,
    train_tag,
)
from sswp.pipeline.plan import (
    finetune_plan,
    linear_eval_plan,
    pretrain_plan,
    search_plan,
    train_plan,
)
from sswp.report.arms import finetune_inits
from sswp.report.budget import SSL_KEYS
from sswp.report.curves import Curve, curve_from_history
from sswp.report.tables import COST_UNITS


@dataclass(frozen=True)
class Check:
    """What one metrics key must hold, and how to say so in an error."""

    test: Callable[[Any], bool]
    expected: str


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


NUMBER = Check(_is_number, "a finite number")

FRACTION = Check(lambda v: _is_number(v) and 0 <= v <= 1, "a number in [0, 1]")

COUNT = Check(
    lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0, "a non-negative integer"
)

PROCESSES = Check(lambda v: COUNT.test(v) and v >= 1, "a positive integer")

DEVICE = Check(
    lambda v: isinstance(v, str) and v in COST_UNITS,
    " or ".join(repr(d) for d in COST_UNITS),
)

# The self-supervised weight steps and image pairs the preserved weights got in the search.
SSL_BUDGET_KEYS = {key: COUNT for key in SSL_KEYS}

SEARCH_KEYS = {
    "search_hours": NUMBER,
    "processes": PROCESSES,
    "labels_used": COUNT,
    **SSL_BUDGET_KEYS,
}

SEARCH_INFO_KEYS = {"device": DEVICE}

TRAIN_KEYS = {"test_acc": FRACTION, "best_test_acc": FRACTION, "params_m": NUMBER}

ACCURACY_KEYS = {"test_acc": FRACTION, "best_test_acc": FRACTION, "val_acc": FRACTION}

FINETUNE_KEYS = {**ACCURACY_KEYS, "steps": COUNT}

MANIFEST_KEYS = {"num_train": COUNT, "num_test": COUNT}

PRETRAIN_KEYS = {"pretrain_hours": NUMBER, "ssl_steps": COUNT, "ssl_pairs": COUNT}


def read_json(path: Path, command: str) -> Any:
    """Parse one JSON input, or say which command (re)makes it if it is missing or broken."""
    if not path.is_file():
        raise SswpError(f"{path} not found; run `{command}` first")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SswpError(f"{path} is not valid JSON ({exc}); rerun `{command}`") from exc


def read_metrics(path: Path, checks: dict[str, Check], command: str) -> dict[str, Any]:
    """One metrics file whose `checks` keys are present and well-typed, the first fault named."""
    data = read_json(path, command)
    if not isinstance(data, dict):
        raise SswpError(f"{path} is not a JSON object; rerun `{command}`")
    missing = [key for key in checks if key not in data]
    if missing:
        raise SswpError(f"{path} lacks {', '.join(missing)}; rerun `{command}`")
    for key, check in checks.items():
        if not check.test(data[key]):
            raise SswpError(
                f"{path}: {key} = {data[key]!r} is not {check.expected}; rerun `{command}`"
            )
    return data


def read_history(path: Path, command: str, need_steps: bool = False) -> Curve:
    """One history.json as a learning curve (finetunes need their cumulative step counts)."""
    try:
        return curve_from_history(read_json(path, command), need_steps)
    except ValueError as exc:
        raise SswpError(f"{path}: {exc}; rerun `{command}`") from exc


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


def read_genotype(seed: int, architecture: str) -> Genotype:
    """The genotype of one search's snapshot, checked to exist so the error names the seed."""
    path = snapshot_dir(seed, architecture) / GENOTYPE_FILE
    if not path.is_file():
        raise SswpError(f"{path} not found; run `{search_plan(seed).command}` first")
    return Genotype.load(path)


@dataclass(frozen=True)
class Inputs:
    """Everything the report shows, per seed in params order, read before anything is built.

    train[arch] and finetune[init][ratio] hold per-seed metrics; the *_curves fields the
    matching per-seed learning curves; linear_eval[init][ratio] per-seed metrics.
    """

    searches: list[dict[str, Any]]
    pretrains: list[dict[str, Any]]
    train: dict[str, list[dict[str, Any]]]
    train_curves: dict[str, list[Curve]]
    finetune: dict[str, dict[float, list[dict[str, Any]]]]
    finetune_curves: dict[str, dict[float, list[Curve]]]
    linear_eval: dict[str, dict[float, list[dict[str, Any]]]]
    genotypes: dict[int, Genotype]
    alpha_history: np.ndarray
    manifest: dict[str, Any]
    validation_images: int | None


def gather(params: Params) -> Inputs:
    """Read exactly the files params names, in pipeline order, failing on the first problem."""
    seeds = params.seeds
    ratios = params.finetune.label_ratios
    searches = [
        {
            **read_metrics(
                metrics_path("search", seed_tag(s)), SEARCH_KEYS, search_plan(s).command
            ),
            **read_metrics(search_dir(s) / INFO_FILE, SEARCH_INFO_KEYS, search_plan(s).command),
        }
        for s in seeds
    ]
    train, train_curves = {}, {}
    for arch in params.train.trained():
        tags = [(train_tag(arch, s), train_plan(arch, s).command) for s in seeds]
        train[arch] = [read_metrics(metrics_path("train", t), TRAIN_KEYS, c) for t, c in tags]
        train_curves[arch] = [
            read_history(artifact_dir("train", t) / HISTORY_FILE, c) for t, c in tags
        ]
    pretrains = [
        read_metrics(metrics_path("pretrain", seed_tag(s)), PRETRAIN_KEYS, pretrain_plan(s).command)
        for s in seeds
    ]
    finetune: dict[str, dict[float, list[dict[str, Any]]]] = {}
    finetune_curves: dict[str, dict[float, list[Curve]]] = {}
    for init in finetune_inits(params):
        finetune[init], finetune_curves[init] = {}, {}
        for ratio in ratios:
            tags = [
                (ratio_tag(init, ratio, s), finetune_plan(init, ratio, s).command) for s in seeds
            ]
            finetune[init][ratio] = [
                read_metrics(metrics_path("finetune", t), FINETUNE_KEYS, c) for t, c in tags
            ]
            finetune_curves[init][ratio] = [
                read_history(artifact_dir("finetune", t) / HISTORY_FILE, c, need_steps=True)
                for t, c in tags
            ]
    linear_eval = {
        init: {
            ratio: [
                read_metrics(
                    metrics_path("linear_eval", ratio_tag(init, ratio, s)),
                    ACCURACY_KEYS,
                    linear_eval_plan(ratio, s).command,
                )
                for s in seeds
            ]
            for ratio in ratios
        }
        for init in LINEAR_EVAL_ARMS
    }
    manifest = read_metrics(PREPARED_DIR / MANIFEST_FILE, MANIFEST_KEYS, "sswp prepare")
    if not manifest.get("classes") or not isinstance(manifest.get("image_shape"), list):
        raise SswpError(
            f"{PREPARED_DIR / MANIFEST_FILE} lacks classes or image_shape; rerun `sswp prepare`"
        )
    genotypes = {s: read_genotype(s, params.finetune.architecture) for s in seeds}
    alpha_history = read_alpha_history(
        search_dir(seeds[0]) / ALPHA_HISTORY_FILE, search_plan(seeds[0]).command
    )
    return Inputs(
        searches=searches,
        pretrains=pretrains,
        train=train,
        train_curves=train_curves,
        finetune=finetune,
        finetune_curves=finetune_curves,
        linear_eval=linear_eval,
        genotypes=genotypes,
        alpha_history=alpha_history,
        manifest=manifest,
        validation_images=validation_images(manifest),
    )


def validation_images(manifest: dict[str, Any]) -> int | None:
    """How many training images the validation split holds, as `sswp prepare` recorded it."""
    count = manifest.get("num_validation")
    return int(count) if COUNT.test(count) else None
