"""`sswp train`: train an architecture from scratch on all labels (a snapshot or a reference)."""

from __future__ import annotations

import argparse

import numpy as np

from sswp.config.params import Params
from sswp.data.datasets import load_prepared
from sswp.engine.children import ChildRun, fit_and_save
from sswp.engine.hardware import setup
from sswp.nas.reference import REFERENCES
from sswp.pipeline.paths import SNAPSHOTS, train_tag
from sswp.pipeline.plan import train_plan
from sswp.pipeline.seeds import add_seed_argument

ARCHITECTURES = (*SNAPSHOTS, *REFERENCES)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_seed_argument(parser)
    parser.add_argument(
        "--architecture",
        choices=ARCHITECTURES,
        help="a search snapshot or a reference genotype (default: the first of "
        "train.architectures)",
    )


def run(params: Params, args: argparse.Namespace) -> None:
    architecture = args.architecture or params.train.architectures[0]
    hw = setup(params.runtime, params.seed, params.data)
    data, _, manifest = load_prepared()
    child_run = ChildRun(
        stage="train",
        tag=train_tag(architecture, params.seed),
        architecture=architecture,
        init="random",
        train_indices=np.arange(len(data.train_y)),
        plan=train_plan(architecture, params.seed),
        validation=np.zeros(0, dtype=np.int64),  # all labels, as the paper's main table
    )
    fit_and_save(params, data, manifest, child_run, hw)
