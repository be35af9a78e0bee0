"""The report's figures, rendered to PNG bytes in memory (Agg, no pyplot state), so that
their bytes depend on the data alone."""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, NullLocator

from sswp.nas.genotype import STEPS, edge_index, reduction_cells
from sswp.nas.ops import CANDIDATE_OPS, SHORT_NAMES
from sswp.report.arms import ALL_ARMS, Arm, ratio_label
from sswp.report.curves import Curve, SslCurve
from sswp.report.learned import LEARNED_SHARE

PLOT_DPI = 120

HEATMAP_DPI = 100


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


BAND = "the band spans the lowest to the highest seed"


def band(seeds: Sequence[Curve]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Steps, mean, lowest and highest test accuracy (%) over seeds, at the epochs every seed
    evaluated; a seed's steps may differ slightly, so the x of an epoch is their mean."""
    epochs = min(c.epochs for c in seeds)
    shared = [i for i in range(epochs) if all(c.test_acc[i] is not None for c in seeds)]
    acc = 100 * np.array([[c.test_acc[i] for i in shared] for c in seeds], dtype=float)
    steps = np.array([[(c.steps or ())[i] for i in shared] for c in seeds], dtype=float)
    return steps.mean(axis=0), acc.mean(axis=0), acc.min(axis=0), acc.max(axis=0)


def learning_curves_png(runs: Mapping[Arm, Mapping[float, Sequence[Curve]]]) -> bytes:
    """Test accuracy against finetune step, one panel per ratio, one line per arm: the mean
    over seeds, shaded from the lowest to the highest seed."""
    ratios = sorted({r for by_ratio in runs.values() for r in by_ratio})
    panels = {
        f"finetune, {ratio_label(ratio)} of labels": {
            arm.label: band(by_ratio[ratio]) for arm, by_ratio in runs.items()
        }
        for ratio in ratios
    }
    fig = band_figure(panels, "finetune step")
    fig.suptitle(f"Mean over seeds; {BAND}", fontsize="small")
    return png(fig)


def ssl_curves_png(
    lines: Mapping[str, Sequence[SslCurve]],
    points: Mapping[str, tuple[float, Sequence[float]]],
    chance: float,
    name: str,
) -> bytes:
    """The held-out self-supervised loss against self-supervised step, with chance marked.

    `lines[label]` are per-seed curves, drawn as their mean shaded from the lowest to the
    highest seed; `points[label]` a step and its per-seed losses, drawn as one marker with
    that range. The dotted line is the loss a backbone must reach to count as learned.
    """
    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    ax = fig.add_subplot()
    for label, curves in lines.items():
        epochs = min(len(c.loss) for c in curves)
        steps = np.mean([c.steps[:epochs] for c in curves], axis=0)
        loss = np.array([c.loss[:epochs] for c in curves])
        ax.plot(steps, loss.mean(axis=0), marker="." if epochs < 30 else None, label=label)
        ax.fill_between(steps, loss.min(axis=0), loss.max(axis=0), alpha=0.2)
    for label, (step, losses) in points.items():
        mean = float(np.mean(losses))
        spread = [[mean - min(losses)], [max(losses) - mean]]
        ax.errorbar([step], [mean], yerr=spread, fmt="D", capsize=3, label=label)
    ax.axhline(chance, color="grey", linestyle="--", label=f"chance, ln(2B - 1) = {chance:.2f}")
    ax.axhline(
        LEARNED_SHARE * chance,
        color="grey",
        linestyle=":",
        label=f"learned: at most {LEARNED_SHARE:g} x chance",
    )
    ax.set_xlabel(f"{name} steps")
    ax.set_ylabel(f"held-out {name} loss (validation images)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="x-small")
    fig.suptitle(f"Mean over seeds; {BAND}", fontsize="small")
    return png(fig)
