"""The report's tables, as pandas frames and markdown: the main table, accuracy by label
ratio, and steps to near the final accuracy. Accuracies are fractions on input and
percents with 2 decimals on output; every statistic is over seeds."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import pandas as pd

from sswp.pipeline.paths import (
    SNAPSHOTS,
)
from sswp.report.arms import (
    ALL_ARMS,
    MISSING,
    Arm,
    _mean,
    accuracy_stats,
    error_stats,
    method_name,
    percent,
    ratio_key,
    ratio_label,
)
from sswp.report.curves import NEAR_FINAL, RISE_POINTS, Curve, steps_to_near_final
from sswp.report.learned import NOT_LEARNED, not_learned_note
from sswp.report.stats import BETTER, CONFIDENCE, NO_DIFFERENCE, WORSE
from sswp.report.verdicts import (
    NEAR_CHANCE,
    STILL_RISING,
    Unconverged,
    chance_note,
    near_chance,
    still_rising_note,
)

COST_UNITS = {"cuda": "GPU-hours", "cpu": "CPU-hours"}

MIXED_COST_UNIT = "CPU/GPU-hours (mixed devices)"

MAIN_COLUMNS = (
    "method",
    "architecture",
    "test_error_mean",
    "test_error_std",
    "best_error_mean",
    "best_error_std",
    "seeds",
    "params_m",
    "search_cost",
    "search_cost_unit",
    "labels_used",
)

LABEL_RATIO_COLUMNS = (
    "label_ratio",
    "arm",
    "mean",
    "std",
    "best_mean",
    "best_std",
    "n",
    "val_mean",
    "val_std",
)

FINAL_EPOCH_NOTE = "final epoch, the headline"

BEST_EPOCH_NOTE = "best over epochs, the original's way of reporting: optimistic"

VALIDATION_NOTE = "final epoch, on the validation split, where recipes are chosen"


def search_cost(searches: Sequence[Mapping[str, Any]]) -> tuple[float, str]:
    """Mean device-hours of one search (wall hours x processes) and the unit they were spent in.

    Seeds run on different kinds of device are still averaged, under a unit that says so.
    """
    hours = statistics.fmean(s["search_hours"] * s["processes"] for s in searches)
    units = {COST_UNITS[s["device"]] for s in searches}
    return round(hours, 4), units.pop() if len(units) == 1 else MIXED_COST_UNIT


def main_table(
    objective: str,
    train: Mapping[str, Sequence[Mapping[str, Any]]],
    searches: Sequence[Mapping[str, Any]],
) -> pd.DataFrame:
    """The paper's main table: one row per architecture (in `train`'s order), stats over seeds.

    `train` maps an architecture to its per-seed train metrics; `searches` are the per-seed
    search metrics, whose cost and labels belong to every snapshot and to no reference.
    """
    cost, unit = search_cost(searches)
    labels = max(s["labels_used"] for s in searches)
    rows = []
    for arch, runs in train.items():
        error, std = error_stats([r["test_acc"] for r in runs])
        best_error, best_std = error_stats([r["best_test_acc"] for r in runs])
        searched = arch in SNAPSHOTS
        rows.append(
            {
                "method": method_name(arch, objective),
                "architecture": arch,
                "test_error_mean": error,
                "test_error_std": std,
                "best_error_mean": best_error,
                "best_error_std": best_std,
                "seeds": len(runs),
                "params_m": round(statistics.fmean(r["params_m"] for r in runs), 4),
                "search_cost": cost if searched else None,
                "search_cost_unit": unit if searched else None,
                "labels_used": labels if searched else None,
            }
        )
    table = pd.DataFrame(rows, columns=list(MAIN_COLUMNS))
    table["test_error_std"] = table["test_error_std"].astype(float)
    table["best_error_std"] = table["best_error_std"].astype(float)
    table["search_cost"] = table["search_cost"].astype(float)
    table["labels_used"] = table["labels_used"].astype("Int64")
    return table


def label_ratio_table(
    accs: Mapping[str, Mapping[float, Sequence[float]]],
    best: Mapping[str, Mapping[float, Sequence[float]]],
    arm_order: Sequence[Arm],
    val: Mapping[str, Mapping[float, Sequence[float]]] | None = None,
) -> pd.DataFrame:
    """Long table of accuracy (%) per arm (in `arm_order`) and label ratio (ascending).

    `accs[arm.key][ratio]` are the per-seed final-epoch test accuracies of that arm at that
    ratio, `best[arm.key][ratio]` the per-seed best test accuracies over the epochs, and
    `val[arm.key][ratio]` (if given) the final-epoch validation accuracies.
    """
    rows = []
    for arm in arm_order:
        for ratio in sorted(accs[arm.key]):
            runs = accs[arm.key][ratio]
            mean, std = accuracy_stats(runs)
            best_mean, best_std = accuracy_stats(best[arm.key][ratio])
            val_mean, val_std = accuracy_stats(val[arm.key][ratio]) if val else (None, None)
            rows.append(
                {
                    "label_ratio": float(ratio),
                    "arm": arm.key,
                    "mean": mean,
                    "std": std,
                    "best_mean": best_mean,
                    "best_std": best_std,
                    "n": len(runs),
                    "val_mean": val_mean,
                    "val_std": val_std,
                }
            )
    table = pd.DataFrame(rows, columns=list(LABEL_RATIO_COLUMNS))
    return table.astype({c: float for c in ("std", "best_std", "val_mean", "val_std")})


def to_csv(table: pd.DataFrame) -> str:
    """CSV text with `\\n` line ends on every platform, so outputs hash the same everywhere.

    A statistic that does not exist (std of one seed, a reference's search cost) is empty.
    """
    return table.to_csv(index=False, lineterminator="\n")


def _present(value: Any) -> bool:
    return value is not None and not pd.isna(value)


def mean_std_text(
    mean: float,
    std: float | None,
    mark: bool = False,
    rising: bool = False,
    unlearned: bool = False,
) -> str:
    """`12.35 ± 0.50`, or just `12.35` where a single seed gives no deviation; `mark` adds
    the near-chance sign, `rising` the not-converged one, `unlearned` the sign of an arm
    whose self-supervision did not learn."""
    text = f"{mean:.2f} ± {std:.2f}" if _present(std) else f"{mean:.2f}"
    signs = [
        sign
        for sign, on in ((NEAR_CHANCE, mark), (STILL_RISING, rising), (NOT_LEARNED, unlearned))
        if on
    ]
    return " ".join([text, *signs])


def markdown_table(header: Sequence[str], align: str, rows: Sequence[Sequence[str]]) -> str:
    """A markdown table written by hand so no `tabulate` is needed; `align` is l/r per column."""
    rule = {"l": "---", "r": "---:"}
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(rule[a] for a in align) + "|",
        *("| " + " | ".join(row) + " |" for row in rows),
    ]
    return "\n".join(lines)


def main_markdown(table: pd.DataFrame, num_classes: int) -> str:
    """The main table as markdown; references show `—` for what was not measured here, and
    an error within reach of chance is marked."""
    rows = [
        [
            r.method,
            mean_std_text(
                r.test_error_mean,
                r.test_error_std,
                near_chance(100 - r.test_error_mean, num_classes),
            ),
            mean_std_text(
                r.best_error_mean,
                r.best_error_std,
                near_chance(100 - r.best_error_mean, num_classes),
            ),
            str(r.seeds),
            f"{r.params_m:.4f}",
            f"{r.search_cost:.2f} {r.search_cost_unit}" if _present(r.search_cost) else MISSING,
            str(r.labels_used) if _present(r.labels_used) else MISSING,
        ]
        for r in table.itertuples()
    ]
    header = (
        "method",
        "test error (%), final epoch",
        "best-epoch test error (%)",
        "seeds",
        "params (M)",
        "search cost",
        "labels used",
    )
    return markdown_table(header, "lrrrrrr", rows)


def label_ratio_markdown(
    table: pd.DataFrame,
    num_classes: int,
    best: bool = False,
    rising: Collection[tuple[float, str]] = (),
    validation: bool = False,
    unlearned: Collection[str] = (),
) -> str:
    """The long label-ratio table, widened: one row per ratio, one `mean ± std` column per arm.

    `best` shows the best-over-epochs accuracies instead of the final epoch's, `validation`
    the validation split's. A mean within reach of chance is marked, and so is every
    (ratio, arm key) in `rising` and every arm key in `unlearned`.
    """
    labels = {a.key: a.label for a in ALL_ARMS}
    keys = list(dict.fromkeys(table["arm"]))
    prefix = "best_" if best else "val_" if validation else ""
    mean, std = f"{prefix}mean", f"{prefix}std"
    cells = {
        (r.label_ratio, r.arm): mean_std_text(
            getattr(r, mean),
            getattr(r, std),
            near_chance(getattr(r, mean), num_classes),
            (r.label_ratio, r.arm) in rising,
            r.arm in unlearned,
        )
        for r in table.itertuples()
    }
    rows = [
        [ratio_label(ratio), *(cells.get((ratio, k), MISSING) for k in keys)]
        for ratio in sorted(set(table["label_ratio"]))
    ]
    return markdown_table(["label ratio", *(labels[k] for k in keys)], "r" * (len(keys) + 1), rows)


def label_ratio_sections(
    table: pd.DataFrame,
    num_classes: int,
    rising: Collection[tuple[float, str]],
    title: Callable[[str], str],
    unlearned: Collection[str] = (),
) -> list[str]:
    """The final-epoch and best-over-epochs tables, each under `title(note)`, the validation
    table when the runs recorded one, and the notes: for label_ratio.md and the summary."""
    marks = {"rising": rising, "unlearned": unlearned}
    lines: list[str] = []
    for note, best in ((FINAL_EPOCH_NOTE, False), (BEST_EPOCH_NOTE, True)):
        table_md = label_ratio_markdown(table, num_classes, best=best, **marks)
        lines += [title(note), "", table_md, ""]
    if not table["val_mean"].isna().all():
        table_md = label_ratio_markdown(table, num_classes, validation=True, **marks)
        lines += [f"Validation accuracy (%), {VALIDATION_NOTE}:", "", table_md, ""]
    notes = [chance_note(num_classes), still_rising_note()]
    if unlearned:
        notes.append(not_learned_note())
    return [*lines, *(line for note in notes for line in (note, ""))]


def label_ratio_md(
    table: pd.DataFrame,
    num_classes: int,
    rising: Collection[tuple[float, str]] = (),
    unlearned: Collection[str] = (),
) -> str:
    """results/label_ratio.md: the final-epoch table, the best-over-epochs one, the notes."""
    title = "Test accuracy (%), {}:".format
    return "\n".join(label_ratio_sections(table, num_classes, rising, title, unlearned))


LEARNING_COLUMNS = ("label_ratio", "arm", "final_mean", "steps_to_90_mean", "steps_mean", "n")


def count_text(value: Any) -> str:
    """A step or pair count with thousands separators: `1,100`, a mean over seeds `366.5`."""
    if value is None or pd.isna(value):
        return MISSING
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def learning_table(runs: Mapping[Arm, Mapping[float, Sequence[Curve]]]) -> pd.DataFrame:
    """Per arm and ratio: final test accuracy (%), steps to 90 % of it, all steps; seed means."""
    rows = [
        {
            "label_ratio": float(ratio),
            "arm": arm.key,
            "final_mean": percent(statistics.fmean(c.final_test_acc for c in seeds)),
            "steps_to_90_mean": _mean([steps_to_near_final(c) for c in seeds]),
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
        out.setdefault(r.arm, {})[ratio_key(r.label_ratio)] = {
            "steps_to_90": float(r.steps_to_90_mean),
            "steps": float(r.steps_mean),
            "not_converged": counts.get((r.arm, r.label_ratio), 0),
        }
    return out


def learning_markdown(table: pd.DataFrame) -> str:
    """Steps to 90 % of the final accuracy: one row per ratio, one column per arm."""
    labels = {a.key: a.label for a in ALL_ARMS}
    keys = list(dict.fromkeys(table["arm"]))
    cells = {
        (r.label_ratio, r.arm): f"{count_text(r.steps_to_90_mean)} of {count_text(r.steps_mean)}"
        for r in table.itertuples()
    }
    rows = [
        [ratio_label(ratio), *(cells.get((ratio, k), MISSING) for k in keys)]
        for ratio in sorted(set(table["label_ratio"]))
    ]
    header = ["label ratio", *(labels[k] for k in keys)]
    return "\n".join(
        [
            markdown_table(header, "r" * (len(keys) + 1), rows),
            "",
            f"Each cell: the finetune steps until test accuracy first reached "
            f"{100 * NEAR_FINAL:g} % of the run's final test accuracy, of all its steps "
            "(means over seeds). Test accuracy is measured every few epochs, so a count is "
            "the first measured step past the mark.",
        ]
    )


def convergence_markdown(unconverged: Sequence[Unconverged]) -> str:
    if not unconverged:
        return (
            f"Every finetune run converged: no accuracy rose by more than {RISE_POINTS:g} "
            "point over the last 10 % of its epochs."
        )
    return "\n".join(
        [
            "These finetune runs had not converged (accuracy still rising at their end):",
            "",
            *(f"- {u.text()}" for u in unconverged),
        ]
    )


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
            ratio_label(ratio),
            stage.replace("_", " "),
            *(cells.get((ratio, stage, o), MISSING) for o in opponents),
        ]
        for ratio in sorted(set(table["label_ratio"]))
        for stage in dict.fromkeys(table["stage"])
    ]
    header = ["label ratio", "stage", *(f"preserved − {o.replace('_', '-')}" for o in opponents)]
    return markdown_table(header, "rl" + "r" * len(opponents), rows)


def comparisons_note(seeds: int) -> str:
    level = f"{100 * CONFIDENCE:g} %"
    return (
        "Test accuracy of the preserved weights minus the other arm's, in points: the mean "
        f"over {seeds} seed{'s' if seeds > 1 else ''} of the per-seed difference (the arms of "
        f"one seed share its labelled subset), [its {level} confidence interval, Student t "
        f"with n - 1 degrees of freedom]. {BETTER}: the interval lies above 0; "
        f"{WORSE}: below 0; {NO_DIFFERENCE}: it contains 0."
    )


def comparisons_md(table: pd.DataFrame, seeds: int) -> str:
    """results/comparisons.md: the verdict table and how to read it."""
    return "\n".join([comparisons_markdown(table), "", comparisons_note(seeds), ""])
