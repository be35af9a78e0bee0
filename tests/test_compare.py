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


def test_missing_folder(tmp_path, runs):
    with pytest.raises(SswpError, match=r"nowhere is not a folder; give a results/ folder") as err:
        compare(tmp_path / "nowhere", runs[0])
    assert "\n" not in str(err.value)


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
