"""Both drivers end to end on a tiny config, each in its own copy of the repository.

One module-scoped run per driver keeps the suite fast; the tests then read its artifacts.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sswp.config import yaml12
from sswp.pipeline.contract import HEADLINE, REPORT_FILES

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
pytestmark = pytest.mark.e2e

# Wall-clock fields differ between any two runs; everything else must match exactly.
TIMING_KEYS = {"search_hours", "train_hours", "pretrain_hours"}
FINETUNES = {
    f"{stage}@0-{arm}-{ratio}"
    for stage, arm in (
        ("finetune", "preserved"),
        ("finetune", "random"),
    )
    for ratio in ("0.5", "1.0")
} | {f"finetune_two_stage@0-{ratio}" for ratio in ("0.5", "1.0")}


def _run(cmd: list[str], cwd: Path) -> str:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1"}
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout + proc.stderr


def _git_commit(root: Path) -> None:
    for cmd in (
        ["git", "add", "-A"],
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "run"],
    ):
        subprocess.run(cmd, cwd=root, check=True)


def _git_repo(root: Path) -> Path:
    """DVC needs a git repository around the pipeline."""
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    _git_commit(root)
    return root


def _results(root: Path) -> dict[str, object]:
    """Genotypes and metrics of a run, timing fields removed."""
    out: dict[str, object] = {}
    for path in sorted((root / "artifacts" / "search").glob("*/*/genotype.json")):
        out[str(path.relative_to(root))] = json.loads(path.read_text())
    for path in sorted((root / "metrics").rglob("*.json")):
        data = json.loads(path.read_text())
        out[str(path.relative_to(root))] = {k: v for k, v in data.items() if k not in TIMING_KEYS}
    for path in sorted((root / "artifacts").rglob("info.json")):
        out[str(path.relative_to(root))] = json.loads(path.read_text())
    for name in ("label_ratio.csv", "label_ratio.md"):
        out[f"results/{name}"] = (root / "results" / name).read_text()
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
        "search@0",
        "train@0-final",
        "train_reference@0-pdarts",
        "pretrain@0",
        "linear_eval@0-0.5",
        "linear_eval@0-1.0",
        "report",
        *FINETUNES,
    }
    for name in ("final", "highest_acc", "lowest_loss"):
        snapshot = root / "artifacts/search/seed-0" / name
        assert (snapshot / "supernet.pt").is_file()
        assert len(json.loads((snapshot / "genotype.json").read_text())["cells"]) == 3
    # Which files the report writes is tests/test_report.py's check; here every one is made.
    for path in (*REPORT_FILES, HEADLINE):
        assert (root / path).stat().st_size > 0, path
    arms = {line.split(",")[1] for line in results["results/label_ratio.csv"].splitlines()[1:]}
    assert arms == {
        "finetune_preserved",
        "finetune_random",
        "finetune_two_stage",
        "linear_preserved",
        "linear_two_stage",
        "linear_random",
    }
    search = results["metrics/search/seed-0.json"]
    search_info = results["artifacts/search/seed-0/info.json"]
    assert search["labels_used"] == 0 and 0 <= search_info["final"]["objective_acc"] <= 1
    assert search_info["device"] == "cpu" and search_info["objective"] == "simclr"
    probe_info = results["artifacts/linear_eval/1.0-seed-0/info.json"]
    assert probe_info["protocol"] == "features" and probe_info["label_ratio"] == 1.0
    for arm in ("preserved", "two_stage", "random"):
        assert arm in probe_info["arms"]
        assert 0 <= results[f"metrics/linear_eval/{arm}-1.0-seed-0.json"]["test_acc"] <= 1
    # DVC shows metrics files as columns: they hold numbers only, labels are in info.json.
    metric_files = [name for name in results if name.startswith("metrics/")]
    assert len(metric_files) == 16
    for name in metric_files:
        for key, value in results[name].items():
            assert type(value) in (int, float), f"{name}: {key} = {value!r}"
    assert (root / "live/search/seed-0/plots/metrics").is_dir()
    assert (root / "logs/search-seed-0.log").is_file()


def test_second_dvc_repro_does_nothing(dvc_run):
    root, _, _ = dvc_run
    assert "up to date" in _run(["dvc", "status"], root)
    assert _stages_run(_run(["dvc", "repro"], root)) == set()


def test_snakemake_agrees_with_dvc_and_is_then_up_to_date(dvc_run, snakemake_run):
    _, _, dvc_results = dvc_run
    root, _, snake_results = snakemake_run
    assert snake_results == dvc_results
    assert "Nothing to be done" in _run(["snakemake", "-n", "--cores", "2"], root)


def test_snakemake_report_holds_the_tables_and_plots_with_captions(snakemake_run):
    root, _, _ = snakemake_run
    _run(["snakemake", "--report", "report.html", "--cores", "1"], root)
    html = (root / "report.html").read_text()
    figures = sorted(path.name for path in (root / "results").glob("*.png"))
    assert len(figures) >= 5, figures
    for name in ("main_table.csv", *figures):
        assert name in html, name
    assert "reference genotypes" in html  # a caption, rendered


def _readme_exp_show() -> list[str]:
    """The README's `dvc exp show` command (its first), as argv."""
    readme = (REPO / "README.md").read_text()
    line = next(ln for ln in readme.splitlines() if ln.startswith("dvc exp show"))
    return shlex.split(line.split("#", 1)[0])


