"""The committed default run (results/, metrics/, dvc.lock) was made by the committed params.

A params.yaml change that is committed without rerunning `make repro` fails here, so the
numbers a fresh clone shows always belong to the config it shows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from sswp.config import load_params
from sswp.stages.report import params_yaml

REPO = Path(__file__).resolve().parents[1]


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
    lock = yaml.safe_load((REPO / "dvc.lock").read_text())
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
