"""`sswp report`: gather every stage's metrics over all seeds into results/.

It reads exactly the runs that params.yaml asks for, never a glob, so files left by older
runs cannot leak in; and it builds every output in memory before writing any, so a missing
or malformed input leaves results/ untouched. Each problem names the file and the command
that (re)makes it.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import pickle
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from sswp import atomic
from sswp import report as rep
from sswp.config import Params
from sswp.contract import LINEAR_EVAL_ARMS, TWO_STAGE, tracked_params
from sswp.errors import SswpError
from sswp.nas.genotype import EDGES_PER_CELL, Genotype
from sswp.nas.ops import CANDIDATE_OPS
from sswp.paths import (
    ALPHA_HISTORY_FILE,
    GENOTYPE_FILE,
    HISTORY_FILE,
    INFO_FILE,
    MANIFEST_FILE,
    PREPARED_DIR,
    RESULTS_DIR,
    artifact_dir,
    metrics_path,
    ratio_tag,
    search_dir,
    seed_tag,
    snapshot_dir,
    train_tag,
)
from sswp.stages.plan import finetune_plan, linear_eval_plan, pretrain_plan, search_plan, train_plan

log = logging.getLogger(__name__)

MAIN_TABLE_CSV = RESULTS_DIR / "main_table.csv"
MAIN_TABLE_MD = RESULTS_DIR / "main_table.md"
LABEL_RATIO_CSV = RESULTS_DIR / "label_ratio.csv"
LABEL_RATIO_MD = RESULTS_DIR / "label_ratio.md"
LABEL_RATIO_PNG = RESULTS_DIR / "label_ratio.png"
TRAINING_CURVES_PNG = RESULTS_DIR / "training_curves.png"
ALPHA_HEATMAP_PNG = RESULTS_DIR / "alpha_heatmap.png"
SUMMARY_MD = RESULTS_DIR / "summary.md"
METRICS_JSON = RESULTS_DIR / "metrics.json"
HEADLINE_JSON = RESULTS_DIR / "headline.json"
PARAMS_YAML = RESULTS_DIR / "params.yaml"


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
    lambda v: isinstance(v, str) and v in rep.COST_UNITS,
    " or ".join(repr(d) for d in rep.COST_UNITS),
)

SEARCH_KEYS = {"search_hours": NUMBER, "processes": PROCESSES, "labels_used": COUNT}
SEARCH_INFO_KEYS = {"device": DEVICE}
TRAIN_KEYS = {"test_acc": FRACTION, "best_test_acc": FRACTION, "params_m": NUMBER}
ACCURACY_KEYS = {"test_acc": FRACTION, "best_test_acc": FRACTION}
MANIFEST_KEYS = {"num_train": COUNT, "num_test": COUNT}
PRETRAIN_KEYS = {"pretrain_hours": NUMBER}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """report takes everything from params.yaml and the metric files."""


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


def read_history(path: Path, command: str) -> list[float]:
    """The per-epoch test accuracies of one history.json (a non-empty list of epoch dicts)."""
    data = read_json(path, command)
    if (
        not isinstance(data, list)
        or not data
        or not all(isinstance(e, dict) and FRACTION.test(e.get("test_acc")) for e in data)
    ):
        raise SswpError(
            f"{path} is not a non-empty list of epochs with test_acc in [0, 1]; rerun `{command}`"
        )
    return [e["test_acc"] for e in data]


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
    matching per-seed per-epoch test accuracies; linear_eval[init][ratio] per-seed metrics.
    """

    searches: list[dict[str, Any]]
    pretrains: list[dict[str, Any]]
    train: dict[str, list[dict[str, Any]]]
    train_curves: dict[str, list[list[float]]]
    finetune: dict[str, dict[float, list[dict[str, Any]]]]
    finetune_curves: dict[str, dict[float, list[list[float]]]]
    linear_eval: dict[str, dict[float, list[dict[str, Any]]]]
    genotypes: dict[int, Genotype]
    alpha_history: np.ndarray
    manifest: dict[str, Any]


def finetune_inits(params: Params) -> tuple[str, ...]:
    """The finetune runs params asks for: finetune.inits plus the always-run two-stage arm."""
    return (*params.finetune.inits, TWO_STAGE)


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
    finetune_curves: dict[str, dict[float, list[list[float]]]] = {}
    for init in finetune_inits(params):
        finetune[init], finetune_curves[init] = {}, {}
        for ratio in ratios:
            tags = [
                (ratio_tag(init, ratio, s), finetune_plan(init, ratio, s).command) for s in seeds
            ]
            finetune[init][ratio] = [
                read_metrics(metrics_path("finetune", t), ACCURACY_KEYS, c) for t, c in tags
            ]
            finetune_curves[init][ratio] = [
                read_history(artifact_dir("finetune", t) / HISTORY_FILE, c) for t, c in tags
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
    )


