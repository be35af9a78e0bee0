"""What one stage run reads and writes, as the stage contract (sswp.pipeline.contract) declares it.

The guard uses a plan to lock the run, clean up its orphan temp files and check the records
of its inputs; the stage uses it to write its outputs and their record.
"""

from __future__ import annotations

import argparse
from typing import get_args

from sswp.config.params import Params, Reference
from sswp.pipeline.contract import Run, finetune_stage, run_of, runs


def prepare_plan() -> Run:
    return run_of("prepare")


def search_plan(seed: int) -> Run:
    return run_of("search", seed=seed)


def train_plan(architecture: str, seed: int) -> Run:
    stage = "train_reference" if architecture in get_args(Reference) else "train"
    return run_of(stage, seed=seed, architecture=architecture)


def pretrain_plan(seed: int) -> Run:
    return run_of("pretrain", seed=seed)


def finetune_plan(init: str, ratio: float, seed: int) -> Run:
    return run_of(finetune_stage(init), seed=seed, init=init, ratio=ratio)


def linear_eval_plan(ratio: float, seed: int) -> Run:
    return run_of("linear_eval", seed=seed, ratio=ratio)


def report_plan(params: Params) -> Run:
    """The report reads every run's folder. results/ holds no record: its params.yaml holds
    every param, and both drivers rerun the report whenever any of them changes."""
    return runs(params)[-1]


def plan_for(stage: str, params: Params, args: argparse.Namespace) -> Run:
    """The plan of `sswp <stage>` as called with `args`."""
    seed = params.seed
    if stage == "prepare":
        return prepare_plan()
    if stage == "search":
        return search_plan(seed)
    if stage == "train":
        return train_plan(args.architecture or params.train.architectures[0], seed)
    if stage == "pretrain":
        return pretrain_plan(seed)
    if stage == "finetune":
        return finetune_plan(args.init, args.ratio, seed)
    if stage == "linear_eval":
        return linear_eval_plan(args.ratio, seed)
    return report_plan(params)
