"""The stage contract is the one declaration of stages and runs: dvc.yaml is made from it."""

from __future__ import annotations

from pathlib import Path

import yaml

from sswp import cli
from sswp.config.load import load_params
from sswp.config.schema import schema
from sswp.pipeline import contract, dvc_yaml

REPO = Path(__file__).resolve().parents[1]


def test_committed_dvc_yaml_is_the_one_the_contract_generates(tmp_path):
    written = tmp_path / "dvc.yaml"
    assert (
        cli.main(["dvc-yaml", "--params", str(REPO / "params.yaml"), "--output", str(written)]) == 0
    )
    assert written.read_text() == (REPO / "dvc.yaml").read_text(), (
        "dvc.yaml is stale: run `make dvc-yaml` and commit it"
    )


def test_dvc_yaml_of_bad_params_is_refused_and_writes_nothing(tmp_path, capsys):
    bad = tmp_path / "params.yaml"
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["seeds"] = "zero"
    bad.write_text(yaml.safe_dump(raw))
    written = tmp_path / "dvc.yaml"
    assert cli.main(["dvc-yaml", "--params", str(bad), "--output", str(written)]) == 2
    assert not written.exists()
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("sswp dvc-yaml: error: ") and "seeds" in line


def test_generated_stages_track_exactly_the_contract_params_and_code():
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    assert list(stages) == list(contract.STAGES)
    for name, entry in stages.items():
        assert tuple(entry["params"]) == contract.stage_params(name), name
        code = [d.removeprefix("src/sswp/") for d in entry["deps"] if d.startswith("src/")]
        assert tuple(code) == contract.STAGES[name].code, name


def test_the_report_tracks_every_top_level_param():
    assert contract.stage_params("report") == tuple(schema()["properties"])


def test_every_metrics_file_of_the_committed_params_is_committed():
    """Each metrics file that `make repro` writes for params.yaml, every linear_eval arm's too."""
    planned = contract.runs(load_params(REPO / "params.yaml"))
    expected = {path.as_posix() for run in planned for path in run.files}
    committed = {p.relative_to(REPO).as_posix() for p in (REPO / "metrics").rglob("*.json")}
    assert expected <= committed, "rerun `make repro` and commit metrics/"
    arms = {path.name.split("-")[0] for run in planned for path in run.files}
    assert {"preserved", "two_stage", "random"} <= arms


def test_each_run_is_named_by_its_tag_and_runs_its_stage_command():
    planned = {run.name: run for run in contract.runs(load_params(REPO / "params.yaml"))}
    probe = planned["linear_eval/0.02-seed-1"]
    assert probe.command == "sswp linear_eval --seed 1 --ratio 0.02"
    assert probe.log_name == "linear_eval-0.02-seed-1"
    assert [p.as_posix() for p in probe.files] == [
        f"metrics/linear_eval/{arm}-0.02-seed-1.json" for arm in contract.LINEAR_EVAL_ARMS
    ]
    assert probe.inputs == {
        Path("data/prepared"): "sswp prepare",
        Path("artifacts/search/seed-1"): "sswp search --seed 1",
        Path("artifacts/pretrain/seed-1"): "sswp pretrain --seed 1",
    }
    two_stage = planned["finetune/two_stage-0.05-seed-0"]
    assert two_stage.stage == contract.finetune_stage("two_stage") == "finetune_two_stage"
    assert two_stage.command == "sswp finetune --seed 0 --init two_stage --ratio 0.05"
    report = planned["report"]
    assert set(report.inputs) == {Path("data/prepared")} | {
        run.artifact for run in planned.values() if run.stage not in ("prepare", "report")
    }


def test_dvc_yaml_renders_the_plots_of_other_params():
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["seeds"], raw["finetune"]["label_ratios"] = [3], [0.5, 0.1]
    plots = yaml.safe_load(dvc_yaml.render(raw))["plots"]
    finetune = next(p["finetune_smallest_ratio"] for p in plots if "finetune_smallest_ratio" in p)
    assert finetune["title"].startswith("Finetune at 10% of labels")
    assert set(finetune["y"]) == {
        f"live/finetune/{init}-0.1-seed-3/plots/metrics/test_acc.tsv"
        for init in (*raw["finetune"]["inits"], "two_stage")
    }