def arm_accuracies(
    params: Params, inputs: Inputs, key: str = "test_acc"
) -> dict[str, dict[float, list[float]]]:
    """Per-seed accuracy `key` of every arm at every ratio, as rep.label_ratio_table wants."""
    runs = {"finetune": inputs.finetune, "linear_eval": inputs.linear_eval}
    return {
        arm.key: {
            ratio: [m[key] for m in metrics] for ratio, metrics in runs[arm.stage][arm.init].items()
        }
        for arm in rep.arms(params.finetune.inits)
    }


def curve_panels(params: Params, inputs: Inputs) -> dict[str, dict[str, list[list[float]]]]:
    """Training-curve panels: the train runs, then one panel of finetune arms per ratio."""
    objective = params.search.objective
    panels = {
        "train, all labels": {
            rep.method_name(arch, objective): curves for arch, curves in inputs.train_curves.items()
        }
    }
    for ratio in sorted(params.finetune.label_ratios):
        panels[f"finetune, {rep.ratio_label(ratio)} of labels"] = {
            arm.label: inputs.finetune_curves[arm.init][ratio]
            for arm in rep.arms(params.finetune.inits)
            if arm.stage == "finetune"
        }
    return panels


def scale_lines(params: Params, inputs: Inputs) -> list[str]:
    """How big the run was: data, network and the epochs of every stage."""
    manifest, sp = inputs.manifest, params.search
    height, width = manifest["image_shape"][:2]
    params_m = statistics.fmean(r["params_m"] for runs in inputs.train.values() for r in runs)
    phases = ", ".join(f"{name} {ratio:g}" for name, ratio in vars(sp.phases).items())
    return [
        f"Data: {params.data.dataset}, {len(manifest['classes'])} classes, "
        f"{manifest['num_train']} training and {manifest['num_test']} test images of "
        f"{height}x{width} pixels",
        f"Network: {sp.layers} cells, {sp.channels} initial channels, "
        f"{params_m:.3f} M parameters (trained networks, mean)",
        f"Search: {sp.epochs} epochs (phases: {phases}), batches of {sp.batch_size} images",
        f"Train from scratch: {params.train.epochs} epochs; finetune: "
        f"{params.finetune.epochs} epochs at every label ratio; two-stage pre-training: "
        f"{params.pretrain.epochs} epochs; linear evaluation: {params.linear_eval.epochs} "
        f"epochs ({params.linear_eval.protocol} protocol)",
        f"Seeds: {len(params.seeds)}",
    ]


def params_yaml(params: Params) -> str:
    """params.yaml as validated, sorted: loading it again gives the same params."""
    return yaml.safe_dump(tracked_params(params, "report"), sort_keys=True)


def build(params: Params, inputs: Inputs) -> dict[Path, str | bytes]:
    """Every output file's content, built in memory from the inputs."""
    objective = params.search.objective
    main = rep.main_table(objective, inputs.train, inputs.searches)
    arms = rep.arms(params.finetune.inits)
    ratios = rep.label_ratio_table(
        arm_accuracies(params, inputs), arm_accuracies(params, inputs, "best_test_acc"), arms
    )
    num_classes = len(inputs.manifest["classes"])
    summary = rep.summary_markdown(
        dataset=params.data.dataset,
        scale=scale_lines(params, inputs),
        num_classes=num_classes,
        objective=objective,
        architecture=params.finetune.architecture,
        genotypes={seed: g.short() for seed, g in inputs.genotypes.items()},
        searches=inputs.searches,
        pretrains=inputs.pretrains,
        main=main,
        ratios=ratios,
    )
    metrics = json.dumps(rep.metrics_dict(main, ratios), indent=2, sort_keys=True) + "\n"
    headline = rep.headline(main, ratios, params.finetune.architecture)
    return {
        MAIN_TABLE_CSV: rep.to_csv(main),
        MAIN_TABLE_MD: rep.main_markdown(main, num_classes) + "\n",
        LABEL_RATIO_CSV: rep.to_csv(ratios),
        LABEL_RATIO_MD: rep.label_ratio_md(ratios, num_classes),
        LABEL_RATIO_PNG: rep.label_ratio_png(ratios),
        TRAINING_CURVES_PNG: rep.training_curves_png(curve_panels(params, inputs)),
        ALPHA_HEATMAP_PNG: rep.alpha_heatmap_png(inputs.alpha_history, params.seeds[0]),
        SUMMARY_MD: summary,
        METRICS_JSON: metrics,
        HEADLINE_JSON: json.dumps(headline, indent=2) + "\n",
        PARAMS_YAML: params_yaml(params),
    }


def run(params: Params, args: argparse.Namespace) -> None:
    outputs = build(params, gather(params))
    for path, content in outputs.items():
        if isinstance(content, bytes):
            atomic.write_bytes(path, content)
        else:
            atomic.write_text(path, content)
    log.info(
        "report: %d architectures, %d label ratios, %d seeds -> %s",
        len(params.train.trained()),
        len(params.finetune.label_ratios),
        len(params.seeds),
        RESULTS_DIR,
    )
