"""The child loops' learning-rate schedule: per epoch, or per iteration as the original."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from torch import nn

from sswp.config.load import load_params
from sswp.config.params import PretrainParams
from sswp.engine.checkpoint import Checkpointer
from sswp.engine.distributed import DistContext
from sswp.engine.epochs import lr_factor
from sswp.engine.hardware import Hardware
from sswp.engine.interrupt import StopFlag

PARAMS = Path(__file__).parents[2] / "params.yaml"
CPU = Hardware(torch.device("cpu"), DistContext(), channels_last=False, amp="off")


def _recipe(**changes) -> PretrainParams:
    base = PretrainParams(
        epochs=4,
        batch_size=2,
        lr=0.2,
        lr_min=1e-5,
        lr_step="iteration",
        momentum=0.9,
        weight_decay=0.0,
        warmup_epochs=1,
        temperature=0.1,
        grad_clip=5.0,
        bn_affine=True,
        images="all",
        budget="epochs",
        budget_fraction=1.0,
    )
    return dataclasses.replace(base, **changes)


def _original_lrs(lr: float, lr_min: float, warmup: int, epochs: int, steps: int) -> list[float]:
    """The original's two schedulers on one optimiser: LambdaLR warm-up, then a cosine over the
    remaining iterations, each stepped after every iteration of its own epochs."""
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr)
    linear = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: i / (warmup * steps))
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(
        opt, T_max=(epochs - warmup) * steps, eta_min=lr_min
    )
    lrs = []
    for epoch in range(epochs):
        scheduler = linear if epoch < warmup else cosine
        for _ in range(steps):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            scheduler.step()
    return lrs


def test_per_iteration_factor_follows_the_original_schedulers():
    recipe, steps = _recipe(), 5
    factor = lr_factor(recipe, steps)
    expected = _original_lrs(recipe.lr, recipe.lr_min, 1, recipe.epochs, steps)
    got = [recipe.lr * factor(i) for i in range(recipe.epochs * steps)]
    assert got == pytest.approx(expected, rel=1e-6, abs=1e-9)
    assert got[0] == 0.0 and min(got[steps:]) > recipe.lr_min


def test_per_epoch_factor_keeps_its_floor():
    recipe = _recipe(lr_step="epoch", epochs=3, lr_min=0.02, warmup_epochs=0)
    factor = lr_factor(recipe, steps_per_epoch=7)
    assert [recipe.lr * factor(7 * e) for e in range(3)] == pytest.approx([0.2, 0.155, 0.065])
    assert {factor(7 + i) for i in range(7)} == {factor(7)}  # constant within an epoch


@pytest.mark.parametrize("lr_step", ["epoch", "iteration"])
def test_the_warm_up_rises_from_zero_every_iteration(lr_step):
    """One warm-up epoch warms: lr 0 at the first step, then up by lr/steps a step."""
    recipe, steps = _recipe(lr_step=lr_step, warmup_epochs=1), 5
    factor = lr_factor(recipe, steps)
    assert [factor(i) for i in range(steps + 1)] == pytest.approx([0, 0.2, 0.4, 0.6, 0.8, 1])


@pytest.mark.parametrize("lr_step", ["epoch", "iteration"])
def test_loop_steps_the_schedule_every_iteration(lr_step, sum_loop):
    loop_type, batches = sum_loop
    runtime = dataclasses.replace(load_params(PARAMS).runtime, progress="never")
    recipe = _recipe(lr_step=lr_step, warmup_epochs=1, epochs=3, lr_min=0.0)
    loader = batches(torch.ones(3, 2, 2) for _ in range(4))
    loop = loop_type("sched", nn.Linear(2, 1), loader, recipe, runtime, CPU)
    loop.run_epoch(0, StopFlag(), Checkpointer("sched", {}))
    assert loop.sched.last_epoch == 4
    assert loop.opt.param_groups[0]["lr"] == pytest.approx(recipe.lr)  # warm at epoch 1
