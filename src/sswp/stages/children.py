"""Shared by train and finetune: build the child of a search snapshot and train it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sswp import atomic
from sswp.config import Params, SupervisedParams
from sswp.data.datasets import ArrayDataset, normalization
from sswp.data.loaders import make_loader
from sswp.engine.runtime import MetricLogger, prepare_model
from sswp.engine.supervised import train_classifier
from sswp.errors import SswpError
from sswp.models.child import ChildNetwork, inherit_weights
from sswp.nas.genotype import Genotype
from sswp.nas.supernet import search_space
from sswp.paths import GENOTYPE_FILE, MODEL_FILE, SUPERNET_FILE, snapshot_dir


def load_snapshot_genotype(architecture: str) -> Genotype:
    return Genotype.load(snapshot_dir(architecture) / GENOTYPE_FILE)


def load_supernet_state(architecture: str, params: Params) -> dict[str, torch.Tensor]:
    """The snapshot's supernet weights, checked against this run's search space."""
    path = snapshot_dir(architecture) / SUPERNET_FILE
    if not path.is_file():
        raise SswpError(f"supernet weights {path} not found; run the search stage first")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for truncated or foreign files
        raise SswpError(
            f"cannot read supernet weights {path} ({type(exc).__name__}); rerun the search stage"
        ) from exc
    expected = search_space(params.search.layers, params.search.channels)
    if not isinstance(blob, dict) or blob.get("search_space") != expected:
        found = blob.get("search_space") if isinstance(blob, dict) else None
        raise SswpError(
            f"{path} comes from another search space ({found}); this run expects {expected}: "
            "rerun the search stage with these params"
        )
    return blob["state_dict"]


def build_child(
    params: Params, data: ArrayDataset, architecture: str, init: str, sp: SupervisedParams
) -> ChildNetwork:
    genotype = load_snapshot_genotype(architecture)
    if genotype.layers != params.search.layers:
        raise SswpError(
            f"genotype of snapshot {architecture!r} has {genotype.layers} cells but "
            f"search.layers = {params.search.layers}; rerun the search stage"
        )
    model = ChildNetwork(
        genotype, params.search.channels, data.num_classes, auxiliary=sp.auxiliary_weight > 0
    )
    if init == "preserved":
        inherit_weights(model, load_supernet_state(architecture, params))
    return model


def fit_and_save(
    params: Params,
    data: ArrayDataset,
    manifest: dict[str, Any],
    model: ChildNetwork,
    train_indices: np.ndarray,
    sp: SupervisedParams,
    device: torch.device,
    run_name: str,
    out_dir: Path,
    metrics_path: Path,
    extra_metrics: dict[str, Any],
) -> None:
    stage = run_name.split("/")[0]
    mean, std = normalization(manifest)
    train_loader = make_loader(
        data.train_x,
        data.train_y,
        train_indices,
        "train",
        sp.batch_size,
        mean=mean,
        std=std,
        cutout=sp.cutout,
        shuffle=True,
        drop_last=True,
        seed=params.seed,
        workers=params.data.workers,
        name=f"{run_name} training",
        batch_key=f"{stage}.batch_size",
    )
    test_loader = make_loader(
        data.test_x,
        data.test_y,
        np.arange(len(data.test_y)),
        "eval",
        sp.batch_size,
        mean=mean,
        std=std,
        shuffle=False,
        drop_last=False,
        seed=params.seed,
        workers=params.data.workers,
        name="test",
        batch_key=f"{stage}.batch_size",
    )
    model = prepare_model(model, device)
    metric_logger = MetricLogger(run_name)
    started = time.perf_counter()
    try:
        metrics = train_classifier(
            model, train_loader, test_loader, sp, params.runtime, device, metric_logger, run_name
        )
    finally:
        metric_logger.close()
    metrics.update(extra_metrics, train_hours=(time.perf_counter() - started) / 3600)
    with atomic.staged_dir(out_dir) as tmp:
        torch.save(
            {"genotype": model.genotype.to_json(), "state_dict": model.state_dict()},
            tmp / MODEL_FILE,
        )
    atomic.write_json(metrics_path, metrics)
