"""results/summary.md: the human report, one small function per section.

It opens with the run's scale, so that nobody reads a smoke run's numbers as the paper's,
then answers the paper's question, says whether the self-supervised backbones learned at
all (without which the answer tests nothing), and then shows the budgets, the search and
the training behind it.
"""

from __future__ import annotations

import statistics
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from sswp.report.arms import PRESERVED, objective_name
from sswp.report.learned import SslCheck
from sswp.report.tables import label_ratio_sections, main_markdown, search_cost

# Below this many seeds a standard deviation says little about the spread.
MIN_SEEDS_FOR_SPREAD = 3
ARM_NAMES = {PRESERVED: "the preserved weights", "two_stage": "two-stage pre-training"}


@dataclass(frozen=True)
class Summary:
    """What the summary shows, its tables already in markdown where another file shares them.

    `genotypes` maps each seed to the short form of its `architecture` snapshot; `searches`
    and `pretrains` are the per-seed search and pre-training metrics; `checks` the label-free
    verdict of each self-supervised arm; `rising` the label-ratio cells not converged.
    """

    dataset: str
    scale: Sequence[str]
    num_classes: int
    objective: str
    architecture: str
    genotypes: Mapping[int, str]
    searches: Sequence[Mapping[str, Any]]
    pretrains: Sequence[Mapping[str, Any]]
    main: pd.DataFrame
    ratios: pd.DataFrame
    verdicts: str
    ssl: str
    checks: Mapping[str, SslCheck]
    budget: str
    convergence: str
    learning: str
    rising: Collection[tuple[float, str]] = ()
    unlearned: Collection[str] = ()


def summary_markdown(summary: Summary) -> str:
    sections = (
        scale_section,
        verdict_section,
        ssl_section,
        budget_section,
        search_section,
        genotype_section,
        result_sections,
        convergence_section,
        plots_section,
    )
    lines = [f"# SSWP-NAS report: {summary.dataset}", ""]
    for section in sections:
        lines += section(summary)
    return "\n".join(lines)


def _section(title: str, *body: str) -> list[str]:
    return [f"## {title}", "", *(line for part in body for line in (part, ""))]


def scale_section(s: Summary) -> list[str]:
    seeds = len(s.genotypes)
    lines = _section("Scale of this run", "\n".join(f"- {line}" for line in s.scale))
    if seeds < MIN_SEEDS_FOR_SPREAD:
        lines += [
            f"With {seeds} seed{'s' if seeds > 1 else ''}, every ± (sample std over seeds) is "
            f"only indicative; use at least {MIN_SEEDS_FOR_SPREAD} seeds to compare arms.",
            "",
        ]
    return lines


# Where a reader goes from a backbone that did not learn: what was tried, and larger budgets.
LARGER_BUDGETS = (
    "For the default digits run, no faithful search recipe within the 40 minutes a "
    "`make repro` may take made the preserved weights learn (docs/self-supervision.md); "
    "`make sweep` runs this trial at larger search budgets (docs/sweep.md, results/sweep/)."
)


def untested_lines(checks: Mapping[str, SslCheck]) -> list[str]:
    """A sentence for each self-supervised arm whose backbone did not learn, then where to
    look further."""
    lines = [
        f"**This run does not test the paper's claim for {ARM_NAMES[arm]}**: its "
        f"self-supervised backbone did not learn ({'; '.join(check.reasons())})."
        for arm, check in checks.items()
        if not check.learned
    ]
    return [*lines, LARGER_BUDGETS] if lines else []


def verdict_section(s: Summary) -> list[str]:
    return _section("Does weight preservation help?", *untested_lines(s.checks), s.verdicts)


def ssl_section(s: Summary) -> list[str]:
    name = objective_name(s.objective)
    figure = f"![Held-out {name} loss against {name} step](ssl_curves.png)"
    return _section("Did self-supervision learn?", s.ssl, figure)


def budget_section(s: Summary) -> list[str]:
    return _section("Budgets: self-supervised pre-training and finetune steps per arm", s.budget)


def search_section(s: Summary) -> list[str]:
    cost, unit = search_cost(s.searches)
    hours = statistics.fmean(p["pretrain_hours"] for p in s.pretrains)
    labels = max(search["labels_used"] for search in s.searches)
    facts = [
        f"Search objective: {s.objective}",
        f"Seeds: {', '.join(str(seed) for seed in s.genotypes)}",
        f"Search cost: {cost:.2f} {unit} per search (mean over seeds), {labels} labels used",
        f"Two-stage baseline pre-training: {hours:.2f} hours per seed (mean)",
    ]
    return _section("Search", "\n".join(f"- {fact}" for fact in facts))


def genotype_section(s: Summary) -> list[str]:
    seeds = "\n".join(f"seed {seed}: {short}" for seed, short in s.genotypes.items())
    return _section(f"Genotypes (`{s.architecture}` snapshot)", f"```text\n{seeds}\n```")


def result_sections(s: Summary) -> list[str]:
    lines = _section(
        "Test error, trained from scratch on all labels", main_markdown(s.main, s.num_classes)
    )
    title = "## Test accuracy (%) by label ratio, {}".format
    return lines + label_ratio_sections(s.ratios, s.num_classes, s.rising, title, s.unlearned)


def convergence_section(s: Summary) -> list[str]:
    return [
        *_section("Convergence of the finetunes", s.convergence),
        *_section(
            "Learning curves: steps to 90 % of the final test accuracy",
            s.learning,
            "![Finetune test accuracy against step](learning_curves.png)",
        ),
    ]


def plots_section(s: Summary) -> list[str]:
    first_seed = next(iter(s.genotypes))
    return _section(
        "Plots",
        "![Test accuracy against label ratio](label_ratio.png)",
        "![Test accuracy per epoch](training_curves.png)",
        f"![softmax(alpha) - 1/7 during the search of seed {first_seed}](alpha_heatmap.png)",
    )
