"""The search loop in-process on the tiny config: phases, freezing, determinism."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from sswp.data.datasets import load_prepared, normalization
from sswp.engine.checkpoint import Checkpointer
from sswp.engine.interrupt import StopFlag
from sswp.engine.runtime import setup
from sswp.engine.search import SearchLoop
from sswp.stages import prepare


class _NullLogger:
    def log_epoch(self, epoch, metrics):
        self.last = (epoch, metrics)


@pytest.fixture
def prepared(tmp_path, monkeypatch, tiny_params):
    monkeypatch.chdir(tmp_path)
    prepare.run(tiny_params, None)
    return load_prepared()


def _search(params, prepared):
    data, splits, manifest = prepared
    hw = setup(params.runtime, params.seed)
    loop = SearchLoop(params, data, splits, normalization(manifest), hw)
    checkpointer = Checkpointer("search", {"seed": params.seed})
    result = loop.run(_NullLogger(), checkpointer, StopFlag())
    checkpointer.clear()
    return loop, result


def test_same_seed_gives_same_genotype_alphas_and_metrics(tiny_params, prepared):
    _, first = _search(tiny_params, prepared)
    _, second = _search(tiny_params, prepared)
    for name in ("final", "highest_acc", "lowest_loss"):
        assert first.snapshots[name].genotype == second.snapshots[name].genotype
        assert first.snapshots[name].metrics == second.snapshots[name].metrics
    torch.testing.assert_close(first.alpha_history, second.alpha_history, rtol=0, atol=0)
    timing = {"search_hours"}
    assert {k: v for k, v in first.metrics.items() if k not in timing} == {
        k: v for k, v in second.metrics.items() if k not in timing
    }
    assert first.metrics["objective"] == "simclr" and first.metrics["labels_used"] == 0
    assert set(first.snapshots["final"].metrics) == {"objective_loss", "objective_acc", "epoch"}
    _, other = _search(dataclasses.replace(tiny_params, seed=1), prepared)
    assert not torch.equal(other.alpha_history, first.alpha_history)


def test_every_phase_runs_and_every_cell_ends_frozen(tiny_params, prepared):
    loop, result = _search(tiny_params, prepared)
    history = result.alpha_history  # (epochs, cells, 14, 7)
    uniform = torch.full_like(history[0], 1 / 7)
    torch.testing.assert_close(history[0], uniform)  # warm-up: alphas untouched
    assert not torch.allclose(history[1], uniform)  # search: arch steps moved them
    assert all(cell.frozen for cell in loop.net.cells)
    torch.testing.assert_close(history[-1], history[-2])  # stabilise: frozen alphas stay
    final = result.snapshots["final"]
    assert final.genotype == loop.net.derive(2, 2)
    assert final.metrics["epoch"] == 3
