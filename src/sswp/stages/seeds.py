"""The `--seed` option of every per-seed stage: which of params.yaml's `seeds` to run."""

from __future__ import annotations

import argparse

from sswp.config import Params
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
