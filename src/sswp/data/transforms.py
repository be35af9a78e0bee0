"""Augmentations on uint8 CHW tensors (torchvision.transforms.v2), for the torch backend.

All randomness comes from torch's global RNG: seeding torch in the main process (the engine does)
or the loader's generator (for worker processes) makes every augmented batch reproducible.
Image folders hold photos of any size, so their supervised views crop to `image_size` the
ImageNet way (random resized crop for training, resize and centre crop for evaluation); the
DALI pipelines in `dali_pipelines` mirror every view defined here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torchvision.transforms import v2

# The SimCLR view of DESIGN section 3 (torchvision's names), shared with the DALI pipelines.
CROP_SCALE = (0.08, 1.0)
CROP_RATIO = (3 / 4, 4 / 3)
FLIP_P = 0.5
JITTER = (0.8, 0.8, 0.8, 0.2)  # brightness, contrast, saturation, hue
JITTER_P = 0.3
GRAY_P = 0.2
BLUR_KERNEL = 3
BLUR_SIGMA = (1.0, 2.0)
BLUR_P = 0.2
# The supervised view of arrays pads this many zero pixels on each side, then crops back.
PAD = 4

# Evaluation resizes the shorter side to image_size / EVAL_CROP_FRACTION, then centre-crops
# image_size (ImageNet's customary 224 of 256).
EVAL_CROP_FRACTION = 0.875


@dataclass(frozen=True)
class Augment:
    """The augmentation choices that depend on the dataset; everything else is the original's.

    Digits and text are not mirror-symmetric (a flipped 2 is no digit at all), and on tiny
    images the original's smallest SimCLR crop (8 % of the area) keeps too little of the
    object for the two views to share anything.
    """

    flip: bool = True
    simclr_min_crop: float = CROP_SCALE[0]

    @property
    def flip_p(self) -> float:
        return FLIP_P if self.flip else 0.0

    @property
    def simclr_scale(self) -> tuple[float, float]:
        return (self.simclr_min_crop, CROP_SCALE[1])


DEFAULT_AUGMENT = Augment()


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


def simclr_view(
    image_size: int,
    mean: Sequence[float],
    std: Sequence[float],
    augment: Augment = DEFAULT_AUGMENT,
) -> v2.Compose:
    """One random view for contrastive learning, with the original's SimCLR parameters."""
    return v2.Compose(
        [
            v2.RandomResizedCrop(
                image_size, scale=augment.simclr_scale, ratio=CROP_RATIO, antialias=True
            ),
            v2.RandomHorizontalFlip(augment.flip_p),
            v2.RandomApply([v2.ColorJitter(*JITTER)], p=JITTER_P),
            v2.RandomGrayscale(p=GRAY_P),
            v2.RandomApply([v2.GaussianBlur(kernel_size=BLUR_KERNEL, sigma=BLUR_SIGMA)], p=BLUR_P),
            *_to_normalised_float(mean, std),
        ]
    )


def train_view(
    image_size: int,
    mean: Sequence[float],
    std: Sequence[float],
    cutout: int,
    augment: Augment = DEFAULT_AUGMENT,
    photos: bool = False,
) -> v2.Compose:
    """Supervised augmentation: a crop (pad-4 random crop; for `photos` a random resized
    crop), flip, normalise, then cutout if > 0."""
    if photos:
        crop = v2.RandomResizedCrop(image_size, scale=CROP_SCALE, ratio=CROP_RATIO, antialias=True)
    else:
        crop = v2.RandomCrop(image_size, padding=PAD)
    steps: list = [crop, v2.RandomHorizontalFlip(augment.flip_p), *_to_normalised_float(mean, std)]
    if cutout > 0:
        steps.append(Cutout(cutout))
    return v2.Compose(steps)


def eval_view(mean: Sequence[float], std: Sequence[float]) -> v2.Compose:
    """No augmentation: only scale to 0-1 and normalise."""
    return v2.Compose(_to_normalised_float(mean, std))


def folder_eval_view(image_size: int, mean: Sequence[float], std: Sequence[float]) -> v2.Compose:
    """Resize the shorter side, centre-crop `image_size` and normalise."""
    return v2.Compose(
        [
            v2.Resize(eval_resize(image_size), antialias=True),
            v2.CenterCrop(image_size),
            *_to_normalised_float(mean, std),
        ]
    )


def eval_resize(image_size: int) -> int:
    """The shorter side that evaluation resizes photos to before the centre crop."""
    return round(image_size / EVAL_CROP_FRACTION)


def view_for(
    kind: str,
    files: bool,
    image_size: int,
    mean: Sequence[float],
    std: Sequence[float],
    cutout: int,
    augment: Augment = DEFAULT_AUGMENT,
) -> Callable[[torch.Tensor], torch.Tensor]:
    """The transform of one image for a loader `kind` over arrays or (`files`) photos."""
    if kind == "simclr":
        return simclr_view(image_size, mean, std, augment)
    if kind == "train":
        return train_view(image_size, mean, std, cutout, augment, photos=files)
    return folder_eval_view(image_size, mean, std) if files else eval_view(mean, std)
