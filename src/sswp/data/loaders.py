"""torch DataLoaders over the prepared uint8 arrays, for the three kinds of batches.

Batch contract: "simclr" yields (view1, view2, labels); "train" and "eval" yield
(images, labels); images are float32 NCHW normalised, labels int64.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from sswp.data.transforms import eval_view, simclr_view, train_view
from sswp.errors import SswpError

Kind = Literal["simclr", "train", "eval"]
KINDS: tuple[str, ...] = ("simclr", "train", "eval")


class _ImageSet(Dataset):
    """The selected images as one uint8 NCHW tensor, transformed per item."""

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        indices: np.ndarray,
        transform: Callable[[torch.Tensor], torch.Tensor],
        two_views: bool,
    ) -> None:
        self.images = torch.from_numpy(images[indices]).permute(0, 3, 1, 2).contiguous()
        self.labels = torch.from_numpy(labels[indices].astype(np.int64))
        self.transform = transform
        self.two_views = two_views

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, ...]:
        image = self.images[i]
        if self.two_views:
            return self.transform(image), self.transform(image), self.labels[i]
        return self.transform(image), self.labels[i]


def make_loader(
    images: np.ndarray,
    labels: np.ndarray,
    indices: np.ndarray,
    kind: Kind,
    batch_size: int,
    *,
    mean: Sequence[float],
    std: Sequence[float],
    cutout: int = 0,
    shuffle: bool,
    drop_last: bool,
    seed: int,
    workers: int = 0,
    name: str,
    batch_key: str = "batch_size",
) -> DataLoader:
    """A loader over `images[indices]`, reproducible for a given seed.

    The sampler shuffles with its own generator seeded by `seed`. Augmentations draw from
    torch's global RNG: in the main process (workers=0) the caller seeds it; worker processes
    are seeded by torch from the loader's generator, so they are reproducible too.
    `name` (the split) and `batch_key` (the params key) make the batch-size error actionable.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    count = len(indices)
    if count == 0:
        raise SswpError(f"the {name} split has no images; use more data or a larger label ratio")
    if drop_last and batch_size > count:
        raise SswpError(
            f"batch size {batch_size} is larger than the {count} images of the {name} split; "
            f"lower {batch_key} to at most {count}"
        )
    image_size = images.shape[1]
    if kind == "simclr":
        transform = simclr_view(image_size, mean, std)
    elif kind == "train":
        transform = train_view(image_size, mean, std, cutout)
    else:
        transform = eval_view(mean, std)
    return DataLoader(
        _ImageSet(images, labels, np.asarray(indices), transform, two_views=kind == "simclr"),
        batch_size=batch_size,
        shuffle=shuffle,
        drop_last=drop_last,
        num_workers=workers,
        generator=torch.Generator().manual_seed(seed),
    )
