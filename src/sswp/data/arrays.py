"""The in-memory dataset every loader and stage passes around: images and labels, train and test.

Its own module, below both the raw readers (digits, CIFAR, image folders), which build one,
and `datasets`, which picks a reader and writes the prepared artifact.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ARRAY_KEYS = ("train_x", "train_y", "test_x", "test_y")


@dataclass(frozen=True)
class ArrayDataset:
    """Labels as (N,) int64 and images, for the train and test sets.

    Images are (N, H, W, 3) uint8 arrays, or for image folders (N,) paths (str) below `root`,
    which loaders decode and crop to `crop_size`.
    """

    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    classes: tuple[str, ...]
    name: str = "custom"
    root: str = ""
    crop_size: int = 0

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def is_files(self) -> bool:
        return self.train_x.dtype.kind == "U"

    @property
    def image_size(self) -> int:
        """The side of the images that loaders produce."""
        return self.crop_size if self.is_files else int(self.train_x.shape[1])

    def arrays(self) -> dict[str, np.ndarray]:
        return {key: getattr(self, key) for key in ARRAY_KEYS}

    def problem(self) -> str | None:
        """Why these arrays cannot be used, or None if they can."""
        if self.is_files and self.crop_size < 1:
            return f"the crop size of its image files is {self.crop_size}, not a positive number"
        for split in ("train", "test"):
            x, y = getattr(self, f"{split}_x"), getattr(self, f"{split}_y")
            if self.is_files:
                if x.dtype.kind != "U" or x.ndim != 1:
                    return f"{split} images are {x.dtype} {x.shape}, not (N,) file paths"
            elif x.dtype != np.uint8 or x.ndim != 4 or x.shape[-1] != 3:
                return f"{split} images are {x.dtype} {x.shape}, not (N, H, W, 3) uint8"
            if x.shape[1:] != self.train_x.shape[1:]:
                return (
                    f"test images are {x.shape[1:]} but train images are {self.train_x.shape[1:]}"
                )
            if y.dtype != np.int64 or y.shape != (len(x),):
                return f"{split} labels are {y.dtype} {y.shape}, not ({len(x)},) int64"
            if len(y) and (y.min() < 0 or y.max() >= self.num_classes):
                return f"{split} labels fall outside 0..{self.num_classes - 1}"
        return None
