"""Helpers shared by the engine tests."""

import pytest
import torch

from sswp.engine.epochs import EpochLoop


class OneBatch:
    """A loader of one fixed batch, with the epoch hook the loop calls."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor):
        self.batch = (images, labels)

    def set_epoch(self, epoch: int) -> None:
        pass

    def __len__(self) -> int:
        return 1

    def __iter__(self):
        yield self.batch


@pytest.fixture
def scalar_inductor(monkeypatch):
    """Inductor's C++ kernels without SIMD, for one test: gcc builds them about twice as
    fast, and the compile tests check what the project does with a compiled child
    (checkpoint keys, resume, DDP sync, agreement with eager), not PyTorch's vector code."""
    import torch._inductor.config

    monkeypatch.setattr(torch._inductor.config.cpp, "vec_isa_ok", False)


@pytest.fixture
def one_batch():
    """The OneBatch loader class, for loops driven by one fixed batch."""
    return OneBatch


class SumLoop(EpochLoop):
    """The smallest child loop: the loss is the model's output summed."""

    def train_step(self, batch: torch.Tensor) -> None:
        self.optimise(self.model(batch).sum())
        self.count(0.0, 0.0, len(batch))

    def end_epoch(self, epoch: int, loss: float, acc: float, lr: float) -> dict[str, float]:
        return {"lr": lr}


class ListedBatches(list):
    """A list of batches with the epoch hook the loop calls."""

    def set_epoch(self, epoch: int) -> None:
        pass


@pytest.fixture
def sum_loop():
    """The SumLoop class and the ListedBatches class its loaders are."""
    return SumLoop, ListedBatches
