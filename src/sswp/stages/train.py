"""`sswp train`: train the searched architecture from scratch on all labels."""

from __future__ import annotations

import argparse

import numpy as np

from sswp.config import Params
from sswp.data.datasets import load_prepared
from sswp.engine.runtime import setup
from sswp.paths import METRICS_DIR, TRAIN_DIR
from sswp.stages.children import ChildRun, fit_and_save


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """train takes everything from params.yaml."""


def run(params: Params, args: argparse.Namespace) -> None:
    hw = setup(params.runtime, params.seed)
    data, _, manifest = load_prepared()
    child_run = ChildRun(
        stage="train",
        name="train",
        init="random",
        train_indices=np.arange(len(data.train_y)),
        out_dir=TRAIN_DIR,
        metrics_path=METRICS_DIR / "train.json",
        extra_metrics={"architecture": params.train.architecture},
    )
    fit_and_save(params, data, manifest, child_run, hw)
