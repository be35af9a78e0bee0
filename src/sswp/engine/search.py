"""The SSWP-NAS search loop: SimCLR weight steps, binary-gate arch steps, progressive pruning."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from sswp.config import Params
from sswp.data.datasets import ArrayDataset
from sswp.data.loaders import make_loader
from sswp.data.splits import Splits
from sswp.engine.phases import SearchSchedule, build_schedule
from sswp.engine.runtime import MetricLogger, prepare_model, progress, to_device
from sswp.nas.genotype import Genotype
from sswp.nas.supernet import SuperNet
from sswp.ssl.simclr import nt_xent

log = logging.getLogger(__name__)


@dataclass
class Snapshot:
    """A selectable result of the search: a genotype plus the supernet weights behind it."""

    genotype: Genotype
    state_dict: dict[str, torch.Tensor]
    metrics: dict[str, float]


@dataclass
class SearchResult:
    snapshots: dict[str, Snapshot]
    metrics: dict[str, Any]
    alpha_history: torch.Tensor  # (epochs, cells, edges, ops) softmax at each epoch's end


def _cycle(loader: torch.utils.data.DataLoader) -> Iterator[Any]:
    while True:
        yield from loader


def _contrastive(net: SuperNet, v1: torch.Tensor, v2: torch.Tensor, temperature: float):
    z = net(torch.cat([v1, v2]))
    return nt_xent(z[: len(v1)], z[len(v1) :], temperature)


def weight_step(
    net: SuperNet,
    opt: torch.optim.Optimizer,
    paths: torch.Generator,
    views: tuple[torch.Tensor, torch.Tensor],
    temperature: float,
    grad_clip: float,
    drop_skip: float = 0.0,
    drop_pool: float = 0.0,
) -> tuple[float, float]:
    """SGD on the weights of one sampled path; unsampled ops get no gradient at all."""
    net.sample_paths(paths, drop_skip=drop_skip, drop_pool=drop_pool)
    loss, acc = _contrastive(net, *views, temperature)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    nn.utils.clip_grad_norm_(net.weight_parameters(), grad_clip)
    opt.step()
    return loss.item(), acc.item()


def arch_step(
    net: SuperNet,
    opt: torch.optim.Optimizer,
    paths: torch.Generator,
    views: tuple[torch.Tensor, torch.Tensor],
    temperature: float,
    drop_skip: float = 0.0,
    drop_pool: float = 0.0,
) -> float:
    """One Adam step on the alphas of unfrozen cells, from binary-gate gradients."""
    net.sample_paths(paths, drop_skip=drop_skip, drop_pool=drop_pool)
    net.open_gates()
    gates = [edge.gates for cell in net.live_cells() for edge in cell.edges]
    loss, _ = _contrastive(net, *views, temperature)
    for gate, grad in zip(gates, torch.autograd.grad(loss, gates), strict=True):
        gate.grad = grad
    net.set_alpha_gradients()
    before = [a.detach().clone() for a in net.alphas()]
    opt.step()
    net.rescale_alphas(before)
    opt.zero_grad(set_to_none=True)
    net.close_gates()
    return loss.item()


class SearchLoop:
    """Owns the supernet, its two optimisers and the sampling generator for one search."""

    def __init__(
        self, params: Params, data: ArrayDataset, splits: Splits, norm, device: torch.device
    ):
        sp = params.search
        self.params, self.sp, self.device = params, sp, device
        self.schedule: SearchSchedule = build_schedule(sp)
        self.net = prepare_model(SuperNet(sp.layers, sp.channels, sp.gate_mode), device)
        self.weight_opt = torch.optim.SGD(
            self.net.weight_parameters(),
            sp.weight_lr,
            momentum=sp.weight_momentum,
            weight_decay=sp.weight_decay,
        )
        self.weight_sched = torch.optim.lr_scheduler.CosineAnnealingLR(self.weight_opt, sp.epochs)
        self.arch_opt = torch.optim.Adam(
            self.net.alphas(), sp.arch_lr, betas=sp.arch_betas, weight_decay=sp.arch_weight_decay
        )
        self.paths = torch.Generator().manual_seed(params.seed)
        mean, std = norm
        common = dict(
            kind="simclr", batch_size=sp.batch_size, mean=mean, std=std, workers=params.data.workers
        )
        self.weight_loader = make_loader(
            data.train_x,
            data.train_y,
            splits.search_weights,
            shuffle=True,
            drop_last=True,
            seed=params.seed,
            name="search weight split (search.batch_size)",
            **common,
        )
        self.arch_batches = _cycle(
            make_loader(
                data.train_x,
                data.train_y,
                splits.search_arch,
                shuffle=True,
                drop_last=True,
                seed=params.seed + 1,
                name="search arch split (search.batch_size)",
                **common,
            )
        )
        self.test_loader = make_loader(
            data.test_x,
            data.test_y,
            torch.arange(len(data.test_y)).numpy(),
            shuffle=False,
            drop_last=True,
            seed=params.seed,
            name="test set (search.batch_size)",
            **common,
        )

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Contrastive loss and top-1 on held-out test images along the argmax path."""
        self.net.eval()
        self.net.use_argmax_paths()
        total_loss = total_acc = count = 0.0
        for v1, v2, _ in self.test_loader:
            v1, v2 = to_device(v1, self.device), to_device(v2, self.device)
            loss, acc = _contrastive(self.net, v1, v2, self.sp.temperature)
            total_loss += loss.item() * len(v1)
            total_acc += acc.item() * len(v1)
            count += len(v1)
        self.net.train()
        return {"contrastive_loss": total_loss / count, "contrastive_acc": total_acc / count}

    def train_epoch(self, epoch: int) -> dict[str, float]:
        for cell in self.schedule.cells_to_freeze(epoch):
            self.net.cells[cell].freeze()
            log.info("epoch %d: froze cell %d", epoch, cell)
        warm = epoch < self.schedule.warmup
        self.net.train()
        losses, accs, arch_losses = [], [], []
        batches = progress(self.weight_loader, self.params.runtime, desc=f"search {epoch}")
        sp = self.sp
        for step, (v1, v2, _) in enumerate(batches):
            loss, acc = weight_step(
                self.net,
                self.weight_opt,
                self.paths,
                (to_device(v1, self.device), to_device(v2, self.device)),
                sp.temperature,
                sp.grad_clip,
                drop_skip=0.0 if warm else sp.weight_skip_drop_prob,
                drop_pool=0.0 if warm else sp.weight_pool_drop_prob,
            )
            losses.append(loss)
            accs.append(acc)
            if not warm and (step + 1) % sp.arch_every == 0 and self.net.live_cells():
                a1, a2, _ = next(self.arch_batches)
                arch_losses.append(
                    arch_step(
                        self.net,
                        self.arch_opt,
                        self.paths,
                        (to_device(a1, self.device), to_device(a2, self.device)),
                        sp.temperature,
                        drop_skip=sp.arch_skip_drop_prob,
                        drop_pool=sp.arch_pool_drop_prob,
                    )
                )
        self.weight_sched.step()
        metrics = {
            "train_loss": sum(losses) / len(losses),
            "train_acc": sum(accs) / len(accs),
            "frozen_cells": float(sum(cell.frozen for cell in self.net.cells)),
            "lr": self.weight_sched.get_last_lr()[0],
        }
        if arch_losses:
            metrics["arch_loss"] = sum(arch_losses) / len(arch_losses)
        return metrics

    def snapshot(self, metrics: dict[str, float]) -> Snapshot:
        genotype = self.net.derive(self.sp.max_skips, self.sp.max_pools)
        state = {k: v.detach().cpu().clone() for k, v in self.net.state_dict().items()}
        return Snapshot(genotype, state, dict(metrics))

    def _keep_best(self, best: dict[str, Snapshot], scores: dict[str, float]) -> None:
        acc, loss = scores["contrastive_acc"], scores["contrastive_loss"]
        if "highest_acc" not in best or acc > best["highest_acc"].metrics["contrastive_acc"]:
            best["highest_acc"] = self.snapshot(scores)
        if "lowest_loss" not in best or loss < best["lowest_loss"].metrics["contrastive_loss"]:
            best["lowest_loss"] = self.snapshot(scores)

    def run(self, metric_logger: MetricLogger) -> SearchResult:
        schedule, sp = self.schedule, self.sp
        log.info(
            "search: %d epochs = warm-up %d, search %d, prune %d, stabilise %d",
            schedule.epochs,
            schedule.warmup,
            schedule.search,
            schedule.prune,
            schedule.stabilise,
        )
        started = time.perf_counter()
        best: dict[str, Snapshot] = {}
        alpha_history = []
        for epoch in range(schedule.epochs):
            metrics = self.train_epoch(epoch)
            alpha_history.append(
                torch.stack([a.detach().softmax(-1).cpu() for a in self.net.alphas()])
            )
            last = epoch == schedule.epochs - 1
            selecting = epoch >= schedule.eval_start
            if last or (selecting and (epoch - schedule.eval_start) % sp.eval_every == 0):
                scores = self.evaluate()
                metrics.update({f"test_{k}": v for k, v in scores.items()})
                scores["epoch"] = epoch
                self._keep_best(best, scores)
            metric_logger.log_epoch(epoch, metrics)
            log.info(
                "epoch %d (%s): %s",
                epoch,
                schedule.phase(epoch),
                ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()),
            )
        best["final"] = self.snapshot(scores)
        seconds = time.perf_counter() - started
        result_metrics: dict[str, Any] = {name: snap.metrics for name, snap in best.items()}
        result_metrics.update(
            search_hours=seconds / 3600,
            device=self.device.type,
            supernet_params_m=sum(p.numel() for p in self.net.weight_parameters()) / 1e6,
            labels_used=0,
        )
        return SearchResult(best, result_metrics, torch.stack(alpha_history))
