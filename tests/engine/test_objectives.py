"""The search objectives: whole BYOL and supervised searches, the EMA target, data, resume, DDP."""

from __future__ import annotations

import dataclasses
import io
import os
import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from sswp.data.datasets import load_prepared, normalization
from sswp.engine.checkpoint import Checkpointer
from sswp.engine.distributed import DistContext
from sswp.engine.hardware import Hardware, setup
from sswp.engine.interrupt import StopFlag
from sswp.engine.objectives import (
    BYOLObjective,
    Objective,
    SimCLRObjective,
    SupervisedObjective,
)
from sswp.engine.search import SearchLoop
from sswp.engine.stepper import SearchStepper
from sswp.nas.supernet import SuperNet
from sswp.ssl.byol import target_tau
from sswp.stages import prepare

CPU = torch.device("cpu")
TIMING = {"search_hours"}


class _NullLogger:
    def log_epoch(self, epoch, metrics):
        pass


@pytest.fixture
def small(tmp_path, monkeypatch, tiny_params):
    """The tiny prepared data, cut to 32 images per search half and 40 test images.

    Two weight steps per epoch (one arch step after warm-up) and short evaluations keep
    two searches per objective fast.
    """
    monkeypatch.chdir(tmp_path)
    prepare.run(tiny_params, None)
    data, splits, manifest = load_prepared()
    data = dataclasses.replace(data, test_x=data.test_x[:40], test_y=data.test_y[:40])
    splits = dataclasses.replace(
        splits, search_weights=splits.search_weights[:32], search_arch=splits.search_arch[:32]
    )
    return data, splits, manifest


def _params(params, objective: str, **search):
    return dataclasses.replace(
        params, search=dataclasses.replace(params.search, objective=objective, **search)
    )


def _loop(params, small) -> SearchLoop:
    data, splits, manifest = small
    hw = setup(params.runtime, params.seed)
    return SearchLoop(params, data, splits, normalization(manifest), hw)


def _search(params, small):
    loop = _loop(params, small)
    checkpointer = Checkpointer("search", {"objective": params.search.objective})
    result = loop.run(_NullLogger(), checkpointer, StopFlag())
    checkpointer.clear()
    return loop, result


def _assert_same_search(first, second) -> None:
    for name in ("final", "highest_acc", "lowest_loss"):
        assert first.snapshots[name].genotype == second.snapshots[name].genotype
        assert first.snapshots[name].metrics == second.snapshots[name].metrics
    torch.testing.assert_close(first.alpha_history, second.alpha_history, rtol=0, atol=0)
    untimed = [{k: v for k, v in r.metrics.items() if k not in TIMING} for r in (first, second)]
    assert untimed[0] == untimed[1]


def _assert_every_phase_ran(loop, result) -> None:
    history = result.alpha_history
    assert torch.equal(history[0], torch.full_like(history[0], 1 / 7))  # warm-up
    assert not torch.equal(history[1], history[0])  # search: arch steps moved the alphas
    assert all(cell.frozen for cell in loop.net.cells)  # prune
    assert torch.equal(history[-1], history[-2])  # stabilise
    final = result.snapshots["final"].metrics
    scores = {"objective_loss", "objective_acc", "epoch"}
    assert {k for k in final if not k.startswith("kept_op_")} == scores | (
        set() if loop.heldout is None else {"child_val_ssl_loss", "child_val_ssl_acc"}
    )
    assert 0 <= final["objective_acc"] <= 1 and final["epoch"] == 3


def test_byol_search_finishes_every_phase_deterministically(tiny_params, small):
    params = _params(tiny_params, "byol")
    loop, first = _search(params, small)
    _, second = _search(params, small)
    _assert_same_search(first, second)
    _assert_every_phase_ran(loop, first)
    assert first.metrics["objective"] == "byol" and first.metrics["labels_used"] == 0
    assert int(loop.objective.steps) == params.search.epochs * len(loop.weight_loader)


def test_supervised_search_finishes_every_phase_and_counts_its_labels(tiny_params, small):
    params = _params(tiny_params, "supervised")
    loop, first = _search(params, small)
    _, second = _search(params, small)
    _assert_same_search(first, second)
    _assert_every_phase_ran(loop, first)
    assert first.metrics["objective"] == "supervised"
    assert first.metrics["labels_used"] == 32 + 32
    # Selection reads every arch-half image once, unaugmented, and no test label: the
    # supervised ablation must not choose its snapshots by test accuracy.
    data, splits, _ = small
    epochs = [list(loop.test_loader) for _ in range(2)]
    labels = torch.cat([batch_labels for _, batch_labels in epochs[0]])
    assert len(labels) == len(splits.search_arch) == 32
    assert torch.equal(
        labels.sort().values, torch.as_tensor(data.train_y[splits.search_arch]).sort().values
    )
    assert all(torch.equal(a[0], b[0]) for a, b in zip(*epochs, strict=True))


