"""`snakemake --config` overrides: values are read as YAML, so nested keys and lists work."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

BIN = Path(sys.executable).parent


def test_nested_keys_and_lists_reach_the_stages_typed(tmp_path, tiny_config, repo_copy):
    root = repo_copy(tmp_path, tiny_config)
    overrides = [
        'search={"epochs": 12, "weight_lr": 1e-3}',
        "seeds=[0, 1]",
        'runtime={"compile": "off", "amp": "off"}',  # "off" stays a word, not YAML 1.1's false
    ]
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(
        ["snakemake", "-n", "--cores", "1", "--config", *overrides],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    resolved = yaml.safe_load((root / ".snakemake/sswp/params.yaml").read_text())
    assert resolved["search"]["epochs"] == 12 and resolved["search"]["weight_lr"] == 0.001
    # The other search keys keep their params.yaml values.
    assert resolved["search"]["layers"] == tiny_config["search"]["layers"]
    assert resolved["seeds"] == [0, 1]
    assert resolved["runtime"]["compile"] == resolved["runtime"]["amp"] == "off"
    assert "artifacts/search/seed-1" in proc.stdout
