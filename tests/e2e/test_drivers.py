"""Both drivers end to end on a tiny config, each in its own copy of the repository.

One module-scoped run per driver keeps the suite fast; the tests then read its artifacts.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
pytestmark = pytest.mark.e2e

# Wall-clock fields differ between any two runs; everything else must match exactly.
TIMING_KEYS = {"search_hours", "train_hours"}


def _run(cmd: list[str], cwd: Path) -> str:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1"}
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout + proc.stderr


def _git_repo(root: Path) -> Path:
    """DVC needs a git repository around the pipeline."""
    for cmd in (
        ["git", "init", "-q"],
        ["git", "add", "-A"],
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init"],
    ):
        subprocess.run(cmd, cwd=root, check=True)
    return root


def _results(root: Path) -> dict[str, object]:
    """Genotypes and metrics of a run, timing fields removed."""
    out: dict[str, object] = {}
    for path in sorted((root / "artifacts" / "search").glob("*/genotype.json")):
        out[str(path.relative_to(root))] = json.loads(path.read_text())
    for path in sorted((root / "metrics").rglob("*.json")):
        data = json.loads(path.read_text())
        out[str(path.relative_to(root))] = {k: v for k, v in data.items() if k not in TIMING_KEYS}
    out["results/label_ratio.csv"] = (root / "results" / "label_ratio.csv").read_text()
    return out


@pytest.fixture(scope="module")
def dvc_run(tmp_path_factory, tiny_config, repo_copy):
    root = _git_repo(repo_copy(tmp_path_factory.mktemp("dvc"), tiny_config))
    log = _run(["dvc", "repro"], root)
    return root, log, _results(root)


@pytest.fixture(scope="module")
def snakemake_run(tmp_path_factory, tiny_config, repo_copy):
    root = _git_repo(repo_copy(tmp_path_factory.mktemp("snakemake"), tiny_config))
    log = _run(["snakemake", "--cores", "2"], root)
    return root, log, _results(root)


def _stages_run(log: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", log))


def test_dvc_repro_writes_every_artifact(dvc_run):
    root, log, results = dvc_run
    assert _stages_run(log) == {
        "prepare",
        "search",
        "train",
        "report",
        "finetune@preserved-0.5",
        "finetune@preserved-1.0",
        "finetune@random-0.5",
        "finetune@random-1.0",
    }
    for name in ("final", "highest_acc", "lowest_loss"):
        assert (root / "artifacts/search" / name / "supernet.pt").is_file()
        genotype = json.loads((root / "artifacts/search" / name / "genotype.json").read_text())
        assert len(genotype["cells"]) == 3
    for name in ("summary.csv", "summary.md", "label_ratio.csv", "label_ratio.png"):
        assert (root / "results" / name).stat().st_size > 0
    summary = (root / "results/summary.csv").read_text().splitlines()
    assert len(summary) == 1 + 1 + 4  # header, scratch, 2 ratios x 2 inits
    search = results["metrics/search.json"]
    assert search["labels_used"] == 0 and 0 <= search["final"]["contrastive_acc"] <= 1
    assert (root / "live/search/plots/metrics").is_dir()
    assert (root / "logs/search.log").is_file()


def test_second_dvc_repro_does_nothing(dvc_run):
    root, _, _ = dvc_run
    assert "up to date" in _run(["dvc", "status"], root)
    assert _stages_run(_run(["dvc", "repro"], root)) == set()


def test_snakemake_agrees_with_dvc_and_is_then_up_to_date(dvc_run, snakemake_run):
    _, _, dvc_results = dvc_run
    root, _, snake_results = snakemake_run
    assert snake_results == dvc_results
    assert "Nothing to be done" in _run(["snakemake", "-n", "--cores", "2"], root)


def test_changing_a_finetune_param_reruns_only_finetune_and_report(dvc_run, snakemake_run):
    root, _, _ = dvc_run
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["finetune"]["lr"] = 0.07
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    ran = _stages_run(_run(["dvc", "repro"], root))
    assert ran == {
        "report",
        "finetune@preserved-0.5",
        "finetune@preserved-1.0",
        "finetune@random-0.5",
        "finetune@random-1.0",
    }


def test_snakemake_lint_passes():
    _run(["snakemake", "--lint"], REPO)
