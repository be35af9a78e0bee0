"""The report's answer to its question, and how fair the trial was: the pre-training and
finetune budgets of every arm, which finetunes had not converged, how soon each arm got near
its final accuracy, and the paired differences with their verdicts.

Pure functions on metric dicts and curves, like sswp.report, whose table helpers they share.
Budgets are means over seeds; differences are in accuracy points (percent).
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from sswp import curves as cv
from sswp import report as rep
from sswp import stats

PRESERVED, RANDOM, TWO_STAGE = "preserved", "random", "two_stage"
BUDGET_ARMS = (PRESERVED, TWO_STAGE, RANDOM)
SSL_KEYS = ("ssl_steps", "ssl_pairs", "ssl_steps_after_freeze", "ssl_pairs_after_freeze")
# preserved minus each of these, under a dot-free key for metrics.json and the headline.
OPPONENTS = {RANDOM: "vs_random", TWO_STAGE: "vs_two_stage"}
COMPARISON_COLUMNS = ("label_ratio", "stage", "opponent", "mean", "low", "high", "n", "verdict")
STAGES = ("finetune", "linear_eval")
LEARNING_COLUMNS = ("label_ratio", "arm", "final_mean", "steps_to_90_mean", "steps_mean", "n")
BAND = "the band spans the lowest to the highest seed"
OBJECTIVE_NAMES = {"simclr": "SimCLR", "byol": "BYOL", "supervised": "supervised"}


def objective_name(objective: str) -> str:
    """How the budget tables name the search objective's steps: `SimCLR steps`."""
    return OBJECTIVE_NAMES.get(objective, objective)


def _mean(values: Sequence[float]) -> float:
    """A mean over seeds of counts, to one decimal: seeds may differ by a step."""
    return round(statistics.fmean(values), 1)


def finetune_steps_column(ratio: float) -> str:
    """budget.csv's column of one ratio's finetune steps, e.g. `finetune_steps_2%`."""
    return f"finetune_steps_{rep.ratio_key(ratio)}"


def budget_table(
    searches: Sequence[Mapping[str, Any]],
    pretrains: Sequence[Mapping[str, Any]],
    finetune_steps: Mapping[str, Mapping[float, Sequence[int]]],
) -> pd.DataFrame:
    """One row per arm: self-supervised weight steps and image pairs before finetuning (total,
    and after the search's last cell froze), then mean finetune steps per label ratio.

    The preserved weights' budget is the search's, the two-stage arm's its pre-training's,
    and the random init has none. `finetune_steps[init][ratio]` are per-seed step counts;
    an init that was not finetuned leaves its cells empty.
    """
    ssl = {
        PRESERVED: {key: _mean([s[key] for s in searches]) for key in SSL_KEYS},
        TWO_STAGE: {key: _mean([p[key] for p in pretrains]) for key in SSL_KEYS[:2]},
        RANDOM: {"ssl_steps": 0.0, "ssl_pairs": 0.0},
    }
    ratios = sorted({r for by_ratio in finetune_steps.values() for r in by_ratio})
    rows = []
    for arm in BUDGET_ARMS:
        row: dict[str, Any] = {"arm": arm, **ssl[arm]}
        for ratio in ratios:
            steps = finetune_steps.get(arm, {}).get(ratio)
            row[finetune_steps_column(ratio)] = _mean(steps) if steps else None
        rows.append(row)
    columns = ["arm", *SSL_KEYS, *(finetune_steps_column(r) for r in ratios)]
    return pd.DataFrame(rows, columns=columns).astype({c: float for c in columns[1:]})


def count_text(value: Any) -> str:
    """A step or pair count with thousands separators: `1,100`, a mean over seeds `366.5`."""
    if value is None or pd.isna(value):
        return rep.MISSING
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def budget_markdown(table: pd.DataFrame, objective: str) -> str:
    """The budget table as markdown: empty cells (no freezing, no finetune) show `—`."""
    name = objective_name(objective)
    ratios = [c for c in table.columns if c.startswith("finetune_steps_")]
    ratio_names = [c.removeprefix("finetune_steps_").replace("_", ".") for c in ratios]
    header = [
        "arm",
        f"{name} steps",
        "image pairs",
        f"{name} steps after the last cell froze",
        "image pairs after the last cell froze",
        *(f"finetune steps at {ratio}" for ratio in ratio_names),
    ]
    rows = [
        [r["arm"].replace("_", "-"), *(count_text(r[c]) for c in [*SSL_KEYS, *ratios])]
        for _, r in table.iterrows()
    ]
    return rep.markdown_table(header, "l" + "r" * (len(header) - 1), rows)


