"""Run selection: `--seed` (every per-seed stage) and `--ratio` (finetune, linear_eval) must
name one of params.yaml's runs, so every result belongs to the tracked pipeline."""

from __future__ import annotations

import argparse

from sswp.config.params import Params
from sswp.errors import SswpError


def add_seed_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--seed", type=int, help="the run's seed (default: the first of params.yaml's seeds)"
    )


def params_for_seed(params: Params, seed: int | None) -> Params:
    """params for one run; a seed outside `seeds` is refused so results stay reproducible."""
    if seed is not None and seed not in params.seeds:
        listed = ", ".join(str(s) for s in params.seeds)
        raise SswpError(f"--seed {seed} is not in params.yaml's seeds ({listed}); add it there")
    return params.with_seed(seed)


def check_ratio(params: Params, ratio: float | None) -> None:
    """A `--ratio` outside (0, 1] or outside finetune.label_ratios is refused like a seed."""
    if ratio is None:
        return
    if not 0 < ratio <= 1:
        raise SswpError(f"--ratio {ratio} is outside (0, 1]; use e.g. 0.1 for 10% of labels")
    if ratio not in params.finetune.label_ratios:
        listed = ", ".join(str(r) for r in params.finetune.label_ratios)
        raise SswpError(
            f"--ratio {ratio} is not in params.yaml's finetune.label_ratios ({listed}); "
            "add it there"
        )
