"""Seeded, class-balanced index splits of the training set.

The search uses two disjoint halves (one trains weights, the other architecture logits).
A class-balanced validation split, held out from every labelled subset, is where recipes are
chosen, so the test set is read only for the reported numbers. Each run seed draws its own
labelled subsets from the rest, nested across ratios: a 2% run of a seed sees a subset of
the images its 5% run sees, and the spread over seeds includes the choice of labels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from sswp.errors import SswpError

# Guards the rounding against float noise such as 0.07 * 150 = 10.500000000000002.
_EPS = 1e-9
# Separate random streams of the same seed for the validation split and the label orders.
_VALIDATION_STREAM = 1
_LABEL_STREAM = 2


@dataclass(frozen=True)
class Splits:
    """Indices into the training set (int64)."""

    search_weights: np.ndarray
    search_arch: np.ndarray
    validation: np.ndarray

    def to_dict(self) -> dict[str, list[int]]:
        return {
            "search_weights": self.search_weights.tolist(),
            "search_arch": self.search_arch.tolist(),
            "validation": self.validation.tolist(),
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any], num_train: int) -> Splits:
        """Parse and check splits.json; ValueError/KeyError/TypeError say what is wrong."""
        arrays = {}
        for key in ("search_weights", "search_arch", "validation"):
            array = np.asarray(raw[key])
            if array.ndim != 1 or (array.size and array.dtype.kind not in "iu"):
                raise ValueError(f"{key} is not a list of integers")
            array = array.astype(np.int64)
            if array.size and (array.min() < 0 or array.max() >= num_train):
                raise ValueError(f"{key} has indices outside 0..{num_train - 1}")
            arrays[key] = array
        every = np.concatenate(list(arrays.values()))
        if np.unique(every).size != every.size or every.size != num_train:
            raise ValueError(
                "the search halves and the validation split overlap or do not cover the "
                "training set"
            )
        return cls(**arrays)


def search_splits(labels: np.ndarray, val_fraction: float, seed: int) -> Splits:
    """The validation split, and the search's two halves of every other training image.

    The validation images are held out from the search too, so that the label-free measure
    of every self-supervised backbone reads images that no arm trained on.
    """
    validation = validation_split(labels, val_fraction, seed)
    pool = np.setdiff1d(np.arange(len(labels)), validation)
    weights, arch = balanced_halves(labels[pool], seed)
    return Splits(pool[weights], pool[arch], validation)


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


def validation_split(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Sorted indices of a class-balanced, seeded `fraction` of the training images (none
    for 0; a class too small for its share gives none): labelled images that no finetune or
    probe trains on."""
    if fraction == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.random.default_rng([seed, _VALIDATION_STREAM]).permutation(len(labels))
    return label_subset(labels, order, fraction, what="data.val_fraction", every_class=False)


def labelled_subset(
    labels: np.ndarray, validation: np.ndarray, split_seed: int, seed: int, ratio: float
) -> np.ndarray:
    """The labelled images of run `seed` at `ratio`: a class-balanced fraction of the
    training images outside the validation split (the labelled pool).

    Each seed orders the pool its own way and every ratio takes per-class prefixes of that
    order, so a seed's subsets are nested across ratios and differ between seeds.
    """
    pool = np.setdiff1d(np.arange(len(labels)), validation)
    order = np.random.default_rng([split_seed, seed, _LABEL_STREAM]).permutation(len(pool))
    return pool[label_subset(labels[pool], order, ratio)]


def label_subset(
    labels: np.ndarray,
    order: np.ndarray,
    ratio: float,
    what: str = "label ratio",
    every_class: bool = True,
) -> np.ndarray:
    """Sorted indices: for each class c, the first round(ratio * n_c) of its indices in `order`.

    Rounding (half up) keeps the labelled fraction what was asked for; a ratio so small
    that a class would get no image is an error (unless `every_class` is false) rather than
    a silent upgrade to one. `what` names the value in errors (a label ratio, data.subset).
    """
    if not 0 < ratio <= 1:
        raise SswpError(f"{what} {ratio} is outside (0, 1]; use e.g. 0.1 for 10%")
    classes, counts = np.unique(labels, return_counts=True)
    rarest = int(np.argmin(counts))
    if every_class and _take(ratio, counts[rarest]) == 0:
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
