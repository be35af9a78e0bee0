import math

import torch
import torch.nn.functional as F

from sswp.ssl.simclr import nt_xent


def _direct_nt_xent(z1, z2, temperature):
    """Per-sample NT-Xent written out from the SimCLR definition."""
    views = [F.normalize(v, dim=0) for v in torch.cat([z1, z2])]
    n = z1.size(0)
    losses, hits = [], 0
    for i, zi in enumerate(views):
        positive = (i + n) % (2 * n)
        sims = {k: float(zi @ zk) / temperature for k, zk in enumerate(views) if k != i}
        denom = sum(math.exp(s) for s in sims.values())
        losses.append(-math.log(math.exp(sims[positive]) / denom))
        hits += max(sims, key=sims.get) == positive
    return sum(losses) / len(losses), hits / (2 * n)


def test_nt_xent_matches_direct_per_sample_computation():
    torch.manual_seed(3)
    z1, z2 = torch.randn(5, 8, dtype=torch.float64), torch.randn(5, 8, dtype=torch.float64)
    loss, acc = nt_xent(z1, z2, temperature=0.5)
    expected_loss, expected_acc = _direct_nt_xent(z1, z2, 0.5)
    assert math.isclose(loss.item(), expected_loss, rel_tol=1e-9)
    assert math.isclose(acc.item(), expected_acc, rel_tol=1e-6)


def test_nt_xent_is_low_and_accurate_for_identical_views():
    z = torch.randn(16, 32)
    loss, acc = nt_xent(z, z.clone(), temperature=0.07)
    assert acc.item() == 1.0
    noisy_loss, _ = nt_xent(z, torch.randn(16, 32), temperature=0.07)
    assert loss < noisy_loss
