"""The label-free verdict on each self-supervised backbone: the rule on hand-picked numbers,
and on a real run whose search cannot learn, the mark and the verdict sentence."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from sswp import cli
from sswp.report.learned import (
    NOT_LEARNED,
    SslCheck,
    not_learned_note,
    ssl_checks,
    unlearned_arms,
)
from sswp.report.summary import LARGER_BUDGETS

CHANCE = math.log(63)  # batches of 32 pairs; learned at most 0.9 x 4.143 = 3.729


def test_a_backbone_learned_when_every_seed_is_well_below_chance_and_its_probe_beats_random():
    check = SslCheck("preserved", (3.2, 3.7), CHANCE, probe=0.6, random_probe=0.4)
    assert check.learned and check.reasons() == []


def test_one_seed_near_chance_marks_the_arm():
    check = SslCheck("preserved", (3.2, 3.75), CHANCE, probe=0.6, random_probe=0.4)
    assert not check.learned and check.seeds_near_chance == 1
    assert check.reasons() == [
        "its held-out loss is not 10 % below chance (4.143) in 1 of 2 seeds (highest 3.750)"
    ]


def test_a_probe_no_better_than_the_random_backbones_marks_the_arm():
    check = SslCheck("two_stage", (3.0, 3.0), CHANCE, probe=0.4, random_probe=0.4)
    assert not check.learned and not check.seeds_near_chance
    assert check.reasons() == [
        "its linear probe's validation accuracy (40.00 %) is not above the random "
        "backbone's (40.00 %)"
    ]


def test_checks_read_the_child_of_the_finetuned_snapshot_and_the_pretraining():
    searches = [
        {"val_ssl_chance": CHANCE, "final": {"child_val_ssl_loss": 3.0}, "lowest_loss": {}},
        {"val_ssl_chance": CHANCE, "final": {"child_val_ssl_loss": 4.2}},
    ]
    pretrains = [{"val_ssl_loss": 3.1, "val_ssl_chance": CHANCE}] * 2
    probes = {
        arm: {0.1: [{"val_acc": acc}, {"val_acc": acc}]}
        for arm, acc in (("preserved", 0.5), ("two_stage", 0.6), ("random", 0.3))
    }
    checks = ssl_checks(searches, pretrains, probes, "final")
    assert checks["preserved"].losses == (3.0, 4.2) and not checks["preserved"].learned
    assert checks["two_stage"].learned and checks["two_stage"].probe == pytest.approx(0.6)
    assert unlearned_arms(checks) == {"finetune_preserved", "linear_preserved"}
    # A snapshot whose child was not measured, or a run without the measure: no check.
    assert ssl_checks(searches, pretrains, probes, "lowest_loss").keys() == {"two_stage"}
    assert ssl_checks(searches, [{}, {}], probes, "final").keys() == {"preserved"}


def test_a_search_that_cannot_learn_is_marked_and_said_to_test_nothing(
    tmp_path, monkeypatch, tiny_config
):
    """search.weight_lr at 1e-12: the preserved weights stay their random init."""
    config = {**tiny_config, "search": {**tiny_config["search"], "weight_lr": 1e-12}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(config))
    monkeypatch.chdir(tmp_path)
    ratios = config["finetune"]["label_ratios"]
    inits = ("preserved", "random", "two_stage")
    commands = [
        ["prepare"],
        ["search"],
        ["train"],
        ["train", "--architecture", "pdarts"],
        ["pretrain"],
        *(["finetune", "--init", i, "--ratio", str(r)] for i in inits for r in ratios),
        *(["linear_eval", "--ratio", str(r)] for r in ratios),
        ["report"],
    ]
    for command in commands:
        assert cli.main(command) == 0, command
    summary = Path("results/summary.md").read_text()
    assert (
        "**This run does not test the paper's claim for the preserved weights**: its "
        "self-supervised backbone did not learn (its held-out loss is not 10 % below chance"
    ) in summary
    assert LARGER_BUDGETS in summary
    table = Path("results/label_ratio.md").read_text().split("\n\n")[1]
    header, _, *rows = table.splitlines()
    preserved = [i for i, name in enumerate(header.split("|")) if "preserved" in name]
    assert len(preserved) == 2  # finetuned and probed
    for row in rows:
        cells = row.split("|")
        assert all(cells[i].strip().endswith(NOT_LEARNED) for i in preserved), row
    assert not_learned_note() in Path("results/label_ratio.md").read_text()
