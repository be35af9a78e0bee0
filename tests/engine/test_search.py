"""The search loop in-process on the tiny config: phases, freezing, determinism."""

from __future__ import annotations

import copy
import dataclasses
import math
from functools import partial

import pytest
import torch

from sswp.data.datasets import load_prepared, normalization
from sswp.engine.checkpoint import Checkpointer
from sswp.engine.distributed import DistContext
from sswp.engine.hardware import Hardware, setup
from sswp.engine.interrupt import StopFlag
from sswp.engine.objectives import SimCLRObjective
from sswp.engine.search import SearchLoop
from sswp.engine.stepper import SearchStepper
from sswp.nas.supernet import SuperNet
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
    kept = {f"kept_op_{n}_{s}" for n in ("updates", "lr_updates") for s in ("mean", "min", "max")}
    child = {"child_val_ssl_loss", "child_val_ssl_acc"}
    expected = {"objective_loss", "objective_acc", "epoch", *kept, *child}
    assert set(first.snapshots["final"].metrics) == expected
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


class _GateGradientProbe:
    """The gate gradients of every step, from hooks and the definition alone.

    dL/dg_k = <dL/d(edge output), o_k> for both ops of the sampled pair, o_k recomputed on a
    copy of the op (train-mode BN normalises with the batch, so the copy gives the same
    output) whether or not the step itself ran it.
    """

    def __init__(self, net: SuperNet):
        self.step = torch.zeros(len(net.cells), 14, 7)
        for c, cell in enumerate(net.cells):
            for e, edge in enumerate(cell.edges):
                edge.register_forward_hook(partial(self._watch, (c, e)))

    def _watch(self, key, edge, inputs, output):
        if not output.requires_grad:
            return None
        with torch.no_grad():
            outs = {k: copy.deepcopy(edge.ops[k])(inputs[0]) for k in (edge.active, *edge.inactive)}
        out = output.clone()  # its own node: a skip's output is its input tensor
        out.register_hook(partial(self._add, key, outs))
        return out

    def _add(self, key, outs, grad):
        for k, o in outs.items():
            self.step[key][k] += (grad * o).sum()


def _original_alpha_gradient(alpha: list[float], gate_sum: list[float], pair: list[int]):
    """The original's double loop over the pair, on its gate gradient."""
    exps = [math.exp(alpha[k]) for k in pair]
    p = [x / sum(exps) for x in exps]
    grad = [0.0] * len(alpha)
    for i in range(2):
        for j in range(2):
            grad[pair[i]] += gate_sum[pair[j]] * p[j] * (float(i == j) - p[i])
    return grad


@pytest.mark.parametrize("mode", ["fresh", "accumulate"])
def test_arch_gradient_uses_this_steps_gates_or_the_originals_running_sum(mode):
    torch.manual_seed(0)
    hw = Hardware(torch.device("cpu"), DistContext(), channels_last=False, amp="off")
    net = SuperNet(layers=3, channels=2)
    objective = SimCLRObjective(net, hw, temperature=0.5)
    stepper = SearchStepper(
        objective,
        torch.optim.SGD(objective.weight_parameters(), 0.05, momentum=0.9),
        torch.optim.Adam(net.alphas(), 0.05, betas=(0.0, 0.999)),
        torch.Generator().manual_seed(0),
        hw,
        grad_clip=5.0,
        gate_gradients=mode,
    )
    probe = _GateGradientProbe(net)
    running = torch.zeros_like(probe.step)
    got, expected = [], []
    set_alpha_gradients = net.set_alpha_gradients

    def spy():  # called by each arch step once its backward is done
        running.add_(probe.step)
        set_alpha_gradients()
        gates = running if mode == "accumulate" else probe.step
        for c, cell in enumerate(net.cells):
            got.append(cell.alpha.grad.clone())
            rows = []
            for e, edge in enumerate(cell.edges):
                pair = [edge.active, *edge.inactive]
                rows.append(
                    _original_alpha_gradient(cell.alpha[e].tolist(), gates[c, e].tolist(), pair)
                )
            expected.append(torch.tensor(rows))

    net.set_alpha_gradients = spy
    views = (torch.randn(4, 3, 8, 8), torch.randn(4, 3, 8, 8))
    for kind in "wwawawa":
        probe.step.zero_()
        if kind == "w":
            stepper.weight_step(views)
            running += probe.step
        else:
            stepper.arch_step(tuple(v.flip(-1) for v in views))
    assert len(got) == 9
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g, e, rtol=1e-4, atol=1e-6)
    # Over several steps the running sum differs from the last step's gates.
    assert not torch.allclose(running, probe.step)
