"""Paired differences over seeds: the t interval against scipy and a printed t table, and the
verdict words."""

from __future__ import annotations

import math

import pytest
import scipy.stats

from sswp.report import stats


@pytest.mark.parametrize(("df", "table"), [(2, 4.303), (4, 2.776), (1, 12.706)])
def test_t_quantile_matches_the_printed_table(df, table):
    assert stats.t_quantile(df) == pytest.approx(table, abs=5e-4)


def test_interval_by_hand_and_against_scipy():
    # Differences 2, 4, 9: mean 5, sample std sqrt(13), so the half-width is
    # 4.303 * sqrt(13) / sqrt(3) = 8.957 with the t table's t(0.975, 2).
    a, b = [82.0, 80.0, 90.0], [80.0, 76.0, 81.0]
    diff = stats.paired_difference(a, b)
    assert diff.mean == 5.0 and diff.n == 3
    assert diff.low == pytest.approx(5 - 4.303 * math.sqrt(13 / 3), abs=2e-3)
    assert diff.high == pytest.approx(5 + 4.303 * math.sqrt(13 / 3), abs=2e-3)
    low, high = scipy.stats.t.interval(0.95, 2, loc=5, scale=scipy.stats.sem([2, 4, 9]))
    assert (diff.low, diff.high) == pytest.approx((low, high), rel=1e-12)
    assert diff.verdict == stats.NO_DIFFERENCE


def test_five_seeds_use_four_degrees_of_freedom():
    # Differences 1, 2, 3, 4, 5: mean 3, std sqrt(2.5); half-width 2.776 * sqrt(2.5 / 5).
    diff = stats.paired_difference([1, 2, 3, 4, 5], [0, 0, 0, 0, 0])
    assert diff.low == pytest.approx(3 - 2.776 * math.sqrt(0.5), abs=1e-3)
    assert diff.high == pytest.approx(3 + 2.776 * math.sqrt(0.5), abs=1e-3)
    assert diff.verdict == stats.BETTER


@pytest.mark.parametrize(
    ("a", "b", "verdict"),
    [
        ([80.0, 81.0, 82.0], [70.0, 72.0, 71.0], stats.BETTER),
        ([70.0, 72.0, 71.0], [80.0, 81.0, 82.0], stats.WORSE),
        ([80.0, 70.0, 75.0], [75.0, 75.0, 75.0], stats.NO_DIFFERENCE),
        # The same gain on every seed: an interval of zero width, above 0.
        ([81.0, 82.0], [80.0, 81.0], stats.BETTER),
        ([80.0, 82.0], [80.0, 82.0], stats.NO_DIFFERENCE),
    ],
)
def test_verdict_words(a, b, verdict):
    assert stats.paired_difference(a, b).verdict == verdict


def test_one_seed_gives_no_interval():
    diff = stats.paired_difference([0.9], [0.8])
    assert diff.mean == pytest.approx(0.1)
    assert (diff.low, diff.high, diff.n) == (None, None, 1)
    assert diff.verdict == stats.NO_INTERVAL
    assert stats.NO_INTERVAL not in stats.VERDICT_CODES


def test_pairs_must_match():
    with pytest.raises(ValueError, match="same, non-zero length"):
        stats.paired_difference([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="same, non-zero length"):
        stats.paired_difference([], [])
