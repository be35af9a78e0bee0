"""NT-Xent (SimCLR's contrastive loss) and its top-1 accuracy."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def nt_xent_logits(
    z1: torch.Tensor, z2: torch.Tensor, temperature: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosine-similarity logits of each of the 2N views against the other 2N-1, and targets.

    Row i's positive is the other view of the same image; the diagonal is masked out.
    """
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    n = z1.size(0)
    logits = z @ z.t() / temperature
    logits = logits.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return logits, targets


def nt_xent(
    z1: torch.Tensor, z2: torch.Tensor, temperature: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean NT-Xent loss over the 2N views, and the fraction whose positive ranks first."""
    logits, targets = nt_xent_logits(z1, z2, temperature)
    loss = F.cross_entropy(logits, targets)
    accuracy = (logits.argmax(dim=1) == targets).float().mean()
    return loss, accuracy
