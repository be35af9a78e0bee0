"""Helpers shared by the engine tests."""

import pytest
import torch


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
def one_batch():
    """The OneBatch loader class, for loops driven by one fixed batch."""
    return OneBatch
