"""Weight preservation: the child with inherited weights is the supernet restricted to it."""

import pytest
import torch
from torch import nn

from sswp.models.child import AuxPool, BatchNormAffinity, ChildNetwork, inherit_weights
from sswp.nas.genotype import derive_genotype
from sswp.nas.reference import reference_genotype
from sswp.nas.supernet import SuperNet


def _trained_supernet(
    layers: int, channels: int, stem: str = "cifar", size: int = 16, stem_affine: bool = False
) -> SuperNet:
    """A supernet whose weights, BN statistics (and stem gamma/beta) are not at their initial
    values."""
    torch.manual_seed(0)
    net = SuperNet(layers, channels, stem=stem, stem_affine=stem_affine)
    with torch.no_grad():
        for cell in net.cells:
            cell.alpha.normal_(0, 2)
    gen = torch.Generator().manual_seed(0)
    net.train()
    for _ in range(4):  # update BN running stats along several sampled paths
        net.sample_paths(gen)
        net(torch.randn(8, 3, size, size))
    with torch.no_grad():
        for p in net.weight_parameters():
            p.add_(0.05 * torch.randn_like(p))
    return net


def _pool_genotype(net: SuperNet):
    """The supernet's genotype with a pool on at least one edge, so pool BN is exercised."""
    with torch.no_grad():
        net.cells[0].alpha[0, 1] = 10.0  # node 0's edge from s0: max pool, kept (highest p)
    return net.derive(max_skips=2, max_pools=2)


# The imagenet stem needs 64 px for 8x8 maps after it (stride 8), 2x2 after two reductions.
# (stem_affine, pool_bn_affine): this project's default, and the original's BN affinity.
@pytest.mark.parametrize(("stem", "size"), [("cifar", 16), ("imagenet", 64)])
@pytest.mark.parametrize(("stem_affine", "pool_affine"), [(False, True), (True, False)])
def test_inherited_child_equals_restricted_supernet_in_eval_mode(
    stem, size, stem_affine, pool_affine
):
    net = _trained_supernet(6, 4, stem, size, stem_affine)  # reductions at 2, 4
    genotype = _pool_genotype(net)
    child = ChildNetwork(
        genotype, 4, 10, auxiliary=True, stem=stem, bn=BatchNormAffinity(pools=pool_affine)
    )
    pool_bn = child.cells[0].ops[0][1]
    assert genotype.cells[0].edges[0][0] == "max_pool_3x3"
    assert pool_bn.affine is pool_affine and child.cells[0].preprocess1[2].affine
    copied = inherit_weights(child, net.state_dict())
    assert copied > 0
    supernet_state = net.state_dict()
    child_state = child.state_dict()
    stem_keys = [k for k in child_state if k.startswith("stem.") and k in supernet_state]
    assert any(k.endswith("running_var") for k in stem_keys)
    assert all(torch.equal(child_state[k], supernet_state[k]) for k in stem_keys)
    # An affine supernet stem hands its learned gamma/beta on; otherwise the child keeps 1, 0.
    gammas = [k for k in child_state if k.startswith("stem.") and k.endswith(".weight")]
    learned = [k for k in gammas if child_state[k].dim() == 1]
    assert learned and all(k in stem_keys for k in learned) is stem_affine
    assert any(
        not torch.equal(child_state[k], torch.ones_like(child_state[k])) for k in learned
    ) is (stem_affine)
    net.restrict_to(genotype)
    net.eval()
    child.eval()
    x = torch.randn(4, 3, size, size)
    with torch.no_grad():
        expected = net.features(x)
        got, _ = child.features(x)
    assert (expected - got).abs().max().item() <= 1e-5
    # A freshly initialised child is a different function: the check above is not vacuous.
    fresh = ChildNetwork(genotype, 4, 10, auxiliary=True, stem=stem).eval()
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


@pytest.mark.parametrize("size", [32, 64])  # aux input maps of 1x1 and 2x2
def test_imagenet_child_and_its_auxiliary_head_run_on_tiny_inputs(size):
    genotype = derive_genotype([torch.randn(14, 7) for _ in range(6)])
    child = ChildNetwork(genotype, channels=4, num_classes=5, auxiliary=True, stem="imagenet")
    child.drop_path_prob = 0.2
    child.train()
    pooled, aux_input = child.features(torch.randn(2, 3, size, size))
    assert aux_input is not None and aux_input.shape[-2:] == (size // 32, size // 32)
    assert pooled.shape == (2, 4 * 16)
    logits, aux = child(torch.randn(2, 3, size, size))
    assert logits.shape == (2, 5) and aux is not None and aux.shape == (2, 5)
    aux.sum().backward()
    assert child.auxiliary is not None
    assert all(p.grad is not None for p in child.auxiliary.parameters())


@pytest.mark.parametrize(("size", "stride"), [(7, 2), (14, 2), (8, 3), (32, 3)])
def test_aux_pool_is_darts_pool_at_real_sizes(size, stride):
    x = torch.randn(2, 3, size, size)
    darts = nn.AvgPool2d(5, stride=stride, padding=0, count_include_pad=False)
    assert torch.equal(AuxPool(stride)(x), darts(x))


@pytest.mark.parametrize(("size", "stride"), [(1, 2), (2, 2), (6, 2), (6, 3)])
def test_aux_pool_falls_back_to_2x2_on_tiny_maps(size, stride):
    x = torch.randn(2, 3, size, size)
    out = AuxPool(stride)(x)
    assert out.shape == (2, 3, 2, 2)
    # Even maps (and 1x1, replicated) split into equal quarters: the mean is preserved.
    assert torch.allclose(out.mean(dim=(2, 3)), x.mean(dim=(2, 3)), atol=1e-6)


@pytest.mark.parametrize(("name", "params_m"), [("darts_v2", 4.7), ("pdarts", 4.9)])
def test_imagenet_child_at_full_scale_matches_published_sizes(name, params_m):
    """DARTS-V2 and P-DARTS report 4.7M and 4.9M parameters at ImageNet scale (C=48, L=14)."""
    child = ChildNetwork(reference_genotype(name, 14), 48, 1000, auxiliary=True, stem="imagenet")
    count = sum(p.numel() for n, p in child.named_parameters() if "auxiliary" not in n)
    assert round(count / 1e6, 1) == params_m
    child.train()
    pooled, aux_input = child.features(torch.randn(2, 3, 224, 224))
    assert aux_input is not None and aux_input.shape[-2:] == (7, 7)
    assert child.auxiliary is not None
    assert child.auxiliary(aux_input).shape == (2, 1000)


@pytest.mark.parametrize("edges", ["genotype", "all"])
def test_cells_frozen_to_their_genotype_train_exactly_the_child(edges):
    """Frozen to the genotype, the supernet is the child (batch statistics included); frozen
    on all 14 edges, as the original does, it computes something else."""
    net = _trained_supernet(3, 4)
    genotype = net.derive(max_skips=2, max_pools=2)
    for index in range(3):
        net.freeze_cell(index, edges, max_skips=2, max_pools=2)
    assert all(cell.frozen and not cell.alpha.requires_grad for cell in net.cells)
    kept = [sum(cell.enabled) for cell in net.cells]
    assert kept == ([8] * 3 if edges == "genotype" else [14] * 3)
    child = ChildNetwork(genotype, 4, 10, auxiliary=False)
    inherit_weights(child, net.state_dict())
    net.train()
    child.train()
    x = torch.randn(8, 3, 16, 16)
    with torch.no_grad():
        gap = (net.features(x) - child.features(x)[0]).abs().max().item()
    assert gap <= 1e-5 if edges == "genotype" else gap > 1e-3
