import math

import numpy as np
import pytest

from sswp.data.splits import (
    Splits,
    balanced_halves,
    label_subset,
    labelled_subset,
    nested_label_order,
    search_splits,
    validation_split,
)
from sswp.errors import SswpError


@pytest.fixture
def labels():
    counts = [70, 80, 90, 100, 110, 10, 150]
    labels = np.repeat(np.arange(len(counts)), counts)
    return np.random.default_rng(123).permutation(labels).astype(np.int64)


def test_halves_disjoint_covering_balanced(labels):
    first, second = balanced_halves(labels, seed=0)
    assert first.dtype == np.int64 and second.dtype == np.int64
    assert np.array_equal(first, np.sort(first)) and np.array_equal(second, np.sort(second))
    assert np.intersect1d(first, second).size == 0
    assert np.array_equal(np.sort(np.concatenate([first, second])), np.arange(len(labels)))
    per_class = np.bincount(labels[first], minlength=7) - np.bincount(labels[second], minlength=7)
    assert np.abs(per_class).max() <= 1
    # odd classes alternate the extra image, so the halves stay the same size overall
    assert abs(len(first) - len(second)) <= 1


def test_halves_deterministic_per_seed(labels):
    a, b = balanced_halves(labels, seed=5), balanced_halves(labels, seed=5)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    c = balanced_halves(labels, seed=6)
    assert not np.array_equal(a[0], c[0])


def test_label_order_is_a_seeded_permutation(labels):
    order = nested_label_order(labels, seed=1)
    assert order.dtype == np.int64
    assert np.array_equal(np.sort(order), np.arange(len(labels)))
    assert np.array_equal(order, nested_label_order(labels, seed=1))
    assert not np.array_equal(order, nested_label_order(labels, seed=2))


def test_label_subsets_nested_with_rounded_counts(labels):
    order = nested_label_order(labels, seed=0)
    ratios = [0.05, 0.07, 0.1, 0.2, 0.5, 1.0]
    subsets = [label_subset(labels, order, r) for r in ratios]
    for small, large in zip(subsets, subsets[1:], strict=False):
        assert np.isin(small, large).all()
    n_c = np.bincount(labels)
    for ratio, subset in zip(ratios, subsets, strict=True):
        assert np.array_equal(subset, np.sort(subset))
        expected = [math.floor(round(ratio * n, 9) + 0.5) for n in n_c]
        assert np.bincount(labels[subset], minlength=len(n_c)).tolist() == expected
    assert np.array_equal(subsets[-1], np.arange(len(labels)))
    # 0.07 * 150 is 10.500000000000002 in floats: rounds half up to 11, as 10.5 does
    assert (labels[subsets[1]] == 6).sum() == 11


def test_label_subset_takes_prefix_of_order(labels):
    order = nested_label_order(labels, seed=0)
    subset = label_subset(labels, order, 0.1)
    class_six = order[labels[order] == 6]
    assert set(subset[labels[subset] == 6]) == set(class_six[:15])


@pytest.mark.parametrize("ratio", [0.0, -0.1, 1.5, float("nan")])
def test_label_ratio_outside_range_rejected(labels, ratio):
    with pytest.raises(SswpError, match=r"outside \(0, 1\]"):
        label_subset(labels, np.arange(len(labels)), ratio)


def test_tiny_ratio_that_empties_a_class_rejected(labels):
    message = r"class 5 with no images \(it has 10\); use a ratio of at least 0.05$"
    with pytest.raises(SswpError, match=message):
        label_subset(labels, np.arange(len(labels)), 0.04)
    assert (labels[label_subset(labels, np.arange(len(labels)), 0.05)] == 5).sum() == 1


def test_the_search_halves_hold_every_image_outside_the_validation_split(labels):
    splits = search_splits(labels, 0.1, seed=0)
    assert np.array_equal(splits.validation, validation_split(labels, 0.1, seed=0))
    every = np.concatenate([splits.search_weights, splits.search_arch, splits.validation])
    assert np.array_equal(np.sort(every), np.arange(len(labels)))
    weights = np.bincount(labels[splits.search_weights])
    assert np.abs(weights - np.bincount(labels[splits.search_arch])).max() <= 1


def test_splits_round_trip_and_validation(labels):
    splits = search_splits(labels, 0.1, seed=0)
    back = Splits.from_dict(splits.to_dict(), len(labels))
    assert np.array_equal(back.search_arch, splits.search_arch)
    assert np.array_equal(back.validation, splits.validation)
    assert back.search_weights.dtype == np.int64

    raw = splits.to_dict()
    with pytest.raises(ValueError, match="outside"):
        Splits.from_dict({**raw, "search_arch": [*raw["search_arch"], len(labels)]}, len(labels))
    with pytest.raises(ValueError, match="overlap"):
        Splits.from_dict({**raw, "search_arch": raw["search_weights"]}, len(labels))
    with pytest.raises(ValueError, match="overlap"):
        Splits.from_dict({**raw, "validation": raw["search_arch"][:1] * 2}, len(labels))
    with pytest.raises(ValueError, match="integers"):
        Splits.from_dict({**raw, "validation": ["a"]}, len(labels))
    with pytest.raises(KeyError):
        Splits.from_dict({k: v for k, v in raw.items() if k != "validation"}, len(labels))


def test_validation_split_is_balanced_seeded_and_optional(labels):
    validation = validation_split(labels, 0.1, seed=3)
    expected = [math.floor(0.1 * n + 0.5) for n in np.bincount(labels)]
    assert np.bincount(labels[validation], minlength=7).tolist() == expected
    assert np.array_equal(validation, validation_split(labels, 0.1, seed=3))
    assert not np.array_equal(validation, validation_split(labels, 0.1, seed=4))
    assert validation_split(labels, 0.0, seed=3).size == 0


RATIOS = (0.1, 0.2, 0.5, 1.0)


def test_labelled_subsets_avoid_validation_nest_across_ratios_and_differ_across_seeds(labels):
    validation = validation_split(labels, 0.1, seed=0)
    pool = np.setdiff1d(np.arange(len(labels)), validation)
    per_seed = {
        seed: [labelled_subset(labels, validation, 0, seed, r) for r in RATIOS] for seed in (0, 1)
    }
    for subsets in per_seed.values():
        for small, large in zip(subsets, subsets[1:], strict=False):
            assert np.isin(small, large).all()
        for ratio, subset in zip(RATIOS, subsets, strict=True):
            assert not np.isin(subset, validation).any()
            expected = [math.floor(round(ratio * n, 9) + 0.5) for n in np.bincount(labels[pool])]
            assert np.bincount(labels[subset], minlength=7).tolist() == expected
        assert np.array_equal(subsets[-1], pool)
    for ratio_index in range(len(RATIOS) - 1):
        assert not np.array_equal(per_seed[0][ratio_index], per_seed[1][ratio_index])
    again = labelled_subset(labels, validation, 0, 1, 0.1)
    assert np.array_equal(again, per_seed[1][0])
    assert not np.array_equal(again, labelled_subset(labels, validation, 7, 1, 0.1))
