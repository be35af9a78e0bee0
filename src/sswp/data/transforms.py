"""Augmentations on uint8 CHW tensors (torchvision.transforms.v2).

All randomness comes from torch's global RNG: seeding torch in the main process (the engine does)
or the loader's generator (for worker processes) makes every augmented batch reproducible.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torchvision.transforms import v2


class Cutout:
    """Zero a `length` x `length` square at a random centre, clipped at the borders (DARTS)."""

    def __init__(self, length: int) -> None:
        self.length = length

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        height, width = image.shape[-2:]
        y = int(torch.randint(height, ()))
        x = int(torch.randint(width, ()))
        half = self.length // 2
        image = image.clone()
        image[..., max(y - half, 0) : y + half, max(x - half, 0) : x + half] = 0
        return image

    def __repr__(self) -> str:
        return f"{type(self).__name__}(length={self.length})"


def _to_normalised_float(mean: Sequence[float], std: Sequence[float]) -> list[v2.Transform]:
    return [v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))]


def simclr_view(image_size: int, mean: Sequence[float], std: Sequence[float]) -> v2.Compose:
    """One random view for contrastive learning, with the original's SimCLR parameters."""
    return v2.Compose(
        [
            v2.RandomResizedCrop(image_size, antialias=True),
            v2.RandomHorizontalFlip(),
            v2.RandomApply([v2.ColorJitter(0.8, 0.8, 0.8, 0.2)], p=0.3),
            v2.RandomGrayscale(p=0.2),
            v2.RandomApply([v2.GaussianBlur(kernel_size=3, sigma=(1.0, 2.0))], p=0.2),
            *_to_normalised_float(mean, std),
        ]
    )


def train_view(
    image_size: int, mean: Sequence[float], std: Sequence[float], cutout: int
) -> v2.Compose:
    """Supervised augmentation: pad-4 random crop, flip, normalise, then cutout if > 0."""
    steps: list = [
        v2.RandomCrop(image_size, padding=4),
        v2.RandomHorizontalFlip(),
        *_to_normalised_float(mean, std),
    ]
    if cutout > 0:
        steps.append(Cutout(cutout))
    return v2.Compose(steps)


def eval_view(mean: Sequence[float], std: Sequence[float]) -> v2.Compose:
    """No augmentation: only scale to 0-1 and normalise."""
    return v2.Compose(_to_normalised_float(mean, std))
