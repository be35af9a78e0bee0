"""`sswp report`: gather every stage's metrics into results/ (tables, markdown, plot).

It reads exactly the finetune runs that params.yaml asks for, never a glob, so files left by
older runs cannot leak in; and it builds every output in memory before writing any, so a
missing input leaves results/ untouched.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from sswp import atomic
from sswp import report as rep
from sswp.config import Params
from sswp.errors import SswpError
from sswp.nas.genotype import Genotype
from sswp.paths import (
    GENOTYPE_FILE,
    METRICS_DIR,
    RESULTS_DIR,
    SNAPSHOTS,
    finetune_tag,
    snapshot_dir,
)

log = logging.getLogger(__name__)

SEARCH_METRICS = METRICS_DIR / "search.json"
TRAIN_METRICS = METRICS_DIR / "train.json"
FINETUNE_METRICS_DIR = METRICS_DIR / "finetune"

SUMMARY_CSV = RESULTS_DIR / "summary.csv"
SUMMARY_MD = RESULTS_DIR / "summary.md"
LABEL_RATIO_CSV = RESULTS_DIR / "label_ratio.csv"
LABEL_RATIO_PNG = RESULTS_DIR / "label_ratio.png"

SEARCH_KEYS = ("search_hours", "device")
MODEL_KEYS = ("architecture", "test_acc", "params_m")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """report takes everything from params.yaml and the metric files."""


def finetune_metrics_path(init: str, ratio: float) -> Path:
    """Where the finetune stage leaves one run's metrics, e.g. metrics/finetune/random-1.0.json."""
    return FINETUNE_METRICS_DIR / f"{finetune_tag(init, str(float(ratio)))}.json"


def read_metrics(path: Path, keys: tuple[str, ...], stage: str) -> dict[str, Any]:
    """Load one metrics file, or say which stage to (re)run if it is missing or incomplete."""
    if not path.is_file():
        raise SswpError(f"{path} not found; run `{stage}` first")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SswpError(f"{path} is not valid JSON ({exc}); rerun `{stage}`") from exc
    missing = [k for k in keys if not isinstance(data, dict) or k not in data]
    if missing:
        raise SswpError(f"{path} lacks {', '.join(missing)}; rerun `{stage}`")
    return data


def read_finetunes(params: Params) -> list[dict[str, Any]]:
    """Every expected finetune run's metrics, tagged with the init and ratio it was asked for."""
    runs = []
    for ratio in params.finetune.label_ratios:
        for init in params.finetune.inits:
            stage = f"sswp finetune --init {init} --ratio {ratio}"
            path = finetune_metrics_path(init, ratio)
            data = read_metrics(path, (*MODEL_KEYS, "labelled_images"), stage)
            runs.append({**data, "init": init, "label_ratio": float(ratio)})
    return runs


def load_genotype(architecture: str) -> Genotype:
    """The genotype the scratch model was trained on, as named by metrics/train.json."""
    if architecture not in SNAPSHOTS:
        raise SswpError(
            f"{TRAIN_METRICS}: architecture {architecture!r} is not one of "
            f"{', '.join(SNAPSHOTS)}; rerun `sswp train`"
        )
    return Genotype.load(snapshot_dir(architecture) / GENOTYPE_FILE)


def run(params: Params, args: argparse.Namespace) -> None:
    search = read_metrics(SEARCH_METRICS, SEARCH_KEYS, "sswp search")
    scratch = read_metrics(TRAIN_METRICS, MODEL_KEYS, "sswp train")
    finetunes = read_finetunes(params)
    genotype = load_genotype(scratch["architecture"])

    summary = rep.summary_table(scratch, finetunes)
    ratios = rep.label_ratio_table(summary)
    texts = {
        SUMMARY_CSV: rep.to_csv(summary),
        LABEL_RATIO_CSV: rep.to_csv(ratios),
        SUMMARY_MD: rep.summary_markdown(
            params.data.dataset, genotype.short(), search, scratch, ratios
        ),
    }
    png = rep.label_ratio_png(ratios)

    for path, text in texts.items():
        atomic.write_text(path, text)
    atomic.write_bytes(LABEL_RATIO_PNG, png)
    log.info(
        "report: %d models (scratch %.2f%%) -> %s",
        len(summary),
        rep.percent(scratch["test_acc"]),
        RESULTS_DIR,
    )
