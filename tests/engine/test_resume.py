"""Killed stages resume: SIGKILL after a checkpoint, SIGTERM mid-epoch, identical results."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

import sswp
from sswp.engine.logs import ATTEMPT_SEPARATOR

SSWP = [sys.executable, "-m", "sswp.cli"]
TIMING = {"search_hours", "train_hours", "pretrain_hours"}
FINETUNE = ["finetune", "--init", "preserved", "--ratio", "1.0"]


def _sswp(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*SSWP, *args], cwd=root, capture_output=True, text=True)


def _start(root: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [*SSWP, *args], cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _wait_for_checkpoint(root: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not list(root.glob(".checkpoints/**/checkpoint.pt")):
        assert proc.poll() is None, f"stage ended before its first checkpoint: {proc.stderr.read()}"
        assert time.monotonic() < deadline, "no checkpoint written in time"
        time.sleep(0.05)


def _outputs(root: Path, stage: str) -> dict:
    """What a stage produced, minus wall-clock fields: genotypes, alphas, metrics."""
    out: dict = {}
    if stage == "search":
        for snap in ("final", "highest_acc", "lowest_loss"):
            out[snap] = json.loads(
                (root / f"artifacts/search/seed-0/{snap}/genotype.json").read_text()
            )
            state = torch.load(
                root / f"artifacts/search/seed-0/{snap}/supernet.pt", weights_only=True
            )
            out[f"{snap}-alphas"] = [
                v.tolist() for k, v in sorted(state["state_dict"].items()) if k.endswith("alpha")
            ]
        metrics = root / "metrics/search/seed-0.json"
    else:
        state = torch.load(
            root / "artifacts/finetune/preserved-1.0-seed-0/model.pt", weights_only=True
        )
        out["weights"] = float(sum(v.double().sum() for v in state["state_dict"].values()))
        metrics = root / "metrics/finetune/preserved-1.0-seed-0.json"
    out["metrics"] = {k: v for k, v in json.loads(metrics.read_text()).items() if k not in TIMING}
    return out


@pytest.fixture(scope="module")
def reference(tmp_path_factory, tiny_config):
    """An uninterrupted prepare + search + finetune on the tiny config."""
    root = tmp_path_factory.mktemp("reference")
    config = dict(tiny_config, finetune={**tiny_config["finetune"], "epochs": 12})
    (root / "params.yaml").write_text(yaml.safe_dump(config))
    for args in (["prepare"], ["search"], FINETUNE):
        proc = _sswp(root, *args)
        assert proc.returncode == 0, proc.stderr
    assert not list(root.glob(".checkpoints/*/*")), "checkpoints are cleared after success"
    return root


def _fresh_copy(reference: Path, dest: Path, stage: str) -> Path:
    shutil.copy(reference / "params.yaml", dest / "params.yaml")
    shutil.copytree(reference / "data", dest / "data")
    if stage != "search":
        shutil.copytree(reference / "artifacts/search", dest / "artifacts/search")
    return dest


@pytest.mark.parametrize("stage", ["search", "finetune"])
def test_sigkill_then_rerun_gives_the_uninterrupted_result(reference, tmp_path, stage):
    root = _fresh_copy(reference, tmp_path, stage)
    args = ["search"] if stage == "search" else FINETUNE
    proc = _start(root, *args)
    _wait_for_checkpoint(root, proc)
    time.sleep(random.uniform(0.0, 1.5))  # somewhere inside a later epoch
    proc.kill()
    proc.wait()
    assert not (root / "metrics").exists() or not list((root / "metrics").rglob("*.json"))
    rerun = _sswp(root, *args)
    assert rerun.returncode == 0, rerun.stderr
    assert "resuming from" in rerun.stderr
    assert _outputs(root, stage) == _outputs(reference, stage)


@pytest.mark.parametrize("stage", ["search", "finetune"])
def test_sigterm_saves_mid_epoch_and_exits_with_a_resume_hint(reference, tmp_path, stage):
    root = _fresh_copy(reference, tmp_path, stage)
    args = ["search"] if stage == "search" else FINETUNE
    proc = _start(root, *args)
    _wait_for_checkpoint(root, proc)
    time.sleep(random.uniform(0.0, 0.2))
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    last = stderr.strip().splitlines()[-1]
    assert "stopped by SIGTERM" in last and "Rerun the same command" in last
    rerun = _sswp(root, *args)
    assert rerun.returncode == 0, rerun.stderr
    assert _outputs(root, stage) == _outputs(reference, stage)


def test_changed_params_start_over_and_drop_the_old_checkpoint(reference, tmp_path):
    root = _fresh_copy(reference, tmp_path, "finetune")
    proc = _start(root, *FINETUNE)
    _wait_for_checkpoint(root, proc)
    proc.kill()
    proc.wait()
    (old,) = root.glob(".checkpoints/finetune/*/*")
    config = yaml.safe_load((root / "params.yaml").read_text())
    config["finetune"]["lr"] = 0.07
    (root / "params.yaml").write_text(yaml.safe_dump(config))
    rerun = _sswp(root, *FINETUNE)
    assert rerun.returncode == 0, rerun.stderr
    assert "resuming from" not in rerun.stderr
    assert not old.exists()


def test_a_second_concurrent_run_is_refused_at_once(reference, tmp_path):
    root = _fresh_copy(reference, tmp_path, "finetune")
    config = yaml.safe_load((root / "params.yaml").read_text())
    config["finetune"]["epochs"] = 500  # still running when the second one starts
    (root / "params.yaml").write_text(yaml.safe_dump(config))
    first = _start(root, *FINETUNE)
    try:
        _wait_for_checkpoint(root, first)
        second = _sswp(root, *FINETUNE)
        assert first.poll() is None, "the first run must still be running"
    finally:
        first.kill()
        first.wait()
    assert second.returncode == 2, second.stderr
    (line,) = second.stderr.strip().splitlines()
    assert "is already running in this folder" in line and f"pid {first.pid}" in line
    assert "resuming from" not in second.stderr  # it never touched the checkpoint


def test_a_code_change_starts_over_and_says_why(reference, tmp_path):
    root = _fresh_copy(reference, tmp_path, "finetune")
    code = tmp_path / "src"
    shutil.copytree(Path(sswp.__file__).parent, code / "sswp")
    env = {**os.environ, "PYTHONPATH": str(code)}
    first = subprocess.Popen(
        [*SSWP, *FINETUNE], cwd=root, env=env, stderr=subprocess.PIPE, text=True
    )
    _wait_for_checkpoint(root, first)
    first.kill()
    first.wait()
    (old,) = root.glob(".checkpoints/finetune/*/*")
    with open(code / "sswp/stages/finetune.py", "a") as module:  # finetune's code only
        module.write("\n# edited\n")
    rerun = subprocess.run([*SSWP, *FINETUNE], cwd=root, env=env, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert "resuming from" not in rerun.stderr
    assert "starting over" in rerun.stderr and "the code changed" in rerun.stderr
    assert not old.exists()


def test_a_resumed_run_plots_every_epoch_once(reference, tmp_path):
    root = _fresh_copy(reference, tmp_path, "search")
    proc = _start(root, "search")
    _wait_for_checkpoint(root, proc)
    proc.kill()
    proc.wait()
    rerun = _sswp(root, "search")
    assert rerun.returncode == 0 and "resuming from" in rerun.stderr, rerun.stderr
    epochs = yaml.safe_load((root / "params.yaml").read_text())["search"]["epochs"]
    plots = sorted((root / "live/search/seed-0/plots/metrics").rglob("*.tsv"))
    assert plots
    logged: set[int] = set()
    for plot in plots:
        steps = [int(line.split("\t")[0]) for line in plot.read_text().splitlines()[1:]]
        assert steps == sorted(set(steps)), plot  # no epoch twice
        logged.update(steps)
    assert logged == set(range(epochs))
    log = (root / "logs/search-seed-0.log").read_text()
    assert log.count(ATTEMPT_SEPARATOR) == 2
