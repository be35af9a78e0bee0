"""params.yaml as `dvc exp run -S` rewrites it (YAML 1.2) reads as it was meant."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest
from dvc.utils.serialize import modify_yaml

from sswp.config import yaml12
from sswp.config.load import load_params

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("off", "off"),
        ("yes", "yes"),
        ("On", "On"),
        ("true", True),
        ("False", False),
        ("1e-05", 1e-05),
        ("3E+2", 300.0),
        ("4.0e-5", 4e-05),
        (".5", 0.5),
        ("10", 10),
        ("-.inf", float("-inf")),
        ("0.1.2", "0.1.2"),
    ],
)
def test_scalars_follow_yaml_1_2(text, value):
    assert yaml12.load(f"key: {text}") == {"key": value}


def test_params_rewritten_by_dvc_load_as_written(tmp_path):
    params = tmp_path / "params.yaml"
    shutil.copy(REPO / "params.yaml", params)
    # What `dvc exp run -S finetune.epochs=2 -S search.weight_decay=1e-5` does to the file.
    with modify_yaml(params) as data:
        data["finetune"]["epochs"] = 2
        data["search"]["weight_decay"] = 1e-5
    text = params.read_text()
    assert "compile: off " in text and "weight_decay: 1e-05" in text, text

    # Every value reads as in the original file, but the two that were set.
    original = load_params(REPO / "params.yaml")
    assert original.runtime.compile == "off"
    expected = dataclasses.replace(
        original,
        finetune=dataclasses.replace(original.finetune, epochs=2),
        search=dataclasses.replace(original.search, weight_decay=1e-5),
    )
    assert load_params(params) == expected
