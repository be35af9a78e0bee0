"""`sswp finetune`: train on a class-balanced label fraction from preserved or random weights."""

from __future__ import annotations

import argparse

from sswp.config import Params
from sswp.data.datasets import load_prepared
from sswp.data.splits import label_subset
from sswp.engine.runtime import setup
from sswp.errors import SswpError
from sswp.paths import FINETUNE_DIR, METRICS_DIR, finetune_tag
from sswp.stages.children import ChildRun, fit_and_save


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ratio", type=float, required=True, help="label ratio in (0, 1]")
    parser.add_argument("--init", choices=("preserved", "random"), required=True)


def run(params: Params, args: argparse.Namespace) -> None:
    if not 0 < args.ratio <= 1:
        raise SswpError(f"--ratio {args.ratio} is outside (0, 1]; use e.g. 0.1 for 10% of labels")
    hw = setup(params.runtime, params.seed)
    data, splits, manifest = load_prepared()
    indices = label_subset(data.train_y, splits.label_order, args.ratio)
    tag = finetune_tag(args.init, args.ratio)
    child_run = ChildRun(
        stage="finetune",
        name=f"finetune/{tag}",
        init=args.init,
        train_indices=indices,
        out_dir=FINETUNE_DIR / tag,
        metrics_path=METRICS_DIR / "finetune" / f"{tag}.json",
        extra_metrics={
            "init": args.init,
            "label_ratio": args.ratio,
            "labelled_images": len(indices),
            "architecture": params.finetune.architecture,
        },
    )
    fit_and_save(params, data, manifest, child_run, hw)
