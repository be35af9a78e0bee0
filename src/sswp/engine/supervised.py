"""Supervised training of a child network: train from scratch, and finetune at a label ratio."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from sswp.config import RuntimeParams, SupervisedParams
from sswp.engine.checkpoint import Checkpointer, rng_state, set_rng_state
from sswp.engine.distributed import sum_scalars
from sswp.engine.interrupt import StopFlag, halt_if_requested
from sswp.engine.runtime import Hardware, MetricLogger, RunClock, progress
from sswp.models.child import ChildNetwork

log = logging.getLogger(__name__)


def warmup_cosine(epoch: int, warmup: int, epochs: int) -> float:
    """LR factor: linear warm-up over `warmup` epochs, then cosine to 0 over the rest."""
    if epoch < warmup:
        return (epoch + 1) / warmup
    span = max(1, epochs - warmup)
    return 0.5 * (1 + math.cos(math.pi * (epoch - warmup) / span))


@torch.no_grad()
def evaluate(model: nn.Module, loader, hw: Hardware) -> dict[str, float]:
    """Test loss and accuracy, summed over every rank's shard."""
    model.train(False)
    loss_sum = correct = count = 0.0
    for images, labels in loader:
        images, labels = hw.images(images), labels.to(hw.device)
        with hw.autocast():
            logits, _ = model(images)
        loss_sum += F.cross_entropy(logits.float(), labels, reduction="sum").item()
        correct += (logits.argmax(1) == labels).sum().item()
        count += len(labels)
    loss_sum, correct, count = sum_scalars([loss_sum, correct, count], hw.dist, hw.device)
    return {"loss": loss_sum / count, "acc": correct / count}


def _fresh_sums() -> dict[str, float]:
    return {"loss": 0.0, "correct": 0.0, "count": 0.0}


class SupervisedLoop:
    """SGD with warm-up + cosine, auxiliary loss, linear drop-path ramp, grad clipping."""

    def __init__(
        self,
        model: ChildNetwork,
        train_loader,
        test_loader,
        sp: SupervisedParams,
        runtime: RuntimeParams,
        hw: Hardware,
        name: str,
    ):
        self.model, self.sp, self.runtime, self.hw, self.name = model, sp, runtime, hw, name
        self.forward_module: nn.Module = model
        if hw.dist.enabled:
            if runtime.sync_bn and hw.device.type == "cuda":
                self.model = model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
            device_ids = [hw.device.index] if hw.device.type == "cuda" else None
            self.forward_module = DistributedDataParallel(model, device_ids=device_ids)
        self.scaler = hw.grad_scaler()
        self.train_loader, self.test_loader = train_loader, test_loader
        self.opt = torch.optim.SGD(
            model.parameters(), sp.lr, momentum=sp.momentum, weight_decay=sp.weight_decay
        )
        self.sched = torch.optim.lr_scheduler.LambdaLR(
            self.opt, lambda e: warmup_cosine(e, sp.warmup_epochs, sp.epochs)
        )
        self.history: list[dict[str, float]] = []
        self.sums = _fresh_sums()
        self.clock = RunClock()

    def state_dict(self, epoch: int, step: int) -> dict[str, Any]:
        return {
            "epoch": epoch,
            "step": step,
            "model": self.model.state_dict(),
            "opt": self.opt.state_dict(),
            "sched": self.sched.state_dict(),
            "rng": rng_state(),
            "history": self.history,
            "sums": self.sums,
            "hours": self.clock.hours(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["opt"])
        self.sched.load_state_dict(state["sched"])
        self.history = list(state["history"])
        self.sums = dict(state["sums"])
        self.clock = RunClock(state["hours"])

    def train_epoch(
        self, epoch: int, stop: StopFlag, checkpointer: Checkpointer, resume: dict | None
    ) -> dict[str, float]:
        sp, model = self.sp, self.model
        model.train()
        model.drop_path_prob = sp.drop_path * epoch / sp.epochs
        self.train_loader.set_epoch(epoch)
        batches: Iterator[Any] = iter(self.train_loader)
        first = 0
        if resume is not None:
            first = resume["step"]
            for _ in range(first):
                next(batches)
            set_rng_state(resume["rng"])
        lr = self.sched.get_last_lr()[0]
        shown = progress(
            batches,
            self.runtime,
            desc=f"{self.name} {epoch}",
            total=len(self.train_loader),
            initial=first,
        )
        for step, (images, labels) in enumerate(shown, start=first):
            images, labels = self.hw.images(images), labels.to(self.hw.device)
            with self.hw.autocast():
                logits, aux_logits = self.forward_module(images)
            loss = F.cross_entropy(logits.float(), labels)
            if aux_logits is not None and sp.auxiliary_weight > 0:
                loss = loss + sp.auxiliary_weight * F.cross_entropy(aux_logits.float(), labels)
            self.opt.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.opt)
            nn.utils.clip_grad_norm_(model.parameters(), sp.grad_clip)
            self.scaler.step(self.opt)
            self.scaler.update()
            self.sums["loss"] += loss.item() * len(labels)
            self.sums["correct"] += (logits.argmax(1) == labels).sum().item()
            self.sums["count"] += len(labels)
            halt_if_requested(
                stop,
                self.hw,
                checkpointer,
                f"{self.name} epoch {epoch} step {step + 1}",
                partial(self.state_dict, epoch, step + 1),
            )
        self.sched.step()
        sums, self.sums = self.sums, _fresh_sums()
        totals = sum_scalars(list(sums.values()), self.hw.dist, self.hw.device)
        sums = dict(zip(sums, totals, strict=True))
        self.test_loader.set_epoch(epoch)
        test = evaluate(model, self.test_loader, self.hw)
        return {
            "train_loss": sums["loss"] / sums["count"],
            "train_acc": sums["correct"] / sums["count"],
            "test_loss": test["loss"],
            "test_acc": test["acc"],
            "lr": lr,
        }

    def run(
        self, metric_logger: MetricLogger, checkpointer: Checkpointer, stop: StopFlag
    ) -> dict[str, float]:
        resume = checkpointer.load()
        start = 0
        if resume is not None:
            self.load_state_dict(resume)
            start = resume["epoch"]
            for epoch, metrics in enumerate(self.history):
                metric_logger.log_epoch(epoch, metrics)
            if resume["step"] == 0:
                set_rng_state(resume["rng"])
                resume = None
        for epoch in range(start, self.sp.epochs):
            metrics = self.train_epoch(epoch, stop, checkpointer, resume)
            resume = None
            self.history.append(metrics)
            metric_logger.log_epoch(epoch, metrics)
            log.info(
                "%s epoch %d: %s",
                self.name,
                epoch,
                ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()),
            )
            checkpointer.save(self.state_dict(epoch + 1, 0))
            halt_if_requested(stop, self.hw, checkpointer, f"the end of {self.name} epoch {epoch}")
        final = self.history[-1]
        params = sum(p.numel() for n, p in self.model.named_parameters() if "auxiliary" not in n)
        return {
            "test_acc": final["test_acc"],
            "test_loss": final["test_loss"],
            "train_acc": final["train_acc"],
            "params_m": params / 1e6,
            "train_hours": self.clock.hours(),
        }
