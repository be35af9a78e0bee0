"""The report on known metrics: exact tables, markdown, metrics.json, plots, the stage's files
and its failures."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from sswp.config.load import params_from_dict
from sswp.errors import SswpError
from sswp.nas.genotype import derive_genotype
from sswp.pipeline.plan import search_plan
from sswp.report.arms import ALL_ARMS, arms, error_stats, method_name, ratio_key, ratio_label
from sswp.report.build import curve_panels
from sswp.report.compare import compare
from sswp.report.figures import (
    alpha_deviation,
    alpha_heatmap_png,
    curve_stats,
    label_ratio_png,
    training_curves_png,
)
from sswp.report.gather import gather, read_genotype
from sswp.report.learned import not_learned_note
from sswp.report.metrics import headline, metrics_dict
from sswp.report.summary import LARGER_BUDGETS
from sswp.report.tables import (
    VALIDATION_NOTE,
    comparisons_markdown,
    label_ratio_markdown,
    label_ratio_table,
    main_markdown,
    main_table,
    search_cost,
    to_csv,
)
from sswp.report.verdicts import chance_note, comparisons_table, near_chance, still_rising_note
from sswp.stages.report import add_arguments, run

MANIFEST = {
    "dataset": "digits",
    "classes": [str(c) for c in range(10)],
    "num_train": 1437,
    "num_test": 360,
    "image_shape": [16, 16, 3],
}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
OUTPUT_NAMES = {
    "main_table.csv",
    "main_table.md",
    "label_ratio.csv",
    "label_ratio.md",
    "label_ratio.png",
    "training_curves.png",
    "alpha_heatmap.png",
    "budget.csv",
    "budget.md",
    "comparisons.csv",
    "comparisons.md",
    "learning_curves.csv",
    "learning_curves.png",
    "ssl_curves.png",
    "summary.md",
    "metrics.json",
    "headline.json",
    "params.yaml",
    "machine.json",
}

# Two seeds; every accuracy pair is chosen so that mean and sample std are known exactly.
SEEDS = (0, 1)
# The preserved weights' self-supervised budget, the same for both seeds' searches.
SSL_BUDGET = {
    "ssl_steps": 1100,
    "ssl_pairs": 35200,
    "ssl_steps_after_freeze": 700,
    "ssl_pairs_after_freeze": 22400,
}
SEARCHES = [
    {"search_hours": 0.25, "processes": 2, "device": "cuda", "labels_used": 0, **SSL_BUDGET},
    {"search_hours": 0.5, "processes": 2, "device": "cuda", "labels_used": 0, **SSL_BUDGET},
]
TRAIN_ACC = {"final": (0.9, 0.8), "darts_v2": (0.95, 0.93)}
TRAIN_PARAMS_M = {"final": (0.1234, 0.124), "darts_v2": (0.3, 0.3)}
# (stage, init) -> ratio -> per-seed test accuracy
ARM_ACC = {
    ("finetune", "preserved"): {0.1: (0.8, 0.7), 1.0: (0.9, 0.9)},
    ("finetune", "random"): {0.1: (0.6, 0.5), 1.0: (0.88, 0.86)},
    ("finetune", "two_stage"): {0.1: (0.7, 0.7), 1.0: (0.89, 0.87)},
    ("linear_eval", "preserved"): {0.1: (0.5, 0.6), 1.0: (0.6, 0.6)},
    ("linear_eval", "two_stage"): {0.1: (0.4, 0.4), 1.0: (0.5, 0.45)},
    # 12 % at 10 % of labels: within 5 points of the 10 % chance of 10 classes.
    ("linear_eval", "random"): {0.1: (0.12, 0.12), 1.0: (0.35, 0.35)},
}
# Every run's best epoch is this much better than its last, so both columns are checkable.
BEST_GAIN = 0.05
# ...and its validation accuracy a point lower than its test accuracy.
VAL_GAIN = -0.01
NUM_CLASSES = 10
PRETRAIN_HOURS = (0.1, 0.3)
# The two-stage pre-training's steps and pairs per seed: means 366.5 and 11,728, a third of
# the search's 1,100 and 35,200.
PRETRAIN_SSL = ({"ssl_steps": 367, "ssl_pairs": 11744}, {"ssl_steps": 366, "ssl_pairs": 11712})
# The label-free measure (chance ln 63 for batches of 32 pairs; learned at most 3.729): the
# preserved child learned in both seeds and its probe beats the random backbone's, the
# two-stage backbone stayed near chance.
CHANCE = math.log(63)
CHILD_LOSS = (3.2, 3.4)
PRETRAIN_LOSS = (4.0, 4.1)
KEPT_OPS = {
    "kept_op_updates_mean": 150.0,
    "kept_op_updates_min": 100.0,
    "kept_op_updates_max": 200.0,
    "kept_op_lr_updates_mean": 20.0,
}
# Finetune optimiser steps per epoch at each ratio; every finetune runs 10 epochs.
STEPS_PER_EPOCH = {0.1: 3, 1.0: 9}
FINETUNE_EPOCHS = 10
# Finetunes still rising at their end: (init, ratio, seed) -> which accuracy rises.
RISING = {("random", 0.1, 0): "test", ("two_stage", 1.0, 1): "train"}

MAIN_CSV = (
    "method,architecture,test_error_mean,test_error_std,best_error_mean,best_error_std,seeds,"
    "params_m,search_cost,search_cost_unit,labels_used\n"
    '"SSWP-NAS (simclr, final)",final,15.0,7.07,10.0,7.07,2,0.1237,0.75,GPU-hours,0\n'
    "DARTS-V2,darts_v2,6.0,1.41,1.0,1.41,2,0.3,,,\n"
)
MAIN_MD = (
    "| method | test error (%), final epoch | best-epoch test error (%) | seeds | params (M) "
    "| search cost | labels used |\n"
    "|---|---:|---:|---:|---:|---:|---:|\n"
    "| SSWP-NAS (simclr, final) | 15.00 ± 7.07 | 10.00 ± 7.07 | 2 | 0.1237 | 0.75 GPU-hours "
    "| 0 |\n"
    "| DARTS-V2 | 6.00 ± 1.41 | 1.00 ± 1.41 | 2 | 0.3000 | — | — |"
)
LABEL_RATIO_CSV = (
    "label_ratio,arm,mean,std,best_mean,best_std,n,val_mean,val_std\n"
    "0.1,finetune_preserved,75.0,7.07,80.0,7.07,2,74.0,7.07\n"
    "1.0,finetune_preserved,90.0,0.0,95.0,0.0,2,89.0,0.0\n"
    "0.1,finetune_random,55.0,7.07,60.0,7.07,2,54.0,7.07\n"
    "1.0,finetune_random,87.0,1.41,92.0,1.41,2,86.0,1.41\n"
    "0.1,finetune_two_stage,70.0,0.0,75.0,0.0,2,69.0,0.0\n"
    "1.0,finetune_two_stage,88.0,1.41,93.0,1.41,2,87.0,1.41\n"
    "0.1,linear_preserved,55.0,7.07,60.0,7.07,2,54.0,7.07\n"
    "1.0,linear_preserved,60.0,0.0,65.0,0.0,2,59.0,0.0\n"
    "0.1,linear_two_stage,40.0,0.0,45.0,0.0,2,39.0,0.0\n"
    "1.0,linear_two_stage,47.5,3.54,52.5,3.54,2,46.5,3.54\n"
    "0.1,linear_random,12.0,0.0,17.0,0.0,2,11.0,0.0\n"
    "1.0,linear_random,35.0,0.0,40.0,0.0,2,34.0,0.0\n"
)
LABEL_RATIO_MD = (
    "| label ratio | finetune preserved | finetune random | finetune two-stage "
    "| linear eval preserved | linear eval two-stage | linear eval random |\n"
    "|---:|---:|---:|---:|---:|---:|---:|\n"
    "| 10% | 75.00 ± 7.07 | 55.00 ± 7.07 | 70.00 ± 0.00 | 55.00 ± 7.07 | 40.00 ± 0.00 "
    "| 12.00 ± 0.00 † |\n"
    "| 100% | 90.00 ± 0.00 | 87.00 ± 1.41 | 88.00 ± 1.41 | 60.00 ± 0.00 | 47.50 ± 3.54 "
    "| 35.00 ± 0.00 |"
)
METRICS = {
    "main": {
        "final": {
            "test_error_mean": 15.0,
            "test_error_std": 7.07,
            "params_m": 0.1237,
            "search_hours": 0.75,
        },
        "darts_v2": {"test_error_mean": 6.0, "test_error_std": 1.41, "params_m": 0.3},
    },
    "label_ratio": {
        "finetune_preserved": {
            "10%": {"mean": 75.0, "std": 7.07, "val_mean": 74.0, "val_std": 7.07},
            "100%": {"mean": 90.0, "std": 0.0, "val_mean": 89.0, "val_std": 0.0},
        },
        "finetune_random": {
            "10%": {"mean": 55.0, "std": 7.07, "val_mean": 54.0, "val_std": 7.07},
            "100%": {"mean": 87.0, "std": 1.41, "val_mean": 86.0, "val_std": 1.41},
        },
        "finetune_two_stage": {
            "10%": {"mean": 70.0, "std": 0.0, "val_mean": 69.0, "val_std": 0.0},
            "100%": {"mean": 88.0, "std": 1.41, "val_mean": 87.0, "val_std": 1.41},
        },
        "linear_preserved": {
            "10%": {"mean": 55.0, "std": 7.07, "val_mean": 54.0, "val_std": 7.07},
            "100%": {"mean": 60.0, "std": 0.0, "val_mean": 59.0, "val_std": 0.0},
        },
        "linear_two_stage": {
            "10%": {"mean": 40.0, "std": 0.0, "val_mean": 39.0, "val_std": 0.0},
            "100%": {"mean": 47.5, "std": 3.54, "val_mean": 46.5, "val_std": 3.54},
        },
        "linear_random": {
            "10%": {"mean": 12.0, "std": 0.0, "val_mean": 11.0, "val_std": 0.0},
            "100%": {"mean": 35.0, "std": 0.0, "val_mean": 34.0, "val_std": 0.0},
        },
    },
}


def _train_runs(seeds=SEEDS) -> dict[str, list[dict]]:
    return {
        arch: [
            {
                "test_acc": acc[s],
                "best_test_acc": acc[s] + BEST_GAIN,
                "params_m": TRAIN_PARAMS_M[arch][s],
            }
            for s in seeds
        ]
        for arch, acc in TRAIN_ACC.items()
    }


def _arm_accs(seeds=SEEDS, gain: float = 0.0) -> dict[str, dict[float, list[float]]]:
    return {
        arm.key: {
            r: [accs[s] + gain for s in seeds] for r, accs in ARM_ACC[arm.stage, arm.init].items()
        }
        for arm in ALL_ARMS
    }


@pytest.fixture
def main() -> pd.DataFrame:
    return main_table("simclr", _train_runs(), SEARCHES)


@pytest.fixture
def ratios() -> pd.DataFrame:
    return label_ratio_table(
        _arm_accs(),
        _arm_accs(gain=BEST_GAIN),
        arms(("preserved", "random")),
        _arm_accs(gain=VAL_GAIN),
    )


# --- pure tables ---------------------------------------------------------------------------


def test_main_table_exact(main):
    assert to_csv(main) == MAIN_CSV


def test_main_markdown_exact(main):
    assert main_markdown(main, NUM_CLASSES) == MAIN_MD


def test_single_seed_has_no_std(main):
    single = main_table("byol", _train_runs(seeds=(1,)), SEARCHES[1:])
    assert to_csv(single) == (
        "method,architecture,test_error_mean,test_error_std,best_error_mean,best_error_std,"
        "seeds,params_m,search_cost,search_cost_unit,labels_used\n"
        '"SSWP-NAS (byol, final)",final,20.0,,15.0,,1,0.124,1.0,GPU-hours,0\n'
        "DARTS-V2,darts_v2,7.0,,2.0,,1,0.3,,,\n"
    )
    md = main_markdown(single, NUM_CLASSES)
    assert "| SSWP-NAS (byol, final) | 20.00 | 15.00 | 1 |" in md
    assert "±" not in md
    assert metrics_dict(single, label_ratio_table({}, {}, ()))["main"]["final"] == {
        "test_error_mean": 20.0,
        "params_m": 0.124,
        "search_hours": 1.0,
    }


def test_single_seed_label_ratio_has_no_std():
    table = label_ratio_table(
        {"finetune_random": {0.5: [0.8123]}},
        {"finetune_random": {0.5: [0.85]}},
        ALL_ARMS[1:2],
    )
    assert to_csv(table) == (
        "label_ratio,arm,mean,std,best_mean,best_std,n,val_mean,val_std\n"
        "0.5,finetune_random,81.23,,85.0,,1,,\n"
    )
    assert label_ratio_markdown(table, NUM_CLASSES).endswith("| 50% | 81.23 |")
    assert label_ratio_markdown(table, NUM_CLASSES, best=True).endswith("| 50% | 85.00 |")
    assert metrics_dict(main_table("simclr", {}, SEARCHES), table)["label_ratio"] == {
        "finetune_random": {"50%": {"mean": 81.23}}
    }


@pytest.mark.parametrize(
    ("searches", "expected"),
    [
        ([{"search_hours": 1.5, "processes": 1, "device": "cpu"}], (1.5, "CPU-hours")),
        (
            [
                {"search_hours": 1.0, "processes": 4, "device": "cuda"},
                {"search_hours": 2.0, "processes": 1, "device": "cuda"},
            ],
            (3.0, "GPU-hours"),
        ),
        (
            [
                {"search_hours": 0.1, "processes": 3, "device": "cpu"},
                {"search_hours": 0.1, "processes": 1, "device": "cuda"},
            ],
            (0.2, "CPU/GPU-hours (mixed devices)"),
        ),
    ],
)
def test_search_cost_is_device_hours_in_the_measured_unit(searches, expected):
    assert search_cost(searches) == expected


def test_error_is_100_minus_accuracy_with_sample_std():
    assert error_stats([0.8765]) == (12.35, None)
    assert error_stats([0.9, 0.8, 0.85]) == (15.0, 5.0)


def test_method_names():
    assert method_name("lowest_loss", "supervised") == "SSWP-NAS (supervised, lowest_loss)"
    assert method_name("darts_v2", "simclr") == "DARTS-V2"
    assert method_name("pdarts", "simclr") == "P-DARTS"


def test_arms_in_fixed_order_and_only_the_inits_asked_for():
    keys = [a.key for a in arms(("random", "preserved"))]
    assert keys == [
        "finetune_preserved",
        "finetune_random",
        "finetune_two_stage",
        "linear_preserved",
        "linear_two_stage",
        "linear_random",
    ]
    assert [a.label for a in arms(("random",))] == [
        "finetune random",
        "finetune two-stage",
        "linear eval preserved",
        "linear eval two-stage",
        "linear eval random",
    ]


def test_label_ratio_table_exact(ratios):
    assert to_csv(ratios) == LABEL_RATIO_CSV


def test_label_ratio_markdown_exact(ratios):
    assert label_ratio_markdown(ratios, NUM_CLASSES) == LABEL_RATIO_MD


def test_metrics_dict_exact(main, ratios):
    metrics = metrics_dict(main, ratios)
    assert metrics == METRICS
    assert json.loads(json.dumps(metrics, allow_nan=False)) == METRICS


# Preserved minus the other arm, paired by seed, in points. With 2 seeds the interval uses
# t(0.975, 1) = 12.706 times the std of the 2 differences over sqrt(2): at 10 %, finetune
# preserved (80, 70) against two-stage (70, 70) differ by 10 and 0, std 7.07, half-width
# 12.706 * 5 = 63.53; against random (60, 50) by 20 twice: a zero-width interval above 0.
COMPARISONS_CSV = (
    "label_ratio,stage,opponent,mean,low,high,n,verdict\n"
    "0.1,finetune,random,20.0,20.0,20.0,2,better\n"
    "1.0,finetune,random,3.0,-9.71,15.71,2,no difference detected\n"
    "0.1,finetune,two_stage,5.0,-58.53,68.53,2,no difference detected\n"
    "1.0,finetune,two_stage,2.0,-10.71,14.71,2,no difference detected\n"
    "0.1,linear_eval,random,43.0,-20.53,106.53,2,no difference detected\n"
    "1.0,linear_eval,random,25.0,25.0,25.0,2,better\n"
    "0.1,linear_eval,two_stage,15.0,-48.53,78.53,2,no difference detected\n"
    "1.0,linear_eval,two_stage,12.5,-19.27,44.27,2,no difference detected\n"
)
COMPARISONS_MD = (
    "| label ratio | stage | preserved − random | preserved − two-stage |\n"
    "|---:|---|---:|---:|\n"
    "| 10% | finetune | +20.00 [+20.00, +20.00] better "
    "| +5.00 [-58.53, +68.53] no difference detected |\n"
    "| 10% | linear eval | +43.00 [-20.53, +106.53] no difference detected "
    "| +15.00 [-48.53, +78.53] no difference detected |\n"
    "| 100% | finetune | +3.00 [-9.71, +15.71] no difference detected "
    "| +2.00 [-10.71, +14.71] no difference detected |\n"
    "| 100% | linear eval | +25.00 [+25.00, +25.00] better "
    "| +12.50 [-19.27, +44.27] no difference detected |"
)
# Every ratio: the finetuned arms' mean accuracy, then the verdict codes of preserved
# against random and two-stage (1 better, 0 no difference detected, -1 worse).
HEADLINE = {
    "test_error": 15.0,
    "10%": {"pres": 75.0, "rand": 55.0, "two": 70.0, "vs_rand": 1, "vs_two": 0},
    "100%": {"pres": 90.0, "rand": 87.0, "two": 88.0, "vs_rand": 0, "vs_two": 0},
}


@pytest.fixture
def comparisons() -> pd.DataFrame:
    return comparisons_table(_arm_accs(), arms(("preserved", "random")))


def test_comparisons_exact(comparisons):
    assert to_csv(comparisons) == COMPARISONS_CSV
    assert comparisons_markdown(comparisons) == COMPARISONS_MD


def test_headline_is_the_architecture_error_and_the_finetune_verdicts_at_every_ratio(
    main, ratios, comparisons
):
    assert headline(main, ratios, comparisons, "final") == HEADLINE
    assert headline(main, ratios, comparisons, "darts_v2")["test_error"] == 6.0


def test_headline_reads_back_from_the_csv_files(main, ratios, comparisons, tmp_path):
    """The committed-results test rebuilds the headline from the CSVs the report writes."""
    tables = {"main": main, "ratios": ratios, "comparisons": comparisons}
    for name, table in tables.items():
        (tmp_path / f"{name}.csv").write_text(to_csv(table))
    read = {name: pd.read_csv(tmp_path / f"{name}.csv") for name in tables}
    assert headline(read["main"], read["ratios"], read["comparisons"], "final") == HEADLINE


def test_headline_leaves_out_what_did_not_run(main, ratios):
    single = comparisons_table(
        {k: {r: v[:1] for r, v in by.items()} for k, by in _arm_accs().items()},
        arms(("preserved", "random")),
    )
    out = headline(main, ratios, single, "lowest_loss")
    assert "test_error" not in out
    assert out["10%"] == {"pres": 75.0, "rand": 55.0, "two": 70.0}  # one seed: no verdict


@pytest.mark.parametrize(
    ("ratio", "label", "key"),
    [(0.1, "10%", "10%"), (0.025, "2.5%", "2_5%"), (1.0, "100%", "100%"), (0.07, "7%", "7%")],
)
def test_ratio_label_and_dot_free_key(ratio, label, key):
    assert ratio_label(ratio) == label
    assert ratio_key(ratio) == key


def test_curve_stats_mean_and_sample_std_per_epoch():
    epochs, mean, std = curve_stats([[0.5, 0.7, 0.9], [0.7, 0.9]])
    np.testing.assert_array_equal(epochs, [1, 2])
    np.testing.assert_allclose(mean, [60.0, 80.0])
    np.testing.assert_allclose(std, [np.sqrt(200), np.sqrt(200)])
    np.testing.assert_allclose(curve_stats([[0.5]])[2], [0.0])


def test_curve_stats_keep_only_the_epochs_every_seed_evaluated():
    epochs, mean, _ = curve_stats([[None, 0.5, None, 0.9], [0.1, 0.7, None, 0.7]])
    np.testing.assert_array_equal(epochs, [2, 4])
    np.testing.assert_allclose(mean, [60.0, 80.0])


# --- plots ---------------------------------------------------------------------------------


def _alpha_history(epochs: int = 3, cells: int = 3) -> np.ndarray:
    return torch.softmax(torch.randn(epochs, cells, 14, 7), dim=-1).double().numpy()


def _curves() -> dict:
    return {
        "train, all labels": {"A": [[0.1, 0.5, 0.6], [0.2, 0.4, 0.7]]},
        "finetune, 10% of labels": {"B": [[0.3, None, 0.5]], "C": [[0.2, 0.2, 0.3]]},
    }


@pytest.mark.parametrize(
    "render",
    [
        lambda ratios: label_ratio_png(ratios),
        lambda ratios: training_curves_png(_curves()),
        lambda ratios: alpha_heatmap_png(_alpha_history(), seed=0),
    ],
    ids=["label_ratio", "training_curves", "alpha_heatmap"],
)
def test_plots_are_deterministic_pngs(render, ratios):
    torch.manual_seed(0)
    first = render(ratios)
    torch.manual_seed(0)
    assert render(ratios) == first
    assert first.startswith(PNG_SIGNATURE)
    assert len(first) < 1_000_000


def test_alpha_heatmap_colours_are_the_deviation_from_uniform_centred_on_zero():
    history = _alpha_history()
    deviation, limit = alpha_deviation(history)
    np.testing.assert_allclose(deviation, history - 1 / 7)
    assert limit == pytest.approx(np.abs(history - 1 / 7).max())
    # A search that barely moved still fills the scale: the limit follows the data.
    tiny = np.full((2, 1, 14, 7), 1 / 7)
    tiny[1, 0, 3] += np.array([6e-4, -1e-4, -1e-4, -1e-4, -1e-4, -1e-4, -1e-4])
    deviation, limit = alpha_deviation(tiny)
    assert limit == pytest.approx(6e-4)
    assert deviation[0].max() == pytest.approx(0.0, abs=1e-15)
    # Uniform alphas (no arch step yet) still give a valid, centred scale.
    assert alpha_deviation(np.full((1, 1, 14, 7), 1 / 7))[1] > 0


@pytest.mark.parametrize(
    ("accuracy", "classes", "near"),
    [
        (10.0, 10, True),
        (14.99, 10, True),
        (15.01, 10, False),
        (5.5, 10, True),
        (1.0, 100, True),
        (6.5, 100, False),
        (97.0, 10, False),
    ],
)
def test_near_chance_is_within_five_points_of_one_over_classes(accuracy, classes, near):
    assert near_chance(accuracy, classes) is near


def test_main_table_marks_a_network_that_did_not_learn():
    runs = {"final": [{"test_acc": 0.11, "best_test_acc": 0.3, "params_m": 0.1}]}
    md = main_markdown(main_table("simclr", runs, SEARCHES[:1]), NUM_CLASSES)
    assert "| 89.00 † | 70.00 |" in md
    assert "†" not in MAIN_MD


def test_alpha_heatmap_lays_out_many_cells():
    """20 cells (the CIFAR supernet) fit a 5-column grid; the PNG is still small."""
    png = alpha_heatmap_png(_alpha_history(epochs=10, cells=20), seed=3)
    assert png.startswith(PNG_SIGNATURE)
    assert len(png) < 1_000_000


# --- the stage, end to end -----------------------------------------------------------------


def _write(path: str | Path, data) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def _history(acc: float, steps_per_epoch: int = 5, rising: str | None = None) -> list[dict]:
    """10 epochs, tested at epochs 5 and 10. Test accuracy at epoch 5 is half a point below
    the final `acc` (so 90 % of it is reached there), or 10 points below when the test
    accuracy is `rising`; train accuracy is 0.9, or gains 2 points in the last epoch."""
    history = []
    for epoch in range(1, FINETUNE_EPOCHS + 1):
        train = 0.92 if rising == "train" and epoch == FINETUNE_EPOCHS else 0.9
        entry = {
            "step": epoch * steps_per_epoch,
            "train_loss": 1.0 - train,
            "train_acc": train,
            "lr": 0.1,
        }
        if epoch % 5 == 0:
            test = acc if epoch == FINETUNE_EPOCHS else acc - (0.1 if rising == "test" else 0.005)
            entry |= {"test_loss": 1.0 - test, "test_acc": test, "val_acc": test}
        history.append(entry)
    return history


@pytest.fixture
def params(tiny_config, merge_config):
    """Ratios and inits deliberately out of order, to check that outputs are sorted."""
    config = merge_config(
        tiny_config,
        {
            "seeds": list(SEEDS),
            "search": {"objective": "simclr"},
            "train": {"architectures": ["final"], "references": ["darts_v2"]},
            "finetune": {
                "architecture": "final",
                "label_ratios": [1.0, 0.1],
                "inits": ["random", "preserved"],
            },
        },
    )
    return params_from_dict(config)


def _ssl_history(steps: int, final_loss: float) -> list[dict]:
    """Two epochs of a self-supervised run: near chance after the first, `final_loss` last."""
    return [
        {"ssl_steps": steps // 2, "val_ssl_loss": 4.1, "val_ssl_acc": 0.02, "train_loss": 4.1},
        {"ssl_steps": steps, "val_ssl_loss": final_loss, "val_ssl_acc": 0.3, "train_loss": 3.5},
    ]


@pytest.fixture
def run_dir(tmp_path, monkeypatch) -> Path:
    """Every input the params above ask for, in tmp_path (the cwd), plus stale runs to ignore."""
    monkeypatch.chdir(tmp_path)
    model = {"test_loss": 0.5, "train_acc": 0.95, "train_hours": 0.02}
    for s in SEEDS:
        numbers = {k: v for k, v in SEARCHES[s].items() if k != "device"}  # a label: info.json
        numbers |= {"supernet_params_m": 0.5, "val_ssl_chance": CHANCE, "val_ssl_batch": 32}
        _write(f"metrics/search/seed-{s}.json", numbers)
        final = {"child_val_ssl_loss": CHILD_LOSS[s], "child_val_ssl_acc": 0.2, **KEPT_OPS}
        info = {"device": SEARCHES[s]["device"], "objective": "simclr", "seed": s, "final": final}
        _write(f"artifacts/search/seed-{s}/info.json", info)
        _write(f"artifacts/search/seed-{s}/history.json", _ssl_history(1100, 3.0))
        steps = PRETRAIN_SSL[s]["ssl_steps"]
        pretrain = {"pretrain_hours": PRETRAIN_HOURS[s], "seed": s, **PRETRAIN_SSL[s]}
        pretrain |= {"val_ssl_loss": PRETRAIN_LOSS[s], "val_ssl_acc": 0.02}
        pretrain |= {"val_ssl_chance": CHANCE, "op_updates": steps, "op_lr_updates": 50.0}
        _write(f"metrics/pretrain/seed-{s}.json", pretrain)
        _write(f"artifacts/pretrain/seed-{s}/history.json", _ssl_history(steps, PRETRAIN_LOSS[s]))
        for arch, accs in TRAIN_ACC.items():
            metrics = {
                **model,
                "test_acc": accs[s],
                "best_test_acc": accs[s] + BEST_GAIN,
                "params_m": TRAIN_PARAMS_M[arch][s],
            }
            _write(f"metrics/train/{arch}-seed-{s}.json", {**metrics, "architecture": arch})
            _write(f"artifacts/train/{arch}-seed-{s}/history.json", _history(accs[s]))
        for (stage_name, init), by_ratio in ARM_ACC.items():
            for ratio, accs in by_ratio.items():
                tag = f"{init}-{ratio}-seed-{s}"
                metrics = {
                    "test_acc": accs[s],
                    "best_test_acc": accs[s] + BEST_GAIN,
                    "val_acc": accs[s] + VAL_GAIN,
                    "init": init,
                    "label_ratio": ratio,
                    "seed": s,
                }
                if stage_name == "finetune":
                    steps = STEPS_PER_EPOCH[ratio]
                    metrics |= {**model, "params_m": 0.12, "architecture": "final"}
                    metrics["steps"] = steps * FINETUNE_EPOCHS
                    history = _history(accs[s], steps, RISING.get((init, ratio, s)))
                    _write(f"artifacts/finetune/{tag}/history.json", history)
                _write(f"metrics/{stage_name}/{tag}.json", metrics)
        derive_genotype([torch.randn(14, 7) for _ in range(3)]).save(
            f"artifacts/search/seed-{s}/final/genotype.json"
        )
    torch.save(
        torch.from_numpy(_alpha_history()).float(), "artifacts/search/seed-0/alpha_history.pt"
    )
    _write("data/prepared/manifest.json", MANIFEST)
    # Runs params does not ask for: another ratio, another seed. They must not be read.
    _write("metrics/finetune/preserved-0.5-seed-0.json", {"test_acc": 0.01})
    _write("metrics/train/final-seed-2.json", {"test_acc": 0.01})
    return tmp_path


def _run(params) -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    run(params, parser.parse_args([]))


def _results() -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in Path("results").iterdir()}


# The label-ratio table of the stage's run: random at 10 % (seed 0, test accuracy) and
# two-stage at 100 % (seed 1, train accuracy) still rose at their end.
LABEL_RATIO_MD_RISING = LABEL_RATIO_MD.replace(
    "| 55.00 ± 7.07 | 70.00", "| 55.00 ± 7.07 ‡ | 70.00"
).replace("| 88.00 ± 1.41 |", "| 88.00 ± 1.41 ‡ |")
# ...and the two-stage arm's self-supervision did not learn: its columns are marked.
LABEL_RATIO_MD_STAGE = (
    LABEL_RATIO_MD_RISING.replace("| 70.00 ± 0.00 |", "| 70.00 ± 0.00 § |")
    .replace("| 40.00 ± 0.00 |", "| 40.00 ± 0.00 § |")
    .replace("| 88.00 ± 1.41 ‡ |", "| 88.00 ± 1.41 ‡ § |")
    .replace("| 47.50 ± 3.54 |", "| 47.50 ± 3.54 § |")
)
# Means over the 2 seeds: the search's budget, the pre-training's (367 and 366 steps), and
# 3 or 9 finetune steps an epoch for 10 epochs.
BUDGET_CSV = (
    "arm,ssl_steps,ssl_pairs,ssl_steps_after_freeze,ssl_pairs_after_freeze,op_updates_mean,"
    "op_updates_min,op_updates_max,op_lr_updates_mean,val_ssl_loss,val_ssl_acc,"
    "finetune_steps_10%,finetune_steps_100%\n"
    "preserved,1100.0,35200.0,700.0,22400.0,150.0,100.0,200.0,20.0,3.3,0.2,30.0,90.0\n"
    "two_stage,366.5,11728.0,,,366.5,366.0,367.0,50.0,4.05,0.02,30.0,90.0\n"
    "random,0.0,0.0,,,0.0,0.0,0.0,0.0,,,30.0,90.0\n"
)
BUDGET_SENTENCE = (
    "Two-stage got 0.33 times the preserved weights' SimCLR steps (366.5 against 1,100) and "
    "0.33 times their image pairs (11,728 against 35,200)."
)
# Every converged run meets 90 % of its final accuracy at epoch 5 (steps 15 or 45); random
# seed 0 at 10 % only at its end (30), so that arm's mean is 22.5.
LEARNING_CSV = (
    "label_ratio,arm,final_mean,steps_to_90_mean,steps_mean,n\n"
    "0.1,finetune_preserved,75.0,15.0,30.0,2\n"
    "1.0,finetune_preserved,90.0,45.0,90.0,2\n"
    "0.1,finetune_random,55.0,22.5,30.0,2\n"
    "1.0,finetune_random,87.0,45.0,90.0,2\n"
    "0.1,finetune_two_stage,70.0,15.0,30.0,2\n"
    "1.0,finetune_two_stage,88.0,45.0,90.0,2\n"
)
UNCONVERGED = [
    "- finetune random, 10% of labels, seed 0, over its last epoch: train +0.00 points, "
    "test +10.00 points",
    "- finetune two-stage, 100% of labels, seed 1, over its last epoch: train +2.00 points, "
    "test +0.50 points",
]


def test_stage_writes_every_output(params, run_dir):
    _run(params)
    assert {p.name for p in Path("results").iterdir()} == OUTPUT_NAMES
    assert Path("results/main_table.csv").read_text() == MAIN_CSV
    assert Path("results/main_table.md").read_text() == MAIN_MD + "\n"
    assert Path("results/label_ratio.csv").read_text() == LABEL_RATIO_CSV
    label_ratio_md = Path("results/label_ratio.md").read_text()
    assert LABEL_RATIO_MD_STAGE in label_ratio_md
    assert not_learned_note() in label_ratio_md
    assert chance_note(NUM_CLASSES) in label_ratio_md
    assert still_rising_note() in label_ratio_md
    validation = label_ratio_md.split(f"Validation accuracy (%), {VALIDATION_NOTE}:")[1]
    assert "| 10% | 74.00 ± 7.07 | 54.00 ± 7.07 ‡ | 69.00 ± 0.00 § |" in validation
    metrics = json.loads(Path("results/metrics.json").read_text())
    assert {k: metrics[k] for k in METRICS} == METRICS
    assert metrics["comparisons"]["finetune"]["vs_random"]["10%"] == {
        "mean": 20.0,
        "low": 20.0,
        "high": 20.0,
        "n": 2,
        "verdict": 1,
    }
    assert metrics["budget"]["two_stage"] == {
        "ssl_steps": 366.5,
        "ssl_pairs": 11728.0,
        "op_updates_mean": 366.5,
        "op_updates_min": 366.0,
        "op_updates_max": 367.0,
        "op_lr_updates_mean": 50.0,
        "val_ssl_loss": 4.05,
        "val_ssl_acc": 0.02,
        "finetune_steps_10%": 30.0,
        "finetune_steps_100%": 90.0,
    }
    assert metrics["ssl"] == {
        "search": {"val_ssl_loss": 3.0, "chance": round(CHANCE, 4), "learned": 1},
        "preserved": {"val_ssl_loss": 3.3, "chance": round(CHANCE, 4), "learned": 1},
        "two_stage": {"val_ssl_loss": 4.05, "chance": round(CHANCE, 4), "learned": 0},
    }
    assert metrics["learning"]["finetune_random"]["10%"] == {
        "steps_to_90": 22.5,
        "steps": 30.0,
        "not_converged": 1,
    }
    learned = {"learned": {"pres": 1, "two": 0}}
    assert json.loads(Path("results/headline.json").read_text()) == {**HEADLINE, **learned}
    assert Path("results/comparisons.csv").read_text() == COMPARISONS_CSV
    assert Path("results/comparisons.md").read_text().startswith(COMPARISONS_MD + "\n\n")
    assert Path("results/budget.csv").read_text() == BUDGET_CSV
    budget_md = Path("results/budget.md").read_text()
    assert (
        "| preserved | 1,100 | 35,200 | 700 | 22,400 | 150 (100–200) | 20.0 | 3.300 |" in budget_md
    )
    assert "| two-stage | 366.5 | 11,728 | — | — | 366.5 (366–367) | 50.0 | 4.050 | 0.020 |" in (
        budget_md
    )
    assert budget_md.endswith(BUDGET_SENTENCE + "\n")
    assert Path("results/learning_curves.csv").read_text() == LEARNING_CSV
    for name in (
        "label_ratio",
        "training_curves",
        "alpha_heatmap",
        "learning_curves",
        "ssl_curves",
    ):
        assert Path("results", f"{name}.png").read_bytes().startswith(PNG_SIGNATURE)


def test_stage_is_deterministic(params, run_dir):
    _run(params)
    first = _results()
    _run(params)
    assert _results() == first


def test_summary_has_run_facts_genotypes_tables_and_plots(params, run_dir):
    _run(params)
    text = Path("results/summary.md").read_text()
    genotypes = [f"seed {s}: {read_genotype(search_plan(s), 'final').short()}" for s in SEEDS]
    assert text.startswith("# SSWP-NAS report: digits\n\n## Scale of this run\n\n- Data: ")
    assert "- Data: digits, 10 classes, 1437 training and 360 test images of 16x16 pixels\n" in text
    assert "- Network: 3 cells, 2 initial channels, " in text
    assert (
        "- Search: 4 epochs (phases: warmup 0.25, search 0.25, prune 0.25, stabilise 0.25)" in text
    )
    assert "With 2 seeds, every ± (sample std over seeds) is only indicative" in text
    assert chance_note(NUM_CLASSES) in text
    assert "- Seeds: 2; each seed draws its own labelled subset, nested across label ratios" in text
    assert "every backbone (preserved, two-stage and random) has its BN statistics" in text
    assert (
        "- Budgets: preserved 1,100 SimCLR steps (35,200 image pairs), two-stage 366.5 SimCLR "
        "steps (11,728 image pairs), random 0; then finetune steps 30 at 10%, 90 at 100% "
        "(means over seeds)\n" in text
    )
    assert "Validation split" not in text  # the manifest does not say
    # The verdicts come first, right after the scale of the run, then the budgets.
    untested = (
        "**This run does not test the paper's claim for two-stage pre-training**: its "
        "self-supervised backbone did not learn (its held-out loss is not 10 % below chance "
        "(4.143) in 2 of 2 seeds (highest 4.100)).\n\n"
    )
    verdicts = text.index(
        "## Does weight preservation help?\n\n"
        + untested
        + LARGER_BUDGETS
        + "\n\n"
        + COMPARISONS_MD
    )
    assert "claim for the preserved weights" not in text
    learned = text.index("## Did self-supervision learn?")
    assert verdicts < learned < text.index(BUDGET_SENTENCE)
    for row in (
        "| search: the supernet on the path it keeps, at the search's end | 3.000, 3.000 | 30.0 "
        "| 4.143 | yes |",
        "| preserved: the derived child (8 edges a cell), the search's head | 3.200, 3.400 "
        "| 20.0 | 4.143 | yes |",
        "| two-stage: the child at the end of its pre-training | 4.000, 4.100 | 2.0 | 4.143 "
        "| no § |",
    ):
        assert row in text
    assert "](ssl_curves.png)" in text
    assert text.index("## Scale of this run") < verdicts < text.index(BUDGET_SENTENCE)
    assert BUDGET_SENTENCE in text and text.index(BUDGET_SENTENCE) < text.index("## Search\n")
    assert "\n".join(UNCONVERGED) in text
    assert still_rising_note() in text
    assert "| 10% | 15 of 30 | 22.5 of 30 | 15 of 30 |" in text
    assert "](learning_curves.png)" in text
    assert "- Search objective: simclr\n" in text
    assert "- Seeds: 0, 1\n" in text
    assert "- Search cost: 0.75 GPU-hours per search (mean over seeds), 0 labels used\n" in text
    assert "- Two-stage baseline pre-training: 0.20 hours per seed (mean)\n" in text
    assert "## Genotypes (`final` snapshot)\n\n```text\n" + "\n".join(genotypes) + "\n```" in text
    assert MAIN_MD in text
    assert LABEL_RATIO_MD_STAGE in text
    for png in ("label_ratio.png", "training_curves.png", "alpha_heatmap.png"):
        assert f"]({png})" in text


def test_params_copy_loads_back_as_the_same_params(params, run_dir):
    _run(params)
    text = Path("results/params.yaml").read_text()
    raw = yaml.safe_load(text)
    assert list(raw) == sorted(raw)
    assert params_from_dict(raw) == params


def test_training_curve_panels(params, run_dir):
    panels = curve_panels(params, gather(params))
    assert list(panels) == [
        "train, all labels",
        "finetune, 10% of labels",
        "finetune, 100% of labels",
    ]
    assert list(panels["train, all labels"]) == ["SSWP-NAS (simclr, final)", "DARTS-V2"]
    tested = [None] * 4 + [0.945] + [None] * 4 + [0.95]
    assert panels["train, all labels"]["DARTS-V2"][0] == tested
    assert list(panels["finetune, 10% of labels"]) == [
        "finetune preserved",
        "finetune random",
        "finetune two-stage",
    ]
    random_seed_1 = panels["finetune, 10% of labels"]["finetune random"][1]
    assert [a for a in random_seed_1 if a is not None] == [0.495, 0.5]


@pytest.mark.parametrize(
    ("missing", "command"),
    [
        ("metrics/search/seed-1.json", "sswp search --seed 1"),
        ("metrics/train/darts_v2-seed-0.json", "sswp train --seed 0 --architecture darts_v2"),
        ("artifacts/train/final-seed-1/history.json", "sswp train --seed 1 --architecture final"),
        ("metrics/pretrain/seed-0.json", "sswp pretrain --seed 0"),
        (
            "metrics/finetune/random-0.1-seed-1.json",
            "sswp finetune --seed 1 --init random --ratio 0.1",
        ),
        (
            "artifacts/finetune/two_stage-1.0-seed-0/history.json",
            "sswp finetune --seed 0 --init two_stage --ratio 1.0",
        ),
        ("metrics/linear_eval/two_stage-0.1-seed-1.json", "sswp linear_eval --seed 1 --ratio 0.1"),
        ("artifacts/search/seed-1/final/genotype.json", "sswp search --seed 1"),
        ("artifacts/search/seed-0/alpha_history.pt", "sswp search --seed 0"),
    ],
)
def test_missing_input_names_file_and_command_and_writes_nothing(params, run_dir, missing, command):
    for name in OUTPUT_NAMES:
        _write(Path("results", name), {"from": "an earlier run"})
    before = _results()
    Path(missing).unlink()
    with pytest.raises(SswpError) as err:
        _run(params)
    assert str(err.value) == f"{missing} not found; run `{command}` first"
    assert _results() == before


def test_missing_input_on_a_fresh_run_creates_no_results(params, run_dir):
    Path("metrics/linear_eval/preserved-1.0-seed-0.json").unlink()
    with pytest.raises(SswpError, match="linear_eval/preserved-1.0-seed-0.json not found"):
        _run(params)
    assert not Path("results").exists()


@pytest.mark.parametrize(
    ("path", "content", "message"),
    [
        (
            "metrics/search/seed-0.json",
            "{not json",
            r"^metrics/search/seed-0.json is not valid JSON \(.*\); rerun `sswp search --seed 0`$",
        ),
        (
            "metrics/train/final-seed-1.json",
            json.dumps({"params_m": 0.1}),
            r"^metrics/train/final-seed-1.json lacks test_acc, best_test_acc; "
            r"rerun `sswp train --seed 1 --architecture final`$",
        ),
        (
            "metrics/finetune/preserved-0.1-seed-0.json",
            json.dumps({"test_acc": 80.0, "best_test_acc": 0.8, "val_acc": 0.8, "steps": 9}),
            r"^metrics/finetune/preserved-0.1-seed-0.json: test_acc = 80.0 is not a number "
            r"in \[0, 1\]; rerun `sswp finetune --seed 0 --init preserved --ratio 0.1`$",
        ),
        (
            "artifacts/search/seed-1/info.json",
            json.dumps({"device": "tpu"}),
            r"^artifacts/search/seed-1/info.json: device = 'tpu' is not 'cuda' or 'cpu'; ",
        ),
        (
            "metrics/search/seed-0.json",
            json.dumps({**SEARCHES[0], "labels_used": -1}),
            r"^metrics/search/seed-0.json: labels_used = -1 is not a non-negative integer; ",
        ),
        (
            "artifacts/search/seed-0/info.json",
            json.dumps({"device": ["cpu"]}),
            r"^artifacts/search/seed-0/info.json: device = \['cpu'\] is not 'cuda' or 'cpu'; ",
        ),
        (
            "metrics/linear_eval/preserved-1.0-seed-1.json",
            "[]",
            r"^metrics/linear_eval/preserved-1.0-seed-1.json is not a JSON object; ",
        ),
        (
            "artifacts/finetune/random-1.0-seed-0/history.json",
            json.dumps([{"test_loss": 0.1}]),
            r"^artifacts/finetune/random-1.0-seed-0/history.json: epoch 1 has no train_acc in "
            r"\[0, 1\]; rerun `sswp finetune --seed 0 --init random --ratio 1.0`$",
        ),
        (
            "artifacts/finetune/preserved-0.1-seed-1/history.json",
            json.dumps([{"train_acc": 0.5, "test_acc": 0.5}]),
            r"^artifacts/finetune/preserved-0.1-seed-1/history.json: its epochs lack a "
            r"non-decreasing step count \(cumulative steps\); rerun `sswp finetune --seed 1",
        ),
        (
            "artifacts/train/darts_v2-seed-1/history.json",
            json.dumps([{"train_acc": 0.5, "test_acc": 0.5}, {"train_acc": 0.6}]),
            r"^artifacts/train/darts_v2-seed-1/history.json: the last epoch \(2\) has no "
            r"test_acc; rerun `sswp train --seed 1 --architecture darts_v2`$",
        ),
        (
            "metrics/search/seed-1.json",
            json.dumps({k: v for k, v in SEARCHES[1].items() if k != "ssl_pairs_after_freeze"}),
            r"^metrics/search/seed-1.json lacks ssl_pairs_after_freeze; "
            r"rerun `sswp search --seed 1`$",
        ),
        (
            "metrics/pretrain/seed-0.json",
            json.dumps({"pretrain_hours": 0.1, "ssl_steps": 3.5, "ssl_pairs": 7}),
            r"^metrics/pretrain/seed-0.json: ssl_steps = 3.5 is not a non-negative integer; ",
        ),
        (
            "metrics/linear_eval/random-0.1-seed-0.json",
            json.dumps({"test_acc": 0.5, "best_test_acc": 0.5}),
            r"^metrics/linear_eval/random-0.1-seed-0.json lacks val_acc; "
            r"rerun `sswp linear_eval --seed 0 --ratio 0\.1`$",
        ),
    ],
)
def test_malformed_input_is_one_line_error(params, run_dir, path, content, message):
    Path(path).write_text(content)
    with pytest.raises(SswpError, match=message) as err:
        _run(params)
    assert "\n" not in str(err.value)
    assert not Path("results").exists()


@pytest.mark.parametrize(
    ("alpha", "got"),
    [
        (torch.zeros(3, 3, 14, 6), r"\(3, 3, 14, 6\)"),
        ({"alpha": 1}, "dict"),
        (torch.zeros(0, 3, 14, 7), r"\(0, 3, 14, 7\)"),
    ],
)
def test_alpha_history_of_wrong_shape_is_rejected(params, run_dir, alpha, got):
    torch.save(alpha, "artifacts/search/seed-0/alpha_history.pt")
    with pytest.raises(SswpError, match=rf"should be a tensor \(epochs, cells, 14, 7\), got {got}"):
        _run(params)


def test_unreadable_alpha_history_is_rejected(params, run_dir):
    Path("artifacts/search/seed-0/alpha_history.pt").write_bytes(b"not a tensor")
    with pytest.raises(SswpError, match=r"alpha_history.pt is not a readable tensor .*seed 0`$"):
        _run(params)


def test_compare_reads_what_the_report_writes(params, run_dir):
    _run(params)
    text = compare(Path("results"), run_dir).text
    assert "Params: identical\n" in text
    rows = {line.split()[0]: line.split()[1:] for line in text.splitlines() if "  main." in line}
    assert rows["main.darts_v2.test_error_mean"] == ["6", "6", "+0"]
    assert rows["main.final.search_hours"] == ["0.75", "0.75", "+0"]


def test_summary_gives_the_validation_split_that_prepare_records(params, run_dir):
    _write("data/prepared/manifest.json", MANIFEST | {"num_validation": 143})
    _run(params)
    text = Path("results/summary.md").read_text()
    assert "- Validation split: 143 training images with their labels, where recipes" in text


def test_one_seed_gives_differences_without_intervals_or_verdict_codes(params, run_dir):
    one_seed = dataclasses.replace(params, seeds=(0,), seed=0)
    _run(one_seed)
    comparisons = Path("results/comparisons.md").read_text()
    assert "| 10% | finetune | +20.00 (no interval: 1 seed) | +10.00 (no interval: 1 seed) |" in (
        comparisons
    )
    assert json.loads(Path("results/headline.json").read_text())["10%"] == {
        "pres": 80.0,
        "rand": 60.0,
        "two": 70.0,
    }
    assert "With 1 seed, every ±" in Path("results/summary.md").read_text()
