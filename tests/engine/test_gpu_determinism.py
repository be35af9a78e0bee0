"""runtime.deterministic on CUDA: torch's deterministic algorithms, a fixed cuBLAS workspace,
deterministic cuDNN without benchmarking or TF32. The settings are checked on any machine
(only the device check is replaced); that they give repeatable bits needs a GPU."""

from __future__ import annotations

import dataclasses
import os

import pytest
import torch

from sswp.engine import hardware as rt


@pytest.fixture
def restored_torch_flags():
    cudnn = torch.backends.cudnn
    before = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        cudnn.benchmark,
        cudnn.deterministic,
        cudnn.allow_tf32,
        torch.backends.cuda.matmul.allow_tf32,
    )
    # Each stage is its own process, so setup starts from torch's defaults; an earlier test in
    # this worker may have turned deterministic algorithms on.
    torch.use_deterministic_algorithms(False)
    yield
    torch.use_deterministic_algorithms(before[0], warn_only=before[1])
    cudnn.benchmark, cudnn.deterministic, cudnn.allow_tf32 = before[2:5]
    torch.backends.cuda.matmul.allow_tf32 = before[5]


@pytest.mark.parametrize("deterministic", [True, False])
def test_deterministic_cuda_setup(deterministic, tiny_params, monkeypatch, restored_torch_flags):
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    monkeypatch.setattr(rt, "select_device", lambda runtime: torch.device("cuda"))
    runtime = dataclasses.replace(tiny_params.runtime, deterministic=deterministic)
    hw = rt.setup(runtime, seed=0)
    assert hw.device == torch.device("cuda", 0)
    assert torch.are_deterministic_algorithms_enabled() == deterministic
    assert torch.backends.cudnn.deterministic == deterministic
    assert torch.backends.cudnn.benchmark == (not deterministic)
    assert torch.backends.cudnn.allow_tf32 == (not deterministic)
    assert torch.backends.cuda.matmul.allow_tf32 == (not deterministic)
    expected = rt.CUBLAS_WORKSPACE if deterministic else None
    assert os.environ.get("CUBLAS_WORKSPACE_CONFIG") == expected


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_deterministic_cuda_runs_repeat_bit_for_bit(tiny_params, restored_torch_flags):
    from sswp.nas.supernet import SuperNet

    runtime = dataclasses.replace(tiny_params.runtime, device="cuda", deterministic=True)
    grads = []
    for _ in range(2):
        hw = rt.setup(runtime, seed=0)
        net = hw.model(SuperNet(layers=3, channels=4))
        net.sample_paths(torch.Generator().manual_seed(0))
        x = hw.images(torch.randn(8, 3, 16, 16, generator=torch.Generator().manual_seed(1)))
        net(x).square().sum().backward()
        grads.append([p.grad.clone() for p in net.parameters() if p.grad is not None])
    assert all(torch.equal(a, b) for a, b in zip(*grads, strict=True))
