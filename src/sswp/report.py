"""The report's tables, markdown, metrics and plots, built from metric dicts as pure functions.

Reading and writing files is the stage's job (sswp.stages.report), so everything here can be
tested on plain dicts and produces its output in memory, ready for an all-or-nothing write.
Accuracies are fractions in [0, 1] on input and percents with 2 decimals on output; every
statistic is over seeds (mean and sample standard deviation, none for a single seed).
"""

from __future__ import annotations

import io
import math
import statistics
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, get_args

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, NullLocator

from sswp.config import OptionalInit
from sswp.contract import FINETUNE_INITS, LINEAR_EVAL_ARMS
from sswp.curves import RISE_POINTS
from sswp.nas.genotype import STEPS, edge_index, reduction_cells
from sswp.nas.ops import CANDIDATE_OPS, SHORT_NAMES
from sswp.nas.reference import DISPLAY_NAMES
from sswp.paths import SNAPSHOTS
from sswp.stats import VERDICT_CODES

PLOT_DPI = 120
HEATMAP_DPI = 100
COST_UNITS = {"cuda": "GPU-hours", "cpu": "CPU-hours"}
MIXED_COST_UNIT = "CPU/GPU-hours (mixed devices)"
MISSING = "—"

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
# An accuracy within this many points of chance says the run did not learn enough to compare.
CHANCE_MARGIN = 5.0
NEAR_CHANCE = "†"
# An arm with a finetune still rising at its end (see sswp.curves): not converged.
STILL_RISING = "‡"
# Below this many seeds a standard deviation says little about the spread.
MIN_SEEDS_FOR_SPREAD = 3
FINAL_EPOCH_NOTE = "final epoch, the headline"
BEST_EPOCH_NOTE = "best over epochs, the original's way of reporting: optimistic"
VALIDATION_NOTE = "final epoch, on the validation split, where recipes are chosen"
# headline.json's short keys, so that `dvc metrics show` and `dvc exp show` fit 200 columns:
# per ratio, the finetuned arms' mean test accuracy and the verdict of preserved against each
# other arm, as stats.VERDICT_CODES (1 better, 0 no difference detected, -1 worse).
HEADLINE_ARMS = {"preserved": "pres", "random": "rand", "two_stage": "two"}
HEADLINE_VERDICTS = {"random": "vs_rand", "two_stage": "vs_two"}


@dataclass(frozen=True)
class Arm:
    """One line of the label-ratio comparison: a stage (finetune or linear_eval) and an init.

    `key` names it in label_ratio.csv and metrics.json, `label` in the markdown and plots.
    """

    stage: str
    init: str
    key: str

    @property
    def label(self) -> str:
        return f"{self.stage.replace('_', ' ')} {self.init.replace('_', '-')}"


# Every finetune init, then every linear-evaluation arm, as the stage contract lists them.
ALL_ARMS = (
    *(Arm("finetune", init, f"finetune_{init}") for init in FINETUNE_INITS),
    *(Arm("linear_eval", arm, f"linear_{arm}") for arm in LINEAR_EVAL_ARMS),
)
OPTIONAL_FINETUNE_INITS = get_args(OptionalInit)


def arms(inits: Sequence[str]) -> tuple[Arm, ...]:
    """The arms a run has: finetune.inits decide the optional finetunes, the rest always run."""
    return tuple(
        a
        for a in ALL_ARMS
        if a.stage != "finetune" or a.init not in OPTIONAL_FINETUNE_INITS or a.init in inits
    )


def percent(fraction: float) -> float:
    """A [0, 1] accuracy as a percent with 2 decimals, the precision every output shows."""
    return round(100 * fraction, 2)


def ratio_label(ratio: float) -> str:
    """A label ratio as a short percent, e.g. 0.1 -> `10%`, 0.025 -> `2.5%`."""
    return f"{100 * ratio:g}%"


def ratio_key(ratio: float) -> str:
    """A label ratio as a metrics.json key, e.g. `10%`, `2_5%`: DVC splits keys at dots."""
    return ratio_label(ratio).replace(".", "_")


