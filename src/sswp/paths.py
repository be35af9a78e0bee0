"""The artifact layout shared by every stage and both drivers (relative to the run folder)."""

from __future__ import annotations

from pathlib import Path

PREPARED_DIR = Path("data/prepared")
DATASET_FILE = "dataset.npz"
MANIFEST_FILE = "manifest.json"
SPLITS_FILE = "splits.json"

SEARCH_DIR = Path("artifacts/search")
GENOTYPE_FILE = "genotype.json"
SUPERNET_FILE = "supernet.pt"
SNAPSHOTS = ("final", "highest_acc", "lowest_loss")

TRAIN_DIR = Path("artifacts/train")
FINETUNE_DIR = Path("artifacts/finetune")
MODEL_FILE = "model.pt"

METRICS_DIR = Path("metrics")
LIVE_DIR = Path("live")
LOG_DIR = Path("logs")
CHECKPOINT_DIR = Path(".checkpoints")
RESULTS_DIR = Path("results")


def snapshot_dir(name: str) -> Path:
    """Folder of one selection snapshot (genotype.json + supernet.pt)."""
    return SEARCH_DIR / name


def finetune_tag(init: str, ratio: float | str) -> str:
    """Name of one finetune run, e.g. `preserved-0.1`; drivers build the same string."""
    return f"{init}-{ratio}"
