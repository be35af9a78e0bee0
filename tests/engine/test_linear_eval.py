"""Linear evaluation: frozen features, then a linear classifier trained on them."""

from __future__ import annotations

import torch

from sswp.config.params import LinearEvalParams
from sswp.engine.distributed import DistContext
from sswp.engine.hardware import Hardware
from sswp.engine.linear_eval import extract_features, fit_probe, probe_accuracy
from sswp.models.child import ChildNetwork
from sswp.nas.reference import reference_genotype

CPU = Hardware(torch.device("cpu"), DistContext(), channels_last=False, amp="off")


def test_features_are_the_frozen_networks_pooled_features_in_loader_order():
    model = ChildNetwork(reference_genotype("darts_v2", 3), 2, num_classes=3, auxiliary=True)
    model.train()  # extraction must switch BN to its running statistics itself
    images = torch.randn(10, 3, 16, 16)
    labels = torch.arange(10) % 3
    loader = [(images[:6], labels[:6]), (images[6:], labels[6:])]
    features, got_labels = extract_features(model, loader, CPU)
    model.train(False)
    with torch.no_grad():
        expected, _ = model.features(images)
    torch.testing.assert_close(features, expected)
    assert torch.equal(got_labels, labels)
    assert not model.training


def test_probe_learns_separable_features_and_is_deterministic():
    gen = torch.Generator().manual_seed(0)
    labels = torch.arange(300) % 3
    centres = torch.randn(3, 8, generator=gen) * 4
    features = centres[labels] + torch.randn(300, 8, generator=gen) + 100  # far from 0
    lp = LinearEvalParams(
        protocol="features",
        epochs=20,
        batch_size=32,
        lr=0.1,
        lr_min=0.0,
        momentum=0.9,
        weight_decay=0.0,
        warmup_epochs=0,
        grad_clip=5.0,
    )
    probe, history = fit_probe(features, labels, 3, lp, seed=1)
    again, _ = fit_probe(features, labels, 3, lp, seed=1)
    assert len(history) == 20 and history[-1]["train_loss"] < history[0]["train_loss"]
    assert probe_accuracy(probe, features, labels) > 0.95
    for a, b in zip(probe.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    # Standardisation uses the training features' statistics, kept with the probe.
    torch.testing.assert_close(probe.mean, features.mean(0))
