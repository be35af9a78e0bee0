"""dvc.yaml, generated from the stage contract: `sswp dvc-yaml` (or `make dvc-yaml`) writes it.

Each contract stage becomes one dvc.yaml stage, a `matrix` over the params lists of its
wildcards; its deps are the folders it reads and the package code it runs, its params exactly
the keys it tracks. The overlay plots name the runs of params.yaml, so after changing seeds,
finetune.inits or finetune.label_ratios, regenerate it. A test fails when the committed file
differs from what this writes.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Mapping
from typing import Any

from sswp.pipeline.contract import (
    HEADLINE,
    LINEAR_EVAL_ARMS,
    REPORT_FILES,
    STAGES,
    TWO_STAGE,
    Stage,
    runs,
    stage_params,
)

WIDTH = 100
HEADER = """\
# Generated from src/sswp/pipeline/contract.py by `sswp dvc-yaml` (`make dvc-yaml`): edit the
# contract, then regenerate. Every stage runs `sswp <stage>`, which validates params.yaml against
# the params dataclasses (src/sswp/config/params.py) and refuses to run a package that is not
# this checkout's src/sswp before doing anything.
# Deps list the folders each stage reads and the library code it runs; params list exactly the
# keys it reads. Per-seed stages take their seed in the command, not as a param, so adding a
# seed to `seeds` runs only the new seed's stages.
"""
REPORT_PARAMS_NOTE = """\
# results/params.yaml records every param, so any change rewrites it. Named as params
# rather than a params.yaml file dep, so that `dvc exp show` shows the changed keys
# instead of the file's hash."""
HEADLINE_NOTE = """\
# The one metrics file: a handful of headline numbers, so that `dvc metrics show` and
# `dvc exp show` fit a terminal. Every stage's own metrics file above is a plain output."""
PLOTS_NOTE = """\
# `dvc plots show` (dvc_plots/index.html): the runs overlaid, one line per run, at the
# smallest label ratio of params.yaml, then the report's figures. After changing seeds,
# finetune.inits or finetune.label_ratios, regenerate this file (`make dvc-yaml`).
"""


def _dvc(template: str) -> str:
    """A contract template in DVC's syntax: `{seed}` becomes `${item.seed}`."""
    return template.replace("{", "${item.")


def _flow(key: str, items: Iterable[str], indent: int) -> list[str]:
    """`key: [a, b, ...]`, wrapped at WIDTH; items with braces (templates) are quoted."""
    quoted = [f'"{item}"' if "{" in item else item for item in items]
    pad = " " * indent
    lines = textwrap.wrap(
        f"{key}: [{', '.join(quoted)}]",
        WIDTH,
        initial_indent=pad,
        subsequent_indent=pad + "  ",
        break_on_hyphens=False,
        break_long_words=False,
    )
    return lines


def _uncached(paths: Iterable[str], indent: int) -> list[str]:
    pad = " " * indent
    return [line for path in paths for line in (f"{pad}- {path}:", f"{pad}    cache: false")]


def stage_lines(spec: Stage) -> list[str]:
    """One stage's entry: its matrix, command, deps, params and outputs."""
    lines = [f"  # {line}" for line in textwrap.wrap(spec.note, WIDTH - 4)]
    lines.append(f"  {spec.name}:")
    if spec.matrix:
        lines.append("    matrix:")
        lines.extend(f"      {name}: ${{{key}}}" for name, key in spec.matrix)
    fixed = _Keep(spec.fixed)
    lines.append(f"    cmd: {_dvc(spec.command.format_map(fixed))}")
    reads = [_dvc(t.format_map(fixed)) for t in spec.reads]
    lines.extend(_flow("deps", [*reads, *(f"src/sswp/{name}" for name in spec.code)], 4))
    if spec.name == "report":
        lines.append(textwrap.indent(REPORT_PARAMS_NOTE, "    "))
    lines.extend(_flow("params", stage_params(spec.name), 4))
    lines.append("    outs:")
    if spec.name == "report":
        lines.extend(_uncached(REPORT_FILES, 6))
        lines.append(textwrap.indent(HEADLINE_NOTE, "    "))
        lines.append("    metrics:")
        lines.extend(_uncached([HEADLINE], 6))
        return lines
    lines.append(f"      - {_dvc(spec.artifact.format_map(fixed))}")
    files = (*spec.metrics, *spec.live) if spec.tag else ()
    lines.extend(_uncached([_dvc(t.format_map(fixed)) for t in files], 6))
    return lines


