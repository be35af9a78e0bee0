import math

import pytest
import torch
from torch import nn

from sswp.ssl.byol import byol_loss, ema_update_, retrieval_accuracy, target_tau


def _cos(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(a @ b) / (float(a.norm()) * float(b.norm()))


def _random_outputs(n: int = 6, dim: int = 5) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(4)
    return [torch.randn(n, dim, generator=gen, dtype=torch.float64) for _ in range(4)]


def test_byol_loss_matches_direct_per_sample_computation():
    p1, p2, t1, t2 = _random_outputs()
    expected = sum(
        (2 - 2 * _cos(p1[i], t2[i])) + (2 - 2 * _cos(p2[i], t1[i])) for i in range(len(p1))
    ) / len(p1)
    loss = byol_loss(p1.requires_grad_(True), p2, t1.requires_grad_(True), t2)
    assert math.isclose(loss.item(), expected, rel_tol=1e-12)
    loss.backward()
    assert p1.grad is not None and t1.grad is None  # the target is a stop-gradient


def test_byol_loss_is_zero_when_predictions_point_at_the_other_views_targets():
    p1, p2, _, _ = _random_outputs()
    assert byol_loss(p1, p2, 3 * p2, 0.5 * p1).item() == pytest.approx(0.0, abs=1e-12)


def test_retrieval_accuracy_matches_direct_ranking():
    p1, p2, t1, t2 = _random_outputs()
    t2[:3] = 2 * p1[:3]  # the first three of view 1 find their positive for certain
    hits = 0
    for p, t in ((p1, t2), (p2, t1)):
        for i in range(len(p)):
            sims = [_cos(p[i], t[j]) for j in range(len(t))]
            hits += max(range(len(t)), key=sims.__getitem__) == i
    expected = hits / (2 * len(p1))
    assert retrieval_accuracy(p1, p2, t1, t2).item() == pytest.approx(expected)
    assert retrieval_accuracy(p1, p2, p2, p1).item() == 1.0


def test_ema_update_follows_the_formula_and_leaves_online_alone():
    torch.manual_seed(1)
    target, online = nn.Linear(3, 2), nn.Linear(3, 2)
    before = [p.detach().clone() for p in target.parameters()]
    online_before = [p.detach().clone() for p in online.parameters()]
    ema_update_(list(target.parameters()), list(online.parameters()), tau=0.9)
    for new, old, o in zip(target.parameters(), before, online_before, strict=True):
        torch.testing.assert_close(new.detach(), 0.9 * old + 0.1 * o)
    for p, o in zip(online.parameters(), online_before, strict=True):
        assert torch.equal(p.detach(), o)
    with pytest.raises(ValueError):
        ema_update_(list(target.parameters()), [online.weight], tau=0.9)


def test_tau_schedule_starts_at_base_and_anneals_to_one():
    assert target_tau(0.99, 0, 100) == pytest.approx(0.99)
    assert target_tau(0.99, 50, 100) == pytest.approx(0.995)
    assert target_tau(0.99, 100, 100) == pytest.approx(1.0)
    taus = [target_tau(0.9, k, 10) for k in range(11)]
    assert taus == sorted(taus) and len(set(taus)) == len(taus)
