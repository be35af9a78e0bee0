"""`sswp search`: the architecture search of one seed; writes each snapshot's genotype and
supernet weights, and the alphas' history."""

from __future__ import annotations

import argparse

from sswp.config.params import Params
from sswp.data.datasets import load_prepared, normalization
from sswp.engine.checkpoint import Checkpointer
from sswp.engine.hardware import setup
from sswp.engine.interrupt import run_logged
from sswp.engine.search import SEARCH_BUDGET_KEYS, SearchLoop
from sswp.nas.supernet import search_space
from sswp.pipeline import atomic
from sswp.pipeline.contract import tracked_params
from sswp.pipeline.outputs import publish
from sswp.pipeline.paths import (
    ALPHA_HISTORY_FILE,
    BUDGET_FILE,
    GENOTYPE_FILE,
    HISTORY_FILE,
    PREPARED_DIR,
    SPLITS_FILE,
    SUPERNET_FILE,
    seed_tag,
)
from sswp.pipeline.plan import search_plan
from sswp.pipeline.provenance import code_digest, file_digest
from sswp.pipeline.records import split_record, write_info
from sswp.pipeline.seeds import add_seed_argument


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_seed_argument(parser)


def run(params: Params, args: argparse.Namespace) -> None:
    tag = seed_tag(params.seed)
    hw = setup(params.runtime, params.seed, params.data)
    data, splits, manifest = load_prepared()
    checkpointer = Checkpointer(
        f"search/{tag}",
        {
            "params": tracked_params(params, "search"),
            "seed": params.seed,
            "data": manifest["sha256"],
            "splits": file_digest(PREPARED_DIR / SPLITS_FILE),
            "code": code_digest("search"),
        },
        keep_old=params.runtime.keep_checkpoints,
        writer=hw.dist.is_main,
        every_s=params.runtime.checkpoint_seconds,
    )
    loop = SearchLoop(params, data, splits, normalization(manifest), hw)
    result = run_logged(loop, f"search/{tag}", checkpointer, hw.dist.is_main)
    if not hw.dist.is_main:
        return
    sp = params.search
    space = search_space(sp.layers, sp.channels, sp.stem)
    plan = search_plan(params.seed)
    metrics, info = split_record({**result.metrics, "seed": params.seed})
    with publish(plan, params, {plan.files[0]: metrics}) as out:
        for name, snap in result.snapshots.items():
            snap.genotype.save(out / name / GENOTYPE_FILE)
            atomic.torch_save(
                out / name / SUPERNET_FILE,
                {"search_space": space, "state_dict": snap.state_dict},
            )
        atomic.torch_save(out / ALPHA_HISTORY_FILE, result.alpha_history)
        atomic.write_json(out / HISTORY_FILE, result.history)
        atomic.write_json(out / BUDGET_FILE, {k: metrics[k] for k in SEARCH_BUDGET_KEYS})
        write_info(out, info)
    checkpointer.clear()
