"""The artifact layout shared by every stage and both drivers (relative to the run folder).

Every run of a stage has a tag that names its artifacts, metrics, live plots and log alike,
e.g. `seed-0` (search, pretrain), `final-seed-0` (train), `preserved-0.1-seed-0` (finetune,
linear eval). The stage contract (sswp.pipeline.contract) declares the same layout as templates.
"""

from __future__ import annotations

from pathlib import Path
from typing import get_args

from sswp.config.params import Snapshot

PREPARED_DIR = Path("data/prepared")
DATASET_FILE = "dataset.npz"
MANIFEST_FILE = "manifest.json"
SPLITS_FILE = "splits.json"

ARTIFACTS_DIR = Path("artifacts")
GENOTYPE_FILE = "genotype.json"
SUPERNET_FILE = "supernet.pt"
ALPHA_HISTORY_FILE = "alpha_history.pt"
BUDGET_FILE = "budget.json"  # the SimCLR steps and pairs the search gave its weights
SNAPSHOTS = get_args(Snapshot)

MODEL_FILE = "model.pt"
HISTORY_FILE = "history.json"
INFO_FILE = "info.json"  # a run's labels; metrics/ holds only its numbers

METRICS_DIR = Path("metrics")
LIVE_DIR = Path("live")
LOG_DIR = Path("logs")
CHECKPOINT_DIR = Path(".checkpoints")
RESULTS_DIR = Path("results")


def seed_tag(seed: int) -> str:
    """Tag of a per-seed run (search, pretrain), e.g. `seed-0`."""
    return f"seed-{seed}"


def train_tag(architecture: str, seed: int) -> str:
    """Tag of one train run, e.g. `final-seed-0` or `darts_v2-seed-1`."""
    return f"{architecture}-{seed_tag(seed)}"


def probe_tag(ratio: float | str, seed: int) -> str:
    """Tag of one linear_eval run, which probes both backbones: e.g. `0.1-seed-0`."""
    return f"{float(ratio)}-{seed_tag(seed)}"


def ratio_tag(init: str, ratio: float | str, seed: int) -> str:
    """Tag of one finetune run or linear_eval arm, e.g. `preserved-0.1-seed-0`.

    The ratio is written as Python writes the float, the form dvc.yaml's matrix produces.
    """
    return f"{init}-{probe_tag(ratio, seed)}"


def artifact_dir(stage: str, tag: str) -> Path:
    """artifacts/<stage>/<tag>: what one run of a stage leaves for later stages."""
    return ARTIFACTS_DIR / stage / tag


def metrics_path(stage: str, tag: str) -> Path:
    """metrics/<stage>/<tag>.json: the run's final metrics, tracked by git for comparisons."""
    return METRICS_DIR / stage / f"{tag}.json"


def search_dir(seed: int) -> Path:
    return artifact_dir("search", seed_tag(seed))


def snapshot_dir(seed: int, name: str) -> Path:
    """Folder of one selection snapshot of one search (genotype.json + supernet.pt)."""
    return search_dir(seed) / name
