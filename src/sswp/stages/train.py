"""`sswp train`: train the searched architecture from scratch on all labels."""

from __future__ import annotations

import argparse

import numpy as np

from sswp.config import Params
from sswp.data.datasets import load_prepared
from sswp.engine.runtime import setup
from sswp.paths import METRICS_DIR, TRAIN_DIR
from sswp.stages.children import build_child, fit_and_save


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """train takes everything from params.yaml."""


def run(params: Params, args: argparse.Namespace) -> None:
    device = setup(params.runtime, params.seed)
    data, _, manifest = load_prepared()
    sp = params.train
    model = build_child(params, data, sp.architecture, "random", sp)
    fit_and_save(
        params,
        data,
        manifest,
        model,
        np.arange(len(data.train_y)),
        sp,
        device,
        "train",
        TRAIN_DIR,
        METRICS_DIR / "train.json",
        {"architecture": sp.architecture},
    )
