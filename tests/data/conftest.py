"""Fixtures of the data tests: both loader backends, and small image folders written on the fly."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

try:
    import nvidia.dali  # noqa: F401

    HAVE_DALI = True
except ImportError:
    HAVE_DALI = False
needs_dali = pytest.mark.skipif(
    not HAVE_DALI, reason="NVIDIA DALI is not installed (pip install nvidia-dali-cuda130)"
)


@pytest.fixture(params=["torch", pytest.param("dali", marks=needs_dali)])
def backend(request) -> str:
    """Run a test once per loader backend (`data.loader`); DALI runs its CPU pipelines."""
    return request.param


def smooth_image(height: int, width: int, seed: int) -> np.ndarray:
    """A colourful photo-like uint8 image: ramps in x and y, so resampling changes it little."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    ramps = [(a * x / width + b * y / height) for a, b in rng.uniform(0.2, 1.0, (3, 2))]
    return (np.stack(ramps, axis=-1) / 2 * 255).round().astype(np.uint8)


# (split, class, file name, height, width, PIL mode): JPEG and PNG, upper-case suffixes,
# grey, palette and alpha PNGs, and a nested folder.
FOLDER_FILES = [
    ("train", "cat", "a.jpg", 40, 48, "RGB"),
    ("train", "cat", "b.PNG", 36, 30, "RGBA"),
    ("train", "cat", "nested/c.jpeg", 44, 44, "RGB"),
    ("train", "dog", "a.JPEG", 30, 50, "RGB"),
    ("train", "dog", "b.png", 48, 40, "L"),
    ("train", "dog", "c.png", 40, 40, "P"),
    ("train", "emu", "a.png", 33, 37, "RGB"),
    ("train", "emu", "b.jpg", 41, 35, "RGB"),
    ("val", "cat", "v.png", 40, 40, "RGB"),
    ("val", "dog", "v.jpg", 36, 44, "RGB"),
]


def write_folder(root: Path, files: list[tuple] = FOLDER_FILES) -> Path:
    """Write the images of `files` under `root`; returns `root`."""
    for i, (split, cls, name, height, width, mode) in enumerate(files):
        path = root / split / cls / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(smooth_image(height, width, i)).convert(mode).save(path)
    return root


@pytest.fixture
def image_folder(tmp_path) -> Callable[..., Path]:
    """Writes a small image folder in the ImageNet layout (or other `files`); returns its root."""

    def make(files: list[tuple] = FOLDER_FILES) -> Path:
        return write_folder(tmp_path / "photos", files)

    return make
