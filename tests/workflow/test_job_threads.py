"""Jobs reserve the cores their stage uses: runtime.threads per process, loader included."""

from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
TORCH_RULES = ("search", "train", "pretrain", "finetune", "linear_eval")


def _planned_threads(root: Path) -> dict[str, set[tuple[int, int]]]:
    """{rule: {(threads, cpus_per_task)}} of every job `snakemake -n` plans."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(
        ["snakemake", "-n", "--cores", "64"], cwd=root, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    planned: dict[str, set[tuple[int, int]]] = {}
    for block in re.split(r"\n(?=\[[^\]]+\]\n(?:local)?rule )", proc.stdout):
        rule = re.search(r"^(?:local)?rule (\w+):", block, re.M)
        if rule is None or rule[1] == "all":
            continue
        threads = re.search(r"^\s+threads: (\d+)$", block, re.M)
        cpus = re.search(r"cpus_per_task=(\d+)", block)
        assert cpus, block
        planned.setdefault(rule[1], set()).add((int(threads[1]) if threads else 1, int(cpus[1])))
    return planned


@pytest.mark.parametrize("gpus", [0, 2])
def test_a_job_reserves_runtime_threads_per_process(gpus, tmp_path, tiny_config, repo_copy):
    config = copy.deepcopy(tiny_config)
    config["runtime"].update(threads=3, gpus=gpus)
    config["data"]["workers"] = 1  # taken from the 3, not added to them
    planned = _planned_threads(repo_copy(tmp_path, config))
    assert set(TORCH_RULES) <= set(planned)
    for rule in TORCH_RULES:
        processes = max(gpus, 1) if rule != "linear_eval" else 1
        assert planned[rule] == {(3 * processes, 3 * processes)}, rule
