"""`snakemake --config` overrides: values are read as YAML, so nested keys and lists work;
the stages read the validated config, and a dry run writes none of it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml
from dvc.utils.serialize import modify_yaml

BIN = Path(sys.executable).parent


def _snakemake(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(
        ["snakemake", "--cores", "1", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
    )


def test_nested_keys_and_lists_reach_the_stages_typed(tmp_path, tiny_config, repo_copy):
    root = repo_copy(tmp_path, tiny_config)
    overrides = [
        'search={"epochs": 12, "weight_lr": 1e-3}',
        "seeds=[0, 1]",
        'runtime={"compile": "off", "amp": "off"}',  # "off" stays a word, not YAML 1.1's false
    ]
    planned = _snakemake(root, "-n", "--config", *overrides)
    assert planned.returncode == 0, planned.stdout + planned.stderr
    assert "artifacts/search/seed-1" in planned.stdout
    assert not (root / ".snakemake/sswp").exists()  # a dry run writes nothing
    proc = _snakemake(root, "data/prepared", "--config", *overrides)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    resolved = yaml.safe_load((root / ".snakemake/sswp/params.yaml").read_text())
    assert resolved["search"]["epochs"] == 12 and resolved["search"]["weight_lr"] == 0.001
    # The other search keys keep their params.yaml values.
    assert resolved["search"]["layers"] == tiny_config["search"]["layers"]
    assert resolved["seeds"] == [0, 1]
    assert resolved["runtime"]["compile"] == resolved["runtime"]["amp"] == "off"


def test_params_rewritten_by_dvc_exp_run_are_read_as_written(tmp_path, tiny_config, repo_copy):
    """`dvc exp run -S` writes YAML 1.2: `compile: off` unquoted and small floats as 1e-05."""
    root = repo_copy(tmp_path, tiny_config)
    with modify_yaml(root / "params.yaml") as data:
        data["search"]["weight_decay"] = 1e-5
    text = (root / "params.yaml").read_text()
    assert "compile: off" in text and "weight_decay: 1e-05" in text, text
    proc = _snakemake(root, "--printshellcmds", "data/prepared")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # Without overrides the stages read params.yaml itself, as DVC's do.
    assert "sswp prepare --params params.yaml" in proc.stdout + proc.stderr
    assert not (root / ".snakemake/sswp").exists()
