"""Shared by train and finetune: build the child network of a search snapshot and train it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sswp import atomic
from sswp.config import Params, SupervisedParams
from sswp.data.datasets import ArrayDataset, normalization
from sswp.data.loaders import make_loader
from sswp.engine.checkpoint import Checkpointer, file_digest
from sswp.engine.interrupt import stop_on_signals
from sswp.engine.runtime import Hardware, MetricLogger
from sswp.engine.supervised import SupervisedLoop
from sswp.errors import SswpError
from sswp.models.child import ChildNetwork, inherit_weights
from sswp.nas.genotype import Genotype
from sswp.nas.supernet import search_space
from sswp.paths import GENOTYPE_FILE, MODEL_FILE, SUPERNET_FILE, snapshot_dir
from sswp.stages.tracked import tracked_params


@dataclass(frozen=True)
class ChildRun:
    """One supervised run: which stage, which weights, which labels, where results go."""

    stage: str  # "train" or "finetune": the params group and the tracked keys
    name: str  # run name for logs and live/, e.g. "finetune/preserved-0.1"
    init: str  # "preserved" or "random"
    train_indices: np.ndarray
    out_dir: Path
    metrics_path: Path
    extra_metrics: dict[str, Any] = field(default_factory=dict)


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
    found = blob.get("search_space") if isinstance(blob, dict) else None
    if found != expected or not isinstance(blob.get("state_dict"), dict):
        raise SswpError(
            f"{path} comes from another search space ({found}); this run expects {expected}: "
            "rerun the search stage with these params"
        )
    return blob["state_dict"]


def build_child(
    params: Params, data: ArrayDataset, sp: SupervisedParams, init: str
) -> ChildNetwork:
    genotype = Genotype.load(snapshot_dir(sp.architecture) / GENOTYPE_FILE)
    if genotype.layers != params.search.layers:
        raise SswpError(
            f"genotype of snapshot {sp.architecture!r} has {genotype.layers} cells but "
            f"search.layers = {params.search.layers}; rerun the search stage"
        )
    model = ChildNetwork(
        genotype, params.search.channels, data.num_classes, auxiliary=sp.auxiliary_weight > 0
    )
    if init == "preserved":
        inherit_weights(model, load_supernet_state(sp.architecture, params))
    return model


def _checkpointer(
    params: Params, manifest: dict[str, Any], run: ChildRun, sp: SupervisedParams, writer: bool
) -> Checkpointer:
    snapshot = snapshot_dir(sp.architecture)
    return Checkpointer(
        run.name,
        {
            "params": tracked_params(params, run.stage),
            "init": run.init,
            "labelled": run.train_indices.tolist(),
            "data": manifest["sha256"],
            "genotype": file_digest(snapshot / GENOTYPE_FILE),
            "supernet": file_digest(snapshot / SUPERNET_FILE),
        },
        keep_old=params.runtime.keep_checkpoints,
        writer=writer,
    )


def fit_and_save(
    params: Params,
    data: ArrayDataset,
    manifest: dict[str, Any],
    run: ChildRun,
    hw: Hardware,
) -> None:
    sp: SupervisedParams = getattr(params, run.stage)
    if sp.batch_size % hw.dist.world_size:
        raise SswpError(
            f"{run.stage}.batch_size = {sp.batch_size} does not split over "
            f"{hw.dist.world_size} processes; use a multiple of runtime.gpus"
        )
    mean, std = normalization(manifest)
    common = dict(
        batch_size=sp.batch_size // hw.dist.world_size,
        mean=mean,
        std=std,
        seed=params.seed,
        workers=params.data.workers,
        batch_key=f"{run.stage}.batch_size",
        image_size=data.image_size,
        loader=params.data.loader,
        device=hw.device,
        shard_id=hw.dist.rank,
        num_shards=hw.dist.world_size,
    )
    train_loader = make_loader(
        data.train_x,
        data.train_y,
        run.train_indices,
        "train",
        cutout=sp.cutout,
        shuffle=True,
        drop_last=True,
        name=f"{run.name} training",
        **common,
    )
    test_loader = make_loader(
        data.test_x,
        data.test_y,
        np.arange(len(data.test_y)),
        "eval",
        shuffle=False,
        drop_last=False,
        name="test",
        **common,
    )
    model = hw.model(build_child(params, data, sp, run.init))
    checkpointer = _checkpointer(params, manifest, run, sp, hw.dist.is_main)
    loop = SupervisedLoop(model, train_loader, test_loader, sp, params.runtime, hw, run.name)
    metric_logger = MetricLogger(run.name, enabled=hw.dist.is_main)
    try:
        with stop_on_signals() as stop:
            metrics = loop.run(metric_logger, checkpointer, stop)
    finally:
        metric_logger.close()
    if not hw.dist.is_main:
        return
    metrics.update(run.extra_metrics)
    with atomic.staged_dir(run.out_dir) as tmp:
        torch.save(
            {"genotype": model.genotype.to_json(), "state_dict": model.state_dict()},
            tmp / MODEL_FILE,
        )
    atomic.write_json(run.metrics_path, metrics)
    checkpointer.clear()
