"""The torchvision backend: a DataLoader per epoch over arrays or image files.

It runs everywhere torch does, so it is the fallback when DALI is missing, and the reference the
DALI pipelines are checked against.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms.v2 import functional as F

from sswp.data.sampling import Epoch, EpochLoader, EpochPlan


def read_image(path: str) -> torch.Tensor:
    """Decode one photo into a uint8 RGB CHW tensor (grey, palette and alpha images too)."""
    with Image.open(path) as image:
        return F.pil_to_tensor(image.convert("RGB"))


class ImageSet(Dataset):
    """The selected images, transformed per item; two views each for contrastive learning.

    `images` is either (N, H, W, 3) uint8, kept in memory as one NCHW tensor, or (N,) file paths,
    decoded on every access.
    """

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        indices: np.ndarray,
        transform: Callable[[torch.Tensor], torch.Tensor],
        two_views: bool,
    ) -> None:
        self.files = images.ndim == 1
        if self.files:
            self.images: torch.Tensor | list[str] = [str(p) for p in images[indices]]
        else:
            self.images = torch.from_numpy(images[indices]).permute(0, 3, 1, 2).contiguous()
        self.labels = torch.from_numpy(labels[indices].astype(np.int64))
        self.transform = transform
        self.two_views = two_views

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, ...]:
        image = read_image(self.images[i]) if self.files else self.images[i]
        if self.two_views:
            return self.transform(image), self.transform(image), self.labels[i]
        return self.transform(image), self.labels[i]


class TorchLoader(EpochLoader):
    """One DataLoader per epoch, reading this shard's batches of the epoch's plan.

    Each DataLoader gets a generator in the state the plan recorded at the epoch's start, so
    its worker processes are seeded exactly as a long-lived, seeded DataLoader would seed them.
    """

    def __init__(self, dataset: ImageSet, plan: EpochPlan, workers: int) -> None:
        self.dataset, self.plan, self.workers = dataset, plan, workers

    def _batches(self, epoch: Epoch) -> Iterator[tuple[torch.Tensor, ...]]:
        generator = torch.Generator()
        generator.set_state(epoch.state)
        loader = DataLoader(
            self.dataset,
            batch_sampler=[batch.tolist() for batch in epoch.batches],
            num_workers=self.workers,
            generator=generator,
        )
        return iter(loader)
