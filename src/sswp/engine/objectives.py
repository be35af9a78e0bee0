"""What the search's weight and arch steps minimise: SimCLR, BYOL or supervised cross-entropy.

An objective is one module holding the supernet and the heads it adds, so that DDP wraps,
SGD trains, gradient clipping sees and the checkpoint saves all of them together. Its
forward takes a loader batch and returns (loss, accuracy) on whatever path the supernet's
edges are set to; the caller samples the path and does the backward pass.
"""

from __future__ import annotations

import copy
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from sswp.config.params import SearchParams
from sswp.data.loaders import Kind
from sswp.engine.distributed import all_gather_with_grad
from sswp.engine.hardware import Hardware
from sswp.nas.genotype import Genotype
from sswp.nas.mixed_edge import MixedEdge
from sswp.nas.supernet import SuperNet
from sswp.ssl.byol import (
    PROJECTION_DIM,
    byol_loss,
    ema_update_,
    mlp_head,
    retrieval_accuracy,
    target_tau,
)
from sswp.ssl.simclr import nt_xent

Batch = tuple[torch.Tensor, ...]


class Objective(nn.Module):
    """The supernet plus an objective's heads; forward(batch) -> (loss, accuracy).

    `train_kind` and `test_kind` are the loader kinds its batches come from (see
    `make_loader`); `uses_labels` says whether it reads the labels of the search halves.
    """

    train_kind: ClassVar[Kind] = "simclr"
    test_kind: ClassVar[Kind] = "simclr"
    uses_labels: ClassVar[bool] = False

    def __init__(self, net: SuperNet, hw: Hardware):
        super().__init__()
        self.net, self.hw = net, hw

    def weight_parameters(self) -> list[nn.Parameter]:
        """What the weight optimiser trains and gradient clipping bounds (never the alphas)."""
        return self.net.weight_parameters()

    def after_weight_step(self) -> None:
        """Called once the weight optimiser has stepped; most objectives have nothing to do."""

    def restrict_to(self, genotype: Genotype) -> None:
        """Run only the genotype's edges and ops: the derived child, with this one's heads."""
        self.net.restrict_to(genotype)

    def forward(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError


def backbone_parameters(net: SuperNet) -> list[nn.Parameter]:
    """The supernet's weights without its SimCLR head, which other objectives leave unused."""
    head = {id(p) for p in net.head.parameters()}
    return [p for p in net.weight_parameters() if id(p) not in head]


class SimCLRObjective(Objective):
    """NT-Xent over the supernet's projection head, with the negatives of every rank."""

    def __init__(self, net: SuperNet, hw: Hardware, temperature: float):
        super().__init__(net, hw)
        self.temperature = temperature

    def forward(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        v1, v2 = (self.hw.images(v) for v in batch[:2])
        with self.hw.autocast():
            z = self.net(torch.cat([v1, v2])).float()
        z1 = all_gather_with_grad(z[: len(v1)], self.hw.dist)
        z2 = all_gather_with_grad(z[len(v1) :], self.hw.dist)
        return nt_xent(z1, z2, self.temperature)


class BYOLObjective(Objective):
    """Online supernet -> projector -> predictor regresses an EMA target supernet -> projector.

    The target runs the online supernet's current path (copied edge by edge before each
    forward), so both networks compute the same sampled architecture. Its EMA decay goes
    from `base_tau` to 1 over `total_steps` weight steps; `steps` (a buffer, hence in the
    checkpoint) counts the updates done.
    """

    def __init__(self, net: SuperNet, hw: Hardware, base_tau: float, total_steps: int):
        super().__init__(net, hw)
        self.projector = mlp_head(net.feature_dim)
        self.predictor = mlp_head(PROJECTION_DIM)
        self.target_net = copy.deepcopy(net)
        self.target_projector = copy.deepcopy(self.projector)
        for p in [*self.target_net.parameters(), *self.target_projector.parameters()]:
            p.requires_grad_(False)
        self.base_tau, self.total_steps = base_tau, total_steps
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))
        self._edge_pairs = list(zip(_edges(net), _edges(self.target_net), strict=True))

    def weight_parameters(self) -> list[nn.Parameter]:
        return [
            *backbone_parameters(self.net),
            *self.projector.parameters(),
            *self.predictor.parameters(),
        ]

    def online_and_target(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """The online weights and their EMA copies, pair by pair."""
        online = [*backbone_parameters(self.net), *self.projector.parameters()]
        target = [*backbone_parameters(self.target_net), *self.target_projector.parameters()]
        return online, target

    def forward(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        views = torch.cat([self.hw.images(v) for v in batch[:2]])
        for online, target in self._edge_pairs:
            target.set_path(online.active)
        with self.hw.autocast():
            predictions = self.predictor(self.projector(self.net.features(views)))
            with torch.no_grad():
                targets = self.target_projector(self.target_net.features(views))
        p1, p2 = predictions.float().chunk(2)
        t1, t2 = targets.float().chunk(2)
        return byol_loss(p1, p2, t1, t2), retrieval_accuracy(p1, p2, t1, t2)

    def restrict_to(self, genotype: Genotype) -> None:
        """The target network too: it runs the online network's path."""
        super().restrict_to(genotype)
        self.target_net.restrict_to(genotype)

    def after_weight_step(self) -> None:
        online, target = self.online_and_target()
        ema_update_(target, online, target_tau(self.base_tau, int(self.steps), self.total_steps))
        self.steps += 1


class SupervisedObjective(Objective):
    """The labelled ablation: cross-entropy of a linear classifier on the supernet's features."""

    train_kind: ClassVar[Kind] = "train"
    test_kind: ClassVar[Kind] = "eval"
    uses_labels: ClassVar[bool] = True

    def __init__(self, net: SuperNet, hw: Hardware, num_classes: int):
        super().__init__(net, hw)
        self.classifier = nn.Linear(net.feature_dim, num_classes)

    def weight_parameters(self) -> list[nn.Parameter]:
        return [*backbone_parameters(self.net), *self.classifier.parameters()]

    def forward(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        images, labels = self.hw.images(batch[0]), batch[1].to(self.hw.device)
        with self.hw.autocast():
            logits = self.classifier(self.net.features(images)).float()
        return F.cross_entropy(logits, labels), (logits.argmax(1) == labels).float().mean()


OBJECTIVES: dict[str, type[Objective]] = {
    "simclr": SimCLRObjective,
    "byol": BYOLObjective,
    "supervised": SupervisedObjective,
}


def make_objective(
    sp: SearchParams, net: SuperNet, hw: Hardware, *, num_classes: int, weight_steps: int
) -> Objective:
    """The objective `search.objective` names; `weight_steps` is the whole search's count."""
    if sp.objective == "simclr":
        return SimCLRObjective(net, hw, sp.temperature)
    if sp.objective == "byol":
        return BYOLObjective(net, hw, sp.byol_tau, weight_steps)
    if sp.objective == "supervised":
        return SupervisedObjective(net, hw, num_classes)
    raise ValueError(
        f"unknown search.objective {sp.objective!r}, expected one of {tuple(OBJECTIVES)}"
    )


def _edges(net: SuperNet) -> list[MixedEdge]:
    return [edge for cell in net.cells for edge in cell.edges]
