"""What one stage run reads and writes: the same paths and commands as dvc.yaml and the rules.

The guard uses a plan to lock the run, clean up its orphan temp files and check the records
of its inputs; the stage uses it to write its outputs and their record.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

from sswp.config import Params
from sswp.nas.reference import REFERENCES
from sswp.paths import (
    PREPARED_DIR,
    RESULTS_DIR,
    artifact_dir,
    metrics_path,
    probe_tag,
    ratio_tag,
    search_dir,
    seed_tag,
    train_tag,
)

LINEAR_EVAL_ARMS = ("preserved", "two_stage")


@dataclass(frozen=True)
class StagePlan:
    """One stage run: its dvc.yaml stage, the command that reruns it, its inputs and outputs."""

    stage: str  # the dvc.yaml stage: which params and code digests its record holds
    name: str  # e.g. `search/seed-0`: the run's lock, one run at a time
    command: str
    artifact: Path  # the folder that holds the run's record
    files: tuple[Path, ...] = ()  # its other outputs (metrics files)
    inputs: dict[Path, str] = field(default_factory=dict)  # folder read -> command making it
    temp_dirs: tuple[Path, ...] = ()  # folders where every `.*.tmp` is this run's

    def orphans(self) -> list[Path]:
        """Temp files and folders that an interrupted write of these outputs left behind."""
        found: set[Path] = set()
        for path in (self.artifact, *self.files):
            found.update(path.parent.glob(f".{path.name}.*.tmp"))
        for folder in self.temp_dirs:
            found.update(folder.glob(".*.tmp"))
        return sorted(found)


def search_command(seed: int) -> str:
    return f"sswp search --seed {seed}"


def pretrain_command(seed: int) -> str:
    return f"sswp pretrain --seed {seed}"


def prepare_plan() -> StagePlan:
    return StagePlan("prepare", "prepare", "sswp prepare", PREPARED_DIR)


def search_plan(seed: int) -> StagePlan:
    return StagePlan(
        "search",
        f"search/{seed_tag(seed)}",
        search_command(seed),
        search_dir(seed),
        (metrics_path("search", seed_tag(seed)),),
        {PREPARED_DIR: "sswp prepare"},
    )


def _child_inputs(seed: int, architecture: str, init: str) -> dict[Path, str]:
    inputs = {PREPARED_DIR: "sswp prepare"}
    if architecture not in REFERENCES:
        inputs[search_dir(seed)] = search_command(seed)
    if init == "two_stage":
        inputs[artifact_dir("pretrain", seed_tag(seed))] = pretrain_command(seed)
    return inputs


def train_plan(architecture: str, seed: int) -> StagePlan:
    tag = train_tag(architecture, seed)
    return StagePlan(
        "train_reference" if architecture in REFERENCES else "train",
        f"train/{tag}",
        f"sswp train --seed {seed} --architecture {architecture}",
        artifact_dir("train", tag),
        (metrics_path("train", tag),),
        _child_inputs(seed, architecture, "random"),
    )


def pretrain_plan(architecture: str, seed: int) -> StagePlan:
    tag = seed_tag(seed)
    return StagePlan(
        "pretrain",
        f"pretrain/{tag}",
        pretrain_command(seed),
        artifact_dir("pretrain", tag),
        (metrics_path("pretrain", tag),),
        _child_inputs(seed, architecture, "random"),
    )


def finetune_plan(architecture: str, init: str, ratio: float, seed: int) -> StagePlan:
    tag = ratio_tag(init, ratio, seed)
    return StagePlan(
        "finetune_two_stage" if init == "two_stage" else "finetune",
        f"finetune/{tag}",
        f"sswp finetune --seed {seed} --init {init} --ratio {float(ratio)}",
        artifact_dir("finetune", tag),
        (metrics_path("finetune", tag),),
        _child_inputs(seed, architecture, init),
    )


def linear_eval_plan(architecture: str, ratio: float, seed: int) -> StagePlan:
    tag = probe_tag(ratio, seed)
    return StagePlan(
        "linear_eval",
        f"linear_eval/{tag}",
        f"sswp linear-eval --seed {seed} --ratio {float(ratio)}",
        artifact_dir("linear_eval", tag),
        tuple(metrics_path("linear_eval", ratio_tag(arm, ratio, seed)) for arm in LINEAR_EVAL_ARMS),
        _child_inputs(seed, architecture, "two_stage"),
    )


def report_plan(params: Params) -> StagePlan:
    """The report reads every run's folder. results/ holds no record: its params.yaml holds
    every param, and both drivers rerun the report whenever any of them changes."""
    inputs: dict[Path, str] = {}
    arch = params.finetune.architecture
    for seed in params.seeds:
        inputs.update(_child_inputs(seed, arch, "two_stage"))
        for architecture in params.train.trained():
            plan = train_plan(architecture, seed)
            inputs[plan.artifact] = plan.command
        for ratio in params.finetune.label_ratios:
            for init in (*params.finetune.inits, "two_stage"):
                plan = finetune_plan(arch, init, ratio, seed)
                inputs[plan.artifact] = plan.command
            plan = linear_eval_plan(arch, ratio, seed)
            inputs[plan.artifact] = plan.command
    return StagePlan("report", "report", "sswp report", RESULTS_DIR, (), inputs, (RESULTS_DIR,))


def plan_for(stage: str, params: Params, args: argparse.Namespace) -> StagePlan:
    """The plan of `sswp <stage>` as called with `args`."""
    seed = params.seed
    if stage == "prepare":
        return prepare_plan()
    if stage == "search":
        return search_plan(seed)
    if stage == "train":
        return train_plan(args.architecture or params.train.architectures[0], seed)
    if stage == "pretrain":
        return pretrain_plan(params.finetune.architecture, seed)
    if stage == "finetune":
        return finetune_plan(params.finetune.architecture, args.init, args.ratio, seed)
    if stage == "linear-eval":
        return linear_eval_plan(params.finetune.architecture, args.ratio, seed)
    return report_plan(params)
