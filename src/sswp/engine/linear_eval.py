"""Linear evaluation: a linear classifier on a frozen backbone, under one of two protocols.

Before either, every backbone's BatchNorm statistics are re-estimated on unlabelled training
images (`reestimate_batch_norm`), the same way for every arm: a random backbone's would
otherwise be mean 0, variance 1, which is no fair control for backbones that saw data.

`features`: the backbone never changes, so its features are computed once per image (no
augmentation, BatchNorm in eval mode) and the classifier is trained on them directly:
seconds instead of a full training run. `augmented` (the original's): the linear layer is
trained on augmented images through the backbone with its BatchNorm in train mode (so
its running statistics follow the labelled images), evaluated on the test set every epoch.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from sswp.config.params import LinearEvalParams, RuntimeParams
from sswp.engine.divergence import check_finite
from sswp.engine.epochs import EpochLoop, lr_factor
from sswp.engine.hardware import Hardware
from sswp.engine.supervised import tested_epoch
from sswp.models.child import ChildNetwork


@torch.no_grad()
def reestimate_batch_norm(backbone: ChildNetwork, loader, hw: Hardware) -> None:
    """Replace every BatchNorm's running statistics by their plain average over `loader`'s
    batches (train-mode forward passes, no drop path, nothing trained), then eval mode."""
    norms = [
        m
        for m in backbone.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats
    ]
    momenta = [m.momentum for m in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a cumulative average over the batches
    drop_path, backbone.drop_path_prob = backbone.drop_path_prob, 0.0
    backbone.train(True)
    for images, _ in loader:
        hw.new_step()
        with hw.autocast():
            backbone.features(hw.images(images))
    backbone.train(False)
    backbone.drop_path_prob = drop_path
    for norm, momentum in zip(norms, momenta, strict=True):
        norm.momentum = momentum


@torch.no_grad()
def extract_features(
    backbone: ChildNetwork, loader, hw: Hardware
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pooled features (N, d) in float32 on the CPU, and their labels, in loader order."""
    backbone.train(False)
    encode = hw.compiled(backbone.features)
    features, labels = [], []
    for images, batch_labels in loader:
        hw.new_step()
        with hw.autocast():
            pooled, _ = encode(hw.images(images))
        features.append(pooled.float().cpu())
        labels.append(batch_labels.cpu())
    return torch.cat(features), torch.cat(labels)


class LinearProbe(nn.Module):
    """Standardise with the training features' statistics, then one linear layer."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor, num_classes: int):
        super().__init__()
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)
        self.linear = nn.Linear(len(mean), num_classes)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.linear((features - self.mean) / self.std)


def fit_probe(
    features: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    lp: LinearEvalParams,
    seed: int,
    device: torch.device | None = None,
    test: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[LinearProbe, list[dict[str, float]]]:
    """SGD (per-iteration warm-up + cosine, clipped) on shuffled mini-batches; returns the
    probe and history, with the accuracy on the `test` features after every epoch if given.

    Trains on `device` (the stage's GPU when there is one): ImageNet features are millions.
    """
    device = device or torch.device("cpu")
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # the linear layer's init
    features, labels = features.to(device), labels.to(device)
    std = features.std(dim=0, unbiased=False).clamp_min(1e-6)
    probe = LinearProbe(features.mean(dim=0), std, num_classes).to(device)
    opt = torch.optim.SGD(
        probe.parameters(), lp.lr, momentum=lp.momentum, weight_decay=lp.weight_decay
    )
    steps_per_epoch = math.ceil(len(labels) / lp.batch_size)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor(lp, steps_per_epoch))
    history = []
    for index in range(lp.epochs):
        order = torch.randperm(len(labels), generator=generator).to(device)
        loss_sum = correct = 0.0
        for batch in order.split(lp.batch_size):
            logits = probe(features[batch])
            loss = F.cross_entropy(logits, labels[batch])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(probe.parameters(), lp.grad_clip)
            opt.step()
            sched.step()
            loss_sum += loss.item() * len(batch)
            correct += (logits.argmax(1) == labels[batch]).sum().item()
        check_finite(loss_sum, "linear eval", index, "linear_eval.lr")
        epoch = {"train_loss": loss_sum / len(labels), "train_acc": correct / len(labels)}
        if test is not None:
            epoch["test_acc"] = probe_accuracy(probe, *test)
        history.append(epoch)
    return probe, history


@torch.no_grad()
def probe_accuracy(probe: LinearProbe, features: torch.Tensor, labels: torch.Tensor) -> float:
    device = probe.mean.device
    return (probe(features.to(device)).argmax(1) == labels.to(device)).float().mean().item()


class AugmentedLinearLoop(EpochLoop):
    """The original's protocol: only the classifier trains, on augmented labelled images,
    with the backbone in train mode (BN batch statistics, running statistics updated) and
    no drop path; the test accuracy is measured after every epoch."""

    def __init__(
        self,
        model: ChildNetwork,
        train_loader,
        test_loader,
        lp: LinearEvalParams,
        runtime: RuntimeParams,
        hw: Hardware,
        name: str,
    ):
        model.requires_grad_(False)
        model.classifier.requires_grad_(True)
        model.drop_path_prob = 0.0
        super().__init__(
            name,
            model,
            train_loader,
            lp,
            runtime,
            hw,
            trainable=list(model.classifier.parameters()),
        )
        self.test_loader = test_loader

    def train_step(self, batch: Any) -> None:
        images, labels = batch
        images, labels = self.hw.images(images), labels.to(self.hw.device)
        with self.hw.autocast():
            logits, _ = self.forward_module(images)
        loss = F.cross_entropy(logits.float(), labels)
        self.optimise(loss)
        self.count(loss.item(), (logits.argmax(1) == labels).sum().item(), len(labels))

    def end_epoch(self, epoch: int, loss: float, acc: float, lr: float) -> dict[str, float]:
        return tested_epoch(self.eval_module, self.test_loader, self.hw, epoch, loss, acc, lr)
