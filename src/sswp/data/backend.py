"""Which loader backend runs (`data.loader`), and where: DALI on the GPU or CPU, or torchvision.

DALI is an optional dependency: a machine without it still runs every stage on torchvision.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType

import torch

from sswp.errors import SswpError

LOADERS = ("auto", "dali", "torch")
INSTALL_HINT = (
    "install it with `pip install nvidia-dali-cuda130` (it also runs without a GPU) "
    "or set data.loader: torch"
)


def loader_threads(dali: bool, workers: int) -> int:
    """The loader's threads: `workers` torchvision processes, or DALI threads, at least one
    (DALI has no main-thread mode). They count in runtime.threads (engine.hardware)."""
    return max(workers, 1) if dali else workers


@dataclass(frozen=True)
class Backend:
    """`dali` False means torchvision; `device_id` is the CUDA device of a DALI GPU pipeline."""

    dali: bool
    device_id: int | None = None

    @property
    def gpu(self) -> bool:
        return self.device_id is not None

    @property
    def device(self) -> torch.device:
        """Where batches land: the GPU of a DALI GPU pipeline, else the CPU."""
        if self.device_id is None:
            return torch.device("cpu")
        return torch.device("cuda", self.device_id)


def import_dali() -> ModuleType:
    """Import DALI afresh each time (so tests can hide it); ImportError when it is unusable."""
    try:
        return importlib.import_module("nvidia.dali")
    except OSError as exc:  # installed, but its shared libraries do not load
        raise ImportError(str(exc)) from exc


def choose_backend(loader: str, device: torch.device | None) -> Backend:
    """`auto` takes DALI when it imports and torchvision otherwise; `dali` insists on DALI.

    DALI runs its GPU pipelines on a CUDA `device` and its CPU pipelines otherwise.
    """
    if loader not in LOADERS:
        raise SswpError(f"data.loader = {loader!r} is unknown; use one of {', '.join(LOADERS)}")
    if loader == "torch":
        return Backend(dali=False)
    try:
        import_dali()
    except ImportError as exc:
        if loader == "auto":
            return Backend(dali=False)
        raise SswpError(
            f"data.loader: dali needs NVIDIA DALI, which does not import ({exc}); {INSTALL_HINT}"
        ) from None
    if device is not None and device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return Backend(dali=True, device_id=index)
    return Backend(dali=True)
