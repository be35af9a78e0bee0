"""Shared test settings: deterministic, single-threaded torch for fast small tensors."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _torch_defaults():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    yield
