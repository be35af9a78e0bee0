"""The label-free measure: a self-supervised objective on held-out images, labels unread.

Whether a self-supervised backbone learned is read off its own objective on images that no
arm trains on: the validation split's, with two augmented views each, at the objective's
batch size. Chance for SimCLR is ln(2B - 1), every view's positive as likely as any of the
2B - 1 others. The measure must not change what it measures, so it:

- reads the same views every time (a fixed augmentation seed), so that the points of a
  curve differ by the weights only;
- normalises each batch by its own BN statistics, as the objective does in training: the
  supernet's running statistics average over sampled paths and describe none of them, so
  eval-mode BN would measure the statistics, not the weights; and it leaves every running
  statistic as it was;
- puts back the global random state, so that a run measured every epoch trains exactly
  as one measured never.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

from sswp.data.loaders import Loader, LoaderContext, make_loader
from sswp.engine.distributed import sum_scalars
from sswp.engine.hardware import Hardware

Forward = Callable[[tuple[torch.Tensor, ...]], tuple[torch.Tensor, torch.Tensor]]
VIEWS_SEED = 20_240_612  # any fixed number: it fixes the held-out views' augmentations


def simclr_chance(batch_size: int) -> float:
    """NT-Xent's loss when every view's positive is as likely as any of the 2B - 1 others."""
    return math.log(2 * batch_size - 1)


def mean_objective(
    batches: Iterable[tuple[torch.Tensor, ...]], forward: Forward, hw: Hardware
) -> tuple[float, float]:
    """`forward`'s loss and accuracy averaged over every image of `batches`, summed over
    every rank's shard, so that every rank gets the same numbers."""
    total_loss = total_acc = count = 0.0
    for batch in batches:
        loss, acc = forward(batch)
        size = len(batch[0])
        total_loss += loss.item() * size
        total_acc += acc.item() * size
        count += size
    total_loss, total_acc, count = sum_scalars([total_loss, total_acc, count], hw.dist, hw.device)
    return total_loss / count, total_acc / count


@contextmanager
def batch_statistics(model: nn.Module) -> Iterator[None]:
    """Eval mode, but BN normalises by each batch's statistics and keeps its running ones."""
    modes = {module: module.training for module in model.modules()}
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [{k: v.clone() for k, v in m.state_dict().items()} for m in norms]
    model.train(False)
    for norm in norms:
        norm.train()
    try:
        yield
    finally:
        for norm, state in zip(norms, saved, strict=True):
            norm.load_state_dict(state)
        for module, mode in modes.items():
            module.training = mode


class HeldOutObjective:
    """A backbone's objective on the validation images' fixed views (labels unread).

    `batch_size` is the measure's batch over all processes, which sets SimCLR's chance.
    """

    def __init__(self, loader: Loader, hw: Hardware, batch_size: int):
        self.loader, self.hw, self.batch_size = loader, hw, batch_size

    @property
    def chance(self) -> float:
        return simclr_chance(self.batch_size)

    @torch.no_grad()
    def measure(self, model: nn.Module, forward: Forward) -> dict[str, float]:
        """`forward(batch)` -> (loss, accuracy) of `model` on each batch, averaged over images."""
        devices = [self.hw.device] if self.hw.device.type == "cuda" else []
        with batch_statistics(model), torch.random.fork_rng(devices=devices):
            torch.manual_seed(VIEWS_SEED)
            self.loader.set_epoch(0)
            loss, acc = mean_objective(self.loader, forward, self.hw)
        return {"val_ssl_loss": loss, "val_ssl_acc": acc}


def heldout_objective(
    images: np.ndarray, validation: np.ndarray, context: LoaderContext, hw: Hardware
) -> HeldOutObjective | None:
    """The measure over the validation split at the context's batch size (at most the split's
    size per process), or None where there is no validation split."""
    if not len(validation):
        return None
    batch = min(context.batch_size, len(validation) // context.num_shards)
    views = dataclasses.replace(context, batch_size=max(batch, 1), seed=VIEWS_SEED)
    labels_unread = np.zeros(len(images), dtype=np.int64)
    loader = make_loader(
        images,
        labels_unread,
        validation,
        "simclr",
        views,
        name="validation (label-free measure)",
        shuffle=False,
        drop_last=True,
    )
    return HeldOutObjective(loader, hw, views.batch_size * context.num_shards)
