"""linear_eval.protocol: features computed once, or the original's augmented training."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from sswp.data.datasets import ArrayDataset
from sswp.engine.distributed import DistContext
from sswp.engine.hardware import Hardware
from sswp.models.child import ChildNetwork
from sswp.nas.reference import reference_genotype
from sswp.pipeline.contract import LINEAR_EVAL_ARMS
from sswp.stages import linear_eval
from sswp.stages.linear_eval import PROTOCOLS, LabelledRun


@pytest.fixture
def labelled_run(tmp_path, monkeypatch, tiny_params):
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    data = ArrayDataset(
        train_x=rng.integers(0, 256, (12, 16, 16, 3), dtype=np.uint8),
        train_y=np.arange(12) % 3,
        test_x=rng.integers(0, 256, (6, 16, 16, 3), dtype=np.uint8),
        test_y=np.arange(6) % 3,
        classes=("a", "b", "c"),
    )
    manifest = {"mean": [0.5] * 3, "std": [0.25] * 3, "sha256": "x"}
    hw = Hardware(torch.device("cpu"), DistContext(), channels_last=False, amp="off")
    runtime = dataclasses.replace(tiny_params.runtime, progress="never")
    lp = dataclasses.replace(tiny_params.linear_eval, epochs=3, batch_size=4, lr=0.5)
    params = dataclasses.replace(tiny_params, runtime=runtime, linear_eval=lp)
    torch.manual_seed(0)
    backbone = ChildNetwork(reference_genotype("darts_v2", 3), 2, 3, auxiliary=False)
    monkeypatch.setattr(linear_eval, "build_child", lambda *args: backbone)
    monkeypatch.setattr(linear_eval, "input_files", lambda *args: {})  # no search run here
    validation = np.zeros(0, dtype=np.int64)
    return LabelledRun(params, data, manifest, np.arange(12), validation, 1.0, hw), backbone


def _with_protocol(run: LabelledRun, protocol: str) -> LabelledRun:
    lp = dataclasses.replace(run.params.linear_eval, protocol=protocol)
    return dataclasses.replace(run, params=dataclasses.replace(run.params, linear_eval=lp))


def _is_bn_statistic(key: str) -> bool:
    return key.endswith(("running_mean", "running_var", "num_batches_tracked"))


def test_features_protocol_changes_only_the_bn_statistics(labelled_run):
    run, backbone = labelled_run
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    probed = PROTOCOLS["features"](_with_protocol(run, "features"), "preserved")
    after = backbone.state_dict()
    changed = {k for k in after if not torch.equal(before[k], after[k])}
    assert changed and all(_is_bn_statistic(k) for k in changed)
    assert set(probed.metrics) == {"test_acc", "best_test_acc", "train_acc"}
    accs = [epoch["test_acc"] for epoch in probed.history]
    assert len(accs) == 3 and probed.metrics["test_acc"] == accs[-1]
    assert probed.metrics["best_test_acc"] == max(accs)
    # Per-epoch metrics go to live/ like every other stage's.
    live = Path("live/linear_eval/preserved-1.0-seed-0/plots/metrics")
    assert (live / "test_acc.tsv").read_text().count("\n") == 4  # header + 3 epochs


def test_augmented_protocol_trains_the_classifier_with_train_mode_bn(labelled_run):
    run, backbone = labelled_run
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    probed = PROTOCOLS["augmented"](_with_protocol(run, "augmented"), "preserved")
    after = backbone.state_dict()
    changed = {k for k in after if not torch.equal(before[k], after[k])}
    assert {"classifier.weight", "classifier.bias"} <= changed
    # BN ran in train mode: its running statistics followed the labelled images ...
    assert any(k.endswith("running_mean") for k in changed)
    # ... while every weight of the backbone stayed frozen.
    frozen = {n for n, _ in backbone.named_parameters() if not n.startswith("classifier.")}
    assert frozen and not frozen & changed
    accs = [epoch["test_acc"] for epoch in probed.history]
    assert len(accs) == 3 and probed.metrics["test_acc"] == accs[-1]
    assert probed.metrics["best_test_acc"] == max(accs)
    assert probed.checkpointer is not None


@pytest.mark.parametrize("protocol", ["features", "augmented"])
def test_every_probed_arm_takes_bn_statistics_from_the_training_images(
    labelled_run, monkeypatch, protocol
):
    """Each arm's backbone, random included, enters its probe with BN statistics averaged
    over every training image (3 batches of the 12), whatever its weights."""
    run, _ = labelled_run
    run = _with_protocol(run, protocol)

    def fresh_backbone(params, num_classes, architecture, arm, auxiliary):
        torch.manual_seed(LINEAR_EVAL_ARMS.index(arm))
        return ChildNetwork(reference_genotype("darts_v2", 3), 2, 3, auxiliary=False)

    seen: dict[str, tuple[torch.Tensor, torch.Tensor, int]] = {}
    reestimate = linear_eval.reestimate_batch_norm

    def recording(backbone, loader, hw):
        norm, inputs = backbone.stem[-1], []
        hook = norm.register_forward_pre_hook(lambda module, args: inputs.append(args[0]))
        reestimate(backbone, loader, hw)
        hook.remove()
        expected = torch.cat(inputs).mean(dim=(0, 2, 3))
        seen[arm] = (norm.running_mean.clone(), expected, int(norm.num_batches_tracked))

    monkeypatch.setattr(linear_eval, "build_child", fresh_backbone)
    monkeypatch.setattr(linear_eval, "reestimate_batch_norm", recording)
    for arm in LINEAR_EVAL_ARMS:
        PROTOCOLS[protocol](run, arm)
    assert set(seen) == set(LINEAR_EVAL_ARMS)
    for mean, expected, batches in seen.values():
        assert batches == 3
        torch.testing.assert_close(mean, expected, rtol=1e-5, atol=1e-6)
