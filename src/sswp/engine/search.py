"""The SSWP-NAS search loop: objective weight steps, binary-gate arch steps, progressive pruning,
the label-free measure every epoch, and the snapshots selection keeps."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from sswp.config.params import Params
from sswp.data.datasets import ArrayDataset
from sswp.data.loaders import Kind, make_loader
from sswp.data.splits import Splits
from sswp.engine.checkpoint import Checkpointer, rng_state, set_rng_state
from sswp.engine.divergence import check_finite
from sswp.engine.hardware import Hardware
from sswp.engine.heldout import heldout_objective, mean_objective
from sswp.engine.interrupt import StopFlag
from sswp.engine.logs import MetricLogger, RunClock
from sswp.engine.loop import Steps, TrainingLoop, cycle, skip
from sswp.engine.objectives import OBJECTIVES, make_objective
from sswp.engine.phases import SearchSchedule, build_schedule
from sswp.engine.stepper import SearchStepper
from sswp.errors import SswpError
from sswp.nas.genotype import Genotype
from sswp.nas.supernet import SuperNet

log = logging.getLogger(__name__)


@dataclass
class Snapshot:
    """A selectable result of the search: a genotype plus the supernet weights behind it."""

    genotype: Genotype
    state_dict: dict[str, torch.Tensor]
    metrics: dict[str, float]

    def to_state(self) -> dict[str, Any]:
        return {
            "genotype": self.genotype.to_json(),
            "state_dict": self.state_dict,
            "metrics": self.metrics,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Snapshot:
        return cls(Genotype.from_json(state["genotype"]), state["state_dict"], state["metrics"])


@dataclass
class SearchResult:
    snapshots: dict[str, Snapshot]
    metrics: dict[str, Any]
    alpha_history: torch.Tensor  # (epochs, cells, edges, ops) softmax at each epoch's end
    history: list[dict[str, float]]  # per epoch: losses, the label-free measure, steps so far


SEARCH_BUDGET_KEYS = (
    "ssl_steps",
    "ssl_pairs",
    "ssl_steps_after_freeze",
    "ssl_pairs_after_freeze",
)


class SearchLoop(TrainingLoop):
    """Owns the supernet, its objective, optimisers, sampling generator and selection state."""

    def __init__(self, params: Params, data: ArrayDataset, splits: Splits, norm, hw: Hardware):
        sp = params.search
        self.params, self.sp, self.hw, self.runtime = params, sp, hw, params.runtime
        self.schedule: SearchSchedule = build_schedule(sp)
        self.name, self.epochs = "search", self.schedule.epochs
        self.net = net = SuperNet(
            sp.layers, sp.channels, sp.gate_mode, stem=sp.stem, stem_affine=sp.stem_affine
        )
        if sp.batch_size % hw.dist.world_size or sp.batch_size < 2 * hw.dist.world_size:
            raise SswpError(
                f"search.batch_size = {sp.batch_size} does not split over "
                f"{hw.dist.world_size} processes into at least 2 images each (batch norm and "
                "in-batch negatives need 2); use a multiple of 2 x runtime.gpus"
            )
        objective_type = OBJECTIVES[sp.objective]

        batch = ("search.batch_size", sp.batch_size)
        context = hw.loader_context(params.data, params.seed, batch, data.image_size, norm)

        def loader(images, labels, indices, seed_offset: int, name: str, kind: Kind):
            # Plain evaluation reads every test image once; other batches are shuffled and
            # full, since in-batch negatives and retrieval depend on the batch.
            sampled = kind != "eval"
            seeded = dataclasses.replace(context, seed=params.seed + seed_offset)
            return make_loader(
                images, labels, indices, kind, seeded, name=name, shuffle=sampled, drop_last=sampled
            )

        train, test = objective_type.train_kind, objective_type.test_kind
        x, y = data.train_x, data.train_y
        self.weight_loader = loader(x, y, splits.search_weights, 0, "search weight", train)
        self.arch_loader = loader(x, y, splits.search_arch, 1, "search arch", train)
        # Snapshots are selected on held-out images: the test set for the self-supervised
        # objectives (labels unused), the arch half for those that read labels, so that no
        # architecture is chosen by test labels.
        if objective_type.uses_labels:
            held_out = (x, y, splits.search_arch, "arch half")
        else:
            held_out = (data.test_x, data.test_y, np.arange(len(data.test_y)), "test")
        self.test_loader = loader(*held_out[:3], 2, held_out[3], test)
        # The label-free measure, for the objectives that leave labels unread.
        self.heldout = (
            None
            if objective_type.uses_labels
            else heldout_objective(x, splits.validation, context, hw)
        )
        self.objective = hw.model(
            make_objective(
                sp,
                net,
                hw,
                num_classes=data.num_classes,
                weight_steps=sp.epochs * len(self.weight_loader),
            )
        )
        if hw.dist.enabled and params.runtime.sync_bn and hw.device.type == "cuda":
            nn.SyncBatchNorm.convert_sync_batchnorm(self.objective)
        # Every labelled image of both halves, for the ablation that reads their labels.
        self.labels_used = (
            len(splits.search_weights) + len(splits.search_arch)
            if objective_type.uses_labels
            else 0
        )
        self.weight_opt = torch.optim.SGD(
            self.objective.weight_parameters(),
            sp.weight_lr,
            momentum=sp.weight_momentum,
            weight_decay=sp.weight_decay,
        )
        self.weight_sched = torch.optim.lr_scheduler.CosineAnnealingLR(self.weight_opt, sp.epochs)
        self.arch_opt = torch.optim.Adam(
            net.alphas(), sp.arch_lr, betas=sp.arch_betas, weight_decay=sp.arch_weight_decay
        )
        self.paths = torch.Generator().manual_seed(params.seed)
        self.stepper = SearchStepper(
            self.objective,
            self.weight_opt,
            self.arch_opt,
            self.paths,
            hw,
            sp.grad_clip,
            gate_gradients=sp.gate_gradients,
        )
        self.history: list[dict[str, float]] = []
        self.best: dict[str, Snapshot] = {}
        self.sums = _fresh_sums()
        # Per (cell, edge, op): the weight steps that trained the op, and their summed lr.
        shape = (sp.layers, len(net.cells[0].edges), net.cells[0].alpha.shape[1])
        self.op_updates = torch.zeros(shape, dtype=torch.float64)
        self.op_lr_updates = torch.zeros(shape, dtype=torch.float64)
        self.alpha_history: list[torch.Tensor] = []
        self.clock = RunClock()

    # ----- checkpoint state -----
    def state_dict(self, epoch: int, step: int) -> dict[str, Any]:
        return {
            "epoch": epoch,
            "step": step,
            "objective": self.objective.state_dict(),
            "frozen": [cell.frozen for cell in self.net.cells],
            "weight_opt": self.weight_opt.state_dict(),
            "weight_sched": self.weight_sched.state_dict(),
            "arch_opt": self.arch_opt.state_dict(),
            "scaler": self.stepper.scaler.state_dict(),
            "gate_sums": self.stepper.gate_sums,
            "paths": self.paths.get_state(),
            "rng": rng_state(),
            "history": self.history,
            "best": {name: snap.to_state() for name, snap in self.best.items()},
            "sums": self.sums,
            "alpha_history": self.alpha_history,
            "op_updates": self.op_updates,
            "op_lr_updates": self.op_lr_updates,
            "hours": self.clock.hours(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.objective.load_state_dict(state["objective"])
        for index, frozen in enumerate(state["frozen"]):
            if frozen:
                self._freeze(index)
        self.weight_opt.load_state_dict(state["weight_opt"])
        self.weight_sched.load_state_dict(state["weight_sched"])
        self.arch_opt.load_state_dict(state["arch_opt"])
        self.stepper.scaler.load_state_dict(state["scaler"])
        if self.stepper.gate_sums is not None:
            self.stepper.gate_sums.copy_(state["gate_sums"])
        self.history = list(state["history"])
        self.best = {name: Snapshot.from_state(snap) for name, snap in state["best"].items()}
        self.sums = dict(state["sums"])
        self.alpha_history = list(state["alpha_history"])
        self.op_updates.copy_(state["op_updates"])
        self.op_lr_updates.copy_(state["op_lr_updates"])
        self.clock = RunClock(state["hours"])

    def restore_random_state(self, state: dict[str, Any]) -> None:
        self.paths.set_state(state["paths"])
        set_rng_state(state["rng"])

    def _freeze(self, cell: int) -> None:
        sp = self.sp
        self.net.freeze_cell(cell, sp.freeze_edges, sp.max_skips, sp.max_pools)

    # ----- one epoch -----
    @torch.no_grad()
    def evaluate(self, epoch: int) -> dict[str, float]:
        """The objective's loss and accuracy on held-out images along the argmax path.

        Summed over every rank's shard, so that every rank keeps the same snapshots.
        """
        self.objective.train(False)
        self.net.use_argmax_paths()
        self.test_loader.set_epoch(epoch)
        loss, acc = mean_objective(self.test_loader, self.objective, self.hw)
        self.objective.train()
        return {"objective_loss": loss, "objective_acc": acc}

    def train_epoch(self, epoch: int, steps: Steps) -> dict[str, float]:
        """Weight steps over the weight half, an arch step every `arch_every` after warm-up;
        then the epoch's label-free measure, alphas and (when due) selection evaluation."""
        sp = self.sp
        for cell in self.schedule.cells_to_freeze(epoch):
            if not self.net.cells[cell].frozen:
                self._freeze(cell)
                log.info("epoch %d: froze cell %d", epoch, cell)
        warm = self.schedule.warm(epoch)
        arch_active = not warm and bool(self.net.live_cells())
        weight_drops = (0.0, 0.0) if warm else (sp.weight_skip_drop_prob, sp.weight_pool_drop_prob)
        arch_drops = (sp.arch_skip_drop_prob, sp.arch_pool_drop_prob)
        self.objective.train()
        self.arch_loader.set_epoch(epoch)
        arch_batches = cycle(self.arch_loader)
        skip(arch_batches, int(self.sums["arch_steps"]))  # those of a resumed epoch
        for step, batch in steps(self.weight_loader):
            loss, acc = self.stepper.weight_step(batch, *weight_drops)
            check_finite(loss, "search", epoch, "search.weight_lr")
            self._count_updates()
            self._add(steps=1, loss=loss, acc=acc)
            if arch_active and (step + 1) % sp.arch_every == 0:
                arch_loss = self.stepper.arch_step(next(arch_batches), *arch_drops)
                self._add(arch_steps=1, arch_loss=arch_loss)
        self.weight_sched.step()
        return {**self._epoch_metrics(epoch), **self._end_of_epoch(epoch)}

    def _add(self, **values: float) -> None:
        for key, value in values.items():
            self.sums[key] += value

    def _epoch_metrics(self, epoch: int) -> dict[str, float]:
        """The epoch's mean losses, what is frozen, the lr, and the steps so far."""
        sums, self.sums = self.sums, _fresh_sums()
        metrics = {
            "train_loss": sums["loss"] / sums["steps"],
            "train_acc": sums["acc"] / sums["steps"],
            "frozen_cells": float(sum(cell.frozen for cell in self.net.cells)),
            "lr": self.weight_sched.get_last_lr()[0],
        }
        if sums["arch_steps"]:
            metrics["arch_loss"] = sums["arch_loss"] / sums["arch_steps"]
        metrics["ssl_steps"] = float((epoch + 1) * len(self.weight_loader))
        return metrics

    def _end_of_epoch(self, epoch: int) -> dict[str, float]:
        """The label-free measure, the alphas' history, and the selection's evaluation and
        snapshots when due (after pruning; the last epoch always)."""
        schedule = self.schedule
        metrics = self.measure_path()
        self.alpha_history.append(
            torch.stack([a.detach().softmax(-1).cpu() for a in self.net.alphas()])
        )
        last = epoch == schedule.epochs - 1
        selecting = epoch >= schedule.eval_start
        if last or (selecting and (epoch - schedule.eval_start) % self.sp.eval_every == 0):
            scores = self.evaluate(epoch)
            metrics.update({f"test_{k}": v for k, v in scores.items()})
            scores["epoch"] = epoch
            if selecting or not self.best:
                self._keep_best(scores)
            if last:
                self.best["final"] = self.snapshot(scores)
        return metrics

    def epoch_note(self, epoch: int) -> str:
        return f" ({self.schedule.phase(epoch)})"

    def _count_updates(self) -> None:
        """Credit the step to the op that every turned-on edge ran (the only one it trained)."""
        ops = self.net.active_ops()
        cells, edges = torch.nonzero(ops >= 0, as_tuple=True)
        where = (cells, edges, ops[cells, edges])
        self.op_updates[where] += 1
        self.op_lr_updates[where] += self.weight_opt.param_groups[0]["lr"]

    def kept_op_budget(self, genotype: Genotype) -> dict[str, float]:
        """The weight steps (and the same weighted by lr) that the ops a child keeps got."""
        cells, edges, ops = (
            torch.tensor(column) for column in zip(*genotype.kept_ops(), strict=True)
        )
        out = {}
        for name, counts in (
            ("op_updates", self.op_updates),
            ("op_lr_updates", self.op_lr_updates),
        ):
            kept = counts[cells, edges, ops]
            out.update(
                {
                    f"kept_{name}_mean": kept.mean().item(),
                    f"kept_{name}_min": kept.min().item(),
                    f"kept_{name}_max": kept.max().item(),
                }
            )
        return out

    def measure_path(self) -> dict[str, float]:
        """The label-free measure of the supernet along the path it would keep now."""
        if self.heldout is None:
            return {}
        self.net.use_argmax_paths()
        return self.heldout.measure(self.objective, self.objective)

    def measure_child(self, snapshot: Snapshot) -> dict[str, float]:
        """The label-free measure of the snapshot's child: its preserved weights and the
        search's heads, i.e. the supernet restricted to the genotype's 8 edges a cell."""
        if self.heldout is None:
            return {}
        self.net.load_state_dict(snapshot.state_dict)
        self.objective.restrict_to(snapshot.genotype)
        scores = self.heldout.measure(self.objective, self.objective)
        return {f"child_{key}": value for key, value in scores.items()}

    def budget(self) -> dict[str, int]:
        """The weight steps and image pairs the supernet's weights got: in all, and after the
        last cell froze (when only the final child's ops still train). The two-stage
        baseline's pre-training budget is matched against these."""
        schedule, per_epoch, batch = self.schedule, len(self.weight_loader), self.sp.batch_size
        last_freeze = max((e for e, _ in schedule.freeze_epochs), default=schedule.epochs)
        steps = schedule.epochs * per_epoch
        after = (schedule.epochs - last_freeze) * per_epoch
        return dict(
            zip(SEARCH_BUDGET_KEYS, (steps, steps * batch, after, after * batch), strict=True)
        )

    def snapshot(self, metrics: dict[str, float]) -> Snapshot:
        genotype = self.net.derive(self.sp.max_skips, self.sp.max_pools)
        state = {k: v.detach().cpu().clone() for k, v in self.net.state_dict().items()}
        return Snapshot(genotype, state, {**metrics, **self.kept_op_budget(genotype)})

    def _keep_best(self, scores: dict[str, float]) -> None:
        acc, loss = scores["objective_acc"], scores["objective_loss"]
        if (
            "highest_acc" not in self.best
            or acc > self.best["highest_acc"].metrics["objective_acc"]
        ):
            self.best["highest_acc"] = self.snapshot(scores)
        if (
            "lowest_loss" not in self.best
            or loss < self.best["lowest_loss"].metrics["objective_loss"]
        ):
            self.best["lowest_loss"] = self.snapshot(scores)

    # ----- the whole search -----
    def run(
        self, metric_logger: MetricLogger, checkpointer: Checkpointer, stop: StopFlag
    ) -> SearchResult:
        schedule = self.schedule
        log.info(
            "search: %d epochs = warm-up %d, search %d, prune %d, stabilise %d",
            schedule.epochs,
            schedule.warmup,
            schedule.search,
            schedule.prune,
            schedule.stabilise,
        )
        super().run(metric_logger, checkpointer, stop)
        # Last: measuring a child loads its snapshot into the supernet and restricts it.
        for snap in self.best.values():
            snap.metrics.update(self.measure_child(snap))
        return SearchResult(
            dict(self.best), self.result_metrics(), torch.stack(self.alpha_history), self.history
        )

    def result_metrics(self) -> dict[str, Any]:
        """Each snapshot's scores, the budget, the measure's chance, the cost and the setting."""
        out: dict[str, Any] = {name: snap.metrics for name, snap in self.best.items()}
        out.update(self.budget())
        if self.heldout is not None:
            out.update(val_ssl_batch=self.heldout.batch_size, val_ssl_chance=self.heldout.chance)
        out.update(
            search_hours=self.clock.hours(),
            device=self.hw.device.type,
            processes=self.hw.dist.world_size,
            supernet_params_m=sum(p.numel() for p in self.net.weight_parameters()) / 1e6,
            objective=self.sp.objective,
            labels_used=self.labels_used,
        )
        return out


def _fresh_sums() -> dict[str, float]:
    return {"steps": 0, "loss": 0.0, "acc": 0.0, "arch_steps": 0, "arch_loss": 0.0}
