"""The report's tables, markdown and plot, built from metric dicts as pure functions.

Reading and writing files is the stage's job (sswp.stages.report), so everything here can be
tested on plain dicts and produces its output in memory, ready for an all-or-nothing write.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

SUMMARY_COLUMNS = (
    "run",
    "init",
    "label_ratio",
    "labelled_images",
    "test_acc",
    "test_error",
    "params_m",
    "architecture",
)
PLOT_DPI = 120


def percent(fraction: float) -> float:
    """A [0, 1] accuracy as a percent with 2 decimals, the precision every output shows."""
    return round(100 * fraction, 2)


def ratio_label(ratio: float) -> str:
    """A label ratio as a short percent, e.g. 0.1 -> `10%`, 0.025 -> `2.5%`."""
    return f"{100 * ratio:g}%"


def _row(run: str, init: str, ratio: float, images: int | None, m: Mapping[str, Any]) -> dict:
    acc = percent(m["test_acc"])
    return {
        "run": run,
        "init": init,
        "label_ratio": float(ratio),
        "labelled_images": images,
        "test_acc": acc,
        "test_error": round(100 - acc, 2),
        "params_m": m["params_m"],
        "architecture": m["architecture"],
    }


def summary_table(
    scratch: Mapping[str, Any], finetune: Sequence[Mapping[str, Any]]
) -> pd.DataFrame:
    """One row per trained model: the scratch run first, then finetunes by label ratio, init.

    `finetune` entries are finetune metrics carrying `init` and `label_ratio`; the scratch run
    saw every label, so its ratio is 1.0 and its labelled-image count is left empty.
    """
    rows = [_row("scratch", "scratch", 1.0, None, scratch)]
    rows += sorted(
        (_row("finetune", m["init"], m["label_ratio"], m["labelled_images"], m) for m in finetune),
        key=lambda r: (r["label_ratio"], r["init"]),
    )
    table = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))
    table["labelled_images"] = table["labelled_images"].astype("Int64")
    return table


def label_ratio_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Finetune test accuracy (%): one row per label ratio (sorted), one column per init."""
    finetune = summary[summary["run"] == "finetune"]
    wide = finetune.pivot(index="label_ratio", columns="init", values="test_acc").sort_index()
    wide = wide.reindex(columns=sorted(wide.columns)).reset_index()
    wide.columns.name = None
    return wide


def to_csv(table: pd.DataFrame) -> str:
    """CSV text with `\\n` line ends on every platform, so outputs hash the same everywhere."""
    return table.to_csv(index=False, lineterminator="\n")


def label_ratio_markdown(table: pd.DataFrame) -> str:
    """The label-ratio table as markdown, written by hand so no `tabulate` is needed."""
    inits = [c for c in table.columns if c != "label_ratio"]
    lines = [
        "| label ratio | " + " | ".join(inits) + " |",
        "|---:|" + "---:|" * len(inits),
    ]
    for _, row in table.iterrows():
        cells = [ratio_label(row["label_ratio"])] + [f"{row[i]:.2f}" for i in inits]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def summary_markdown(
    dataset: str,
    genotype_short: str,
    search: Mapping[str, Any],
    scratch: Mapping[str, Any],
    label_ratios: pd.DataFrame,
) -> str:
    """The human report: what was searched, what it cost, and how well it trains."""
    return "\n".join(
        [
            f"# SSWP-NAS report: {dataset}",
            "",
            f"- Dataset: {dataset}",
            f"- Architecture: `{scratch['architecture']}` snapshot, "
            f"{scratch['params_m']:.3f} M parameters",
            f"- Search cost: {search['search_hours']:.2f} hours on {search['device']} (no labels)",
            f"- Scratch test accuracy: {percent(scratch['test_acc']):.2f}% (all labels)",
            "",
            "## Genotype",
            "",
            "```text",
            genotype_short,
            "```",
            "",
            "## Finetune test accuracy (%) by label ratio",
            "",
            label_ratio_markdown(label_ratios),
            "",
        ]
    )


def label_ratio_png(table: pd.DataFrame) -> bytes:
    """Accuracy vs label ratio as PNG bytes: one line per init, log x with percent ticks.

    Uses a bare Figure (Agg renders it) rather than pyplot, so no global backend or figure
    state is touched; the Software metadata is dropped so the bytes don't carry a version.
    """
    fig = Figure(figsize=(5, 3.5))
    ax = fig.add_subplot()
    ratios = table["label_ratio"].tolist()
    for init in (c for c in table.columns if c != "label_ratio"):
        ax.plot(ratios, table[init], marker="o", label=init)
    ax.set_xscale("log")
    ax.set_xticks(ratios, labels=[ratio_label(r) for r in ratios])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("labelled fraction of the training set")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(title="init")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=PLOT_DPI, metadata={"Software": None})
    return buf.getvalue()
