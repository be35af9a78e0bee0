"""`sswp verify` on a tiny committed run (one search, one finetune): identical when nothing
changed, one line per altered metric or genotype and exit 1 when the committed ones differ."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sswp.config.load import params_from_dict
from sswp.nas.genotype import Genotype
from sswp.pipeline.contract import runs as plan_runs
from sswp.report.verify import TIMING_FIELDS, numbers, run_name, select

SSWP = [sys.executable, "-m", "sswp.cli"]
FINETUNE = "finetune:preserved-0.5-seed-0"
FINETUNE_METRICS = Path("metrics/finetune/preserved-0.5-seed-0.json")


def _sswp(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]),
    }
    return subprocess.run([*SSWP, *args], cwd=root, env=env, capture_output=True, text=True)


@pytest.fixture(scope="module")
def committed(tmp_path_factory, tiny_config, repo_copy) -> Path:
    """A repository whose committed run is one search and one finetune of the tiny config;
    its summary lists the search's genotype the way the report does."""
    root = repo_copy(tmp_path_factory.mktemp("committed"), tiny_config)
    for args in (
        ("prepare",),
        ("search", "--seed", "0"),
        ("finetune", "--seed", "0", "--init", "preserved", "--ratio", "0.5"),
    ):
        run = _sswp(root, *args)
        assert run.returncode == 0, run.stderr[-3000:]
    genotype = Genotype.load(root / "artifacts/search/seed-0/final/genotype.json")
    summary = f"## Genotypes (`final` snapshot)\n\n```text\nseed 0: {genotype.short()}\n```\n"
    (root / "results").mkdir(exist_ok=True)
    (root / "results" / "summary.md").write_text(summary)
    return root


def _outputs(root: Path) -> dict[str, int]:
    """Every file of the user's run, with its modification time."""
    folders = ("artifacts", "metrics", "results", "data")
    return {
        str(p): p.stat().st_mtime_ns for f in folders for p in (root / f).rglob("*") if p.is_file()
    }


def test_verify_of_an_unchanged_run_is_identical_and_leaves_the_run_alone(committed):
    before = _outputs(committed)
    run = _sswp(committed, "verify", "--stages", "search", FINETUNE)
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]
    assert run.stdout.strip().splitlines()[-1] == "verify: identical to the committed results"
    assert _outputs(committed) == before


def test_verify_names_each_altered_metric_and_genotype(committed, tmp_path):
    metrics = committed / FINETUNE_METRICS
    original_metrics = metrics.read_text()
    summary = committed / "results" / "summary.md"
    original_summary = summary.read_text()
    try:
        data = json.loads(original_metrics)
        data["test_acc"] += 0.01
        metrics.write_text(json.dumps(data))
        summary.write_text(original_summary.replace("seed 0: N[", "seed 0: N[skip@0+skip@1 "))
        run = _sswp(committed, "verify", "--stages", FINETUNE, "--scratch", str(tmp_path / "s"))
    finally:
        metrics.write_text(original_metrics)
        summary.write_text(original_summary)
    assert run.returncode == 1, run.stdout + run.stderr[-3000:]
    lines = run.stdout.strip().splitlines()
    assert lines[-1] == "verify: differs"
    assert [line for line in lines if line.startswith(f"{FINETUNE_METRICS}: test_acc = ")]
    assert [line for line in lines if line.startswith("genotype of seed 0 (final): ")]
    assert len(lines) == 3  # the two differences and the verdict: nothing else differs


def test_verify_rejects_an_unknown_stage(committed):
    run = _sswp(committed, "verify", "--stages", "serch")
    assert run.returncode == 2
    assert "no stage or run 'serch'" in run.stderr


def test_a_run_brings_what_it_needs_and_timing_fields_are_never_compared(tiny_config):
    runs = plan_runs(params_from_dict(tiny_config))
    two_stage = select(runs, ["finetune:two_stage-0.5-seed-0"])
    assert [run_name(r) for r in two_stage] == [
        "prepare",
        "search:seed-0",
        "pretrain:seed-0",
        "finetune:two_stage-0.5-seed-0",
    ]
    assert select(runs, ["report"]) == runs
    metrics = {"test_acc": 0.5, "train_hours": 1.0, "nested": {"search_hours": 2.0, "n": 3}}
    assert dict(numbers(metrics)) == {"test_acc": 0.5, "nested.n": 3.0}
    assert {"search_hours", "train_hours", "pretrain_hours"} <= TIMING_FIELDS
