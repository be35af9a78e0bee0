"""The committed default run (results/, metrics/, dvc.lock) was made by the committed params.

A params.yaml change that is committed without rerunning `make repro` fails here, so the
numbers a fresh clone shows always belong to the config it shows.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from sswp.config import yaml12
from sswp.config.load import load_params
from sswp.report.build import params_yaml
from sswp.report.metrics import headline

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _lookup(raw: dict[str, Any], dotted: str) -> Any:
    for part in dotted.split("."):
        raw = raw[part]
    return raw


def test_results_params_equal_params_yaml():
    committed = (REPO / "results" / "params.yaml").read_text()
    assert committed == params_yaml(load_params(REPO / "params.yaml"))


def _numbers(value: Any) -> Any:
    """YAML 1.1 (PyYAML) reads DVC's `4e-05` as a string: read such strings as numbers."""
    if isinstance(value, dict):
        return {k: _numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_numbers(v) for v in value]
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _locked_params() -> list[tuple[str, str, Any]]:
    lock = yaml12.load((REPO / "dvc.lock").read_text())  # DVC writes YAML 1.2: off unquoted
    return [
        (stage, key, _numbers(value))
        for stage, entry in lock["stages"].items()
        for key, value in entry.get("params", {}).get("params.yaml", {}).items()
    ]


def test_dvc_lock_has_every_stage_of_the_default_run():
    lock = yaml.safe_load((REPO / "dvc.lock").read_text())
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    seeds, ratios = raw["seeds"], raw["finetune"]["label_ratios"]
    expected = {"prepare", "report"}
    expected |= {f"search@{s}" for s in seeds} | {f"pretrain@{s}" for s in seeds}
    expected |= {f"train@{s}-{a}" for s in seeds for a in raw["train"]["architectures"]}
    expected |= {
        f"finetune@{s}-{i}-{r}" for s in seeds for i in raw["finetune"]["inits"] for r in ratios
    }
    expected |= {f"finetune_two_stage@{s}-{r}" for s in seeds for r in ratios}
    expected |= {f"linear_eval@{s}-{r}" for s in seeds for r in ratios}
    assert set(lock["stages"]) == expected


@pytest.mark.parametrize(("stage", "key", "value"), _locked_params())
def test_every_locked_param_is_the_committed_one(stage, key, value):
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    assert _lookup(raw, key) == value, f"{stage}: {key}; rerun `make repro` and commit"


def test_committed_headline_is_the_report_of_the_committed_tables():
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    expected = headline(
        pd.read_csv(REPO / "results" / "main_table.csv"),
        pd.read_csv(REPO / "results" / "label_ratio.csv"),
        pd.read_csv(REPO / "results" / "comparisons.csv"),
        raw["finetune"]["architecture"],
    )
    # Whether each self-supervised arm learned, as metrics.json's `ssl` section says.
    ssl = json.loads((REPO / "results" / "metrics.json").read_text())["ssl"]
    expected["learned"] = {"pres": ssl["preserved"]["learned"], "two": ssl["two_stage"]["learned"]}
    assert json.loads((REPO / "results" / "headline.json").read_text()) == expected


def _dvc(root: Path, *args: str) -> str:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    proc = subprocess.run(
        [str(BIN / "dvc"), *args], cwd=root, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, f"dvc {' '.join(args)}: {proc.stderr}"
    return proc.stdout


def test_dvc_metrics_show_of_the_committed_run_fits_200_columns(tmp_path):
    """Only the report's headline is a metric; every stage's own file would add columns."""
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    shutil.copytree(REPO / ".dvc", tmp_path / ".dvc", ignore=shutil.ignore_patterns("tmp", "cache"))
    shutil.copy(REPO / "dvc.yaml", tmp_path)
    shutil.copy(REPO / "params.yaml", tmp_path)
    shutil.copytree(REPO / "results", tmp_path / "results")
    shutil.copytree(REPO / "metrics", tmp_path / "metrics")
    lines = _dvc(tmp_path, "metrics", "show").splitlines()
    assert len(lines) == 2 and lines[1].startswith("results/headline.json")
    assert max(map(len, lines)) <= 200, lines[0]


def _plot_files(plot_id: str) -> set[str]:
    plots = yaml.safe_load((REPO / "dvc.yaml").read_text())["plots"]
    (props,) = [p[plot_id] for p in plots if isinstance(p, dict) and plot_id in p]
    return set(props["y"])


def test_overlay_plots_draw_every_run_of_params_yaml_at_the_smallest_ratio():
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    seeds, ratio = raw["seeds"], min(raw["finetune"]["label_ratios"])
    arms = [*raw["finetune"]["inits"], "two_stage"]
    runs = {
        "search_objective": {f"live/search/seed-{s}" for s in seeds},
        "finetune_smallest_ratio": {
            f"live/finetune/{a}-{ratio}-seed-{s}" for a in arms for s in seeds
        },
        "linear_eval_smallest_ratio": {
            f"live/linear_eval/{a}-{ratio}-seed-{s}"
            for a in ("preserved", "two_stage", "random")
            for s in seeds
        },
    }
    for plot_id, expected in runs.items():
        files = _plot_files(plot_id)
        assert {f.split("/plots/")[0] for f in files} == expected, plot_id
        for name in files:
            assert (REPO / name).is_file(), f"{name}: rerun `make repro` and commit live/"


def test_the_committed_sweep_varies_the_default_in_its_search_budget_only():
    """Each point of results/sweep/ is the committed params with another search.epochs, and
    the points span at least 8 times the smallest budget, as docs/sweep.md says."""
    sweep = pd.read_csv(REPO / "results" / "sweep" / "sweep.csv")
    epochs = sorted(set(sweep["search_epochs"]))
    assert len(epochs) >= 3 and epochs[-1] >= 8 * epochs[0]
    default = yaml12.load(params_yaml(load_params(REPO / "params.yaml")))
    default["search"].pop("epochs")
    for e in epochs:
        point = yaml12.load((REPO / "results" / "sweep" / f"sweep-e{e}.params.yaml").read_text())
        assert point["search"].pop("epochs") == e
        assert point == default, e
