"""The fairness rules and the verdicts: which accuracies sit near chance, which finetunes
had not converged, and the paired differences of the preserved weights against each
other arm with their intervals."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from sswp.pipeline.contract import TWO_STAGE
from sswp.report.arms import PRESERVED, RANDOM, Arm, ratio_key, ratio_label
from sswp.report.curves import RISE_POINTS, Curve, converged, end_rise, end_window
from sswp.report.stats import (
    VERDICT_CODES,
    paired_difference,
)

# An accuracy within this many points of chance says the run did not learn enough to compare.
CHANCE_MARGIN = 5.0

NEAR_CHANCE = "†"

# An arm with a finetune still rising at its end (see sswp.curves): not converged.
STILL_RISING = "‡"


def chance_percent(num_classes: int) -> float:
    """Test accuracy (%) of guessing one class: the floor every arm must clear."""
    return 100.0 / num_classes


def near_chance(accuracy: float, num_classes: int) -> bool:
    """Whether an accuracy (%) is within CHANCE_MARGIN points of chance."""
    return abs(accuracy - chance_percent(num_classes)) <= CHANCE_MARGIN


def chance_note(num_classes: int) -> str:
    """The footnote that explains the near-chance mark."""
    return (
        f"{NEAR_CHANCE} within {CHANCE_MARGIN:g} points of chance "
        f"({chance_percent(num_classes):.1f} % accuracy): not trained enough to compare."
    )


def still_rising_note() -> str:
    """The footnote that explains the not-converged mark."""
    return (
        f"{STILL_RISING} still rising: not converged. In at least one seed, train or test "
        f"accuracy gained more than {RISE_POINTS:g} point over the last 10 % of the epochs."
    )


# preserved minus each of these, under a dot-free key for metrics.json and the headline.
OPPONENTS = {RANDOM: "vs_random", TWO_STAGE: "vs_two_stage"}

COMPARISON_COLUMNS = ("label_ratio", "stage", "opponent", "mean", "low", "high", "n", "verdict")

STAGES = ("finetune", "linear_eval")


@dataclass(frozen=True)
class Unconverged:
    """A finetune run whose train or test accuracy still rose at its end."""

    arm: Arm
    ratio: float
    seed: int
    train_rise: float | None
    test_rise: float | None
    window: int

    def text(self) -> str:
        """`finetune random, 2% of labels, seed 0, over its last 4 epochs: train +0.40
        points, test +3.10 points`."""

        def rise(value: float | None) -> str:
            return "not measured before" if value is None else f"{value:+.2f} points"

        window = "epoch" if self.window == 1 else f"{self.window} epochs"
        return (
            f"{self.arm.label}, {ratio_label(self.ratio)} of labels, seed {self.seed}, "
            f"over its last {window}: train {rise(self.train_rise)}, test {rise(self.test_rise)}"
        )


def unconverged_runs(
    runs: Mapping[Arm, Mapping[float, Sequence[Curve]]], seeds: Sequence[int]
) -> list[Unconverged]:
    """Every finetune run (arm, ratio ascending, seed) that had not converged."""
    out = []
    for arm, by_ratio in runs.items():
        for ratio in sorted(by_ratio):
            for seed, curve in zip(seeds, by_ratio[ratio], strict=True):
                if not converged(curve):
                    out.append(
                        Unconverged(
                            arm,
                            ratio,
                            seed,
                            end_rise(curve.train_acc),
                            end_rise(curve.test_acc),
                            end_window(curve.epochs),
                        )
                    )
    return out


def rising_cells(unconverged: Sequence[Unconverged]) -> frozenset[tuple[float, str]]:
    """The (ratio, arm key) cells of the label-ratio tables that get the ‡ mark."""
    return frozenset((float(u.ratio), u.arm.key) for u in unconverged)


def comparisons_table(
    accs: Mapping[str, Mapping[float, Sequence[float]]], arm_order: Sequence[Arm]
) -> pd.DataFrame:
    """preserved minus random and minus two-stage (`opponent`), per ratio, finetuned then probed.

    `accs[arm.key][ratio]` are per-seed accuracy fractions in seed order, which pairs them.
    A comparison whose arms did not both run is left out.
    """
    by_stage = {(a.stage, a.init): a for a in arm_order}
    rows = []
    for stage in STAGES:
        if (stage, PRESERVED) not in by_stage:
            continue
        ours = accs[by_stage[stage, PRESERVED].key]
        for opponent in OPPONENTS:
            if (stage, opponent) not in by_stage:
                continue
            theirs = accs[by_stage[stage, opponent].key]
            for ratio in sorted(ours):
                diff = paired_difference(
                    [100 * a for a in ours[ratio]], [100 * b for b in theirs[ratio]]
                )
                rows.append(
                    {
                        "label_ratio": float(ratio),
                        "stage": stage,
                        "opponent": opponent,
                        "mean": round(diff.mean, 2),
                        "low": None if diff.low is None else round(diff.low, 2),
                        "high": None if diff.high is None else round(diff.high, 2),
                        "n": diff.n,
                        "verdict": diff.verdict,
                    }
                )
    table = pd.DataFrame(rows, columns=list(COMPARISON_COLUMNS))
    return table.astype({"label_ratio": float, "mean": float, "low": float, "high": float})


def comparisons_metrics(table: pd.DataFrame) -> dict[str, Any]:
    """metrics.json's `comparisons.<stage>.<vs_arm>.<ratio>`: numbers only, the verdict as
    VERDICT_CODES (1 better, 0 no difference detected, -1 worse; none for one seed)."""
    out: dict[str, Any] = {}
    for r in table.itertuples():
        opponent = OPPONENTS[r.opponent]
        entry: dict[str, float] = {"mean": float(r.mean), "n": int(r.n)}
        if not pd.isna(r.low):
            entry |= {"low": float(r.low), "high": float(r.high)}
            entry["verdict"] = VERDICT_CODES[r.verdict]
        out.setdefault(r.stage, {}).setdefault(opponent, {})[ratio_key(r.label_ratio)] = entry
    return out
