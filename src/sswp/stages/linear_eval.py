"""`sswp linear_eval`: linear classifiers on frozen backbones at one label ratio.

Every arm's backbone is probed with the same labels (this seed's labelled subset), with
BatchNorm statistics re-estimated on unlabelled training images first, under
`linear_eval.protocol`: the
search's preserved weights, the two-stage baseline's pre-trained weights, and the same
architecture at random init, the control that says whether the other two learned anything
beyond what random convolutions already give. Each arm writes its own metrics file, shaped
like a finetune's, so the report treats every arm alike.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from sswp.config.params import Params
from sswp.data.datasets import ArrayDataset, load_prepared
from sswp.data.loaders import LoaderContext, in_order, make_loader
from sswp.data.splits import labelled_subset
from sswp.engine.checkpoint import Checkpointer
from sswp.engine.children import (
    evaluation_loader,
    loader_context,
    run_checkpointer,
    validation_loader,
)
from sswp.engine.hardware import Hardware, setup
from sswp.engine.interrupt import run_logged
from sswp.engine.linear_eval import (
    AugmentedLinearLoop,
    extract_features,
    fit_probe,
    probe_accuracy,
    reestimate_batch_norm,
)
from sswp.engine.logs import MetricLogger
from sswp.engine.supervised import evaluate
from sswp.models.build import build_child, input_files
from sswp.models.child import ChildNetwork
from sswp.pipeline import atomic
from sswp.pipeline.contract import LINEAR_EVAL_ARMS
from sswp.pipeline.outputs import publish
from sswp.pipeline.paths import HISTORY_FILE, MODEL_FILE, metrics_path, ratio_tag
from sswp.pipeline.plan import linear_eval_plan
from sswp.pipeline.records import write_info
from sswp.pipeline.seeds import add_seed_argument

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Probed:
    """One arm's result: what to save, its per-epoch history and its metrics.

    A resumable arm keeps its checkpoint until every arm's outputs are written, so a rerun
    after an interruption does not train the finished arms again.
    """

    state_dict: dict[str, torch.Tensor]
    history: list[dict[str, float]]
    metrics: dict[str, float]
    checkpointer: Checkpointer | None = None


@dataclass(frozen=True)
class LabelledRun:
    """What every arm of one linear_eval run shares."""

    params: Params
    data: ArrayDataset
    manifest: dict[str, Any]
    indices: np.ndarray
    validation: np.ndarray
    ratio: float
    hw: Hardware

    def loader_context(self) -> LoaderContext:
        batch = ("linear_eval.batch_size", self.params.linear_eval.batch_size)
        return loader_context(self.params, self.data, self.manifest, self.hw, batch)


def backbone_of(run: LabelledRun, arm: str) -> ChildNetwork:
    """The arm's network, its BatchNorm statistics re-estimated on every training image
    (no labels, no augmentation), the same way for every arm."""
    params, data, hw = run.params, run.data, run.hw
    model = build_child(params, data.num_classes, params.finetune.architecture, arm, False)
    every_image = np.arange(len(data.train_y))
    context = run.loader_context()
    unlabelled = in_order(data.train_x, data.train_y, every_image, context, "unlabelled")
    reestimate_batch_norm(model.to(hw.device), unlabelled, hw)
    return hw.model(model)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_seed_argument(parser)
    parser.add_argument("--ratio", type=float, required=True, help="label ratio in (0, 1]")


def probe_features(run: LabelledRun, arm: str) -> Probed:
    """Fit the classifier on features computed once, BN in eval mode, no augmentation."""
    params, data, hw = run.params, run.data, run.hw
    context = run.loader_context()
    labelled = in_order(data.train_x, data.train_y, run.indices, context, "labelled")
    backbone = backbone_of(run, arm)
    train_x, train_y = extract_features(backbone, labelled, hw)
    test_x, test_y = extract_features(backbone, evaluation_loader(data, context), hw)
    probe, history = fit_probe(
        train_x,
        train_y,
        data.num_classes,
        params.linear_eval,
        params.seed,
        hw.device,
        test=(test_x, test_y),
    )
    log_history(f"linear_eval/{ratio_tag(arm, run.ratio, params.seed)}", history, hw)
    metrics = {
        "test_acc": probe_accuracy(probe, test_x, test_y),
        "best_test_acc": max(epoch["test_acc"] for epoch in history),
        "train_acc": history[-1]["train_acc"],
    }
    val = validation_loader(data, run.validation, context)
    if val is not None:
        metrics["val_acc"] = probe_accuracy(probe, *extract_features(backbone, val, hw))
    return Probed(probe.cpu().state_dict(), history, metrics)


def log_history(name: str, history: list[dict[str, float]], hw: Hardware) -> None:
    """Per-epoch metrics of a probe fitted in one go, to live/ like every other stage's."""
    metric_logger = MetricLogger(name, enabled=hw.dist.is_main)
    try:
        for epoch, metrics in enumerate(history):
            metric_logger.log_epoch(epoch, metrics)
    finally:
        metric_logger.close()


