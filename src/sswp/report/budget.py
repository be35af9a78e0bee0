"""The budget of every arm: the self-supervised steps and image pairs its backbone got
before finetuning, and the finetune steps per label ratio; means over seeds."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from sswp.config.params import Params
from sswp.pipeline.contract import TWO_STAGE
from sswp.report.arms import MISSING, PRESERVED, RANDOM, _mean, objective_name, ratio_key
from sswp.report.tables import count_text, markdown_table

BUDGET_ARMS = (PRESERVED, TWO_STAGE, RANDOM)

SSL_KEYS = ("ssl_steps", "ssl_pairs", "ssl_steps_after_freeze", "ssl_pairs_after_freeze")


def finetune_steps_column(ratio: float) -> str:
    """budget.csv's column of one ratio's finetune steps, e.g. `finetune_steps_2%`."""
    return f"finetune_steps_{ratio_key(ratio)}"


# Per op of the child: the steps that trained it, the same weighted by lr; and the final
# label-free measure of the backbone that is finetuned and probed.
OP_KEYS = ("op_updates_mean", "op_updates_min", "op_updates_max", "op_lr_updates_mean")
MEASURE_KEYS = ("val_ssl_loss", "val_ssl_acc")


def budget_table(
    searches: Sequence[Mapping[str, Any]],
    pretrains: Sequence[Mapping[str, Any]],
    finetune_steps: Mapping[str, Mapping[float, Sequence[int]]],
    architecture: str = "final",
) -> pd.DataFrame:
    """One row per arm: self-supervised weight steps and image pairs before finetuning (total,
    and after the search's last cell froze), the updates each op of the child got, its
    backbone's final label-free measure, then mean finetune steps per label ratio.

    The preserved weights' budget is the search's: its ops' updates are those of the ops the
    `architecture` snapshot keeps, counted from the sampled paths. The two-stage arm's is
    its pre-training's (every op trains in every step), and the random init has none.
    `finetune_steps[init][ratio]` are per-seed step counts; an init that was not finetuned
    leaves its cells empty, and so does a measure that was not taken.
    """
    kept = [s.get(architecture, {}) for s in searches]
    ssl = {
        PRESERVED: {
            **{key: _mean([s[key] for s in searches]) for key in SSL_KEYS},
            **_kept_op_updates(kept),
            **_measures({key: [k.get(f"child_{key}") for k in kept] for key in MEASURE_KEYS}),
        },
        TWO_STAGE: {
            **{key: _mean([p[key] for p in pretrains]) for key in SSL_KEYS[:2]},
            **_every_op_updates(pretrains),
            **_measures({key: [p.get(key) for p in pretrains] for key in MEASURE_KEYS}),
        },
        RANDOM: {"ssl_steps": 0.0, "ssl_pairs": 0.0, **dict.fromkeys(OP_KEYS, 0.0)},
    }
    ratios = sorted({r for by_ratio in finetune_steps.values() for r in by_ratio})
    rows = []
    for arm in BUDGET_ARMS:
        row: dict[str, Any] = {"arm": arm, **ssl[arm]}
        for ratio in ratios:
            steps = finetune_steps.get(arm, {}).get(ratio)
            row[finetune_steps_column(ratio)] = _mean(steps) if steps else None
        rows.append(row)
    columns = ["arm", *SSL_KEYS, *OP_KEYS, *MEASURE_KEYS]
    columns += [finetune_steps_column(r) for r in ratios]
    return pd.DataFrame(rows, columns=columns).astype({c: float for c in columns[1:]})


def _kept_op_updates(snapshots: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """The search's updates of the ops each seed's child keeps: the mean of the seeds' means,
    the lowest and highest over every seed's kept ops."""
    if not all("kept_op_updates_mean" in s for s in snapshots):
        return {}
    return {
        "op_updates_mean": _mean([s["kept_op_updates_mean"] for s in snapshots]),
        "op_updates_min": min(s["kept_op_updates_min"] for s in snapshots),
        "op_updates_max": max(s["kept_op_updates_max"] for s in snapshots),
        "op_lr_updates_mean": _mean([s["kept_op_lr_updates_mean"] for s in snapshots]),
    }


def _every_op_updates(pretrains: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Pre-training trains every op in every step: its updates are its steps."""
    if not all("op_updates" in p for p in pretrains):
        return {}
    updates = [p["op_updates"] for p in pretrains]
    return {
        "op_updates_mean": _mean(updates),
        "op_updates_min": min(updates),
        "op_updates_max": max(updates),
        "op_lr_updates_mean": _mean([p["op_lr_updates"] for p in pretrains]),
    }


def _measures(values: Mapping[str, Sequence[float | None]]) -> dict[str, float]:
    """The mean over seeds of each measure that every seed took."""
    return {
        key: round(statistics.fmean(seeds), 4)
        for key, seeds in values.items()
        if seeds and all(v is not None for v in seeds)
    }


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
        "updates per op of the child, mean (min–max)",
        "lr-weighted updates per op",
        f"held-out {name} loss",
        f"held-out {name} accuracy",
        *(f"finetune steps at {ratio}" for ratio in ratio_names),
    ]
    rows = [
        [
            r["arm"].replace("_", "-"),
            *(count_text(r[c]) for c in SSL_KEYS),
            _updates_text(r),
            _number_text(r["op_lr_updates_mean"], ",.1f"),
            *(_number_text(r[c], ".3f") for c in MEASURE_KEYS),
            *(count_text(r[c]) for c in ratios),
        ]
        for _, r in table.iterrows()
    ]
    return markdown_table(header, "l" + "r" * (len(header) - 1), rows)


def _updates_text(row: Any) -> str:
    if pd.isna(row["op_updates_mean"]):
        return MISSING
    mean, low, high = (count_text(row[c]) for c in OP_KEYS[:3])
    return mean if low == high else f"{mean} ({low}–{high})"


def _number_text(value: float, spec: str) -> str:
    return MISSING if pd.isna(value) else format(value, spec)


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