def mean_std(values: Sequence[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (ddof=1); a single value has no deviation."""
    mean = statistics.fmean(values)
    return mean, statistics.stdev(values) if len(values) > 1 else None


def accuracy_stats(accs: Sequence[float]) -> tuple[float, float | None]:
    """Accuracy mean and std over seeds, in percent with 2 decimals."""
    mean, std = mean_std(accs)
    return percent(mean), None if std is None else percent(std)


def error_stats(accs: Sequence[float]) -> tuple[float, float | None]:
    """Test error (100 - accuracy, %) mean and std over seeds, as the paper's tables give it."""
    mean, std = accuracy_stats(accs)
    return round(100 - mean, 2), std


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


def method_name(architecture: str, objective: str) -> str:
    """How the main table names an architecture: the search that found it, or the reference."""
    if architecture in DISPLAY_NAMES:
        return DISPLAY_NAMES[architecture]
    return f"SSWP-NAS ({objective}, {architecture})"


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


def mean_std_text(mean: float, std: float | None, mark: bool = False, rising: bool = False) -> str:
    """`12.35 ± 0.50`, or just `12.35` where a single seed gives no deviation; `mark` adds
    the near-chance sign, `rising` the not-converged one."""
    text = f"{mean:.2f} ± {std:.2f}" if _present(std) else f"{mean:.2f}"
    signs = [sign for sign, on in ((NEAR_CHANCE, mark), (STILL_RISING, rising)) if on]
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
) -> str:
    """The long label-ratio table, widened: one row per ratio, one `mean ± std` column per arm.

    `best` shows the best-over-epochs accuracies instead of the final epoch's, `validation`
    the validation split's. A mean within reach of chance is marked, and so is every
    (ratio, arm key) in `rising`.
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
        )
        for r in table.itertuples()
    }
    rows = [
        [ratio_label(ratio), *(cells.get((ratio, k), MISSING) for k in keys)]
        for ratio in sorted(set(table["label_ratio"]))
    ]
    return markdown_table(["label ratio", *(labels[k] for k in keys)], "r" * (len(keys) + 1), rows)


def still_rising_note() -> str:
    """The footnote that explains the not-converged mark."""
    return (
        f"{STILL_RISING} still rising: not converged. In at least one seed, train or test "
        f"accuracy gained more than {RISE_POINTS:g} point over the last 10 % of the epochs."
    )


def label_ratio_sections(
    table: pd.DataFrame,
    num_classes: int,
    rising: Collection[tuple[float, str]],
    title: Callable[[str], str],
) -> list[str]:
    """The final-epoch and best-over-epochs tables, each under `title(note)`, the validation
    table when the runs recorded one, and the notes: for label_ratio.md and the summary."""
    lines: list[str] = []
    for note, best in ((FINAL_EPOCH_NOTE, False), (BEST_EPOCH_NOTE, True)):
        table_md = label_ratio_markdown(table, num_classes, best=best, rising=rising)
        lines += [title(note), "", table_md, ""]
    if not table["val_mean"].isna().all():
        table_md = label_ratio_markdown(table, num_classes, rising=rising, validation=True)
        lines += [f"Validation accuracy (%), {VALIDATION_NOTE}:", "", table_md, ""]
    return [*lines, chance_note(num_classes), "", still_rising_note(), ""]


def label_ratio_md(
    table: pd.DataFrame, num_classes: int, rising: Collection[tuple[float, str]] = ()
) -> str:
    """results/label_ratio.md: the final-epoch table, the best-over-epochs one, the notes."""
    title = "Test accuracy (%), {}:".format
    return "\n".join(label_ratio_sections(table, num_classes, rising, title))


def _stats(mean: float, std: float | None, mean_key: str, std_key: str) -> dict[str, float]:
    """A mean and its std for metrics.json; a std that does not exist is left out (not NaN)."""
    return {mean_key: float(mean)} | ({std_key: float(std)} if _present(std) else {})


def metrics_dict(
    main: pd.DataFrame, ratios: pd.DataFrame, extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The report's metrics for `sswp compare` / `dvc metrics diff`: nested, dot-free keys.

    `extra` adds whole sections (comparisons, budgets, learning curves), numbers only.
    """
    out: dict[str, Any] = {"main": {}, "label_ratio": {}, **(extra or {})}
    for r in main.itertuples():
        entry = _stats(r.test_error_mean, r.test_error_std, "test_error_mean", "test_error_std")
        entry["params_m"] = float(r.params_m)
        if _present(r.search_cost):
            entry["search_hours"] = float(r.search_cost)
        out["main"][r.architecture] = entry
    for r in ratios.itertuples():
        arm = out["label_ratio"].setdefault(r.arm, {})
        entry = _stats(r.mean, r.std, "mean", "std")
        if _present(r.val_mean):
            entry |= _stats(r.val_mean, r.val_std, "val_mean", "val_std")
        arm[ratio_key(r.label_ratio)] = entry
    return out


def headline(
    main: pd.DataFrame, ratios: pd.DataFrame, comparisons: pd.DataFrame, architecture: str
) -> dict[str, Any]:
    """The few numbers that `dvc metrics show` and `dvc exp show` display, short-keyed.

    `test_error` is the mean test error (%) of `architecture` trained from scratch (absent
    when it was not trained). Then per label ratio (`ratio_key`), in HEADLINE_ARMS' short
    keys, every finetuned arm's mean test accuracy (%), and under HEADLINE_VERDICTS the
    verdict code of the finetuned preserved weights against that arm (absent with one seed:
    no interval). The paired differences and their intervals are in metrics.json and
    comparisons.csv: as DVC metrics they would make the tables wider than 200 columns.
    """
    out: dict[str, Any] = {}
    row = main[main["architecture"] == architecture]
    if len(row):
        out["test_error"] = float(row["test_error_mean"].iloc[0])
    inits = {arm.key: arm.init for arm in ALL_ARMS if arm.stage == "finetune"}
    for ratio in sorted(set(ratios["label_ratio"])):
        entry: dict[str, float | int] = {}
        for r in ratios[ratios["label_ratio"] == ratio].itertuples():
            if r.arm in inits:
                entry[HEADLINE_ARMS[inits[r.arm]]] = float(r.mean)
        same = (comparisons["label_ratio"] == ratio) & (comparisons["stage"] == "finetune")
        for r in comparisons[same].itertuples():
            if r.verdict in VERDICT_CODES:
                entry[HEADLINE_VERDICTS[r.opponent]] = VERDICT_CODES[r.verdict]
        out[ratio_key(float(ratio))] = entry
    return out


def summary_markdown(
    *,
    dataset: str,
    scale: Sequence[str],
    num_classes: int,
    objective: str,
    architecture: str,
    genotypes: Mapping[int, str],
    searches: Sequence[Mapping[str, Any]],
    pretrains: Sequence[Mapping[str, Any]],
    main: pd.DataFrame,
    ratios: pd.DataFrame,
    verdicts: str,
    budget: str,
    convergence: str,
    learning: str,
    rising: Collection[tuple[float, str]] = (),
) -> str:
    """The human report: the verdicts, the budgets behind them, what was searched, what it
    found per seed, how well it trains, and which finetunes had not converged.

    It opens with `scale` (lines saying how big the run was), so that nobody reads a smoke
    run's numbers as the paper's. `genotypes` maps each seed to the short form of its
    `architecture` snapshot; `searches` and `pretrains` are the per-seed search and
    two-stage pre-training metrics. `verdicts`, `budget`, `convergence` and `learning` are
    the markdown of those sections (sswp.fairness); `rising` the cells marked not converged.
    """
    cost, unit = search_cost(searches)
    pretrain_hours = statistics.fmean(p["pretrain_hours"] for p in pretrains)
    first_seed = next(iter(genotypes))
    seeds = len(genotypes)
    spread = (
        [
            f"With {seeds} seed{'s' if seeds > 1 else ''}, every ± (sample std over seeds) is "
            f"only indicative; use at least {MIN_SEEDS_FOR_SPREAD} seeds to compare arms.",
            "",
        ]
        if seeds < MIN_SEEDS_FOR_SPREAD
        else []
    )
    lines = [
        f"# SSWP-NAS report: {dataset}",
        "",
        "## Scale of this run",
        "",
        *(f"- {line}" for line in scale),
        "",
        *spread,
        "## Does weight preservation help?",
        "",
        verdicts,
        "",
        "## Budgets: self-supervised pre-training and finetune steps per arm",
        "",
        budget,
        "",
        "## Search",
        "",
        f"- Search objective: {objective}",
        f"- Seeds: {', '.join(str(s) for s in genotypes)}",
        f"- Search cost: {cost:.2f} {unit} per search (mean over seeds), "
        f"{max(s['labels_used'] for s in searches)} labels used",
        f"- Two-stage baseline pre-training: {pretrain_hours:.2f} hours per seed (mean)",
        "",
        f"## Genotypes (`{architecture}` snapshot)",
        "",
        "```text",
        *(f"seed {seed}: {short}" for seed, short in genotypes.items()),
        "```",
        "",
        "## Test error, trained from scratch on all labels",
        "",
        main_markdown(main, num_classes),
        "",
        *label_ratio_sections(
            ratios, num_classes, rising, "## Test accuracy (%) by label ratio, {}".format
        ),
        "## Convergence of the finetunes",
        "",
        convergence,
        "",
        "## Learning curves: steps to 90 % of the final test accuracy",
        "",
        learning,
        "",
        "![Finetune test accuracy against step](learning_curves.png)",
        "",
        "## Plots",
        "",
        "![Test accuracy against label ratio](label_ratio.png)",
        "",
        "![Test accuracy per epoch](training_curves.png)",
        "",
        f"![softmax(alpha) - 1/7 during the search of seed {first_seed}](alpha_heatmap.png)",
        "",
    ]
    return "\n".join(lines)


def png(fig: Figure, dpi: int = PLOT_DPI) -> bytes:
    """Render a bare Figure (Agg, no pyplot global state) to PNG bytes without the Software
    metadata, so the bytes depend on the data alone and not on the matplotlib version."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return buf.getvalue()


def label_ratio_png(table: pd.DataFrame) -> bytes:
    """Accuracy vs label ratio: one line per arm, error bars = std over seeds, log x."""
    labels = {a.key: a.label for a in ALL_ARMS}
    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.add_subplot()
    for key, rows in table.groupby("arm", sort=False):
        yerr = rows["std"].fillna(0) if rows["std"].notna().any() else None
        ax.errorbar(
            rows["label_ratio"], rows["mean"], yerr=yerr, marker="o", capsize=3, label=labels[key]
        )
    ratios = sorted(set(table["label_ratio"]))
    ax.set_xscale("log")
    ax.set_xticks(ratios, labels=[ratio_label(r) for r in ratios])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("labelled fraction of the training set")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return png(fig)


def curve_stats(
    runs: Sequence[Sequence[float | None]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The epochs (from 1) that every seed evaluated, and there the mean and std (ddof=1,
    zero for one seed) of test accuracy in percent; None marks an epoch not evaluated.

    Seeds of one run share its params, hence its epochs; the shortest bounds them anyway.
    """
    epochs = min(len(r) for r in runs)
    shared = [i for i in range(epochs) if all(r[i] is not None for r in runs)]
    acc = 100 * np.array([[r[i] for i in shared] for r in runs], dtype=float)
    std = acc.std(axis=0, ddof=1) if len(runs) > 1 else np.zeros(len(shared))
    return np.array(shared) + 1, acc.mean(axis=0), std


def grid(panels: int, max_cols: int) -> tuple[int, int]:
    """Rows and columns of a figure with `panels` panels, at most `max_cols` a row."""
    cols = min(panels, max_cols)
    return math.ceil(panels / cols), cols


Band = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # x, mean, low, high


def band_figure(
    panels: Mapping[str, Mapping[str, Band]], xlabel: str, integer_x: bool = False
) -> Figure:
    """One panel per title, and in it one line per label: its mean, shaded from low to high;
    at most three panels a row, sharing the test accuracy axis."""
    rows, cols = grid(len(panels), 3)
    fig = Figure(figsize=(4.2 * cols, 3.2 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False, sharey=True).ravel()
    for ax, (title, lines) in zip(axes, panels.items(), strict=False):
        for label, (x, mean, low, high) in lines.items():
            ax.plot(x, mean, marker="." if len(mean) < 30 else None, label=label)
            ax.fill_between(x, low, high, alpha=0.2)
        ax.set_title(title, fontsize="medium")
        ax.set_xlabel(xlabel)
        if integer_x:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize="x-small")
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    for ax in axes[::cols]:
        ax.set_ylabel("test accuracy (%)")
    return fig


def training_curves_png(
    panels: Mapping[str, Mapping[str, Sequence[Sequence[float | None]]]],
) -> bytes:
    """Test accuracy per epoch, one panel per title, one line (mean, shaded std) per label.

    `panels[title][label]` are the per-seed lists of per-epoch test accuracy fractions
    (None where an epoch was not evaluated).
    """
    bands = {}
    for title, lines in panels.items():
        bands[title] = {}
        for label, runs in lines.items():
            epochs, mean, std = curve_stats(runs)
            bands[title][label] = (epochs, mean, mean - std, mean + std)
    return png(band_figure(bands, "epoch", integer_x=True))


def _edge_names() -> list[str]:
    """Edge labels in edge order, e.g. `n0←1`: the edge from state 1 into intermediate node 0."""
    names = {edge_index(n, s): f"n{n}←{s}" for n in range(STEPS) for s in range(2 + n)}
    return [names[i] for i in range(len(names))]


def alpha_deviation(history: np.ndarray) -> tuple[np.ndarray, float]:
    """softmax(alpha) - 1/ops, and the symmetric colour limit that shows it at any scale.

    A short search moves the probabilities by thousandths, a long one by tenths: a fixed 0-1
    scale hides the first. The limit is the largest deviation (never 0), so the colours use
    their whole range and 0 (uniform sampling) is always the centre.
    """
    deviation = history - 1.0 / history.shape[-1]
    return deviation, max(float(np.abs(deviation).max()), 1e-6)


def alpha_heatmap_png(history: np.ndarray, seed: int) -> bytes:
    """softmax(alpha) - 1/7 over the search, one panel per cell, rows = edge x op, columns =
    epochs, on a diverging scale centred on uniform (white): red ops gained, blue ones lost.

    `history` is (epochs, cells, edges, ops). The 7 rows of an edge are the candidate ops in
    order (named in the footer); grey lines separate edges, whose names label the rows.
    """
    epochs, cells, edges, ops = history.shape
    deviation, limit = alpha_deviation(history)
    reductions = set(reduction_cells(cells))
    rows, cols = grid(cells, 5)
    fig = Figure(figsize=(2.6 * cols + 1, 5.2 * rows + 0.6), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False, sharey=True).ravel()
    edge_names = _edge_names()
    for cell, ax in enumerate(axes[:cells]):
        # (epochs, edges, ops) -> (edges * ops, epochs): row e * ops + o is edge e, op o.
        image = deviation[:, cell].reshape(epochs, edges * ops).T
        mesh = ax.imshow(
            image,
            aspect="auto",
            interpolation="nearest",
            vmin=-limit,
            vmax=limit,
            cmap="RdBu_r",
            extent=(0.5, epochs + 0.5, edges * ops - 0.5, -0.5),
        )
        for boundary in range(1, edges):
            ax.axhline(boundary * ops - 0.5, color="grey", linewidth=0.4)
        kind = "reduction" if cell in reductions else "normal"
        ax.set_title(f"cell {cell} ({kind})", fontsize="small")
        ax.set_xlabel("epoch", fontsize="small")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.tick_params(labelsize="x-small")
    axes[0].set_yticks([e * ops + (ops - 1) / 2 for e in range(edges)], labels=edge_names)
    for ax in axes[cells:]:
        ax.set_visible(False)
    fig.colorbar(
        mesh,
        ax=list(axes[:cells]),
        label=f"softmax(alpha) - 1/{ops}   (scale ±{limit:.3g})",
        shrink=0.6,
    )
    ops_text = ", ".join(SHORT_NAMES[o] for o in CANDIDATE_OPS)
    fig.suptitle(f"Architecture weights during the search (seed {seed})", fontsize="medium")
    fig.supxlabel(f"rows within an edge, top to bottom: {ops_text}", fontsize="small")
    return png(fig, HEATMAP_DPI)
