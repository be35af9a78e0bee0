"""Seeded, class-balanced index splits of the training set.

The search uses two disjoint halves (one trains weights, the other architecture logits);
finetuning uses labelled fractions that are nested, so a 5% run sees a subset of the images
that a 10% run sees and results across label ratios are comparable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from sswp.errors import SswpError

# Guards the rounding against float noise such as 0.07 * 150 = 10.500000000000002.
_EPS = 1e-9


@dataclass(frozen=True)
class Splits:
    """Indices into the training set (int64)."""

    search_weights: np.ndarray
    search_arch: np.ndarray
    label_order: np.ndarray

    def to_dict(self) -> dict[str, list[int]]:
        return {
            "search_weights": self.search_weights.tolist(),
            "search_arch": self.search_arch.tolist(),
            "label_order": self.label_order.tolist(),
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any], num_train: int) -> Splits:
        """Parse and check splits.json; ValueError/KeyError/TypeError say what is wrong."""
        arrays = {}
        for key in ("search_weights", "search_arch", "label_order"):
            array = np.asarray(raw[key])
            if array.ndim != 1 or (array.size and array.dtype.kind not in "iu"):
                raise ValueError(f"{key} is not a list of integers")
            array = array.astype(np.int64)
            if array.size and (array.min() < 0 or array.max() >= num_train):
                raise ValueError(f"{key} has indices outside 0..{num_train - 1}")
            arrays[key] = array
        weights, arch = arrays["search_weights"], arrays["search_arch"]
        if np.intersect1d(weights, arch).size or weights.size + arch.size != num_train:
            raise ValueError("the search halves overlap or do not cover the training set")
        if not np.array_equal(np.sort(arrays["label_order"]), np.arange(num_train)):
            raise ValueError("label_order is not an ordering of the training set")
        return cls(**arrays)


def balanced_halves(labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split every class in half at random; odd classes alternate which half gets the extra."""
    rng = np.random.default_rng(seed)
    halves: tuple[list[np.ndarray], list[np.ndarray]] = ([], [])
    extra_to_first = True
    for cls in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == cls))
        cut = len(members) // 2
        if len(members) % 2:
            cut += int(extra_to_first)
            extra_to_first = not extra_to_first
        halves[0].append(members[:cut])
        halves[1].append(members[cut:])
    first, second = (np.sort(np.concatenate(h)).astype(np.int64) for h in halves)
    return first, second


def nested_label_order(labels: np.ndarray, seed: int) -> np.ndarray:
    """A seeded random ordering of the training indices.

    Within each class it is a random permutation, and `label_subset` takes prefixes of it,
    so every ratio's subset contains every smaller ratio's subset.
    """
    return np.random.default_rng(seed).permutation(len(labels)).astype(np.int64)


def label_subset(
    labels: np.ndarray, order: np.ndarray, ratio: float, what: str = "label ratio"
) -> np.ndarray:
    """Sorted indices: for each class c, the first round(ratio * n_c) of its indices in `order`.

    Rounding (half up) keeps the labelled fraction what was asked for; a ratio so small
    that a class would get no image is an error rather than a silent upgrade to one.
    `what` names the value in errors (a label ratio, or data.subset).
    """
    if not 0 < ratio <= 1:
        raise SswpError(f"{what} {ratio} is outside (0, 1]; use e.g. 0.1 for 10%")
    classes, counts = np.unique(labels, return_counts=True)
    rarest = int(np.argmin(counts))
    if _take(ratio, counts[rarest]) == 0:
        raise SswpError(
            f"{what} {ratio} leaves class {classes[rarest]} with no images (it has "
            f"{counts[rarest]}); use a ratio of at least {0.5 / counts[rarest]:.6g}"
        )
    ordered_labels = labels[order]
    chosen = [
        order[ordered_labels == c][: _take(ratio, n)] for c, n in zip(classes, counts, strict=True)
    ]
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def _take(ratio: float, count: int) -> int:
    return math.floor(ratio * count + 0.5 + _EPS)
