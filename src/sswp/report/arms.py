"""The arms of the comparison and how every output names them: arms, label ratios,
percents, objectives, and means over seeds."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import get_args

from sswp.config.params import OptionalInit, Params
from sswp.nas.reference import DISPLAY_NAMES
from sswp.pipeline.contract import FINETUNE_INITS, LINEAR_EVAL_ARMS, TWO_STAGE

MISSING = "—"


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


def method_name(architecture: str, objective: str) -> str:
    """How the main table names an architecture: the search that found it, or the reference."""
    if architecture in DISPLAY_NAMES:
        return DISPLAY_NAMES[architecture]
    return f"SSWP-NAS ({objective}, {architecture})"


PRESERVED, RANDOM = "preserved", "random"

OBJECTIVE_NAMES = {"simclr": "SimCLR", "byol": "BYOL", "supervised": "supervised"}


def objective_name(objective: str) -> str:
    """How the budget tables name the search objective's steps: `SimCLR steps`."""
    return OBJECTIVE_NAMES.get(objective, objective)


def _mean(values: Sequence[float]) -> float:
    """A mean over seeds of counts, to one decimal: seeds may differ by a step."""
    return round(statistics.fmean(values), 1)


def finetune_inits(params: Params) -> tuple[str, ...]:
    """The finetune runs params asks for: finetune.inits plus the always-run two-stage arm."""
    return (*params.finetune.inits, TWO_STAGE)


def finetune_arms(params: Params) -> tuple[Arm, ...]:
    return tuple(a for a in arms(params.finetune.inits) if a.stage == "finetune")
