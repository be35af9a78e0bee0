"""A non-finite loss stops the stage: weights after it are garbage, and so would be its outputs.

Checked on the loss sums the loops already keep on the host, so it costs no extra device sync.
"""

from __future__ import annotations

import math

from sswp.errors import SswpError


class DivergedError(SswpError):
    """Training produced a NaN or infinite loss."""


def check_finite(loss: float, stage: str, epoch: int, lr_key: str) -> None:
    """Raise DivergedError naming the stage, the epoch (1-based) and the param to lower."""
    if not math.isfinite(loss):
        raise DivergedError(
            f"{stage} diverged in epoch {epoch + 1}: the loss is {loss}; the learning rate is "
            f"the likely cause: lower {lr_key} and rerun"
        )
