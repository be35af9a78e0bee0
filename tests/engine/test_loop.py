"""One epoch skeleton for the search and the child loops: a run stopped mid-epoch and resumed
through it ends exactly as an uninterrupted one, for either kind of loop."""

from __future__ import annotations

import dataclasses
import signal
from collections.abc import Callable

import pytest
import torch
from torch import nn

from sswp.data.datasets import load_prepared, normalization
from sswp.engine.checkpoint import Checkpointer
from sswp.engine.epochs import EpochLoop
from sswp.engine.hardware import setup
from sswp.engine.interrupt import StageInterrupted, StopFlag
from sswp.engine.loop import Steps, TrainingLoop
from sswp.engine.search import SearchLoop
from sswp.stages import prepare


class _Logger:
    def log_epoch(self, epoch, metrics):
        pass


class StopAfter(StopFlag):
    """A stop signal that arrives at the `polls`-th check: mid-epoch, between two steps."""

    def __init__(self, polls: int):
        super().__init__()
        self.left = polls

    @property
    def requested(self) -> bool:
        self.left -= 1
        if self.left == 0:
            self.signum = signal.SIGTERM
        return self.signum is not None


def _resumed_equals_uninterrupted(make: Callable[[], TrainingLoop], polls: int) -> None:
    whole = make()
    whole.run(_Logger(), Checkpointer("whole", {}), StopFlag())
    stopped = make()
    with pytest.raises(StageInterrupted, match="step"):
        stopped.run(_Logger(), Checkpointer("halves", {}), StopAfter(polls))
    assert len(stopped.history) == 1  # stopped in its second epoch
    resumed = make()
    resumed.run(_Logger(), Checkpointer("halves", {}), StopFlag())
    assert resumed.history == whole.history
    weights = [_weights(loop) for loop in (whole, resumed)]
    assert weights[0].keys() == weights[1].keys()
    for name, value in weights[0].items():
        assert torch.equal(value, weights[1][name]), name


def _weights(loop: TrainingLoop) -> dict[str, torch.Tensor]:
    module = loop.objective if isinstance(loop, SearchLoop) else loop.model
    return module.state_dict()


class _NoisyLoop(EpochLoop):
    """A child loop whose steps draw from the global RNG, as augmentations do."""

    def train_step(self, batch: torch.Tensor) -> None:
        noisy = batch + torch.randn_like(batch)
        self.optimise(self.model(noisy).pow(2).mean())
        self.count(0.0, 0.0, len(batch))

    def end_epoch(self, epoch: int, loss: float, acc: float, lr: float) -> dict[str, float]:
        return {"lr": lr, "weight": self.model.weight.sum().item()}


class _Batches(list):
    def set_epoch(self, epoch: int) -> None:
        pass


def test_both_kinds_of_loop_run_on_the_skeleton():
    for kind in (SearchLoop, EpochLoop):
        assert issubclass(kind, TrainingLoop)
        assert kind.run_epoch is TrainingLoop.run_epoch
    assert EpochLoop.run is TrainingLoop.run


def test_a_child_loop_stopped_mid_epoch_resumes_to_the_same_end(tmp_path, monkeypatch, tiny_params):
    monkeypatch.chdir(tmp_path)
    recipe = dataclasses.replace(tiny_params.pretrain, epochs=3)
    hw = setup(tiny_params.runtime, 0)

    def make() -> TrainingLoop:
        torch.manual_seed(0)
        batches = _Batches(torch.ones(4, 3) * i for i in range(5))
        return _NoisyLoop("child", nn.Linear(3, 1), batches, recipe, tiny_params.runtime, hw)

    _resumed_equals_uninterrupted(make, polls=8)  # epoch 1 (5 steps + the epoch end), step 2


def test_the_search_stopped_mid_epoch_resumes_to_the_same_end(tmp_path, monkeypatch, tiny_params):
    monkeypatch.chdir(tmp_path)
    prepare.run(tiny_params, None)
    data, splits, manifest = load_prepared()

    def make() -> SearchLoop:
        hw = setup(tiny_params.runtime, tiny_params.seed)  # seeds the global RNG
        return SearchLoop(tiny_params, data, splits, normalization(manifest), hw)

    steps = len(make().weight_loader)
    _resumed_equals_uninterrupted(make, polls=steps + 3)  # epoch 1, step 2


def test_steps_skip_what_a_resumed_epoch_trained_then_restore_the_random_state(tiny_params):
    restored = []

    class Loop(TrainingLoop):
        name, epochs, runtime = "probe", 1, tiny_params.runtime
        hw = setup(tiny_params.runtime, 0)

        def restore_random_state(self, state):
            restored.append(state["step"])

    steps = Steps(Loop(), 0, StopFlag(), None, {"step": 2})
    assert list(steps(_Batches("abcde"))) == [(2, "c"), (3, "d"), (4, "e")]
    assert restored == [2]
