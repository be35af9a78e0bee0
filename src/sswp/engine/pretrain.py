"""The two-stage baseline's first stage: SimCLR pre-training of the derived network.

The child network (from random init) gets a SimCLR projection head on its pooled features
and is trained with NT-Xent on two views of every training image, labels unused. Its
backbone weights then initialise the `two_stage` finetune and linear evaluation, which is
what the paper compares the preserved weights against.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import torch
from torch import nn

from sswp.config.params import PretrainParams, RuntimeParams
from sswp.engine.distributed import all_gather_with_grad
from sswp.engine.epochs import EpochLoop
from sswp.engine.hardware import Hardware
from sswp.engine.heldout import HeldOutObjective
from sswp.models.child import ChildNetwork
from sswp.ssl.simclr import nt_xent

PROJECTION_DIM = 128


class ContrastiveChild(nn.Module):
    """A child network's backbone with a SimCLR projection head (Linear d-d, ReLU, Linear)."""

    def __init__(self, child: ChildNetwork):
        super().__init__()
        self.child = child
        dim = child.classifier.in_features
        self.projector = nn.Sequential(
            nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, PROJECTION_DIM)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled, _ = self.child.features(x)
        return self.projector(pooled)

    def parameters_to_train(self) -> list[nn.Parameter]:
        """Backbone and projector: the child's classifier and auxiliary head get no loss."""
        heads = {id(p) for p in self.child.classifier.parameters()}
        if self.child.auxiliary is not None:
            heads |= {id(p) for p in self.child.auxiliary.parameters()}
        return [p for p in self.parameters() if id(p) not in heads]


class PretrainLoop(EpochLoop):
    """SGD with warm-up + cosine on NT-Xent, gathered over DDP ranks as SimCLR does.

    After every epoch it takes the label-free measure (`heldout`, if there is a validation
    split), and it sums the learning rate of every step: each op of the child trains in
    every step, so that sum is the lr-weighted count of updates each op got.
    """

    def __init__(
        self,
        model: ContrastiveChild,
        train_loader,
        pp: PretrainParams,
        runtime: RuntimeParams,
        hw: Hardware,
        name: str,
        heldout: HeldOutObjective | None = None,
    ):
        # The child's classifier gets no loss here, so DDP must expect unused parameters.
        super().__init__(
            name,
            model,
            train_loader,
            pp,
            runtime,
            hw,
            trainable=model.parameters_to_train(),
            find_unused=True,
        )
        self.pp, self.heldout = pp, heldout
        self.lr_sum = 0.0

    def objective(
        self, batch: Any, module: nn.Module | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """NT-Xent and its top-1 accuracy on a batch's two views (through `module`, or DDP)."""
        v1, v2 = self.hw.images(batch[0]), self.hw.images(batch[1])
        with self.hw.autocast():
            z = (module or self.forward_module)(torch.cat([v1, v2])).float()
        z1 = all_gather_with_grad(z[: len(v1)], self.hw.dist)
        z2 = all_gather_with_grad(z[len(v1) :], self.hw.dist)
        return nt_xent(z1, z2, self.pp.temperature)

    def train_step(self, batch: Any) -> None:
        loss, acc = self.objective(batch)
        self.lr_sum += self.opt.param_groups[0]["lr"]
        self.optimise(loss)
        # Every rank holds the same loss over the gathered views; weighting by the local
        # batch and summing over ranks averages it back to that value.
        self.count(loss.item(), acc.item() * len(batch[0]), len(batch[0]))

    def end_epoch(self, epoch: int, loss: float, acc: float, lr: float) -> dict[str, float]:
        metrics = {"objective_loss": loss, "objective_acc": acc, "lr": lr}
        metrics["ssl_steps"] = float((epoch + 1) * len(self.train_loader))
        if self.heldout is not None:
            metrics.update(
                self.heldout.measure(self.model, partial(self.objective, module=self.model))
            )
        return metrics

    def state_dict(self, epoch: int, step: int) -> dict[str, Any]:
        return {**super().state_dict(epoch, step), "lr_sum": self.lr_sum}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.lr_sum = state["lr_sum"]
