"""Shared test settings and the tiny pipeline config every end-to-end test uses."""

from __future__ import annotations

import copy
import shutil
import subprocess
import sys
from pathlib import Path

from sswp.pipeline.numerics import EARLY_READERS, pin_portable_numerics

# The stages that tests call in-process must compute what a stage process computes, on any
# CPU: pin the kernels as `sswp` does (runtime.portable_numerics), before torch or numpy loads.
if loaded := sorted(set(EARLY_READERS) & set(sys.modules)):
    raise RuntimeError(f"{loaded} loaded before tests/conftest.py could pin its CPU kernels")
pin_portable_numerics()

import pytest  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

from sswp.config.load import params_from_dict  # noqa: E402
from sswp.config.params import Params  # noqa: E402

REPO = Path(__file__).resolve().parents[1]

# Small enough for seconds per stage on 2 cores, yet every search phase runs:
# warm-up, arch updates, progressive freezing of every cell, stabilise.
TINY_OVERRIDES = {
    "seeds": [0],
    "runtime": {"threads": 1, "progress": "never", "checkpoint_seconds": 0},
    "data": {"subset": 0.15},
    "search": {
        "layers": 3,
        "channels": 2,
        "epochs": 4,
        "batch_size": 16,
        "phases": {"warmup": 0.25, "search": 0.25, "prune": 0.25, "stabilise": 0.25},
        "arch_every": 2,
    },
    "train": {"epochs": 1, "batch_size": 16, "warmup_epochs": 0, "references": ["pdarts"]},
    "finetune": {"epochs": 1, "batch_size": 16, "warmup_epochs": 0, "label_ratios": [0.5, 1.0]},
    "pretrain": {"epochs": 1, "batch_size": 16, "warmup_epochs": 0},
    "linear_eval": {"epochs": 5, "batch_size": 64},
}


def merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        out[key] = merge(base[key], value) if isinstance(value, dict) else value
    return out


# What `make repro` writes and the repository commits: a copy for another config leaves it.
RUN_OUTPUTS = ("results/", "metrics/", "live/", "dvc.lock")


def copy_repo(dest: Path, config: dict) -> Path:
    """The repository's tracked and untracked-not-ignored files, with `config` as params.yaml.

    The committed run's outputs (RUN_OUTPUTS) stay behind, so the copy starts from nothing.
    """
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    for name in filter(None, files):
        src = REPO / name
        if not (src.exists() or src.is_symlink()) or name.startswith(RUN_OUTPUTS):
            continue
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target, follow_symlinks=False)
    (dest / "params.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return dest


@pytest.fixture(scope="session")
def merge_config():
    """`merge`, for test modules (importing conftest by name depends on sys.path order)."""
    return merge


@pytest.fixture(scope="session")
def repo_copy():
    return copy_repo


@pytest.fixture(scope="session")
def default_config() -> dict:
    return yaml.safe_load((REPO / "params.yaml").read_text())


@pytest.fixture(scope="session")
def tiny_config() -> dict:
    return merge(yaml.safe_load((REPO / "params.yaml").read_text()), TINY_OVERRIDES)


@pytest.fixture
def tiny_params(tiny_config) -> Params:
    return params_from_dict(tiny_config)


@pytest.fixture(autouse=True)
def _torch_defaults():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    yield
