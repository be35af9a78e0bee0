"""The trial across search budgets: DVC experiments of the default at several search.epochs,
gathered into one table and one figure under results/sweep/ (`sswp sweep`).

Each experiment is a commit that carries its own results/ (revisions.py): nothing is rerun
here. For every budget the table gives the label-free measure of both self-supervised
arms and the paired differences of the preserved weights at every label ratio, finetuned
and probed; the figure draws the same against the search's self-supervised steps.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

from sswp.config import yaml12
from sswp.errors import SswpError
from sswp.pipeline import atomic
from sswp.pipeline.paths import RESULTS_DIR
from sswp.report.arms import ratio_label
from sswp.report.figures import png
from sswp.report.learned import LEARNED_SHARE, NOT_LEARNED
from sswp.report.revisions import experiments, git, read_at, resolve
from sswp.report.stats import BETTER, NO_DIFFERENCE, WORSE
from sswp.report.tables import markdown_table, to_csv

SWEEP_DIR = RESULTS_DIR / "sweep"
PREFIX = "sweep-"
VERDICTS = {1: BETTER, 0: NO_DIFFERENCE, -1: WORSE}
BACKBONES = {
    "search": "search (supernet, kept path)",
    "preserved": "preserved (derived child)",
    "two_stage": "two-stage",
}
OPPONENTS = {"vs_random": "preserved − random", "vs_two_stage": "preserved − two-stage"}
STAGES = {"finetune": "finetune", "linear_eval": "linear probe"}
COLUMNS = (
    "experiment",
    "search_epochs",
    "ssl_steps",
    "stage_hours",
    "stage",
    "label_ratio",
    "opponent",
    "mean",
    "low",
    "high",
    "verdict",
)


@dataclass(frozen=True)
class Point:
    """One budget of the sweep: an experiment's params and the report's metrics."""

    name: str
    commit: str
    params_text: str
    metrics: dict[str, Any]
    stage_hours: float

    @property
    def epochs(self) -> int:
        return int(yaml12.load(self.params_text)["search"]["epochs"])

    @property
    def steps(self) -> float:
        return float(self.metrics["budget"]["preserved"]["ssl_steps"])


def sweep_names() -> list[str]:
    """The experiments named `sweep-...`, in name order."""
    return sorted(name for name in experiments() if name.startswith(PREFIX))


def read_point(name: str) -> Point:
    commit = resolve(name)
    params = read_at(commit, f"{RESULTS_DIR}/params.yaml")
    metrics = json.loads(read_at(commit, f"{RESULTS_DIR}/metrics.json"))
    for key in ("budget", "comparisons"):
        if key not in metrics:
            raise SswpError(f"{name}: results/metrics.json has no {key}; rerun that experiment")
    return Point(name, commit, params, metrics, stage_hours(commit))


def stage_hours(commit: str) -> float:
    """The hours every stage run of a commit recorded (its metrics/ files' `*_hours`)."""
    files = git("ls-tree", "-r", "--name-only", commit, "metrics/").split()
    total = 0.0
    for name in files:
        record = json.loads(read_at(commit, name))
        total += sum(v for k, v in record.items() if k.endswith("_hours"))
    return total


def verdict_table(points: Sequence[Point]) -> pd.DataFrame:
    """One row per budget, stage, ratio and opponent: the paired difference and its verdict."""
    rows = []
    for point in points:
        for stage, by_opponent in point.metrics["comparisons"].items():
            for opponent, by_ratio in by_opponent.items():
                for ratio_key, diff in by_ratio.items():
                    rows.append(
                        {
                            "experiment": point.name,
                            "search_epochs": point.epochs,
                            "ssl_steps": point.steps,
                            "stage_hours": round(point.stage_hours, 3),
                            "stage": stage,
                            "label_ratio": _ratio(ratio_key),
                            "opponent": opponent,
                            "mean": diff["mean"],
                            "low": diff.get("low"),
                            "high": diff.get("high"),
                            "verdict": VERDICTS.get(diff.get("verdict"), "no interval"),
                        }
                    )
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _ratio(key: str) -> float:
    """A metrics.json ratio key (`2%`, `2_5%`) back as a fraction."""
    return float(key.rstrip("%").replace("_", ".")) / 100


def sweep_chance(points: Sequence[Point]) -> float | None:
    """SimCLR's chance of the sweep's measure (every budget has the same batches)."""
    for point in points:
        for entry in point.metrics.get("ssl", {}).values():
            return float(entry["chance"])
    return None


def measure_text(point: Point, backbone: str) -> str:
    entry = point.metrics.get("ssl", {}).get(backbone)
    if entry is None:
        return "—"
    mark = "" if entry["learned"] else f" {NOT_LEARNED}"
    return f"{entry['val_ssl_loss']:.3f}{mark}"


def sweep_markdown(points: Sequence[Point], table: pd.DataFrame) -> str:
    """The measure per budget, then the differences per budget, stage and ratio."""
    chance = sweep_chance(points) or 0.0
    measure_rows = [
        [
            f"{p.epochs} ({p.steps:,.0f})",
            *(measure_text(p, b) for b in BACKBONES),
            f"{p.stage_hours:.2f}",
            p.name,
        ]
        for p in points
    ]
    header = ["search epochs (SimCLR steps)", *BACKBONES.values(), "stage hours", "experiment"]
    cells = {
        (r.search_epochs, r.stage, r.label_ratio, r.opponent): _difference(r)
        for r in table.itertuples()
    }
    keys = sorted({(r.search_epochs, r.stage, r.label_ratio) for r in table.itertuples()})
    diff_rows = [
        [str(epochs), STAGES.get(stage, stage), ratio_label(ratio)]
        + [cells.get((epochs, stage, ratio, opponent), "—") for opponent in OPPONENTS]
        for epochs, stage, ratio in keys
    ]
    return (
        "\n\n".join(
            [
                "# Across search budgets",
                "Held-out SimCLR loss at the end of each self-supervised run "
                f"(chance {chance:.3f}; {NOT_LEARNED}: not {100 * (1 - LEARNED_SHARE):g} % below "
                "it in some seed, or a probe no better than the random backbone's), and the "
                "hours its stages recorded:",
                markdown_table(header, "r" + "r" * len(BACKBONES) + "rl", measure_rows),
                "Test accuracy of the preserved weights minus the other arm's, in points: the mean "
                "over seeds of the paired difference [95 % interval, Student t] and its verdict:",
                markdown_table(
                    ["search epochs", "stage", "label ratio", *OPPONENTS.values()],
                    "rlr" + "r" * len(OPPONENTS),
                    diff_rows,
                ),
                "![The measure and the differences against the search's SimCLR steps](sweep.png)",
            ]
        )
        + "\n"
    )


def _difference(row: Any) -> str:
    if pd.isna(row.low):
        return f"{row.mean:+.2f} ({row.verdict})"
    return f"{row.mean:+.2f} [{row.low:+.2f}, {row.high:+.2f}] {row.verdict}"


def sweep_png(points: Sequence[Point], table: pd.DataFrame) -> bytes:
    """Left: each backbone's held-out loss against the search's steps, chance dashed. Then a
    panel per stage: the paired differences with their intervals, one line per opponent
    and ratio."""
    fig = Figure(figsize=(13, 4), layout="constrained")
    axes = fig.subplots(1, 1 + len(STAGES))
    steps = [p.steps for p in points]
    for backbone, label in BACKBONES.items():
        losses = [p.metrics.get("ssl", {}).get(backbone, {}).get("val_ssl_loss") for p in points]
        if any(loss is not None for loss in losses):
            axes[0].plot(steps, [np.nan if v is None else v for v in losses], "o-", label=label)
    chance = next(
        (p.metrics["ssl"]["search"]["chance"] for p in points if "ssl" in p.metrics), None
    )
    if chance is not None:
        axes[0].axhline(chance, color="grey", linestyle="--", label="chance")
        axes[0].axhline(LEARNED_SHARE * chance, color="grey", linestyle=":", label="learned")
    axes[0].set_ylabel("held-out SimCLR loss")
    for ax, (stage, title) in zip(axes[1:], STAGES.items(), strict=True):
        rows = table[table["stage"] == stage]
        for (opponent, ratio), line in rows.groupby(["opponent", "label_ratio"], sort=True):
            line = line.sort_values("ssl_steps")
            low = (line["mean"] - line["low"]).fillna(0)
            high = (line["high"] - line["mean"]).fillna(0)
            ax.errorbar(
                line["ssl_steps"],
                line["mean"],
                yerr=[low, high],
                marker="o",
                capsize=3,
                label=f"{OPPONENTS[opponent]}, {ratio_label(ratio)}",
            )
        ax.axhline(0, color="grey", linewidth=0.8)
        ax.set_title(title, fontsize="medium")
        ax.set_ylabel("difference in test accuracy (points)")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xticks(steps, labels=[f"{n:,.0f}" for n in steps])
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xlabel("SimCLR steps of the search")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="x-small")
    return png(fig)


def write_sweep(names: Sequence[str], out: Path = SWEEP_DIR) -> list[Point]:
    """Read every named experiment, then write the table, figure and each point's params."""
    if not names:
        raise SswpError(
            "no experiments to gather: run `make sweep`, or name them (`dvc exp list` lists them)"
        )
    points = sorted((read_point(name) for name in names), key=lambda p: p.steps)
    table = verdict_table(points)
    atomic.write_text(out / "sweep.csv", to_csv(table))
    atomic.write_text(out / "sweep.md", sweep_markdown(points, table))
    atomic.write_bytes(out / "sweep.png", sweep_png(points, table))
    for point in points:
        atomic.write_text(out / f"{point.name}.params.yaml", point.params_text)
    return points
