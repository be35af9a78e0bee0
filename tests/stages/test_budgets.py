"""The two-stage arm's matched budget, finetune steps and the validation split, run for real
on the tiny config: prepare, search, pretrain and finetune of one seed."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from sswp import cli
from sswp.data.datasets import load_prepared
from sswp.stages import finetune


def _json(path: str) -> dict:
    return json.loads(Path(path).read_text())


@pytest.fixture(scope="module")
def searched(tmp_path_factory, tiny_config):
    """A tiny repo after `sswp prepare` and `sswp search --seed 0`."""
    root = tmp_path_factory.mktemp("budgets")
    (root / "params.yaml").write_text(yaml.safe_dump(tiny_config))
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        assert cli.main(["prepare"]) == 0
        assert cli.main(["search", "--seed", "0"]) == 0
    return root


def test_search_records_its_simclr_steps_and_pairs(searched, tiny_config, monkeypatch):
    monkeypatch.chdir(searched)
    search = tiny_config["search"]
    _, splits, _ = load_prepared()
    per_epoch = len(splits.search_weights) // search["batch_size"]
    metrics = _json("metrics/search/seed-0.json")
    assert metrics["ssl_steps"] == search["epochs"] * per_epoch
    assert metrics["ssl_pairs"] == metrics["ssl_steps"] * search["batch_size"]
    # The tiny schedule freezes the last cell in epoch 2 of 4: epochs 2 and 3 follow it.
    assert metrics["ssl_steps_after_freeze"] == 2 * per_epoch
    budget = _json("artifacts/search/seed-0/budget.json")
    assert budget == {k: metrics[k] for k in budget} and len(budget) == 4


@pytest.mark.parametrize("fraction", [1.0, 0.4])
def test_two_stage_pretraining_gets_the_search_steps(searched, tiny_config, monkeypatch, fraction):
    monkeypatch.chdir(searched)
    config = {**tiny_config, "pretrain": {**tiny_config["pretrain"], "budget_fraction": fraction}}
    Path("params.yaml").write_text(yaml.safe_dump(config))
    assert cli.main(["pretrain", "--seed", "0"]) == 0
    search, pretrain = _json("metrics/search/seed-0.json"), _json("metrics/pretrain/seed-0.json")
    batch = config["search"]["batch_size"]
    if fraction == 1:
        assert pretrain["ssl_steps"] == search["ssl_steps"]
        assert pretrain["ssl_pairs"] == search["ssl_pairs"]
    else:
        per_epoch = search["ssl_steps"] // config["search"]["epochs"]
        epochs = math.ceil(round(fraction * search["ssl_steps"]) / per_epoch)
        assert pretrain["ssl_steps"] == epochs * per_epoch < search["ssl_steps"]
    assert pretrain["ssl_pairs"] == pretrain["ssl_steps"] * batch


def test_finetune_counts_its_steps_and_scores_the_validation_split(
    searched, tiny_config, monkeypatch
):
    monkeypatch.chdir(searched)
    config = {**tiny_config, "finetune": {**tiny_config["finetune"], "epochs": 3, "eval_every": 2}}
    Path("params.yaml").write_text(yaml.safe_dump(config))
    assert cli.main(["finetune", "--init", "preserved", "--ratio", "0.5", "--seed", "0"]) == 0
    metrics = _json("metrics/finetune/preserved-0.5-seed-0.json")
    history = _json("artifacts/finetune/preserved-0.5-seed-0/history.json")
    per_epoch = metrics["steps"] // 3
    assert [epoch["step"] for epoch in history] == [per_epoch, 2 * per_epoch, 3 * per_epoch]
    # Evaluated after epoch 2 (eval_every) and after the last; not after the first.
    assert ["test_acc" in epoch for epoch in history] == [False, True, True]
    assert ["val_acc" in epoch for epoch in history] == [False, True, True]
    assert metrics["val_acc"] == history[-1]["val_acc"]


def test_finetune_labels_avoid_the_validation_split_and_differ_across_seeds(
    searched, tiny_params, monkeypatch
):
    monkeypatch.chdir(searched)
    runs = []
    monkeypatch.setattr(finetune, "fit_and_save", lambda *args: runs.append(args[3]))
    for seed in (0, 1):
        for ratio in (0.2, 0.5):
            args = cli.build_parser().parse_args(
                ["finetune", "--init", "random", "--ratio", str(ratio), "--seed", str(seed)]
            )
            finetune.run(tiny_params.with_seed(seed), args)
    _, splits, _ = load_prepared()
    assert len(splits.validation) > 0
    for run in runs:
        assert not np.isin(run.train_indices, splits.validation).any()
        assert np.array_equal(run.validation, splits.validation)
    (small0, large0), (small1, large1) = (runs[:2], runs[2:])
    assert np.isin(small0.train_indices, large0.train_indices).all()
    assert np.isin(small1.train_indices, large1.train_indices).all()
    assert not np.array_equal(small0.train_indices, small1.train_indices)
