"""Initial weights of the child stages: two-stage backbones and reference architectures."""

from __future__ import annotations

import pytest
import torch

from sswp.errors import SswpError
from sswp.models.child import BatchNormAffinity, ChildNetwork
from sswp.nas.reference import reference_genotype
from sswp.stages.children import build_child, load_pretrained_backbone, pretrain_model_path


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
