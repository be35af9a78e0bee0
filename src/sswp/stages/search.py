"""`sswp search`: self-supervised search; writes the genotype and supernet of each snapshot."""

from __future__ import annotations

import argparse

import torch

from sswp import atomic
from sswp.config import Params
from sswp.data.datasets import load_prepared, normalization
from sswp.engine.checkpoint import Checkpointer, file_digest
from sswp.engine.interrupt import stop_on_signals
from sswp.engine.runtime import MetricLogger, setup
from sswp.engine.search import SearchLoop
from sswp.nas.supernet import search_space
from sswp.paths import (
    GENOTYPE_FILE,
    METRICS_DIR,
    PREPARED_DIR,
    SEARCH_DIR,
    SPLITS_FILE,
    SUPERNET_FILE,
)
from sswp.stages.tracked import tracked_params


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """search takes everything from params.yaml."""


def run(params: Params, args: argparse.Namespace) -> None:
    hw = setup(params.runtime, params.seed)
    data, splits, manifest = load_prepared()
    checkpointer = Checkpointer(
        "search",
        {
            "params": tracked_params(params, "search"),
            "data": manifest["sha256"],
            "splits": file_digest(PREPARED_DIR / SPLITS_FILE),
        },
        keep_old=params.runtime.keep_checkpoints,
        writer=hw.dist.is_main,
    )
    loop = SearchLoop(params, data, splits, normalization(manifest), hw)
    metric_logger = MetricLogger("search", enabled=hw.dist.is_main)
    try:
        with stop_on_signals() as stop:
            result = loop.run(metric_logger, checkpointer, stop)
    finally:
        metric_logger.close()
    if not hw.dist.is_main:
        return
    with atomic.staged_dir(SEARCH_DIR) as out:
        for name, snap in result.snapshots.items():
            snap.genotype.save(out / name / GENOTYPE_FILE)
            atomic.torch_save(
                out / name / SUPERNET_FILE,
                {
                    "search_space": search_space(params.search.layers, params.search.channels),
                    "state_dict": snap.state_dict,
                },
            )
        torch.save(result.alpha_history, out / "alpha_history.pt")
    atomic.write_json(METRICS_DIR / "search.json", result.metrics)
    checkpointer.clear()