def probe_augmented(run: LabelledRun, arm: str) -> Probed:
    """The original's protocol: a resumable run over augmented labelled images."""
    params, data, hw = run.params, run.data, run.hw
    context = run.loader_context()
    name = f"linear_eval/{ratio_tag(arm, run.ratio, params.seed)}"
    train_loader = make_loader(
        data.train_x,
        data.train_y,
        run.indices,
        "train",
        context,
        name=f"{name} training",
        shuffle=True,
        drop_last=False,
    )
    architecture = params.finetune.architecture
    model = backbone_of(run, arm)
    checkpointer = run_checkpointer(
        params,
        run.manifest,
        "linear_eval",
        ratio_tag(arm, run.ratio, params.seed),
        input_files(params, architecture, arm),
        hw.dist.is_main,
        labelled=run.indices.tolist(),
    )
    loop = AugmentedLinearLoop(
        model,
        train_loader,
        evaluation_loader(data, context),
        params.linear_eval,
        params.runtime,
        hw,
        name,
    )
    history = run_logged(loop, name, checkpointer, hw.dist.is_main)
    metrics = {
        "test_acc": history[-1]["test_acc"],
        "best_test_acc": max(epoch["test_acc"] for epoch in history),
        "train_acc": history[-1]["train_acc"],
    }
    val = validation_loader(data, run.validation, context)
    if val is not None:
        metrics["val_acc"] = evaluate(loop.eval_module, val, hw)["acc"]
    state = {k: v.cpu() for k, v in model.state_dict().items()}
    return Probed(state, history, metrics, checkpointer)


PROTOCOLS = {"features": probe_features, "augmented": probe_augmented}


def run(params: Params, args: argparse.Namespace) -> None:
    hw = setup(params.runtime, params.seed, params.data)
    data, splits, manifest = load_prepared()
    indices = labelled_subset(
        data.train_y, splits.validation, params.data.split_seed, params.seed, args.ratio
    )
    labelled_run = LabelledRun(params, data, manifest, indices, splits.validation, args.ratio, hw)
    probe_arm = PROTOCOLS[params.linear_eval.protocol]
    probed: dict[str, Probed] = {}
    for arm in LINEAR_EVAL_ARMS:
        probed[arm] = probe_arm(labelled_run, arm)
        log.info(
            "linear eval %s at %g labels: test accuracy %.4f",
            arm,
            args.ratio,
            probed[arm].metrics["test_acc"],
        )
    if not hw.dist.is_main:
        return
    plan = linear_eval_plan(args.ratio, params.seed)
    info = {
        "protocol": params.linear_eval.protocol,
        "arms": list(probed),
        "label_ratio": args.ratio,
        "labelled_images": len(indices),
        "architecture": params.finetune.architecture,
        "seed": params.seed,
    }
    metrics = {
        metrics_path("linear_eval", ratio_tag(arm, args.ratio, params.seed)): result.metrics
        for arm, result in probed.items()
    }
    with publish(plan, params, metrics) as out:
        atomic.torch_save(out / MODEL_FILE, {arm: p.state_dict for arm, p in probed.items()})
        atomic.write_json(out / HISTORY_FILE, {arm: p.history for arm, p in probed.items()})
        write_info(out, info)
    for result in probed.values():
        if result.checkpointer is not None:
            result.checkpointer.clear()
