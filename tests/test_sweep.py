"""`sswp sweep` on hand-made DVC experiments: each a commit under refs/exps/ that carries its
results/, read from git into results/sweep/'s table, figure and params."""

from __future__ import annotations

import json
import math
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from sswp import cli

CHANCE = round(math.log(63), 4)


def _git(*args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t"}
    env |= {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    done = subprocess.run(["git", *args], check=True, capture_output=True, text=True, env=env)
    return done.stdout.strip()


def _metrics(steps: int, learned: int, diff: float) -> dict:
    entry = {
        "mean": diff,
        "low": diff - 1,
        "high": diff + 1,
        "n": 3,
        "verdict": 1 if diff > 1 else 0,
    }
    by_ratio = {"2%": entry, "5%": {**entry, "mean": 0.0, "low": -1.0, "high": 1.0, "verdict": 0}}
    return {
        "budget": {"preserved": {"ssl_steps": steps}},
        "comparisons": {
            stage: {"vs_random": by_ratio, "vs_two_stage": by_ratio}
            for stage in ("finetune", "linear_eval")
        },
        "ssl": {
            name: {"val_ssl_loss": 3.0, "chance": CHANCE, "learned": learned}
            for name in ("search", "preserved", "two_stage")
        },
    }


@pytest.fixture
def repo(tmp_path, monkeypatch) -> Path:
    """Two budgets run as experiments from the first commit: 40 epochs, then 10."""
    monkeypatch.chdir(tmp_path)
    _git("init", "-q")
    (tmp_path / "README").write_text("base\n")
    _git("add", "README")
    _git("commit", "-qm", "base")
    base = _git("rev-parse", "HEAD")
    for epochs, steps, learned, diff in ((40, 800, 1, 5.0), (10, 200, 0, 0.5)):
        _git("checkout", "-q", base)
        Path("results").mkdir(exist_ok=True)
        Path("metrics/search").mkdir(parents=True, exist_ok=True)
        Path("results/params.yaml").write_text(yaml.safe_dump({"search": {"epochs": epochs}}))
        Path("results/metrics.json").write_text(json.dumps(_metrics(steps, learned, diff)))
        Path("metrics/search/seed-0.json").write_text(json.dumps({"search_hours": epochs / 100}))
        _git("add", "results", "metrics")
        _git("commit", "-qm", f"exp {epochs}")
        _git("update-ref", f"refs/exps/{base[:2]}/{base[2:]}/sweep-e{epochs}", "HEAD")
    _git("checkout", "-q", base)
    return tmp_path


def test_the_sweep_gathers_every_sweep_experiment_by_its_steps(repo, capsys):
    assert cli.main(["sweep"]) == 0
    out = Path("results/sweep")
    assert sorted(p.name for p in out.iterdir()) == [
        "sweep-e10.params.yaml",
        "sweep-e40.params.yaml",
        "sweep.csv",
        "sweep.md",
        "sweep.png",
    ]
    assert yaml.safe_load((out / "sweep-e40.params.yaml").read_text()) == {"search": {"epochs": 40}}
    rows = (out / "sweep.csv").read_text().splitlines()
    assert rows[0] == (
        "experiment,search_epochs,ssl_steps,stage_hours,stage,label_ratio,opponent,mean,low,high,"
        "verdict"
    )
    assert (
        rows[1]
        == "sweep-e10,10,200.0,0.1,finetune,0.02,vs_random,0.5,-0.5,1.5,no difference detected"
    )
    assert len(rows) == 1 + 2 * 2 * 2 * 2  # budgets x stages x opponents x ratios
    assert rows[-1].startswith("sweep-e40,40,800.0,0.4,linear_eval,0.05,vs_two_stage,0.0,")
    md = (out / "sweep.md").read_text()
    assert "| 10 (200) | 3.000 § | 3.000 § | 3.000 § | 0.10 | sweep-e10 |" in md
    assert "| 40 (800) | 3.000 | 3.000 | 3.000 | 0.40 | sweep-e40 |" in md
    assert (
        "| 40 | finetune | 2% | +5.00 [+4.00, +6.00] better | +5.00 [+4.00, +6.00] better |" in md
    )
    assert (out / "sweep.png").read_bytes().startswith(b"\x89PNG")
    assert "sweep-e10: search.epochs 10, 200 SimCLR steps" in capsys.readouterr().out


def test_a_missing_experiment_is_one_line_and_writes_nothing(repo, capsys):
    assert cli.main(["sweep", "sweep-e10", "sweep-e80"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("sswp sweep: error: 'sweep-e80' is neither a folder, a git revision")
    assert not Path("results/sweep").exists()
