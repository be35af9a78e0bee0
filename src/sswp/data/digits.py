"""scikit-learn's bundled 8x8 digits as a tiny CIFAR-shaped dataset for CPU smoke runs.

It ships with scikit-learn, so the default pipeline runs without any download.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from sswp.data.datasets import ArrayDataset

IMAGE_SIZE = 32
TEST_FRACTION = 0.2
# Fixed on purpose, independent of params.seed: the test set must never change between runs.
SPLIT_SEED = 0
_MAX_VALUE = 16.0


def _to_rgb32(images: np.ndarray) -> np.ndarray:
    """(N, 8, 8) values 0-16 -> (N, 32, 32, 3) uint8, bilinear upsampling like a camera would."""
    scaled = torch.from_numpy(images.astype(np.float32) * (255.0 / _MAX_VALUE))
    big = torch.nn.functional.interpolate(
        scaled[:, None], size=(IMAGE_SIZE, IMAGE_SIZE), mode="bilinear", align_corners=False
    )[:, 0]
    gray = big.round().clamp(0, 255).to(torch.uint8).numpy()
    return np.repeat(gray[..., None], 3, axis=-1)


def load_digits_dataset() -> ArrayDataset:
    """All 1797 digits, split 80/20 stratified with a fixed seed."""
    bunch = load_digits()
    images = _to_rgb32(bunch.images)
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