class _Keep(dict[str, str]):
    """format_map values that leave every wildcard but the given ones as they are."""

    def __missing__(self, key: str) -> str:
        return f"{{{key}}}"


def _overlay(plot_id: str, title: str, y_label: str, files: Mapping[str, str]) -> list[str]:
    lines = [
        f"  - {plot_id}:",
        f'      title: "{title}"',
        "      template: runs",
        "      x_label: epoch (from 0)",
        f"      y_label: {y_label}",
        "      x: step",
        "      y:",
    ]
    lines.extend(f"        {path}: {column}" for path, column in files.items())
    return lines


def plots_lines(raw: Mapping[str, Any]) -> list[str]:
    """The overlay plots of params' runs at the smallest label ratio, then the report's."""
    planned = runs(raw)
    smallest = str(float(min(raw["finetune"]["label_ratios"])))
    percent = f"{float(smallest) * 100:g}%"

    def at_smallest(group: str, arms: Iterable[str]) -> dict[str, str]:
        """Each arm's runs at the smallest ratio, seed by seed."""
        smallest_runs = [
            run for run in planned if run.group == group and dict(run.values)["ratio"] == smallest
        ]
        return {
            f"{live.as_posix()}/test_acc.tsv": "test_acc"
            for arm in arms
            for run in smallest_runs
            for live in run.live
            if live.parts[2].startswith(f"{arm}-")
        }

    search, measured = {}, {}
    for run in planned:
        if run.stage == "search":
            for column in ("train_loss", "test_objective_loss"):
                search[f"{run.live[0].as_posix()}/{column}.tsv"] = column
        if run.stage in ("search", "pretrain"):
            measured[f"{run.live[0].as_posix()}/val_ssl_loss.tsv"] = "val_ssl_loss"
    finetune_arms = [*raw["finetune"]["inits"], TWO_STAGE]
    return [
        "plots:",
        *_overlay(
            "search_objective",
            "Search: objective loss per epoch, on training and test images, every seed",
            "objective loss",
            search,
        ),
        *_overlay(
            "self_supervision",
            "Held-out self-supervised loss per epoch (validation images): the search's kept "
            "path and the two-stage pre-training, every seed",
            "held-out loss",
            measured,
        ),
        *_overlay(
            "finetune_smallest_ratio",
            f"Finetune at {percent} of labels: test accuracy per epoch, every arm and seed",
            "test accuracy (fraction)",
            at_smallest("finetune", finetune_arms),
        ),
        *_overlay(
            "linear_eval_smallest_ratio",
            f"Linear evaluation at {percent} of labels: test accuracy per epoch, every arm and "
            "seed",
            "test accuracy (fraction)",
            at_smallest("linear_eval", LINEAR_EVAL_ARMS),
        ),
        *(f"  - {path}" for path in REPORT_FILES if path.endswith(".png")),
    ]


def render(raw: Mapping[str, Any]) -> str:
    """The text of dvc.yaml for the params dict `raw`."""
    lines = [HEADER.rstrip("\n"), "stages:"]
    for index, spec in enumerate(STAGES.values()):
        if index:
            lines.append("")
        lines.extend(stage_lines(spec))
    lines.append(PLOTS_NOTE.rstrip("\n"))
    lines.extend(plots_lines(raw))
    return "\n".join(lines) + "\n"
