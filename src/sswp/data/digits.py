"""scikit-learn's bundled 8x8 digits as a tiny CIFAR-shaped dataset for CPU smoke runs.

It ships with scikit-learn, so the default pipeline runs without any download. The images are
upsampled to `data.image_size`: 16 pixels keep every digit legible at a quarter of the
compute of CIFAR's 32, which is what lets the default run train to convergence in minutes.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from sswp.data.arrays import ArrayDataset

DEFAULT_IMAGE_SIZE = 32
TEST_FRACTION = 0.2
# Fixed on purpose, independent of params.seed: the test set must never change between runs.
SPLIT_SEED = 0
_MAX_VALUE = 16.0


def _to_rgb(images: np.ndarray, size: int) -> np.ndarray:
    """(N, 8, 8) values 0-16 -> (N, size, size, 3) uint8, bilinear upsampling like a camera."""
    scaled = torch.from_numpy(images.astype(np.float32) * (255.0 / _MAX_VALUE))
    big = torch.nn.functional.interpolate(
        scaled[:, None], size=(size, size), mode="bilinear", align_corners=False
    )[:, 0]
    gray = big.round().clamp(0, 255).to(torch.uint8).numpy()
    return np.repeat(gray[..., None], 3, axis=-1)


def load_digits_dataset(image_size: int = DEFAULT_IMAGE_SIZE) -> ArrayDataset:
    """All 1797 digits at `image_size` pixels, split 80/20 stratified with a fixed seed."""
    bunch = load_digits()
    images = _to_rgb(bunch.images, image_size)
    labels = bunch.target.astype(np.int64)
    train_idx, test_idx = train_test_split(
        np.arange(len(labels)), test_size=TEST_FRACTION, stratify=labels, random_state=SPLIT_SEED
    )
    train_idx, test_idx = np.sort(train_idx), np.sort(test_idx)
    return ArrayDataset(
        train_x=images[train_idx],
        train_y=labels[train_idx],
        test_x=images[test_idx],
        test_y=labels[test_idx],
        classes=tuple(str(c) for c in range(10)),
        name="digits",
    )
