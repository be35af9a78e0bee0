"""A stage's torch threads plus its loader's never exceed runtime.threads."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from sswp.engine.hardware import compute_threads, setup
from sswp.errors import SswpError


@pytest.mark.parametrize(
    ("threads", "workers", "dali", "expected"),
    [(2, 0, False, 2), (4, 1, False, 3), (4, 0, True, 3), (12, 4, True, 8)],
)
def test_the_loader_takes_its_threads_from_runtime_threads(
    tiny_params, threads, workers, dali, expected
):
    runtime = dataclasses.replace(tiny_params.runtime, threads=threads)
    data = dataclasses.replace(tiny_params.data, workers=workers)
    assert compute_threads(runtime, data, dali) == expected


def test_a_loader_that_takes_every_thread_is_refused(tiny_params):
    runtime = dataclasses.replace(tiny_params.runtime, threads=2)
    data = dataclasses.replace(tiny_params.data, workers=2)
    with pytest.raises(SswpError, match="leaves no thread for the network"):
        compute_threads(runtime, data, dali=False)
    with pytest.raises(SswpError, match="raise runtime.threads"):
        compute_threads(dataclasses.replace(runtime, threads=1), tiny_params.data, dali=True)


def test_setup_sets_torch_threads_to_what_the_loader_leaves(tiny_params):
    runtime = dataclasses.replace(tiny_params.runtime, threads=3, device="cpu")
    data = dataclasses.replace(tiny_params.data, workers=1, loader="torch")
    setup(runtime, 0, data)
    assert torch.get_num_threads() == 2
