"""`sswp pretrain`: the two-stage baseline's SimCLR pre-training of finetune.architecture.

Random init, every training image or the search's weight half (`pretrain.images`), labels
unused; the backbone it leaves in
artifacts/pretrain/seed-S/ initialises `sswp finetune --init two_stage` and
`sswp linear-eval`'s two-stage arm.
"""

from __future__ import annotations

import argparse

import numpy as np

from sswp.config import Params
from sswp.data.datasets import load_prepared
from sswp.data.loaders import make_loader
from sswp.data.splits import Splits
from sswp.engine.interrupt import run_logged
from sswp.engine.pretrain import ContrastiveChild, PretrainLoop
from sswp.engine.runtime import setup
from sswp.paths import seed_tag
from sswp.stages.children import (
    build_child,
    input_files,
    loader_options,
    run_checkpointer,
    save_run,
)
from sswp.stages.plan import pretrain_plan
from sswp.stages.seeds import add_seed_argument


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_seed_argument(parser)


def pretrain_images(params: Params, num_train: int, splits: Splits) -> np.ndarray:
    """The training images pre-trained on: all of them, or the search's weight half."""
    if params.pretrain.images == "search_weights":
        return splits.search_weights
    return np.arange(num_train)


def run(params: Params, args: argparse.Namespace) -> None:
    tag = seed_tag(params.seed)
    name = f"pretrain/{tag}"
    architecture = params.finetune.architecture
    hw = setup(params.runtime, params.seed, params.data)
    data, splits, manifest = load_prepared()
    options = loader_options(params, data, manifest, hw, "pretrain.batch_size")
    train_loader = make_loader(
        data.train_x,
        data.train_y,
        pretrain_images(params, len(data.train_y), splits),
        "simclr",
        shuffle=True,
        drop_last=True,
        name=f"{name} training",
        **options,
    )
    child = build_child(
        params,
        data.num_classes,
        architecture,
        "random",
        auxiliary=False,
        affine_cells=params.pretrain.bn_affine,
    )
    model = hw.model(ContrastiveChild(child))
    checkpointer = run_checkpointer(
        params,
        manifest,
        "pretrain",
        tag,
        input_files(params, architecture, "random"),
        hw.dist.is_main,
    )
    loop = PretrainLoop(model, train_loader, params.pretrain, params.runtime, hw, name)
    history = run_logged(loop, name, checkpointer, hw.dist.is_main)
    if not hw.dist.is_main:
        return
    final = history[-1]
    metrics = {
        "objective_loss": final["objective_loss"],
        "objective_acc": final["objective_acc"],
        "pretrain_hours": loop.clock.hours(),
        "params_m": sum(p.numel() for p in loop.trainable) / 1e6,
        "architecture": architecture,
        "seed": params.seed,
    }
    save_run(pretrain_plan(params.seed), params, child, history, metrics)
    checkpointer.clear()
