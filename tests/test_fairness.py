"""The report's fairness sections on hand-checked numbers: budgets per arm, the unconverged
runs and their marks, steps to 90 % of the final accuracy, and the paired verdicts."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from sswp.report.arms import ALL_ARMS
from sswp.report.budget import budget_markdown, budget_metrics, budget_sentence, budget_table
from sswp.report.curves import Curve
from sswp.report.figures import band, learning_curves_png
from sswp.report.stats import NO_DIFFERENCE, NO_INTERVAL, WORSE
from sswp.report.tables import (
    convergence_markdown,
    difference_text,
    label_ratio_markdown,
    label_ratio_table,
    learning_markdown,
    learning_table,
    to_csv,
)
from sswp.report.verdicts import (
    comparisons_metrics,
    comparisons_table,
    rising_cells,
    unconverged_runs,
)

FT_PRESERVED, FT_RANDOM, FT_TWO_STAGE = ALL_ARMS[:3]


def _search(steps: int, pairs: int, kept: tuple[float, float, float], loss: float) -> dict:
    """A search's budget, and its final snapshot's kept-op updates (mean, min, max) and
    child measure."""
    mean, low, high = kept
    final = {
        "kept_op_updates_mean": mean,
        "kept_op_updates_min": low,
        "kept_op_updates_max": high,
        "kept_op_lr_updates_mean": mean / 10,
        "child_val_ssl_loss": loss,
        "child_val_ssl_acc": 0.1,
    }
    return {
        "ssl_steps": steps,
        "ssl_pairs": pairs,
        "ssl_steps_after_freeze": steps // 2,
        "ssl_pairs_after_freeze": pairs // 2,
        "final": final,
    }


def test_budget_table_means_over_seeds_and_the_ratio_in_words():
    pretrain = {"ssl_steps": 110, "ssl_pairs": 3520, "op_updates": 110, "op_lr_updates": 30.0}
    table = budget_table(
        [_search(100, 3200, (50, 10, 90), 3.0), _search(120, 3840, (70, 30, 80), 3.2)],
        [pretrain, {**pretrain, "val_ssl_loss": 2.5}],
        {"preserved": {0.05: [9, 9]}, "two_stage": {0.05: [9, 9]}},
    )
    # The child's ops: the mean of the seeds' means, the extremes of their extremes. The
    # two-stage measure is left out: one seed did not take it.
    assert to_csv(table) == (
        "arm,ssl_steps,ssl_pairs,ssl_steps_after_freeze,ssl_pairs_after_freeze,op_updates_mean,"
        "op_updates_min,op_updates_max,op_lr_updates_mean,val_ssl_loss,val_ssl_acc,"
        "finetune_steps_5%\n"
        "preserved,110.0,3520.0,55.0,1760.0,60.0,10.0,90.0,6.0,3.1,0.1,9.0\n"
        "two_stage,110.0,3520.0,,,110.0,110.0,110.0,30.0,,,9.0\n"
        "random,0.0,0.0,,,0.0,0.0,0.0,0.0,,,\n"
    )
    assert budget_sentence(table, "simclr") == (
        "Two-stage got 1.00 times the preserved weights' SimCLR steps (110 against 110) and "
        "1.00 times their image pairs (3,520 against 3,520)."
    )
    md = budget_markdown(table, "byol")
    assert md.splitlines()[0].startswith("| arm | BYOL steps | image pairs | BYOL steps after")
    assert "| preserved | 110 | 3,520 | 55 | 1,760 | 60 (10–90) | 6.0 | 3.100 | 0.100 | 9 |" in md
    assert "| random | 0 | 0 | — | — | 0 | 0.0 | — | — | — |" in md
    assert budget_metrics(table)["random"] == {
        "ssl_steps": 0.0,
        "ssl_pairs": 0.0,
        "op_updates_mean": 0.0,
        "op_updates_min": 0.0,
        "op_updates_max": 0.0,
        "op_lr_updates_mean": 0.0,
    }


def test_a_search_without_recorded_steps_says_so():
    table = budget_table([_search(0, 0, (0, 0, 0), 4.0)], [{"ssl_steps": 5, "ssl_pairs": 10}], {})
    assert budget_sentence(table, "simclr") == (
        "The search recorded no SimCLR steps for the preserved weights."
    )


def _curve(test: tuple, train: tuple | None = None, steps: int = 3) -> Curve:
    return Curve(
        train_acc=train or (0.9,) * len(test),
        test_acc=test,
        steps=tuple(steps * (i + 1) for i in range(len(test))),
    )


# 10 epochs, tested at 5 and 10: the end window is the last epoch.
SETTLED = _curve((None,) * 4 + (0.795,) + (None,) * 4 + (0.8,))
TEST_RISING = _curve((None,) * 4 + (0.6,) + (None,) * 4 + (0.7,))
TRAIN_RISING = _curve(SETTLED.test_acc, train=(0.9,) * 9 + (0.95,))


def test_unconverged_runs_are_listed_and_marked_either_way():
    runs = {
        FT_PRESERVED: {0.05: [SETTLED, SETTLED]},
        FT_RANDOM: {0.05: [TEST_RISING, SETTLED], 0.02: [SETTLED, TRAIN_RISING]},
    }
    found = unconverged_runs(runs, seeds=(3, 4))
    assert [u.text() for u in found] == [
        "finetune random, 2% of labels, seed 4, over its last epoch: train +5.00 points, "
        "test +0.50 points",
        "finetune random, 5% of labels, seed 3, over its last epoch: train +0.00 points, "
        "test +10.00 points",
    ]
    assert rising_cells(found) == {(0.02, "finetune_random"), (0.05, "finetune_random")}
    assert convergence_markdown(found).startswith("These finetune runs had not converged")
    assert convergence_markdown([]).startswith("Every finetune run converged")


def test_a_run_without_an_earlier_test_says_it_was_not_measured():
    # 11 epochs: the window is the last 2; test accuracy was measured only at the end.
    once = _curve((None,) * 10 + (0.5,), train=(0.5,) * 11)
    (found,) = unconverged_runs({FT_TWO_STAGE: {0.1: [once]}}, seeds=(0,))
    assert found.text() == (
        "finetune two-stage, 10% of labels, seed 0, over its last 2 epochs: "
        "train +0.00 points, test not measured before"
    )


def test_the_rising_mark_goes_on_the_cells_it_names():
    table = label_ratio_table(
        {"finetune_random": {0.1: [0.5, 0.6]}, "finetune_two_stage": {0.1: [0.5, 0.6]}},
        {"finetune_random": {0.1: [0.5, 0.6]}, "finetune_two_stage": {0.1: [0.5, 0.6]}},
        ALL_ARMS[1:3],
    )
    md = label_ratio_markdown(table, 10, rising={(0.1, "finetune_two_stage")})
    assert md.endswith("| 10% | 55.00 ± 7.07 | 55.00 ± 7.07 ‡ |")


def test_learning_table_steps_to_ninety_percent():
    # SETTLED reaches 0.72 (90 % of 0.8) at epoch 5, step 15; TEST_RISING reaches 0.63 only
    # at epoch 10, step 30.
    table = learning_table({FT_RANDOM: {0.05: [SETTLED, TEST_RISING]}})
    assert to_csv(table) == (
        "label_ratio,arm,final_mean,steps_to_90_mean,steps_mean,n\n"
        "0.05,finetune_random,75.0,22.5,30.0,2\n"
    )
    assert "| 5% | 22.5 of 30 |" in learning_markdown(table)


def test_learning_band_is_mean_min_and_max_over_seeds_at_the_shared_tested_epochs():
    steps, mean, low, high = band([SETTLED, TEST_RISING])
    assert steps.tolist() == [15.0, 30.0]
    assert mean.tolist() == pytest.approx([69.75, 75.0])
    assert low.tolist() == pytest.approx([60.0, 70.0])
    assert high.tolist() == pytest.approx([79.5, 80.0])


def test_learning_curves_png_is_deterministic():
    runs = {FT_PRESERVED: {0.05: [SETTLED, TEST_RISING]}, FT_RANDOM: {0.05: [SETTLED, SETTLED]}}
    first = learning_curves_png(runs)
    assert first.startswith(b"\x89PNG\r\n\x1a\n")
    assert learning_curves_png(runs) == first


def test_comparisons_with_three_seeds_use_the_t_table():
    # Finetune: preserved - random = 2, 4, 9 points: mean 5, half-width 4.303 * sqrt(13 / 3).
    accs = {
        "finetune_preserved": {0.05: [0.82, 0.80, 0.90]},
        "finetune_random": {0.05: [0.80, 0.76, 0.81]},
        "finetune_two_stage": {0.05: [0.90, 0.90, 0.95]},
    }
    table = comparisons_table(accs, ALL_ARMS[:3])
    vs_random, vs_two_stage = table.itertuples()
    half = 4.303 * math.sqrt(13 / 3)
    assert (vs_random.mean, vs_random.n) == (5.0, 3)
    assert vs_random.low == pytest.approx(5 - half, abs=0.01)
    assert vs_random.high == pytest.approx(5 + half, abs=0.01)
    assert vs_random.verdict == NO_DIFFERENCE
    # preserved - two-stage = -8, -10, -5: the whole interval is below 0.
    assert vs_two_stage.mean == pytest.approx(-23 / 3, abs=0.005)
    assert vs_two_stage.verdict == WORSE
    assert comparisons_metrics(table)["finetune"]["vs_two_stage"]["5%"]["verdict"] == -1


def test_comparisons_leave_out_arms_that_did_not_run_and_one_seed_has_no_interval():
    accs = {"finetune_random": {0.1: [0.5]}, "finetune_two_stage": {0.1: [0.6]}}
    assert comparisons_table(accs, ALL_ARMS[1:3]).empty
    accs = {"linear_preserved": {0.1: [0.7]}, "linear_random": {0.1: [0.5]}}
    table = comparisons_table(accs, (ALL_ARMS[3], ALL_ARMS[5]))
    (row,) = table.itertuples()
    assert (row.stage, row.opponent, row.mean, row.n) == ("linear_eval", "random", 20.0, 1)
    assert pd.isna(row.low) and row.verdict == NO_INTERVAL
    assert difference_text(row) == "+20.00 (no interval: 1 seed)"
    assert comparisons_metrics(table) == {
        "linear_eval": {"vs_random": {"10%": {"mean": 20.0, "n": 1}}}
    }
