"""Initial weights of the child stages: two-stage backbones and reference architectures."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sswp.data.arrays import ArrayDataset
from sswp.data.loaders import EVAL_BATCH_SIZE, LoaderContext, in_order
from sswp.engine.children import evaluation_loader
from sswp.engine.distributed import DistContext
from sswp.engine.hardware import Hardware
from sswp.engine.supervised import evaluate
from sswp.errors import SswpError
from sswp.models.build import build_child, load_pretrained_backbone, pretrain_model_path
from sswp.models.child import BatchNormAffinity, ChildNetwork
from sswp.nas.reference import reference_genotype


@pytest.fixture
def run_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _save_pretrained(model: ChildNetwork, seed: int) -> None:
    path = pretrain_model_path(seed)
    path.parent.mkdir(parents=True)
    torch.save({"genotype": model.genotype.to_json(), "state_dict": model.state_dict()}, path)


def test_two_stage_copies_the_whole_backbone_and_leaves_the_heads_new(run_dir):
    genotype = reference_genotype("pdarts", 3)
    torch.manual_seed(1)
    pretrained = ChildNetwork(genotype, 2, num_classes=5, auxiliary=False)
    _save_pretrained(pretrained, seed=0)
    torch.manual_seed(2)
    child = ChildNetwork(genotype, 2, num_classes=5, auxiliary=True)
    fresh_heads = {
        k: v.clone()
        for k, v in child.state_dict().items()
        if k.startswith(("classifier.", "auxiliary."))
    }
    load_pretrained_backbone(child, seed=0)
    state, source = child.state_dict(), pretrained.state_dict()
    for key, value in state.items():
        if key in fresh_heads:
            assert torch.equal(value, fresh_heads[key]), key
        else:
            assert torch.equal(value, source[key]), key


def test_a_backbone_pretrained_without_bn_affine_leaves_gamma_one_and_beta_zero(run_dir):
    genotype = reference_genotype("pdarts", 3)
    pretrained = ChildNetwork(genotype, 2, 5, False, bn=BatchNormAffinity(cells=False)).train()
    pretrained(torch.randn(4, 3, 16, 16))  # running statistics away from their init
    _save_pretrained(pretrained, seed=0)
    child = ChildNetwork(genotype, 2, num_classes=5, auxiliary=True)
    with torch.no_grad():
        for p in child.parameters():
            p.add_(1.0)
    load_pretrained_backbone(child, seed=0)
    state, source = child.state_dict(), pretrained.state_dict()
    for key, value in source.items():
        if not key.startswith("classifier."):
            assert torch.equal(state[key], value), key
    gammas = [k for k in state if k.startswith("cells.") and k not in source]
    assert gammas and all(k.endswith((".weight", ".bias")) for k in gammas)
    for key in gammas:
        assert torch.equal(state[key], torch.full_like(state[key], float(key.endswith("weight"))))


def test_two_stage_weights_of_another_architecture_are_refused(run_dir):
    _save_pretrained(ChildNetwork(reference_genotype("darts_v2", 3), 2, 5, False), seed=0)
    child = ChildNetwork(reference_genotype("pdarts", 3), 2, 5, True)
    with pytest.raises(SswpError, match="another architecture; rerun `sswp pretrain --seed 0`"):
        load_pretrained_backbone(child, seed=0)


def test_reference_architectures_train_from_random_init_only(run_dir, tiny_params):
    model = build_child(tiny_params, 10, "darts_v2", "random", auxiliary=True)
    assert model.genotype == reference_genotype("darts_v2", tiny_params.search.layers)
    with pytest.raises(SswpError, match="has no preserved weights"):
        build_child(tiny_params, 10, "darts_v2", "preserved", auxiliary=True)


def test_evaluation_at_its_own_batch_size_scores_as_at_the_training_batch():
    """The evaluation batch (at least EVAL_BATCH_SIZE) changes the speed, not the scores."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (300, 16, 16, 3), dtype=np.uint8)
    labels = rng.integers(0, 5, 300)
    data = ArrayDataset(images, labels, images, labels, tuple("abcde"))
    context = LoaderContext(8, mean=(0.5,) * 3, std=(0.25,) * 3, seed=0, image_size=16)
    torch.manual_seed(0)
    model = ChildNetwork(reference_genotype("pdarts", 3), 4, num_classes=5, auxiliary=False)
    model.train()(torch.randn(16, 3, 16, 16))  # running statistics away from their init
    hw = Hardware(torch.device("cpu"), DistContext(), channels_last=False, amp="off")
    at_training_batch = in_order(images, labels, np.arange(300), context, "t")
    fast = evaluation_loader(data, context)
    assert len(at_training_batch) == 38 and len(fast) == -(-300 // EVAL_BATCH_SIZE)
    slow_scores, fast_scores = evaluate(model, at_training_batch, hw), evaluate(model, fast, hw)
    assert fast_scores["acc"] == slow_scores["acc"]
    assert fast_scores["loss"] == pytest.approx(slow_scores["loss"], rel=1e-5)
