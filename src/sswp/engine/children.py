"""Training a child network with labels (train, finetune): its loaders, checkpoint, loop and
published outputs."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sswp.config.params import Params, SupervisedParams
from sswp.data.datasets import ArrayDataset, normalization
from sswp.data.loaders import LoaderContext, in_order, make_loader
from sswp.engine.checkpoint import Checkpointer
from sswp.engine.hardware import Hardware
from sswp.engine.interrupt import run_logged
from sswp.engine.supervised import SupervisedLoop
from sswp.models.build import build_child, input_files
from sswp.models.child import ChildNetwork
from sswp.pipeline import atomic
from sswp.pipeline.contract import Run, tracked_params
from sswp.pipeline.outputs import publish
from sswp.pipeline.paths import (
    HISTORY_FILE,
    MODEL_FILE,
)
from sswp.pipeline.provenance import code_digest, file_digest
from sswp.pipeline.records import split_record, write_info


def loader_context(
    params: Params,
    data: ArrayDataset,
    manifest: dict[str, Any],
    hw: Hardware,
    batch: tuple[str, int],
) -> LoaderContext:
    """The loader settings of a child stage; `batch` is its batch size and the key setting it."""
    return hw.loader_context(
        params.data, params.seed, batch, data.image_size, normalization(manifest)
    )


def evaluation_loader(data: ArrayDataset, context: LoaderContext):
    """Every test image once, in order, without augmentation."""
    indices = np.arange(len(data.test_y))
    return in_order(data.test_x, data.test_y, indices, context.for_evaluation(), "test")


def validation_loader(data: ArrayDataset, validation: np.ndarray, context: LoaderContext):
    """Every validation image once, in order, without augmentation; None without a split."""
    if not len(validation):
        return None
    return in_order(data.train_x, data.train_y, validation, context.for_evaluation(), "validation")


def run_checkpointer(
    params: Params,
    manifest: dict[str, Any],
    stage: str,
    tag: str,
    inputs: dict[str, Path],
    writer: bool,
    **extra: Any,
) -> Checkpointer:
    """A run's checkpoint, keyed by its tracked params, seed, data and input files."""
    return Checkpointer(
        f"{stage}/{tag}",
        {
            "params": tracked_params(params, stage),
            "seed": params.seed,
            "data": manifest["sha256"],
            "code": code_digest(stage),
            **{name: file_digest(path) for name, path in inputs.items()},
            **extra,
        },
        keep_old=params.runtime.keep_checkpoints,
        writer=writer,
        every_s=params.runtime.checkpoint_seconds,
    )


def save_run(
    plan: Run,
    params: Params,
    model: ChildNetwork,
    history: list[dict[str, float]],
    record: dict[str, Any],
) -> None:
    """The model, its per-epoch history, its labels and its metrics, published together:
    `record` split into the numbers (metrics) and the labels (info.json)."""
    metrics, info = split_record(record)
    with publish(plan, params, {plan.files[0]: metrics}) as tmp:
        atomic.torch_save(
            tmp / MODEL_FILE,
            {"genotype": model.genotype.to_json(), "state_dict": model.state_dict()},
        )
        (tmp / HISTORY_FILE).write_text(json.dumps(history, indent=1) + "\n")
        write_info(tmp, info)


@dataclass(frozen=True)
class ChildRun:
    """One supervised run: which stage, architecture and weights, which labels."""

    stage: str  # "train", "finetune" or "finetune_two_stage": the params group and tracked keys
    tag: str  # e.g. "final-seed-0", "preserved-0.1-seed-0"
    architecture: str
    init: str  # "random", "preserved" or "two_stage"
    train_indices: np.ndarray
    plan: Run  # where its outputs go, and their record
    validation: np.ndarray  # the validation split's indices (empty: none)
    extra_metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def group(self) -> str:
        """The params group and output folder: two-stage finetunes are finetunes."""
        return "train" if self.stage == "train" else "finetune"

    @property
    def name(self) -> str:
        return f"{self.group}/{self.tag}"


def fit_and_save(
    params: Params,
    data: ArrayDataset,
    manifest: dict[str, Any],
    run: ChildRun,
    hw: Hardware,
) -> None:
    recipe: SupervisedParams = getattr(params, run.group)
    batch = (f"{run.group}.batch_size", recipe.batch_size)
    context = loader_context(params, data, manifest, hw, batch)
    train_loader = make_loader(
        data.train_x,
        data.train_y,
        run.train_indices,
        "train",
        context,
        name=f"{run.name} training",
        shuffle=True,
        drop_last=True,
        cutout=recipe.cutout,
    )
    model = hw.model(
        build_child(
            params, data.num_classes, run.architecture, run.init, recipe.auxiliary_weight > 0
        )
    )
    checkpointer = run_checkpointer(
        params,
        manifest,
        run.stage,
        run.tag,
        input_files(params, run.architecture, run.init),
        hw.dist.is_main,
        init=run.init,
        architecture=run.architecture,
        labelled=run.train_indices.tolist(),
    )
    loop = SupervisedLoop(
        model,
        train_loader,
        evaluation_loader(data, context),
        recipe,
        params.runtime,
        hw,
        run.name,
        val_loader=validation_loader(data, run.validation, context),
    )
    metrics = run_logged(loop, run.name, checkpointer, hw.dist.is_main)
    if not hw.dist.is_main:
        return
    metrics.update(architecture=run.architecture, seed=params.seed, **run.extra_metrics)
    save_run(run.plan, params, model, loop.history, metrics)
    checkpointer.clear()
