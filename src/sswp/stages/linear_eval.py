"""`sswp linear-eval`: linear classifiers on frozen backbones at one label ratio.

Both self-supervised backbones are probed with the same labels: the search's preserved
weights and the two-stage baseline's pre-trained weights. Each arm writes its own metrics
file, shaped like a finetune's, so the report treats every arm alike.
"""

from __future__ import annotations

import argparse
import logging

import torch

from sswp import atomic
from sswp.config import Params
from sswp.data.datasets import load_prepared
from sswp.data.loaders import make_loader
from sswp.data.splits import label_subset
from sswp.engine.linear_eval import extract_features, fit_probe, probe_accuracy
from sswp.engine.runtime import setup
from sswp.paths import HISTORY_FILE, MODEL_FILE, artifact_dir, metrics_path, probe_tag, ratio_tag
from sswp.stages.children import build_child, evaluation_loader, loader_options
from sswp.stages.finetune import check_ratio
from sswp.stages.seeds import add_seed_argument

log = logging.getLogger(__name__)
ARMS = ("preserved", "two_stage")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_seed_argument(parser)
    parser.add_argument("--ratio", type=float, required=True, help="label ratio in (0, 1]")


def run(params: Params, args: argparse.Namespace) -> None:
    check_ratio(args.ratio)
    hw = setup(params.runtime, params.seed)
    data, splits, manifest = load_prepared()
    indices = label_subset(data.train_y, splits.label_order, args.ratio)
    options = loader_options(params, data, manifest, hw, "linear_eval.batch_size")
    labelled = make_loader(
        data.train_x,
        data.train_y,
        indices,
        "eval",
        shuffle=False,
        drop_last=False,
        name="labelled",
        **options,
    )
    tests = evaluation_loader(data, options)
    architecture = params.finetune.architecture
    probes, results = {}, {}
    for arm in ARMS:
        backbone = hw.model(build_child(params, data.num_classes, architecture, arm, False))
        train_x, train_y = extract_features(backbone, labelled, hw)
        test_x, test_y = extract_features(backbone, tests, hw)
        probe, history = fit_probe(
            train_x, train_y, data.num_classes, params.linear_eval, params.seed, hw.device
        )
        acc = probe_accuracy(probe, test_x, test_y)
        log.info("linear eval %s at %g labels: test accuracy %.4f", arm, args.ratio, acc)
        probes[arm] = {"state_dict": probe.cpu().state_dict(), "history": history}
        results[arm] = {
            "test_acc": acc,
            "train_acc": history[-1]["train_acc"],
            "init": arm,
            "label_ratio": args.ratio,
            "labelled_images": len(indices),
            "architecture": architecture,
            "seed": params.seed,
        }
    with atomic.staged_dir(artifact_dir("linear_eval", probe_tag(args.ratio, params.seed))) as out:
        torch.save({arm: p["state_dict"] for arm, p in probes.items()}, out / MODEL_FILE)
        atomic.write_json(out / HISTORY_FILE, {arm: p["history"] for arm, p in probes.items()})
    for arm, metrics in results.items():
        atomic.write_json(
            metrics_path("linear_eval", ratio_tag(arm, args.ratio, params.seed)), metrics
        )
