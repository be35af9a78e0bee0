"""BYOL's pure pieces: its heads, loss, positive-retrieval accuracy and target EMA.

The search wires them to the supernet (`sswp.engine.objectives`); nothing here knows about
architectures, so each piece can be checked against its formula in the BYOL paper.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

# Projector and predictor sizes of the BYOL paper, which the original SSWP code kept.
HIDDEN_DIM = 4096
PROJECTION_DIM = 256


def mlp_head(
    in_dim: int, hidden_dim: int = HIDDEN_DIM, out_dim: int = PROJECTION_DIM
) -> nn.Sequential:
    """BYOL's projector/predictor: Linear, BatchNorm, ReLU, Linear."""
    return nn.Sequential(
        nn.Linear(in_dim, hidden_dim),
        nn.BatchNorm1d(hidden_dim),
        nn.ReLU(),
        nn.Linear(hidden_dim, out_dim),
    )


def regression_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """2 - 2 cos(prediction, target) per sample; the target gets no gradient."""
    return 2 - 2 * F.cosine_similarity(prediction, target.detach(), dim=-1)


def byol_loss(
    p1: torch.Tensor, p2: torch.Tensor, t1: torch.Tensor, t2: torch.Tensor
) -> torch.Tensor:
    """The symmetrised loss: view 1's prediction regresses view 2's target and vice versa.

    Summed over the two directions, averaged over the batch (so it lies in [0, 8]).
    """
    return (regression_loss(p1, t2) + regression_loss(p2, t1)).mean()


def retrieval_accuracy(
    p1: torch.Tensor, p2: torch.Tensor, t1: torch.Tensor, t2: torch.Tensor
) -> torch.Tensor:
    """How often a prediction's most cosine-similar target in the batch is its own positive.

    BYOL has no classification of its own; this top-1 is its analogue of SimCLR's, in both
    directions of the symmetrised loss.
    """
    hits = []
    for p, t in ((p1, t2), (p2, t1)):
        sims = F.normalize(p, dim=1) @ F.normalize(t, dim=1).t()
        hits.append(sims.argmax(dim=1) == torch.arange(len(p), device=p.device))
    return torch.cat(hits).float().mean()


def target_tau(base_tau: float, step: int, total_steps: int) -> float:
    """The EMA decay after weight step `step` of `total_steps`: base_tau, cosine-annealed to 1."""
    return 1 - (1 - base_tau) * (math.cos(math.pi * step / total_steps) + 1) / 2


@torch.no_grad()
def ema_update_(
    targets: Sequence[torch.Tensor], onlines: Sequence[torch.Tensor], tau: float
) -> None:
    """target = tau * target + (1 - tau) * online for each pair of tensors, in place.

    One fused call rather than a Python loop, since a supernet has thousands of tensors.
    """
    if len(targets) != len(onlines):
        raise ValueError(f"{len(targets)} target tensors for {len(onlines)} online ones")
    torch._foreach_lerp_(list(targets), [t.detach() for t in onlines], 1 - tau)
