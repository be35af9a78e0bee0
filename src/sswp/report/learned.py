"""Did self-supervision learn? The label-free verdict on each self-supervised backbone.

A backbone whose objective never left chance has learned nothing that a comparison could
test. The verdict reads no label: the held-out loss of the backbone that is finetuned and
probed (the preserved weights' child with the search's head; the two-stage backbone), and
whether its linear probe beats the random backbone's on the validation split.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sswp.pipeline.contract import TWO_STAGE
from sswp.report.arms import PRESERVED, RANDOM

# A self-supervised backbone learned when its held-out loss is at most this share of chance.
LEARNED_SHARE = 0.9
NOT_LEARNED = "§"


@dataclass(frozen=True)
class SslCheck:
    """Whether one self-supervised arm's backbone learned, judged without labels.

    `losses` are each seed's final held-out loss of the backbone that is finetuned and
    probed, `chance` that loss when no view is told from another; `probe` and
    `random_probe` are the validation accuracies of its linear probe and of the random
    backbone's, means over seeds and label ratios (None where not measured).
    """

    arm: str
    losses: tuple[float, ...]
    chance: float
    probe: float | None = None
    random_probe: float | None = None

    @property
    def seeds_near_chance(self) -> int:
        return sum(loss > LEARNED_SHARE * self.chance for loss in self.losses)

    @property
    def probe_no_better(self) -> bool:
        return None not in (self.probe, self.random_probe) and self.probe <= self.random_probe

    @property
    def learned(self) -> bool:
        return not self.seeds_near_chance and not self.probe_no_better

    def reasons(self) -> list[str]:
        """Why the arm is marked, in words (none when it learned)."""
        out = []
        if self.seeds_near_chance:
            worst = max(self.losses)
            out.append(
                f"its held-out loss is not {100 * (1 - LEARNED_SHARE):g} % below chance "
                f"({self.chance:.3f}) in {self.seeds_near_chance} of {len(self.losses)} seeds "
                f"(highest {worst:.3f})"
            )
        if self.probe_no_better:
            out.append(
                f"its linear probe's validation accuracy ({100 * self.probe:.2f} %) is not above "
                f"the random backbone's ({100 * self.random_probe:.2f} %)"
            )
        return out


def ssl_checks(
    searches: Sequence[Mapping[str, Any]],
    pretrains: Sequence[Mapping[str, Any]],
    probes: Mapping[str, Mapping[float, Sequence[Mapping[str, Any]]]],
    architecture: str,
) -> dict[str, SslCheck]:
    """The check of each self-supervised arm whose label-free measure was taken: the
    preserved weights (the child of `architecture` with the search's head) and two-stage."""
    measured = {
        PRESERVED: [
            (s.get(architecture, {}).get("child_val_ssl_loss"), s.get("val_ssl_chance"))
            for s in searches
        ],
        TWO_STAGE: [(p.get("val_ssl_loss"), p.get("val_ssl_chance")) for p in pretrains],
    }
    out = {}
    for arm, seeds in measured.items():
        if not seeds or any(None in seed for seed in seeds):
            continue
        out[arm] = SslCheck(
            arm,
            tuple(loss for loss, _ in seeds),
            seeds[0][1],
            _mean_probe(probes.get(arm)),
            _mean_probe(probes.get(RANDOM)),
        )
    return out


def _mean_probe(by_ratio: Mapping[float, Sequence[Mapping[str, Any]]] | None) -> float | None:
    if not by_ratio:
        return None
    return statistics.fmean(run["val_acc"] for runs in by_ratio.values() for run in runs)


def unlearned_arms(checks: Mapping[str, SslCheck]) -> frozenset[str]:
    """The arm keys of the label-ratio tables that get the NOT_LEARNED mark: every finetune
    and probe of an arm whose self-supervision did not learn."""
    inits = {check.arm for check in checks.values() if not check.learned}
    return frozenset(f"{stage}_{init}" for init in inits for stage in ("finetune", "linear"))


def not_learned_note() -> str:
    """The footnote that explains the mark."""
    return (
        f"{NOT_LEARNED} self-supervision did not learn: the arm's backbone has a held-out "
        f"self-supervised loss not {100 * (1 - LEARNED_SHARE):g} % below chance in some seed, "
        "or a linear probe no better on the validation split than the random backbone's. "
        "Its accuracies do not test the paper's claim."
    )


def path_check(curves: Sequence[Any], chance: float) -> SslCheck:
    """The search's supernet on the path it keeps, at the search's end (no probe exists)."""
    return SslCheck("search", tuple(curve.loss[-1] for curve in curves), chance)


def ssl_markdown(
    checks: Mapping[str, SslCheck],
    path: SslCheck | None,
    name: str,
    accuracies: Mapping[str, float],
) -> str:
    """One row per self-supervised backbone: its final held-out loss per seed, the mean
    accuracy, chance and the verdict; then how to read it."""
    rows = []
    for key, label, check in (
        ("search", "search: the supernet on the path it keeps, at the search's end", path),
        (PRESERVED, "preserved: the derived child (8 edges a cell), the search's head", None),
        (TWO_STAGE, "two-stage: the child at the end of its pre-training", None),
    ):
        check = check or checks.get(key)
        if check is None:
            continue
        verdict = "yes" if check.learned else f"no {NOT_LEARNED}"
        losses = ", ".join(f"{loss:.3f}" for loss in check.losses)
        rows.append([label, losses, f"{100 * accuracies[key]:.1f}", f"{check.chance:.3f}", verdict])
    if not rows:
        return "Not measured: the run has no validation split, or its objective reads labels."
    header = [
        "self-supervised backbone",
        f"held-out {name} loss, per seed",
        "accuracy (%), mean",
        "chance",
        "learned?",
    ]
    table = "| " + " | ".join(header) + " |\n|---|---|---:|---:|---|\n"
    table += "\n".join("| " + " | ".join(row) + " |" for row in rows)
    return "\n\n".join([table, ssl_note(name)])


def ssl_note(name: str) -> str:
    return (
        f"The {name} objective on the validation images, two fixed augmented views each, "
        "labels unread: no arm trains on them. Chance is ln(2B - 1) for batches of B pairs, "
        "every view's positive as likely as any other view. A backbone learned when its loss "
        f"is at most {LEARNED_SHARE:g} times chance in every seed and its linear probe beats "
        "the random backbone's on the validation split. The search's supernet runs all 14 "
        "edges of a cell on the path it keeps; the child keeps 8 of them: the first two rows "
        "differ by what dropping the other 6 costs."
    )


def ssl_metrics(checks: Mapping[str, SslCheck], path: SslCheck | None) -> dict[str, Any]:
    """metrics.json's `ssl.<backbone>`: the mean final held-out loss, chance, and whether it
    learned (1 or 0)."""
    found = {**({"search": path} if path else {}), **checks}
    return {
        key: {
            "val_ssl_loss": round(statistics.fmean(check.losses), 4),
            "chance": round(check.chance, 4),
            "learned": int(check.learned),
        }
        for key, check in found.items()
    }
