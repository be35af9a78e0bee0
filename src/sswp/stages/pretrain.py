"""`sswp pretrain`: the two-stage baseline's SimCLR pre-training of finetune.architecture.

Random init, every training image outside the validation split or the search's weight half
(`pretrain.images`), labels unused; the backbone it leaves in
artifacts/pretrain/seed-S/ initialises `sswp finetune --init two_stage` and
`sswp linear_eval`'s two-stage arm.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math

import numpy as np

from sswp.config.params import Params
from sswp.data.datasets import load_prepared
from sswp.data.loaders import make_loader
from sswp.data.splits import Splits
from sswp.engine.children import loader_context, run_checkpointer, save_run
from sswp.engine.hardware import setup
from sswp.engine.heldout import heldout_objective
from sswp.engine.interrupt import run_logged
from sswp.engine.pretrain import ContrastiveChild, PretrainLoop
from sswp.errors import SswpError
from sswp.models.build import build_child, input_files
from sswp.pipeline.paths import BUDGET_FILE, search_dir, seed_tag
from sswp.pipeline.plan import pretrain_plan
from sswp.pipeline.seeds import add_seed_argument


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_seed_argument(parser)


def pretrain_images(params: Params, num_train: int, splits: Splits) -> np.ndarray:
    """The training images pre-trained on: all outside the validation split (which the
    label-free measure reads), or the search's weight half."""
    if params.pretrain.images == "search_weights":
        return splits.search_weights
    return np.setdiff1d(np.arange(num_train), splits.validation)


def search_steps(seed: int) -> int:
    """The SimCLR weight steps that the search of `seed` recorded for its weights."""
    path = search_dir(seed) / BUDGET_FILE
    rerun = f"rerun `sswp search --seed {seed}`"
    if not path.is_file():
        raise SswpError(f"{path} not found; {rerun} (pretrain.budget: search reads it)")
    try:
        steps = json.loads(path.read_text())["ssl_steps"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
        raise SswpError(f"{path} holds no ssl_steps ({type(exc).__name__}); {rerun}") from exc
    if not isinstance(steps, int) or steps < 1:
        raise SswpError(f"{path}: ssl_steps = {steps!r} is not a positive integer; {rerun}")
    return steps


def with_batch_size(params: Params) -> Params:
    """pretrain.budget: search pre-trains at the search's batch size, so that a step of each
    arm sees as many image pairs."""
    if params.pretrain.budget != "search":
        return params
    pretrain = dataclasses.replace(params.pretrain, batch_size=params.search.batch_size)
    return dataclasses.replace(params, pretrain=pretrain)


def with_epochs(params: Params, steps_per_epoch: int) -> Params:
    """pretrain.budget: search runs the epochs that give budget_fraction of the search's
    steps (all of them, exactly, when both read the search's weight half at one batch size)."""
    if params.pretrain.budget != "search":
        return params
    target = params.pretrain.budget_fraction * search_steps(params.seed)
    epochs = max(1, math.ceil(round(target) / steps_per_epoch))
    return dataclasses.replace(params, pretrain=dataclasses.replace(params.pretrain, epochs=epochs))


def run(params: Params, args: argparse.Namespace) -> None:
    tag = seed_tag(params.seed)
    name = f"pretrain/{tag}"
    architecture = params.finetune.architecture
    hw = setup(params.runtime, params.seed, params.data)
    data, splits, manifest = load_prepared()
    recipe = with_batch_size(params)
    context = loader_context(
        recipe, data, manifest, hw, ("pretrain.batch_size", recipe.pretrain.batch_size)
    )
    train_loader = make_loader(
        data.train_x,
        data.train_y,
        pretrain_images(params, len(data.train_y), splits),
        "simclr",
        context,
        name=f"{name} training",
        shuffle=True,
        drop_last=True,
    )
    recipe = with_epochs(recipe, len(train_loader))
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
        recipe={"epochs": recipe.pretrain.epochs, "batch_size": recipe.pretrain.batch_size},
    )
    heldout = heldout_objective(data.train_x, splits.validation, context, hw)
    loop = PretrainLoop(model, train_loader, recipe.pretrain, params.runtime, hw, name, heldout)
    history = run_logged(loop, name, checkpointer, hw.dist.is_main)
    if not hw.dist.is_main:
        return
    final = history[-1]
    steps = recipe.pretrain.epochs * len(train_loader)
    metrics = {
        "ssl_steps": steps,
        "ssl_pairs": steps * recipe.pretrain.batch_size,
        "epochs": recipe.pretrain.epochs,
        "objective_loss": final["objective_loss"],
        "objective_acc": final["objective_acc"],
        **{key: final[key] for key in ("val_ssl_loss", "val_ssl_acc") if key in final},
        **({} if heldout is None else {"val_ssl_chance": heldout.chance}),
        "op_updates": steps,
        "op_lr_updates": loop.lr_sum,
        "pretrain_hours": loop.clock.hours(),
        "params_m": sum(p.numel() for p in loop.trainable) / 1e6,
        "architecture": architecture,
        "seed": params.seed,
    }
    save_run(pretrain_plan(params.seed), params, child, history, metrics)
    checkpointer.clear()
