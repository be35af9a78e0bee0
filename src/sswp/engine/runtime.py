"""Run-time plumbing every stage shares: device, threads, seeding, logs, progress, metrics."""

from __future__ import annotations

import logging
import random
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from tqdm import tqdm

from sswp.config import RuntimeParams
from sswp.errors import SswpError
from sswp.paths import LIVE_DIR, LOG_DIR

T = TypeVar("T")
log = logging.getLogger("sswp")


def select_device(runtime: RuntimeParams) -> torch.device:
    if runtime.device == "cuda" and not torch.cuda.is_available():
        raise SswpError(
            "runtime.device = 'cuda' but no CUDA device is visible; use 'auto' or 'cpu'"
        )
    if runtime.device == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda")


def to_device(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Image batches go channels-last: 1.4x faster on CPU (oneDNN), and faster on CUDA."""
    return images.to(device, memory_format=torch.channels_last, non_blocking=True)


def prepare_model(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    return model.to(device, memory_format=torch.channels_last)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def setup(runtime: RuntimeParams, seed: int) -> torch.device:
    """Fix threads and seeds so that a CPU run is bit-for-bit repeatable."""
    torch.set_num_threads(runtime.threads)
    seed_everything(seed)
    device = select_device(runtime)
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True)
    return device


def setup_logging(stage: str) -> Path:
    """Log to stderr and to logs/<stage>.log (one file per stage run, overwritten)."""
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    path = LOG_DIR / f"{stage}.log"
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
    for handler in (logging.StreamHandler(sys.stderr), logging.FileHandler(path, mode="w")):
        handler.setFormatter(fmt)
        root.addHandler(handler)
    root.setLevel(logging.INFO)
    return path


def progress(items: Iterable[T], runtime: RuntimeParams, **kwargs: Any) -> Iterator[T]:
    """A progress bar on a terminal; silent in batch logs (or as runtime.progress says)."""
    show = runtime.progress == "always" or (runtime.progress == "auto" and sys.stderr.isatty())
    yield from tqdm(items, disable=not show, leave=False, dynamic_ncols=True, **kwargs)


class MetricLogger:
    """Per-epoch metrics to DVCLive (plots for `dvc plots`) and TensorBoard."""

    def __init__(self, name: str):
        from dvclive import Live
        from torch.utils.tensorboard import SummaryWriter

        self.dir = LIVE_DIR / name
        self.live = Live(str(self.dir), dvcyaml=False, save_dvc_exp=False, report=None)
        self.tensorboard = SummaryWriter(str(self.dir / "tensorboard"))

    def log_epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        self.live.step = epoch
        for key, value in metrics.items():
            self.live.log_metric(key, value)
            self.tensorboard.add_scalar(key, value, epoch)
        self.live.next_step()

    def close(self) -> None:
        self.live.end()
        self.tensorboard.close()
