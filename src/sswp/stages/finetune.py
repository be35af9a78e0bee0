"""`sswp finetune`: train on a class-balanced label fraction from preserved, random or
two-stage (SimCLR pre-trained) weights."""

from __future__ import annotations

import argparse

from sswp.config.params import Params
from sswp.data.datasets import load_prepared
from sswp.data.splits import labelled_subset
from sswp.engine.children import ChildRun, fit_and_save
from sswp.engine.hardware import setup
from sswp.pipeline.contract import FINETUNE_INITS, finetune_stage
from sswp.pipeline.paths import ratio_tag
from sswp.pipeline.plan import finetune_plan
from sswp.pipeline.seeds import add_seed_argument


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_seed_argument(parser)
    parser.add_argument("--ratio", type=float, required=True, help="label ratio in (0, 1]")
    parser.add_argument(
        "--init",
        choices=FINETUNE_INITS,
        required=True,
        help="preserved: the search's weights; random; two_stage: `sswp pretrain`'s weights",
    )


def run(params: Params, args: argparse.Namespace) -> None:
    hw = setup(params.runtime, params.seed, params.data)
    data, splits, manifest = load_prepared()
    indices = labelled_subset(
        data.train_y, splits.validation, params.data.split_seed, params.seed, args.ratio
    )
    child_run = ChildRun(
        stage=finetune_stage(args.init),
        tag=ratio_tag(args.init, args.ratio, params.seed),
        architecture=params.finetune.architecture,
        init=args.init,
        train_indices=indices,
        validation=splits.validation,
        plan=finetune_plan(args.init, args.ratio, params.seed),
        extra_metrics={
            "init": args.init,
            "label_ratio": args.ratio,
            "labelled_images": len(indices),
        },
    )
    fit_and_save(params, data, manifest, child_run, hw)