def _widest(text: str) -> int:
    return max(len(line.rstrip()) for line in text.splitlines())


def test_changing_a_finetune_param_reruns_only_finetune_and_report(
    dvc_run, snakemake_run, monkeypatch
):
    root, _, _ = dvc_run
    monkeypatch.setenv("COLUMNS", "1000")  # a wide table must show its width, not be cut
    _git_commit(root)
    # DVC rewrites params.yaml as YAML 1.2 (`compile: off` unquoted): the stages read it so.
    ran = _stages_run(_run(["dvc", "exp", "run", "-S", "finetune.lr=0.07"], root))
    assert ran == {"report", *FINETUNES}
    assert "compile: off" in (root / "params.yaml").read_text()
    # The experiment against the committed run, as the README shows it: under 200 columns.
    assert _widest(_run(["dvc", "metrics", "show"], root)) <= 200
    shown = _run([*_readme_exp_show(), "--no-pager"], root)
    assert ".pres" in shown and "finetune.lr" in shown
    assert _widest(shown) <= 200, shown


def test_snakemake_lint_passes():
    _run(["snakemake", "--lint"], REPO)


def _set_param(root: Path, group: str, key: str, value) -> None:
    params = yaml12.load((root / "params.yaml").read_text())
    params[group][key] = value
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def _snakemake_jobs(log: str) -> set[str]:
    """The first output of every job Snakemake ran (`all` has none)."""
    return set(re.findall(r"^\s+output: ([^,\s]+)", log, re.M))


def test_mixed_drivers_rerun_exactly_the_affected_stages(dvc_run):
    # DVC made everything; Snakemake has no records of it in this checkout.
    root, _, _ = dvc_run
    assert not (root / ".snakemake").exists()
    _set_param(root, "train", "lr", 0.03)
    ran = _snakemake_jobs(_run(["snakemake", "--cores", "2"], root))
    assert ran == {
        "artifacts/train/final-seed-0",
        "artifacts/train/pdarts-seed-0",
        "results/main_table.csv",
    }
    assert "Nothing to be done" in _run(["snakemake", "-n", "--cores", "2"], root)
    # And back: DVC reruns what changed since its lock, including what Snakemake remade.
    _set_param(root, "pretrain", "lr", 0.2)
    assert _stages_run(_run(["dvc", "repro"], root)) == {
        "train@0-final",
        "train_reference@0-pdarts",
        "pretrain@0",
        "finetune_two_stage@0-0.5",
        "finetune_two_stage@0-1.0",
        "linear_eval@0-0.5",
        "linear_eval@0-1.0",
        "report",
    }