def budget_sentence(table: pd.DataFrame, objective: str) -> str:
    """The ratio of the two-stage pre-training budget to the preserved weights', in words."""
    name = objective_name(objective)
    by_arm = table.set_index("arm")
    preserved, two_stage = by_arm.loc[PRESERVED], by_arm.loc[TWO_STAGE]
    if preserved["ssl_steps"] <= 0 or preserved["ssl_pairs"] <= 0:
        return f"The search recorded no {name} steps for the preserved weights."
    steps = two_stage["ssl_steps"] / preserved["ssl_steps"]
    pairs = two_stage["ssl_pairs"] / preserved["ssl_pairs"]
    return (
        f"Two-stage got {steps:.2f} times the preserved weights' {name} steps "
        f"({count_text(two_stage['ssl_steps'])} against {count_text(preserved['ssl_steps'])}) and "
        f"{pairs:.2f} times their image pairs "
        f"({count_text(two_stage['ssl_pairs'])} against {count_text(preserved['ssl_pairs'])})."
    )


def budget_metrics(table: pd.DataFrame) -> dict[str, dict[str, float]]:
    """metrics.json's `budget.<arm>.<column>`, leaving out what does not apply."""
    return {
        r["arm"]: {c: float(r[c]) for c in table.columns[1:] if not pd.isna(r[c])}
        for _, r in table.iterrows()
    }


# --- convergence ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Unconverged:
    """A finetune run whose train or test accuracy still rose at its end."""

    arm: rep.Arm
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
            f"{self.arm.label}, {rep.ratio_label(self.ratio)} of labels, seed {self.seed}, "
            f"over its last {window}: train {rise(self.train_rise)}, test {rise(self.test_rise)}"
        )


def unconverged_runs(
    runs: Mapping[rep.Arm, Mapping[float, Sequence[cv.Curve]]], seeds: Sequence[int]
) -> list[Unconverged]:
    """Every finetune run (arm, ratio ascending, seed) that had not converged."""
    out = []
    for arm, by_ratio in runs.items():
        for ratio in sorted(by_ratio):
            for seed, curve in zip(seeds, by_ratio[ratio], strict=True):
                if not cv.converged(curve):
                    out.append(
                        Unconverged(
                            arm,
                            ratio,
                            seed,
                            cv.end_rise(curve.train_acc),
                            cv.end_rise(curve.test_acc),
                            cv.end_window(curve.epochs),
                        )
                    )
    return out


def rising_cells(unconverged: Sequence[Unconverged]) -> frozenset[tuple[float, str]]:
    """The (ratio, arm key) cells of the label-ratio tables that get the ‡ mark."""
    return frozenset((float(u.ratio), u.arm.key) for u in unconverged)


def convergence_markdown(unconverged: Sequence[Unconverged]) -> str:
    if not unconverged:
        return (
            f"Every finetune run converged: no accuracy rose by more than {cv.RISE_POINTS:g} "
            "point over the last 10 % of its epochs."
        )
    return "\n".join(
        [
            "These finetune runs had not converged (accuracy still rising at their end):",
            "",
            *(f"- {u.text()}" for u in unconverged),
        ]
    )


# --- learning curves -----------------------------------------------------------------------


def learning_table(runs: Mapping[rep.Arm, Mapping[float, Sequence[cv.Curve]]]) -> pd.DataFrame:
    """Per arm and ratio: final test accuracy (%), steps to 90 % of it, all steps; seed means."""
    rows = [
        {
            "label_ratio": float(ratio),
            "arm": arm.key,
            "final_mean": rep.percent(statistics.fmean(c.final_test_acc for c in seeds)),
            "steps_to_90_mean": _mean([cv.steps_to_near_final(c) for c in seeds]),
            "steps_mean": _mean([(c.steps or (0,))[-1] for c in seeds]),
            "n": len(seeds),
        }
        for arm, by_ratio in runs.items()
        for ratio, seeds in sorted(by_ratio.items())
    ]
    return pd.DataFrame(rows, columns=list(LEARNING_COLUMNS))


def learning_metrics(
    table: pd.DataFrame, unconverged: Sequence[Unconverged]
) -> dict[str, dict[str, dict[str, float]]]:
    """metrics.json's `learning.<arm>.<ratio>`: steps to 90 %, all steps, and how many seeds
    had not converged."""
    counts: dict[tuple[str, float], int] = {}
    for u in unconverged:
        counts[u.arm.key, float(u.ratio)] = counts.get((u.arm.key, float(u.ratio)), 0) + 1
    out: dict[str, dict[str, dict[str, float]]] = {}
    for r in table.itertuples():
        out.setdefault(r.arm, {})[rep.ratio_key(r.label_ratio)] = {
            "steps_to_90": float(r.steps_to_90_mean),
            "steps": float(r.steps_mean),
            "not_converged": counts.get((r.arm, r.label_ratio), 0),
        }
    return out


