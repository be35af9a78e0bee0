"""`compare` on two hand-made result folders: exact diff text and one-line failures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sswp import cli
from sswp.errors import SswpError
from sswp.report.compare import compare, flatten

PARAMS_A = {
    "seeds": [0, 1],
    "search": {"epochs": 8, "objective": "simclr", "phases": {"warmup": 0.25}},
    "data": {"dataset": "digits"},
}
PARAMS_B = {
    "seeds": [0],
    "search": {"epochs": 16, "objective": "simclr", "phases": {"warmup": 0.25}},
    "data": {"dataset": "digits"},
    "linear_eval": {"epochs": 30},
}
METRICS_A = {
    "main": {
        "final": {"test_error_mean": 15.0, "test_error_std": 7.07, "params_m": 0.1237},
    },
    "label_ratio": {"finetune_preserved": {"10%": {"mean": 75.0, "std": 7.07}}},
}
METRICS_B = {
    "main": {
        "final": {"test_error_mean": 12.5, "params_m": 0.1237, "search_hours": 0.75},
    },
    "label_ratio": {"finetune_preserved": {"10%": {"mean": 75.25, "std": 7.07}}},
}


def _results(folder: Path, params: dict, metrics: dict) -> Path:
    folder.mkdir(parents=True)
    (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=True))
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return folder


@pytest.fixture
def runs(tmp_path) -> tuple[Path, Path]:
    """A: a results/ folder given directly; B: a run folder that holds its results/."""
    a = _results(tmp_path / "a" / "results", PARAMS_A, METRICS_A)
    _results(tmp_path / "b" / "results", PARAMS_B, METRICS_B)
    return a, tmp_path / "b"


def test_compare_exact_text(runs):
    a, b = runs
    assert compare(a, b).text == "\n".join(
        [
            f"A: {a}",
            f"B: {b / 'results'}",
            "",
            "Params that differ (3):",
            "  key                 A       B",
            "  linear_eval.epochs  —       30",
            "  search.epochs       8       16",
            "  seeds               [0, 1]  [0]",
            "",
            "Metrics (6, 4 changed or on one side only):",
            "  key                                      A       B       B-A",
            "  label_ratio.finetune_preserved.10%.mean  75      75.25   +0.25  changed",
            "  label_ratio.finetune_preserved.10%.std   7.07    7.07    +0",
            "  main.final.params_m                      0.1237  0.1237  +0",
            "  main.final.search_hours                  —       0.75           only in B",
            "  main.final.test_error_mean               15      12.5    -2.5   changed",
            "  main.final.test_error_std                7.07    —              only in A",
            "",
        ]
    )


def test_identical_runs(runs):
    a, _ = runs
    text = compare(a, a.parent).text
    assert "Params: identical\n" in text
    assert "Metrics (5, 0 changed or on one side only):\n" in text
    assert "  main.final.params_m                      0.1237  0.1237  +0\n" in text


def test_flatten_makes_dotted_keys_and_keeps_lists():
    assert flatten({"a": {"b": {"c": 1}, "d": [1, 2]}, "e": None}) == {
        "a.b.c": 1,
        "a.d": [1, 2],
        "e": None,
    }


def test_missing_folder(tmp_path, runs, monkeypatch):
    monkeypatch.chdir(tmp_path)
    subprocess.run(["git", "init", "-q"], check=True)
    message = r"'nowhere' is neither a folder, a git revision nor a DVC experiment"
    with pytest.raises(SswpError, match=message) as err:
        compare("nowhere", runs[0])
    assert "\n" not in str(err.value)


def _git(*args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
    }
    env["GIT_COMMITTER_EMAIL"] = "t@t"
    done = subprocess.run(["git", *args], check=True, capture_output=True, text=True, env=env)
    return done.stdout.strip()


def test_revisions_and_experiments_compare_like_folders(tmp_path, runs, monkeypatch):
    """Each commit, and each DVC experiment (a commit under refs/exps/), holds its results/."""
    monkeypatch.chdir(tmp_path)
    _git("init", "-q")
    _results(tmp_path / "results", PARAMS_A, METRICS_A)
    _git("add", "results")
    _git("commit", "-qm", "A")
    first = _git("rev-parse", "HEAD")
    for name, content in (("params.yaml", PARAMS_B), ("metrics.json", METRICS_B)):
        text = (
            yaml.safe_dump(content, sort_keys=True)
            if name.endswith("yaml")
            else json.dumps(content)
        )
        (tmp_path / "results" / name).write_text(text)
    _git("commit", "-qam", "B")
    # An experiment run from the first commit, as DVC names its refs.
    _git("update-ref", f"refs/exps/{first[:2]}/{first[2:]}/wide-lr", "HEAD")
    by_folder = compare(runs[0], runs[1]).text.splitlines()[2:]
    by_rev = compare("HEAD~1", "wide-lr")
    assert by_rev.differ and by_rev.text.splitlines()[2:] == by_folder
    assert by_rev.text.startswith(f"A: HEAD~1 ({first[:12]})\nB: wide-lr (")
    with pytest.raises(SswpError, match=r"results/params.yaml not found at [0-9a-f]{12}"):
        _git("commit", "-q", "--allow-empty", "-m", "C")
        _git("rm", "-rq", "results")
        _git("commit", "-qm", "D")
        compare("HEAD", "HEAD~1")


def test_missing_metrics(runs):
    a, b = runs
    (a / "metrics.json").unlink()
    with pytest.raises(SswpError) as err:
        compare(a, b)
    assert str(err.value) == f"{a / 'metrics.json'} not found; run `sswp report` in that run first"


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (
            "params.yaml",
            "seeds: [0, 1\n",
            r"params.yaml is not valid YAML \(.*\); rerun `sswp report`$",
        ),
        ("params.yaml", "- 1\n- 2\n", r"params.yaml is not a YAML mapping; rerun `sswp report`$"),
        ("metrics.json", "{bad", r"metrics.json is not valid JSON \(.*\); rerun `sswp report`$"),
    ],
)
def test_bad_files(runs, name, content, message):
    a, b = runs
    (b / "results" / name).write_text(content)
    with pytest.raises(SswpError, match=message) as err:
        compare(a, b)
    assert "\n" not in str(err.value)


def test_cli_prints_the_comparison_or_one_error_line(runs, tmp_path, capsys):
    a, b = runs
    assert cli.main(["compare", str(a), str(b)]) == 1
    assert capsys.readouterr().out == compare(a, b).text + "\n"
    assert cli.main(["compare", str(a), str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("sswp compare: error: ")


def test_exit_status_is_zero_for_matching_runs_and_one_when_they_differ(runs, capsys):
    a, b = runs
    assert not compare(a, a.parent).differ
    assert cli.main(["compare", str(a), str(a.parent)]) == 0
    assert compare(a, b).differ
    assert cli.main(["compare", str(a), str(b)]) == 1


def test_a_param_alone_makes_runs_differ(tmp_path):
    a = _results(tmp_path / "a", PARAMS_A, METRICS_A)
    b = _results(tmp_path / "b", {**PARAMS_A, "seeds": [0]}, METRICS_A)
    assert compare(a, b).differ


def test_closed_pipe_is_no_error(runs):
    """`sswp compare A B | head`: the reader is gone before the first write."""
    a, b = runs
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "sswp.cli", "compare", str(a), str(b)],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
    finally:
        os.close(write_end)
    assert done.stderr == ""
    assert done.returncode == 1
