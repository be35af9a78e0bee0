"""results/summary.md: the human report."""

from __future__ import annotations

import statistics
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import pandas as pd

from sswp.report.tables import label_ratio_sections, main_markdown, search_cost

# Below this many seeds a standard deviation says little about the spread.
MIN_SEEDS_FOR_SPREAD = 3


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
