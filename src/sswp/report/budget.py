"""The budget of every arm: the self-supervised steps and image pairs its backbone got
before finetuning, and the finetune steps per label ratio; means over seeds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from sswp.config.params import Params
from sswp.pipeline.contract import TWO_STAGE
from sswp.report.arms import PRESERVED, RANDOM, _mean, objective_name, ratio_key
from sswp.report.tables import count_text, markdown_table

BUDGET_ARMS = (PRESERVED, TWO_STAGE, RANDOM)

SSL_KEYS = ("ssl_steps", "ssl_pairs", "ssl_steps_after_freeze", "ssl_pairs_after_freeze")


def finetune_steps_column(ratio: float) -> str:
    """budget.csv's column of one ratio's finetune steps, e.g. `finetune_steps_2%`."""
    return f"finetune_steps_{ratio_key(ratio)}"


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
    return markdown_table(header, "l" + "r" * (len(header) - 1), rows)


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


def two_stage_budget(params: Params) -> str:
    """How the two-stage pre-training was sized: a share of the search's steps, or epochs."""
    budget = getattr(params.pretrain, "budget", "epochs")
    if budget == "search":
        fraction = getattr(params.pretrain, "budget_fraction", 1.0)
        return f"{fraction:g} times the search's self-supervised steps (pretrain.budget: search)"
    return f"{params.pretrain.epochs} epochs"


def budget_line(budget: pd.DataFrame, objective: str) -> str:
    """The budgets of the budget table in one line."""
    rows = budget.set_index("arm")
    name = objective_name(objective)

    def ssl(arm: str) -> str:
        steps, pairs = (count_text(rows.loc[arm, k]) for k in ("ssl_steps", "ssl_pairs"))
        return f"{arm.replace('_', '-')} {steps} {name} steps ({pairs} image pairs)"

    finetune = [c for c in budget.columns if c.startswith("finetune_steps_")]
    steps = ", ".join(
        f"{count_text(rows.loc[TWO_STAGE, c])} at "
        + c.removeprefix("finetune_steps_").replace("_", ".")
        for c in finetune
    )
    return (
        f"Budgets: {ssl(PRESERVED)}, {ssl(TWO_STAGE)}, random 0; "
        f"then finetune steps {steps} (means over seeds)"
    )
