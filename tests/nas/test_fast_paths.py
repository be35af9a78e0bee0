"""The CPU fast paths change speed only: with them on and off, the supernet and the child
network have the same parameter names and give the same outputs, gradients and BN statistics
(within float32 rounding)."""

import copy

import pytest
import torch

from sswp.models.child import ChildNetwork
from sswp.nas.cpu_fast_paths import use_fast_paths
from sswp.nas.genotype import derive_genotype
from sswp.nas.supernet import SuperNet


def _step(model: torch.nn.Module, x: torch.Tensor, fast: bool) -> dict[str, torch.Tensor]:
    """Outputs, every gradient and every buffer after one training forward and backward."""
    with use_fast_paths(fast):
        out = model(x)
        out = out[0] if isinstance(out, tuple) else out
        out.square().sum().backward()
    grads = {f"grad {n}": p.grad for n, p in model.named_parameters() if p.grad is not None}
    return {"output": out.detach(), **grads, **dict(model.named_buffers())}


def _assert_same_step(model: torch.nn.Module, size: int) -> None:
    model = model.to(memory_format=torch.channels_last).train()
    plain, fast = copy.deepcopy(model), copy.deepcopy(model)
    assert list(plain.state_dict()) == list(fast.state_dict()) == list(model.state_dict())
    x = torch.randn(4, 3, size, size).contiguous(memory_format=torch.channels_last)
    expected, got = _step(plain, x, fast=False), _step(fast, x, fast=True)
    assert got.keys() == expected.keys()
    assert len([k for k in got if k.startswith("grad ")]) > 10
    for key, value in expected.items():
        # Another layout sums in another order: whole-network gradients then differ by
        # float32 rounding, about 1e-6 of the tensor's largest entry.
        scale = max(1.0, value.abs().max().item()) if value.is_floating_point() else 1.0
        torch.testing.assert_close(got[key], value, rtol=1e-5, atol=1e-5 * scale, msg=key)


@pytest.mark.parametrize("size", [8, 9])
def test_supernet_step_is_the_same_with_and_without_the_fast_paths(size):
    torch.manual_seed(0)
    net = SuperNet(layers=3, channels=4)
    generator = torch.Generator().manual_seed(1)
    for _ in range(3):  # several sampled paths: every op runs in some edge
        net.sample_paths(generator)
        _assert_same_step(net, size)


@pytest.mark.parametrize("size", [8, 9])
def test_child_network_step_is_the_same_with_and_without_the_fast_paths(size):
    torch.manual_seed(0)
    genotype = derive_genotype([torch.randn(14, 7) for _ in range(3)])
    child = ChildNetwork(genotype, channels=4, num_classes=3, auxiliary=False)
    _assert_same_step(child, size)


def test_the_switch_is_restored_after_its_block():
    from sswp.nas.cpu_fast_paths import fast_paths_enabled

    assert fast_paths_enabled()
    with pytest.raises(RuntimeError), use_fast_paths(False):
        assert not fast_paths_enabled()
        raise RuntimeError
    assert fast_paths_enabled()
