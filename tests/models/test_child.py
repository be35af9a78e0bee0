"""Weight preservation: the child with inherited weights is the supernet restricted to it."""

import torch

from sswp.models.child import ChildNetwork, inherit_weights
from sswp.nas.genotype import derive_genotype
from sswp.nas.supernet import SuperNet


def _trained_supernet(layers: int, channels: int) -> SuperNet:
    """A supernet whose weights and BN statistics are not at their initial values."""
    torch.manual_seed(0)
    net = SuperNet(layers, channels)
    with torch.no_grad():
        for cell in net.cells:
            cell.alpha.normal_(0, 2)
    gen = torch.Generator().manual_seed(0)
    net.train()
    for _ in range(4):  # update BN running stats along several sampled paths
        net.sample_paths(gen)
        net(torch.randn(8, 3, 16, 16))
    with torch.no_grad():
        for p in net.weight_parameters():
            p.add_(0.05 * torch.randn_like(p))
    return net


def test_inherited_child_equals_restricted_supernet_in_eval_mode():
    net = _trained_supernet(layers=6, channels=4)  # reduction cells at 2 and 4
    genotype = net.derive(max_skips=2, max_pools=2)
    child = ChildNetwork(genotype, channels=4, num_classes=10, auxiliary=True)
    copied = inherit_weights(child, net.state_dict())
    assert copied > 0
    net.restrict_to(genotype)
    net.eval()
    child.eval()
    x = torch.randn(4, 3, 16, 16)
    with torch.no_grad():
        expected = net.features(x)
        got, _ = child.features(x)
    assert (expected - got).abs().max().item() <= 1e-5
    # A freshly initialised child is a different function: the check above is not vacuous.
    fresh = ChildNetwork(genotype, channels=4, num_classes=10, auxiliary=True).eval()
    with torch.no_grad():
        assert (fresh.features(x)[0] - expected).abs().max().item() > 1e-3


def test_child_forward_shapes_auxiliary_and_drop_path():
    genotype = derive_genotype([torch.randn(14, 7) for _ in range(6)])
    child = ChildNetwork(genotype, channels=4, num_classes=10, auxiliary=True)
    child.drop_path_prob = 0.3
    child.train()
    logits, aux = child(torch.randn(2, 3, 32, 32))
    assert logits.shape == (2, 10) and aux is not None and aux.shape == (2, 10)
    child.eval()
    logits, aux = child(torch.randn(2, 3, 32, 32))
    assert aux is None
    no_aux = ChildNetwork(genotype, channels=4, num_classes=10, auxiliary=False).train()
    assert no_aux(torch.randn(2, 3, 32, 32))[1] is None
