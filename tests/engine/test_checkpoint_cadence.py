"""End-of-epoch checkpoints at most once per runtime.checkpoint_seconds; a stop always saves."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from torch import nn

from sswp.config.load import load_params
from sswp.engine import checkpoint
from sswp.engine.checkpoint import Checkpointer
from sswp.engine.distributed import DistContext
from sswp.engine.epochs import EpochLoop
from sswp.engine.hardware import Hardware
from sswp.engine.interrupt import StageInterrupted, StopFlag

PARAMS = Path(__file__).parents[2] / "params.yaml"
CPU = Hardware(torch.device("cpu"), DistContext(), channels_last=False, amp="off")
STEPS = 3


class _Clock:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch, tmp_path) -> _Clock:
    monkeypatch.chdir(tmp_path)
    fake = _Clock()
    monkeypatch.setattr(checkpoint.time, "monotonic", fake)
    return fake


def _saved_epochs(checkpointer: Checkpointer, clock: _Clock, times: list[float]) -> list[int]:
    """The epochs whose end-of-epoch state was saved, with epoch i ending at times[i]."""
    saved: list[int] = []

    def state_of(epoch: int):
        def state() -> dict[str, int]:
            saved.append(epoch)
            return {"epoch": epoch, "step": 0}

        return state

    for epoch, at in enumerate(times, start=1):
        clock.now = 1000.0 + at
        checkpointer.save_at_epoch_end(state_of(epoch))
        if saved and saved[-1] == epoch:
            assert checkpointer.load()["epoch"] == epoch
    return saved


def test_an_epoch_end_saves_once_the_interval_has_passed_since_the_last_save(clock):
    checkpointer = Checkpointer("cadence", {}, every_s=60)
    # Seconds since the checkpointer was made; each save restarts the count.
    assert _saved_epochs(checkpointer, clock, [30, 59, 61, 100, 120, 121, 500]) == [3, 6, 7]


def test_zero_seconds_saves_at_every_epoch_end(clock):
    checkpointer = Checkpointer("cadence", {}, every_s=0)
    assert _saved_epochs(checkpointer, clock, [0, 0, 1, 1]) == [1, 2, 3, 4]


def test_an_interval_never_reached_writes_no_checkpoint(clock):
    checkpointer = Checkpointer("cadence", {}, every_s=3600)
    assert _saved_epochs(checkpointer, clock, [10, 20, 3599]) == []
    assert not checkpointer.path.exists()


class _StopAtRead(StopFlag):
    """Requested from its n-th poll on: the loop polls once after each step and once after
    each epoch's end-of-epoch checkpoint."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.polls, self.n = 0, n

    @property
    def requested(self) -> bool:
        self.polls += 1
        return self.polls >= self.n


class _NullLogger:
    def log_epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        pass


def _loop(sum_loop) -> EpochLoop:
    loop_type, listed_batches = sum_loop
    runtime = dataclasses.replace(load_params(PARAMS).runtime, progress="never")
    recipe = dataclasses.replace(load_params(PARAMS).pretrain, epochs=3, warmup_epochs=0)
    batches = listed_batches(torch.ones(2, 2) for _ in range(STEPS))
    torch.manual_seed(0)
    return loop_type("cadence", nn.Linear(2, 1), batches, recipe, runtime, CPU)


def test_a_stop_at_an_epoch_end_saves_even_before_the_interval(clock, sum_loop):
    checkpointer = Checkpointer("cadence", {}, every_s=3600)
    stop = _StopAtRead(STEPS + 1)  # the poll after epoch 0's end
    loop = _loop(sum_loop)
    with pytest.raises(StageInterrupted):
        loop.run(_NullLogger(), checkpointer, stop)
    state = checkpointer.load()
    assert (state["epoch"], state["step"]) == (1, 0)
    weights = loop.model.state_dict()
    assert all(torch.equal(state["model"][k], weights[k]) for k in weights)


def test_a_loop_with_a_long_interval_trains_alike_and_leaves_no_checkpoint(clock, sum_loop):
    rare = Checkpointer("rare", {}, every_s=3600)
    often = Checkpointer("often", {}, every_s=0)
    rare_loop, often_loop = _loop(sum_loop), _loop(sum_loop)
    rare_loop.run(_NullLogger(), rare, StopFlag())
    often_loop.run(_NullLogger(), often, StopFlag())
    assert not rare.path.exists()
    assert often.load()["epoch"] == 3
    rare_weights, often_weights = rare_loop.model.state_dict(), often_loop.model.state_dict()
    assert all(torch.equal(rare_weights[k], often_weights[k]) for k in rare_weights)
