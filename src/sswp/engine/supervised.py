"""Supervised training of a child network: train from scratch, and finetune at a label ratio."""

from __future__ import annotations

import logging
import math

import torch
import torch.nn.functional as F
from torch import nn

from sswp.config import RuntimeParams, SupervisedParams
from sswp.engine.runtime import MetricLogger, progress, to_device
from sswp.models.child import ChildNetwork

log = logging.getLogger(__name__)


def warmup_cosine(epoch: int, warmup: int, epochs: int) -> float:
    """LR factor: linear warm-up over `warmup` epochs, then cosine to 0 over the rest."""
    if epoch < warmup:
        return (epoch + 1) / warmup
    span = max(1, epochs - warmup)
    return 0.5 * (1 + math.cos(math.pi * (epoch - warmup) / span))


@torch.no_grad()
def evaluate(model: nn.Module, loader, device: torch.device) -> dict[str, float]:
    model.eval()
    loss_sum = correct = count = 0.0
    for images, labels in loader:
        images, labels = to_device(images, device), labels.to(device)
        logits, _ = model(images)
        loss_sum += F.cross_entropy(logits, labels, reduction="sum").item()
        correct += (logits.argmax(1) == labels).sum().item()
        count += len(labels)
    return {"loss": loss_sum / count, "acc": correct / count}


def train_classifier(
    model: ChildNetwork,
    train_loader,
    test_loader,
    sp: SupervisedParams,
    runtime: RuntimeParams,
    device: torch.device,
    metric_logger: MetricLogger,
    name: str,
) -> dict[str, float]:
    """SGD with warm-up + cosine, auxiliary loss, linear drop-path ramp, grad clipping."""
    opt = torch.optim.SGD(
        model.parameters(), sp.lr, momentum=sp.momentum, weight_decay=sp.weight_decay
    )
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda e: warmup_cosine(e, sp.warmup_epochs, sp.epochs)
    )
    for epoch in range(sp.epochs):
        model.train()
        model.drop_path_prob = sp.drop_path * epoch / sp.epochs
        loss_sum = correct = count = 0.0
        for images, labels in progress(train_loader, runtime, desc=f"{name} {epoch}"):
            images, labels = to_device(images, device), labels.to(device)
            logits, aux_logits = model(images)
            loss = F.cross_entropy(logits, labels)
            if aux_logits is not None and sp.auxiliary_weight > 0:
                loss = loss + sp.auxiliary_weight * F.cross_entropy(aux_logits, labels)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), sp.grad_clip)
            opt.step()
            loss_sum += loss.item() * len(labels)
            correct += (logits.argmax(1) == labels).sum().item()
            count += len(labels)
        lr = sched.get_last_lr()[0]
        sched.step()
        test = evaluate(model, test_loader, device)
        metrics = {
            "train_loss": loss_sum / count,
            "train_acc": correct / count,
            "test_loss": test["loss"],
            "test_acc": test["acc"],
            "lr": lr,
        }
        metric_logger.log_epoch(epoch, metrics)
        log.info(
            "%s epoch %d: %s", name, epoch, ", ".join(f"{k}={v:.4g}" for k, v in metrics.items())
        )
    return {
        "test_acc": test["acc"],
        "test_loss": test["loss"],
        "train_acc": metrics["train_acc"],
        "params_m": sum(p.numel() for n, p in model.named_parameters() if "auxiliary" not in n)
        / 1e6,
    }
