"""`sswp prepare`: read the raw dataset once and write the verified artifact in data/prepared.

Nothing is downloaded. Arrays (digits, CIFAR) are checked and copied into the artifact; image
folders are checked file by file and indexed, not copied. The folder is staged and swapped in
whole, so a failure never leaves a partial artifact that a driver could cache as a result.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging

import numpy as np

from sswp.config.params import Params
from sswp.data.datasets import ArrayDataset, load_raw, write_prepared
from sswp.data.splits import label_subset, nested_label_order
from sswp.pipeline.outputs import publish
from sswp.pipeline.paths import PREPARED_DIR
from sswp.pipeline.plan import prepare_plan

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """prepare takes everything from params.yaml."""


def keep_subset(ds: ArrayDataset, fraction: float, seed: int) -> ArrayDataset:
    """A class-balanced, seeded fraction of the training images, for quick smoke runs."""
    if fraction >= 1:
        return ds
    order = nested_label_order(ds.train_y, seed)
    keep = label_subset(ds.train_y, order, fraction, what="data.subset")
    return dataclasses.replace(ds, train_x=ds.train_x[keep], train_y=ds.train_y[keep])


def run(params: Params, args: argparse.Namespace) -> None:
    ds = keep_subset(load_raw(params.data), params.data.subset, params.data.split_seed)
    with publish(prepare_plan(), params) as tmp:
        splits = write_prepared(ds, tmp, params.data.split_seed, params.data.val_fraction)
    per_class = np.bincount(ds.train_y, minlength=ds.num_classes)
    log.info(
        "prepared %s: %d train (%d-%d per class), %d test, %d classes, %dx%d %s; "
        "search halves %d/%d, validation %d, seed %d -> %s",
        ds.name,
        len(ds.train_y),
        per_class.min(),
        per_class.max(),
        len(ds.test_y),
        ds.num_classes,
        ds.image_size,
        ds.image_size,
        f"crops of the image files in {ds.root}" if ds.is_files else "images",
        len(splits.search_weights),
        len(splits.search_arch),
        len(splits.validation),
        params.data.split_seed,
        PREPARED_DIR,
    )
