"""The GPU path: AMP (bf16 and fp16 with a GradScaler), channels_last, CUDA against CPU.

Every test here needs a CUDA device and is skipped without one.
"""

from __future__ import annotations

import pytest
import torch

from sswp.engine.distributed import DistContext
from sswp.engine.hardware import Hardware
from sswp.engine.objectives import SimCLRObjective
from sswp.engine.stepper import SearchStepper
from sswp.models.child import ChildNetwork, inherit_weights
from sswp.nas.genotype import derive_genotype
from sswp.nas.supernet import SuperNet

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]


def _stepper(amp: str, channels_last: bool) -> tuple[SuperNet, SearchStepper]:
    torch.manual_seed(0)
    hw = Hardware(torch.device("cuda"), DistContext(), channels_last=channels_last, amp=amp)
    net = hw.model(SuperNet(layers=5, channels=8))
    objective = SimCLRObjective(net, hw, temperature=0.07)
    stepper = SearchStepper(
        objective,
        torch.optim.SGD(objective.weight_parameters(), 0.025, momentum=0.9),
        torch.optim.Adam(net.alphas(), 1e-2, betas=(0.0, 0.999)),
        torch.Generator().manual_seed(0),
        hw,
        grad_clip=5.0,
    )
    return net, stepper


@pytest.mark.parametrize(("amp", "channels_last"), [("bf16", True), ("fp16", True), ("off", False)])
def test_search_steps_train_weights_and_alphas_on_cuda(amp, channels_last):
    net, stepper = _stepper(amp, channels_last)
    views = (torch.randn(16, 3, 32, 32), torch.randn(16, 3, 32, 32))
    before = [p.detach().clone() for p in net.weight_parameters()]
    # fp16's GradScaler starts at 2**16 and skips the first overflowing steps while it backs off.
    for _ in range(12 if amp == "fp16" else 3):
        loss, acc = stepper.weight_step(views, drop_skip=0.2)
        arch_loss = stepper.arch_step(views)
        assert torch.isfinite(torch.tensor([loss, acc, arch_loss])).all()
    moved = sum(not torch.equal(a, b) for a, b in zip(before, net.weight_parameters(), strict=True))
    assert moved > 0
    assert any(a.abs().sum() > 0 for a in net.alphas())


def test_inherited_child_equals_restricted_supernet_on_cuda():
    torch.manual_seed(0)
    net = SuperNet(layers=6, channels=4).cuda()
    with torch.no_grad():
        for cell in net.cells:
            cell.alpha.normal_(0, 2)
    genotype = net.derive(2, 2)
    child = ChildNetwork(genotype, channels=4, num_classes=10, auxiliary=True).cuda()
    inherit_weights(child, net.state_dict())
    net.restrict_to(genotype)
    net.eval()
    child.eval()
    x = torch.randn(4, 3, 32, 32, device="cuda")
    with torch.no_grad():
        assert (net.features(x) - child.features(x)[0]).abs().max().item() <= 1e-4


def test_cuda_forward_matches_cpu_in_fp32():
    torch.manual_seed(0)
    genotype = derive_genotype([torch.randn(14, 7) for _ in range(5)])
    model = ChildNetwork(genotype, channels=8, num_classes=10, auxiliary=False).eval()
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        cpu = model(x)[0]
        gpu = model.cuda()(x.cuda())[0].cpu()
    torch.testing.assert_close(gpu, cpu, rtol=1e-3, atol=1e-3)
