"""Binary gates: the gate-to-alpha gradient, the pair rescale and the sampling rules."""

import torch

from sswp.nas.mixed_edge import MixedEdge, alpha_gradient, rescale_pair
from sswp.nas.supernet import SuperNet


def _expected_loss_over_pair(alpha, pair, outputs, weight):
    """E[L] over the active choice within the pair: the quantity the gate estimator differentiates.

    With L linear in the edge output, dE[L]/dalpha over the pair equals the gate formula.
    """
    p = torch.softmax(alpha[pair], dim=0)
    return sum(p[i] * (outputs[k] * weight).sum() for i, k in enumerate(pair))


def test_two_mode_alpha_gradient_matches_autograd_and_finite_differences():
    torch.manual_seed(0)
    edge = MixedEdge(channels=4, stride=1, mode="two").double()
    x = torch.randn(2, 4, 6, 6, dtype=torch.float64)
    weight = torch.randn(2, 4, 6, 6, dtype=torch.float64)
    alpha = torch.randn(7, dtype=torch.float64)
    pair = [4, 1]
    edge.set_path(pair[0], (pair[1],))
    gates = edge.open_gates(x.device).double()
    edge.gates = gates.detach().requires_grad_(True)
    out = edge(x)
    (out * weight).sum().backward()
    estimate = alpha_gradient(alpha, edge.gates.grad, pair)

    with torch.no_grad():
        outputs = {k: edge.ops[k](x) for k in pair}
    a = alpha.clone().requires_grad_(True)
    _expected_loss_over_pair(a, pair, outputs, weight).backward()
    torch.testing.assert_close(estimate, a.grad)

    eps = 1e-6
    for k in range(7):
        bump = torch.zeros(7, dtype=torch.float64)
        bump[k] = eps
        up = _expected_loss_over_pair(alpha + bump, pair, outputs, weight)
        down = _expected_loss_over_pair(alpha - bump, pair, outputs, weight)
        assert abs(((up - down) / (2 * eps)).item() - estimate[k].item()) < 1e-6


def test_full_v2_gate_gradients_equal_inner_products_with_every_op():
    torch.manual_seed(1)
    edge = MixedEdge(channels=4, stride=2, mode="full_v2").double()
    edge.eval()  # BN uses running stats, so recomputing an op in backward gives the same output
    x = torch.randn(2, 4, 8, 8, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(2, 4, 4, 4, dtype=torch.float64)
    edge.set_path(3, tuple(k for k in range(7) if k != 3))
    edge.gates = edge.open_gates(x.device).double().detach().requires_grad_(True)
    (edge(x) * weight).sum().backward()
    with torch.no_grad():
        expected = torch.stack([(op(x) * weight).sum() for op in edge.ops])
    torch.testing.assert_close(edge.gates.grad, expected)
    # the input gradient is the active op's
    x2 = x.detach().clone().requires_grad_(True)
    (edge.ops[3](x2) * weight).sum().backward()
    torch.testing.assert_close(x.grad, x2.grad)


def test_rescale_keeps_pair_log_sum_exp_and_leaves_others():
    old = torch.tensor([0.3, -1.0, 2.0, 0.5, 0.0, 1.0, -0.2])
    new = old.clone()
    new[2] += 0.7
    new[5] -= 0.1
    before_others = new[[0, 1, 3, 4, 6]].clone()
    rescale_pair(new, old, [2, 5])
    torch.testing.assert_close(torch.logsumexp(new[[2, 5]], 0), torch.logsumexp(old[[2, 5]], 0))
    torch.testing.assert_close(new[[0, 1, 3, 4, 6]], before_others)
    assert new[2] - new[5] > old[2] - old[5]


def test_sampling_is_seeded_and_respects_pairs_and_skip_drop():
    net = SuperNet(layers=3, channels=4)
    with torch.no_grad():
        for cell in net.cells:
            cell.alpha[:, 0] = 5.0  # skip dominates

    def paths(seed, drop):
        net.sample_paths(torch.Generator().manual_seed(seed), drop_skip=drop)
        return [(e.active, e.inactive) for c in net.cells for e in c.edges]

    assert paths(0, 0.0) == paths(0, 0.0)
    assert paths(0, 0.0) != paths(1, 0.0)
    for active, inactive in paths(2, 0.0):
        assert len(inactive) == 1 and inactive[0] != active
    skip_kept = sum(0 in (a, *i) for a, i in paths(3, 0.0))
    assert skip_kept == 3 * 14  # softmax(5 vs 0) makes skip part of nearly every pair
    for active, inactive in paths(4, 1.0):
        assert active >= 3 and inactive[0] >= 3  # redrawn among parametric ops


def test_frozen_cells_keep_argmax_and_get_no_alpha_gradient():
    torch.manual_seed(0)
    net = SuperNet(layers=3, channels=4)
    with torch.no_grad():
        net.cells[0].alpha.normal_()
    net.cells[0].freeze()
    assert [e.active for e in net.cells[0].edges] == net.cells[0].alpha.argmax(1).tolist()
    net.sample_paths(torch.Generator().manual_seed(0))
    assert [e.active for e in net.cells[0].edges] == net.cells[0].alpha.argmax(1).tolist()
    net.open_gates()
    net(torch.randn(2, 3, 16, 16)).sum().backward()
    net.set_alpha_gradients()
    assert net.cells[0].alpha.grad is None
    assert net.cells[1].alpha.grad is not None and net.cells[1].alpha.grad.abs().sum() > 0
