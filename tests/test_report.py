"""The report stage on known metric files: exact table values, markdown, plot, and failures."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from sswp.config import Params, load_params
from sswp.errors import SswpError
from sswp.nas.genotype import Genotype, derive_genotype
from sswp.report import ratio_label
from sswp.stages import report as stage

REPO = Path(__file__).parents[1]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

SEARCH = {
    "final": {"contrastive_acc": 0.5, "contrastive_loss": 2.0, "epoch": 9},
    "highest_acc": {"contrastive_acc": 0.6, "contrastive_loss": 2.1, "epoch": 7},
    "lowest_loss": {"contrastive_acc": 0.55, "contrastive_loss": 1.9, "epoch": 8},
    "search_hours": 0.25,
    "device": "cpu",
    "supernet_params_m": 0.5,
    "labels_used": 0,
}
TRAIN = {
    "architecture": "highest_acc",
    "test_acc": 0.8765,
    "test_loss": 0.4,
    "train_acc": 0.9,
    "params_m": 0.1234,
    "train_hours": 0.01,
}
# (init, ratio) -> test_acc
FINETUNE_ACC = {
    ("preserved", 0.1): 0.8,
    ("random", 0.1): 0.7123,
    ("preserved", 1.0): 0.9,
    ("random", 1.0): 0.855,
}


def _write(path: str | Path, data: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def _finetune(init: str, ratio: float, acc: float) -> dict:
    return {
        "init": init,
        "label_ratio": ratio,
        "labelled_images": int(1000 * ratio),
        "architecture": "highest_acc",
        "test_acc": acc,
        "test_loss": 0.5,
        "train_acc": 0.95,
        "params_m": 0.1234,
        "train_hours": 0.02,
    }


@pytest.fixture
def params() -> Params:
    """Ratios and inits deliberately out of order, to check that outputs are sorted."""
    base = load_params(REPO / "params.yaml")
    finetune = dataclasses.replace(
        base.finetune, label_ratios=(1.0, 0.1), inits=("random", "preserved")
    )
    return dataclasses.replace(base, finetune=finetune)


@pytest.fixture
def genotype(tmp_path, monkeypatch) -> Genotype:
    """A full set of inputs in tmp_path (the cwd), plus a stale run that must be ignored."""
    monkeypatch.chdir(tmp_path)
    _write("metrics/search.json", SEARCH)
    _write("metrics/train.json", TRAIN)
    for (init, ratio), acc in FINETUNE_ACC.items():
        _write(f"metrics/finetune/{init}-{ratio}.json", _finetune(init, ratio, acc))
    _write("metrics/finetune/preserved-0.5.json", _finetune("preserved", 0.5, 0.1))
    geno = derive_genotype([torch.randn(14, 7) for _ in range(3)])
    geno.save("artifacts/search/highest_acc/genotype.json")
    return geno


def _run(params: Params) -> None:
    parser = argparse.ArgumentParser()
    stage.add_arguments(parser)
    stage.run(params, parser.parse_args([]))


def test_summary_csv_exact(params, genotype):
    _run(params)
    table = pd.read_csv("results/summary.csv", keep_default_na=False)
    assert list(table.columns) == [
        "run",
        "init",
        "label_ratio",
        "labelled_images",
        "test_acc",
        "test_error",
        "params_m",
        "architecture",
    ]
    rows = table.astype(str).values.tolist()
    assert rows == [
        ["scratch", "scratch", "1.0", "", "87.65", "12.35", "0.1234", "highest_acc"],
        ["finetune", "preserved", "0.1", "100", "80.0", "20.0", "0.1234", "highest_acc"],
        ["finetune", "random", "0.1", "100", "71.23", "28.77", "0.1234", "highest_acc"],
        ["finetune", "preserved", "1.0", "1000", "90.0", "10.0", "0.1234", "highest_acc"],
        ["finetune", "random", "1.0", "1000", "85.5", "14.5", "0.1234", "highest_acc"],
    ]


def test_label_ratio_csv_exact(params, genotype):
    _run(params)
    assert Path("results/label_ratio.csv").read_text() == (
        "label_ratio,preserved,random\n0.1,80.0,71.23\n1.0,90.0,85.5\n"
    )


def test_markdown_has_genotype_costs_and_table(params, genotype):
    _run(params)
    text = Path("results/summary.md").read_text()
    assert f"```text\n{genotype.short()}\n```" in text
    assert "- Dataset: digits" in text
    assert "0.123 M parameters" in text
    assert "- Search cost: 0.25 hours on cpu" in text
    assert "- Scratch test accuracy: 87.65%" in text
    assert (
        "| label ratio | preserved | random |\n"
        "|---:|---:|---:|\n"
        "| 10% | 80.00 | 71.23 |\n"
        "| 100% | 90.00 | 85.50 |\n"
    ) in text


def test_png_written(params, genotype):
    _run(params)
    data = Path("results/label_ratio.png").read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert len(data) < 200_000


def test_missing_finetune_names_file_and_writes_nothing(params, genotype):
    Path("metrics/finetune/random-0.1.json").unlink()
    with pytest.raises(SswpError) as err:
        _run(params)
    message = str(err.value)
    assert "metrics/finetune/random-0.1.json" in message
    assert "sswp finetune --init random --ratio 0.1" in message
    assert "\n" not in message
    assert not Path("results").exists()


def test_incomplete_metrics_name_the_key(params, genotype):
    _write("metrics/train.json", {k: v for k, v in TRAIN.items() if k != "test_acc"})
    with pytest.raises(SswpError, match=r"metrics/train.json lacks test_acc; rerun `sswp train`"):
        _run(params)


def test_unknown_architecture_is_rejected(params, genotype):
    _write("metrics/train.json", {**TRAIN, "architecture": "../elsewhere"})
    with pytest.raises(SswpError, match="not one of final"):
        _run(params)


@pytest.mark.parametrize(
    ("ratio", "label"), [(0.1, "10%"), (0.025, "2.5%"), (1.0, "100%"), (0.07, "7%")]
)
def test_ratio_label(ratio, label):
    assert ratio_label(ratio) == label


def test_finetune_metrics_path_formats_ratio_as_float():
    assert stage.finetune_metrics_path("random", 1) == Path("metrics/finetune/random-1.0.json")
