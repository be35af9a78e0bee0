"""linear_eval.protocol: features computed once, or the original's augmented training."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from sswp.data.datasets import ArrayDataset
from sswp.engine.distributed import DistContext
from sswp.engine.runtime import Hardware
from sswp.models.child import ChildNetwork
from sswp.nas.reference import reference_genotype
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
    return LabelledRun(params, data, manifest, np.arange(12), 1.0, hw), backbone


def _with_protocol(run: LabelledRun, protocol: str) -> LabelledRun:
    lp = dataclasses.replace(run.params.linear_eval, protocol=protocol)
    return dataclasses.replace(run, params=dataclasses.replace(run.params, linear_eval=lp))


def test_features_protocol_leaves_the_backbone_untouched(labelled_run):
    run, backbone = labelled_run
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    probed = PROTOCOLS["features"](_with_protocol(run, "features"), "preserved")
    assert all(torch.equal(before[k], v) for k, v in backbone.state_dict().items())
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
