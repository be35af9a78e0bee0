"""results/metrics.json and results/headline.json: the report's numbers, nested under
dot-free keys, for `sswp compare`, `dvc metrics` and `dvc exp show`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from sswp.report.arms import ALL_ARMS, ratio_key
from sswp.report.learned import SslCheck
from sswp.report.stats import VERDICT_CODES
from sswp.report.tables import _present

# headline.json's short keys, so that `dvc metrics show` and `dvc exp show` fit 200 columns:
# per ratio, the finetuned arms' mean test accuracy and the verdict of preserved against each
# other arm, as VERDICT_CODES (1 better, 0 no difference detected, -1 worse).
HEADLINE_ARMS = {"preserved": "pres", "random": "rand", "two_stage": "two"}

HEADLINE_VERDICTS = {"random": "vs_rand", "two_stage": "vs_two"}


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
    main: pd.DataFrame,
    ratios: pd.DataFrame,
    comparisons: pd.DataFrame,
    architecture: str,
    checks: Mapping[str, SslCheck] | None = None,
) -> dict[str, Any]:
    """The few numbers that `dvc metrics show` and `dvc exp show` display, short-keyed.

    `test_error` is the mean test error (%) of `architecture` trained from scratch (absent
    when it was not trained). Then per label ratio (`ratio_key`), in HEADLINE_ARMS' short
    keys, every finetuned arm's mean test accuracy (%), and under HEADLINE_VERDICTS the
    verdict code of the finetuned preserved weights against that arm (absent with one seed:
    no interval). Under `learned`, whether each self-supervised arm's backbone learned (1)
    or not (0), by the label-free measure (`checks`). The paired differences and their
    intervals are in metrics.json and comparisons.csv: as DVC metrics they would make the
    tables wider than 200 columns.
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
    if checks:
        out["learned"] = {HEADLINE_ARMS[arm]: int(check.learned) for arm, check in checks.items()}
    return out
