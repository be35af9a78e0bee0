"""Log lines users read: "epoch k/N" with elapsed time and ETA, and batch progress in logs."""

from __future__ import annotations

import dataclasses
import logging
import re
import subprocess
from pathlib import Path

import pytest
import torch
from torch import nn

from sswp.config.load import load_params
from sswp.config.params import PretrainParams
from sswp.engine.checkpoint import Checkpointer
from sswp.engine.distributed import DistContext
from sswp.engine.hardware import Hardware
from sswp.engine.interrupt import StopFlag
from sswp.engine.logs import EpochClock, MetricLogger, duration, logged_progress
from sswp.errors import SswpError

PARAMS = Path(__file__).parents[2] / "params.yaml"


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_duration_is_hours_minutes_seconds():
    assert [duration(s) for s in (0, 59.6, 61, 3600 * 26 + 125)] == [
        "0:00:00",
        "0:01:00",
        "0:01:01",
        "26:02:05",
    ]


def test_epoch_status_extrapolates_the_mean_epoch_time():
    clock = FakeClock()
    epochs = EpochClock(10, clock=clock)
    clock.now += 6
    assert epochs.status(1) == "epoch 2/10, 0:00:06 elapsed, ETA 0:00:24"
    clock.now += 24
    assert epochs.status(9) == "epoch 10/10, 0:00:30 elapsed, ETA 0:00:00"


def test_a_resumed_run_counts_only_its_own_epochs():
    clock = FakeClock()
    epochs = EpochClock(8, first=6, clock=clock)
    clock.now += 50
    assert epochs.status(6) == "epoch 7/8, 0:00:50 elapsed, ETA 0:00:50"


def test_batch_progress_is_logged_at_most_every_interval(caplog):
    clock = FakeClock()

    def batches():
        for _ in range(10):
            clock.now += 7  # each batch takes 7 s
            yield None

    with caplog.at_level(logging.INFO, logger="sswp"):
        for _ in logged_progress(batches(), "search 0", total=12, initial=2, clock=clock):
            pass
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "search 0: batch 7/12 (58%), 0:00:35 elapsed",
        "search 0: batch 12/12 (100%), 0:01:10 elapsed",
    ]


def test_every_epoch_line_says_k_of_n_elapsed_and_eta(tmp_path, monkeypatch, caplog, sum_loop):
    loop_type, batches = sum_loop
    monkeypatch.chdir(tmp_path)
    runtime = dataclasses.replace(load_params(PARAMS).runtime, progress="never")
    recipe = PretrainParams(
        epochs=3,
        batch_size=2,
        lr=0.1,
        lr_min=0.0,
        lr_step="epoch",
        momentum=0.9,
        weight_decay=0.0,
        warmup_epochs=0,
        temperature=0.1,
        grad_clip=5.0,
        bn_affine=True,
        images="all",
        budget="epochs",
        budget_fraction=1.0,
    )
    cpu = Hardware(torch.device("cpu"), DistContext(), channels_last=False, amp="off")
    loader = batches(torch.ones(2, 2) for _ in range(2))
    loop = loop_type("pretrain/seed-0", nn.Linear(2, 1), loader, recipe, runtime, cpu)
    with caplog.at_level(logging.INFO, logger="sswp"):
        loop.run(MetricLogger("x", enabled=False), Checkpointer("logs", {}), StopFlag())
    lines = [r.getMessage() for r in caplog.records if "epoch" in r.getMessage()]
    pattern = r"pretrain/seed-0 epoch {}/3, \d+:\d\d:\d\d elapsed, ETA \d+:\d\d:\d\d: lr=\S+"
    assert len(lines) == 3
    for k, line in enumerate(lines, start=1):
        assert re.fullmatch(pattern.format(k), line), line


def test_a_repository_without_a_commit_is_one_clear_error(tmp_path, monkeypatch):
    """DVCLive reads the git revision; before the first commit there is none."""
    monkeypatch.chdir(tmp_path)
    subprocess.run(["git", "init", "-q"], check=True)
    subprocess.run(["dvc", "init", "-q"], check=True)
    with pytest.raises(SswpError, match=r"commit once .*git add -A && git commit"):
        MetricLogger("search/seed-0")
