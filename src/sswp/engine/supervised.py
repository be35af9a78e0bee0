"""Supervised training of a child network: train from scratch, and finetune at a label ratio."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from sswp.config.params import RuntimeParams, SupervisedParams
from sswp.engine.checkpoint import Checkpointer
from sswp.engine.distributed import sum_scalars
from sswp.engine.epochs import EpochLoop
from sswp.engine.hardware import Hardware
from sswp.engine.interrupt import StopFlag
from sswp.engine.logs import MetricLogger
from sswp.models.child import ChildNetwork


@torch.no_grad()
def evaluate(model: nn.Module, loader, hw: Hardware) -> dict[str, float]:
    """Test loss and accuracy, summed over every rank's shard."""
    model.train(False)
    loss_sum = correct = count = 0.0
    for images, labels in loader:
        images, labels = hw.images(images), labels.to(hw.device)
        hw.new_step()
        with hw.autocast():
            logits, _ = model(images)
        loss_sum += F.cross_entropy(logits.float(), labels, reduction="sum").item()
        correct += (logits.argmax(1) == labels).sum().item()
        count += len(labels)
    loss_sum, correct, count = sum_scalars([loss_sum, correct, count], hw.dist, hw.device)
    return {"loss": loss_sum / count, "acc": correct / count}


def tested_epoch(
    model: nn.Module, test_loader, hw: Hardware, epoch: int, loss: float, acc: float, lr: float
) -> dict[str, float]:
    """An epoch's metrics: its training sums, then the test set's loss and accuracy."""
    test_loader.set_epoch(epoch)
    test = evaluate(model, test_loader, hw)
    return {
        "train_loss": loss,
        "train_acc": acc,
        "test_loss": test["loss"],
        "test_acc": test["acc"],
        "lr": lr,
    }


def training_loss(
    logits: torch.Tensor,
    aux_logits: torch.Tensor | None,
    labels: torch.Tensor,
    recipe: SupervisedParams,
) -> torch.Tensor:
    """Label-smoothed cross-entropy of the main head, plus the weighted auxiliary one.

    Smoothing is a training regulariser only: `evaluate` reports plain cross-entropy.
    """
    eps = recipe.label_smoothing
    loss = F.cross_entropy(logits.float(), labels, label_smoothing=eps)
    if aux_logits is not None and recipe.auxiliary_weight > 0:
        aux = F.cross_entropy(aux_logits.float(), labels, label_smoothing=eps)
        loss = loss + recipe.auxiliary_weight * aux
    return loss


class SupervisedLoop(EpochLoop):
    """SGD with warm-up + cosine, auxiliary loss, linear drop-path ramp, grad clipping.

    Every `recipe.eval_every` epochs, and after the last, it tests the model, and scores it on
    the validation split when one is given: recipes are compared on `val_acc`.
    """

    def __init__(
        self,
        model: ChildNetwork,
        train_loader,
        test_loader,
        recipe: SupervisedParams,
        runtime: RuntimeParams,
        hw: Hardware,
        name: str,
        val_loader=None,
    ):
        super().__init__(name, model, train_loader, recipe, runtime, hw)
        self.recipe, self.test_loader, self.val_loader = recipe, test_loader, val_loader

    def begin_epoch(self, epoch: int) -> None:
        self.model.train()
        self.model.drop_path_prob = self.recipe.drop_path * epoch / self.recipe.epochs

    def train_step(self, batch: Any) -> None:
        images, labels = batch
        images, labels = self.hw.images(images), labels.to(self.hw.device)
        with self.hw.autocast():
            logits, aux_logits = self.forward_module(images)
        loss = training_loss(logits, aux_logits, labels, self.recipe)
        self.optimise(loss)
        self.count(loss.item(), (logits.argmax(1) == labels).sum().item(), len(labels))

    def evaluated(self, epoch: int) -> bool:
        return (epoch + 1) % self.recipe.eval_every == 0 or epoch == self.recipe.epochs - 1

    def end_epoch(self, epoch: int, loss: float, acc: float, lr: float) -> dict[str, float]:
        """The epoch's training sums and optimiser steps so far; test (and validation)
        scores on evaluated epochs only."""
        metrics = {"step": (epoch + 1) * len(self.train_loader)}
        if not self.evaluated(epoch):
            return {**metrics, "train_loss": loss, "train_acc": acc, "lr": lr}
        metrics.update(
            tested_epoch(self.eval_module, self.test_loader, self.hw, epoch, loss, acc, lr)
        )
        if self.val_loader is not None:
            self.val_loader.set_epoch(epoch)
            val = evaluate(self.eval_module, self.val_loader, self.hw)
            metrics.update(val_loss=val["loss"], val_acc=val["acc"])
        return metrics

    def run(  # type: ignore[override]
        self, metric_logger: MetricLogger, checkpointer: Checkpointer, stop: StopFlag
    ) -> dict[str, float]:
        """Train every epoch; the final test accuracy and the size of the trained network.

        `best_test_acc`, the highest test accuracy over the epochs, is how the original
        reports; the final epoch's `test_acc` is the headline, since no epoch is picked by
        its test score.
        """
        history = super().run(metric_logger, checkpointer, stop)
        final = history[-1]
        params = sum(p.numel() for n, p in self.model.named_parameters() if "auxiliary" not in n)
        validation = {"val_acc": final["val_acc"]} if "val_acc" in final else {}
        return {
            "test_acc": final["test_acc"],
            "best_test_acc": max(epoch["test_acc"] for epoch in history if "test_acc" in epoch),
            "test_loss": final["test_loss"],
            "train_acc": final["train_acc"],
            **validation,
            "steps": final["step"],
            "params_m": params / 1e6,
            "train_hours": self.clock.hours(),
        }
