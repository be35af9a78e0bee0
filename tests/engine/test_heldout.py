"""The label-free measure: repeatable, side-effect free, batch-statistics BN, the right chance,
and the preserved child's value equal to that of the child network actually built."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from sswp.data.datasets import load_prepared, normalization
from sswp.engine.checkpoint import Checkpointer
from sswp.engine.hardware import setup
from sswp.engine.heldout import batch_statistics, heldout_objective, simclr_chance
from sswp.engine.interrupt import StopFlag
from sswp.engine.pretrain import ContrastiveChild
from sswp.engine.search import SearchLoop
from sswp.models.child import ChildNetwork, inherit_weights
from sswp.ssl.simclr import nt_xent
from sswp.stages import prepare


class _NullLogger:
    def log_epoch(self, epoch, metrics):
        pass


@pytest.fixture
def searched(tmp_path, monkeypatch, tiny_params):
    """The tiny search, run in-process: its loop and result."""
    monkeypatch.chdir(tmp_path)
    prepare.run(tiny_params, None)
    data, splits, manifest = load_prepared()
    hw = setup(tiny_params.runtime, tiny_params.seed)
    loop = SearchLoop(tiny_params, data, splits, normalization(manifest), hw)
    result = loop.run(_NullLogger(), Checkpointer("search", {}), StopFlag())
    return loop, result


def test_nt_xent_of_indistinguishable_views_is_the_chance_level():
    z = torch.ones(8, 5)
    loss, _ = nt_xent(z, z.clone(), temperature=0.2)
    assert loss.item() == pytest.approx(simclr_chance(8)) and simclr_chance(8) == math.log(15)


def test_batch_statistics_ignore_and_keep_the_running_statistics():
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4), nn.Dropout(0.5))
    x = torch.randn(6, 3, 5, 5)
    with torch.no_grad():
        model[1].running_mean.fill_(100.0)
        model.train()
        expected = nn.functional.batch_norm(model[0](x), None, None, training=True)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with batch_statistics(model), torch.no_grad():
        assert not model[2].training  # dropout off: eval mode
        torch.testing.assert_close(model[1](model[0](x)), expected)
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert model.training and model[1].training


def test_the_measure_repeats_and_leaves_weights_statistics_and_rng_alone(searched):
    loop, _ = searched
    state = {k: v.clone() for k, v in loop.objective.state_dict().items()}
    rng = torch.get_rng_state()
    first = loop.measure_path()
    assert loop.measure_path() == first
    assert torch.equal(torch.get_rng_state(), rng)
    for key, value in loop.objective.state_dict().items():
        assert torch.equal(value, state[key]), key
    assert first["val_ssl_loss"] > 0 and 0 <= first["val_ssl_acc"] <= 1


def test_the_search_measures_every_epoch_and_counts_every_op_update(searched, tiny_params):
    loop, result = searched
    steps = [epoch["ssl_steps"] for epoch in result.history]
    per_epoch = len(loop.weight_loader)
    assert steps == [per_epoch * (e + 1) for e in range(tiny_params.search.epochs)]
    assert all("val_ssl_loss" in epoch for epoch in result.history)
    assert result.metrics["val_ssl_chance"] == pytest.approx(
        simclr_chance(result.metrics["val_ssl_batch"])
    )
    # Every step trains exactly one op on each of the 14 edges of every cell (freeze: all).
    total = loop.op_updates.sum(dim=2)
    assert torch.equal(total, torch.full_like(total, result.metrics["ssl_steps"]))
    final = result.snapshots["final"]
    kept = [loop.op_updates[c, e, o].item() for c, e, o in final.genotype.kept_ops()]
    assert final.metrics["kept_op_updates_mean"] == pytest.approx(sum(kept) / len(kept))
    assert final.metrics["kept_op_updates_max"] == max(kept)
    assert 0 < final.metrics["kept_op_lr_updates_mean"] < final.metrics["kept_op_updates_mean"]


def test_the_preserved_childs_measure_is_the_built_childs(searched, tiny_params):
    """The supernet restricted to the genotype, and the child network with the preserved
    weights and the search's projection head: one function, one measure."""
    loop, result = searched
    final = result.snapshots["final"]
    sp = tiny_params.search
    child = ChildNetwork(final.genotype, sp.channels, num_classes=10, auxiliary=False)
    inherit_weights(child, final.state_dict)
    model = ContrastiveChild(child)
    state = final.state_dict
    model.projector.load_state_dict({k[5:]: v for k, v in state.items() if k.startswith("head.")})

    def forward(batch):
        z = model(torch.cat([batch[0], batch[1]]))
        return nt_xent(z[: len(batch[0])], z[len(batch[0]) :], sp.temperature)

    built = loop.heldout.measure(model, forward)
    assert final.metrics["child_val_ssl_loss"] == pytest.approx(built["val_ssl_loss"], abs=1e-5)
    assert final.metrics["child_val_ssl_acc"] == pytest.approx(built["val_ssl_acc"])


def test_no_validation_split_no_measure(tiny_params):
    hw = setup(tiny_params.runtime, 0)
    context = hw.loader_context(tiny_params.data, 0, ("b", 4), 8, ((0.5,) * 3, (0.5,) * 3))
    images = torch.zeros(10, 8, 8, 3, dtype=torch.uint8).numpy()
    assert heldout_objective(images, images[:0, 0, 0, 0].astype("int64"), context, hw) is None
    measure = heldout_objective(images, torch.arange(6).numpy(), context, hw)
    assert measure.batch_size == 4 and len(measure.loader) == 1