def learning_markdown(table: pd.DataFrame) -> str:
    """Steps to 90 % of the final accuracy: one row per ratio, one column per arm."""
    labels = {a.key: a.label for a in rep.ALL_ARMS}
    keys = list(dict.fromkeys(table["arm"]))
    cells = {
        (r.label_ratio, r.arm): f"{count_text(r.steps_to_90_mean)} of {count_text(r.steps_mean)}"
        for r in table.itertuples()
    }
    rows = [
        [rep.ratio_label(ratio), *(cells.get((ratio, k), rep.MISSING) for k in keys)]
        for ratio in sorted(set(table["label_ratio"]))
    ]
    header = ["label ratio", *(labels[k] for k in keys)]
    return "\n".join(
        [
            rep.markdown_table(header, "r" * (len(keys) + 1), rows),
            "",
            f"Each cell: the finetune steps until test accuracy first reached "
            f"{100 * cv.NEAR_FINAL:g} % of the run's final test accuracy, of all its steps "
            "(means over seeds). Test accuracy is measured every few epochs, so a count is "
            "the first measured step past the mark.",
        ]
    )


def band(seeds: Sequence[cv.Curve]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Steps, mean, lowest and highest test accuracy (%) over seeds, at the epochs every seed
    evaluated; a seed's steps may differ slightly, so the x of an epoch is their mean."""
    epochs = min(c.epochs for c in seeds)
    shared = [i for i in range(epochs) if all(c.test_acc[i] is not None for c in seeds)]
    acc = 100 * np.array([[c.test_acc[i] for i in shared] for c in seeds], dtype=float)
    steps = np.array([[(c.steps or ())[i] for i in shared] for c in seeds], dtype=float)
    return steps.mean(axis=0), acc.mean(axis=0), acc.min(axis=0), acc.max(axis=0)


def learning_curves_png(runs: Mapping[rep.Arm, Mapping[float, Sequence[cv.Curve]]]) -> bytes:
    """Test accuracy against finetune step, one panel per ratio, one line per arm: the mean
    over seeds, shaded from the lowest to the highest seed."""
    ratios = sorted({r for by_ratio in runs.values() for r in by_ratio})
    panels = {
        f"finetune, {rep.ratio_label(ratio)} of labels": {
            arm.label: band(by_ratio[ratio]) for arm, by_ratio in runs.items()
        }
        for ratio in ratios
    }
    fig = rep.band_figure(panels, "finetune step")
    fig.suptitle(f"Mean over seeds; {BAND}", fontsize="small")
    return rep.png(fig)


# --- paired differences --------------------------------------------------------------------


def comparisons_table(
    accs: Mapping[str, Mapping[float, Sequence[float]]], arm_order: Sequence[rep.Arm]
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
                diff = stats.paired_difference(
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


def difference_text(row: Any) -> str:
    """`+7.50 [+2.10, +12.90] better`, or the mean and why there is no interval."""
    if pd.isna(row.low):
        return f"{row.mean:+.2f} ({row.verdict})"
    return f"{row.mean:+.2f} [{row.low:+.2f}, {row.high:+.2f}] {row.verdict}"


def comparisons_markdown(table: pd.DataFrame) -> str:
    """One row per ratio and stage, one column per opponent: `preserved − random`."""
    opponents = list(dict.fromkeys(table["opponent"]))
    cells = {(r.label_ratio, r.stage, r.opponent): difference_text(r) for r in table.itertuples()}
    rows = [
        [
            rep.ratio_label(ratio),
            stage.replace("_", " "),
            *(cells.get((ratio, stage, o), rep.MISSING) for o in opponents),
        ]
        for ratio in sorted(set(table["label_ratio"]))
        for stage in dict.fromkeys(table["stage"])
    ]
    header = ["label ratio", "stage", *(f"preserved − {o.replace('_', '-')}" for o in opponents)]
    return rep.markdown_table(header, "rl" + "r" * len(opponents), rows)


def comparisons_note(seeds: int) -> str:
    level = f"{100 * stats.CONFIDENCE:g} %"
    return (
        "Test accuracy of the preserved weights minus the other arm's, in points: the mean "
        f"over {seeds} seed{'s' if seeds > 1 else ''} of the per-seed difference (the arms of "
        f"one seed share its labelled subset), [its {level} confidence interval, Student t "
        f"with n - 1 degrees of freedom]. {stats.BETTER}: the interval lies above 0; "
        f"{stats.WORSE}: below 0; {stats.NO_DIFFERENCE}: it contains 0."
    )


def comparisons_md(table: pd.DataFrame, seeds: int) -> str:
    """results/comparisons.md: the verdict table and how to read it."""
    return "\n".join([comparisons_markdown(table), "", comparisons_note(seeds), ""])


def comparisons_metrics(table: pd.DataFrame) -> dict[str, Any]:
    """metrics.json's `comparisons.<stage>.<vs_arm>.<ratio>`: numbers only, the verdict as
    stats.VERDICT_CODES (1 better, 0 no difference detected, -1 worse; none for one seed)."""
    out: dict[str, Any] = {}
    for r in table.itertuples():
        opponent = OPPONENTS[r.opponent]
        entry: dict[str, float] = {"mean": float(r.mean), "n": int(r.n)}
        if not pd.isna(r.low):
            entry |= {"low": float(r.low), "high": float(r.high)}
            entry["verdict"] = stats.VERDICT_CODES[r.verdict]
        out.setdefault(r.stage, {}).setdefault(opponent, {})[rep.ratio_key(r.label_ratio)] = entry
    return out