def _views(n: int = 8, size: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """Fixed 'augmented' views, so that every run sees the same pixels."""
    gen = torch.Generator().manual_seed(123)
    shape = (n, 3, size, size)
    return torch.randn(shape, generator=gen), torch.randn(shape, generator=gen)


def _stepper(objective, net: SuperNet, hw: Hardware) -> SearchStepper:
    return SearchStepper(
        objective,
        torch.optim.SGD(objective.weight_parameters(), 0.1, momentum=0.9),
        torch.optim.Adam(net.alphas(), 0.05, betas=(0.0, 0.999)),
        torch.Generator().manual_seed(0),
        hw,
        grad_clip=5.0,
    )


def test_byol_target_takes_the_online_path_and_follows_the_ema_rule():
    torch.manual_seed(0)
    hw = Hardware(CPU, DistContext(), channels_last=False, amp="off")
    net = SuperNet(layers=3, channels=2)
    objective = BYOLObjective(net, hw, base_tau=0.9, total_steps=4)
    stepper = _stepper(objective, net, hw)
    for step in range(2):
        _, target_before = objective.online_and_target()
        target_before = [t.clone() for t in target_before]
        stepper.weight_step(_views())
        online, target = objective.online_and_target()
        tau = target_tau(0.9, step, 4)
        for t, old, o in zip(target, target_before, online, strict=True):
            torch.testing.assert_close(t, tau * old + (1 - tau) * o.detach())
        assert any(not torch.equal(t, o) for t, o in zip(target, online, strict=True))
        assert all(t.grad is None for t in target)
    assert int(objective.steps) == 2
    online_edges = [e.active for c in net.cells for e in c.edges]
    assert online_edges == [e.active for c in objective.target_net.cells for e in c.edges]
    assert len(set(online_edges)) > 1  # a sampled path, not a default one


def test_supervised_steps_read_labelled_images_of_their_own_half(tiny_params, small):
    data, splits, manifest = small
    labels = data.train_y.copy()
    labels[splits.search_weights], labels[splits.search_arch] = 1, 0
    relabelled = (dataclasses.replace(data, train_y=labels), splits, manifest)
    loop = _loop(_params(tiny_params, "supervised"), relabelled)
    seen: dict[str, list[torch.Tensor]] = {"weight": [], "arch": []}
    for kind in seen:
        step = getattr(loop.stepper, f"{kind}_step")

        def spy(batch, *args, _step=step, _kind=kind, **kwargs):
            assert len(batch) == 2  # one supervised view and the labels
            seen[_kind].append(batch[1])
            return _step(batch, *args, **kwargs)

        setattr(loop.stepper, f"{kind}_step", spy)
    loop.run_epoch(loop.schedule.arch_start, StopFlag(), None)
    assert seen["arch"] and all(bool((b == 0).all()) for b in seen["arch"])
    assert seen["weight"] and all(bool((b == 1).all()) for b in seen["weight"])


def _objective_state(loop: SearchLoop) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in loop.objective.state_dict().items()}


def test_byol_checkpoint_round_trip_gives_the_identical_next_epoch(tiny_params, small):
    params = _params(tiny_params, "byol")
    original = _loop(params, small)
    original.run_epoch(0, StopFlag(), None)
    buffer = io.BytesIO()
    torch.save(original.state_dict(1, 0), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)  # as the checkpointer reads it

    resumed = _loop(params, small)  # fresh: its weights and target are the initial ones
    assert not torch.equal(
        resumed.objective.target_projector[0].weight, original.objective.target_projector[0].weight
    )
    resumed.load_state_dict(state)
    assert int(resumed.objective.steps) == int(original.objective.steps) > 0
    # The global RNG is shared (and reseeded by setup): restore it before each epoch.
    original.restore_random_state(state)
    expected = original.run_epoch(1, StopFlag(), None)
    resumed.restore_random_state(state)
    assert resumed.run_epoch(1, StopFlag(), None) == expected
    after, resumed_after = _objective_state(original), _objective_state(resumed)
    assert after.keys() == resumed_after.keys()
    for key, value in after.items():
        assert torch.equal(value, resumed_after[key]), key


# ----- DDP: two gloo ranks stay identical and match one process -----
GLOBAL_BATCH = 8


def _ddp_steps(ctx: DistContext) -> dict[str, dict[str, torch.Tensor]]:
    """Weight and arch steps of each objective on this rank's slice of one global batch.

    Eval mode (BN on running statistics) keeps the function independent of the per-rank
    batch size; the rest is the training code path.
    """
    hw = Hardware(CPU, ctx, channels_last=False, amp="off")
    per_rank = GLOBAL_BATCH // ctx.world_size
    part = slice(ctx.rank * per_rank, (ctx.rank + 1) * per_rank)
    v1, v2 = _views(GLOBAL_BATCH)
    labels = torch.arange(GLOBAL_BATCH) % 3
    states = {}
    for name in ("simclr", "byol", "supervised"):
        torch.manual_seed(0)
        net = SuperNet(layers=3, channels=2)
        batch = (v1[part], v2[part])
        if name == "simclr":
            objective: Objective = SimCLRObjective(net, hw, temperature=0.5)
        elif name == "byol":
            objective = BYOLObjective(net, hw, base_tau=0.9, total_steps=2)
        else:
            objective = SupervisedObjective(net, hw, num_classes=3)
            batch = (v1[part], labels[part])
        objective.eval()
        stepper = _stepper(objective, net, hw)
        for _ in range(2):
            stepper.weight_step(batch, drop_skip=0.5)
            stepper.arch_step(batch)
        states[name] = {k: v.detach().clone() for k, v in objective.state_dict().items()}
    return states


def _worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.save(_ddp_steps(DistContext(rank, world, rank)), Path(out) / f"rank{rank}.pt")
    dist.destroy_process_group()


def test_two_gloo_ranks_stay_identical_and_match_one_process(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    mp.spawn(_worker, args=(2, port, str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    single = _ddp_steps(DistContext())
    for name, state in single.items():
        alphas = [k for k in state if k.endswith("alpha")]
        assert any(state[k].abs().sum() > 0 for k in alphas), "arch steps moved the alphas"
        for key, value in state.items():
            assert torch.equal(ranks[0][name][key], ranks[1][name][key]), f"{name}: {key}"
            if value.is_floating_point():
                torch.testing.assert_close(ranks[0][name][key], value, rtol=1e-4, atol=1e-5)
    assert any(k.startswith("target_net.") for k in single["byol"])  # ranks agree on it too
