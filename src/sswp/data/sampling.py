"""Which positions of a split each shard reads in each epoch, the same for every backend.

The loaders used to be torch DataLoaders whose RandomSampler drew from one generator seeded with
`seed`. Per epoch such a loader draws one int64 (the base seed of worker processes), one
permutation (the order) and a second permutation (its sampler computes a trailing, empty slice of
one once the epoch is exhausted). `EpochPlan` replays exactly those draws, so the torch backend
reads the images in the same order as before, bit for bit, while any epoch can be asked for by
number (a resumed run) and cut into shards. The DALI backend follows the same plan, so both
backends read the same images in the same order.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Epoch:
    """One shard's share of one epoch."""

    number: int
    seed: int  # the epoch's augmentation seed (torch worker base seed, DALI pipeline seed)
    state: torch.Tensor  # the generator state at the epoch's start, for a DataLoader to draw from
    batches: tuple[np.ndarray, ...]  # positions into the split, one array per batch


class EpochPlan:
    """Seeded per-epoch orders of `count` positions, cut into `num_shards` equal disjoint shards.

    Each shard takes every `num_shards`-th position of the epoch's order, after dropping the
    last `count % num_shards` positions so that every shard gets the same number of batches
    (data-parallel ranks must step together). With one shard nothing is dropped.
    """

    def __init__(
        self,
        count: int,
        batch_size: int,
        *,
        shuffle: bool,
        drop_last: bool,
        seed: int,
        shard_id: int = 0,
        num_shards: int = 1,
    ) -> None:
        if num_shards < 1 or not 0 <= shard_id < num_shards:
            raise ValueError(f"need 0 <= shard_id < num_shards, got {shard_id} of {num_shards}")
        self.count, self.batch_size = count, batch_size
        self.shuffle, self.drop_last, self.seed = shuffle, drop_last, seed
        self.shard_id, self.num_shards = shard_id, num_shards
        self.shard_size = count // num_shards
        self._generator = torch.Generator()
        self._next = self._restart()

    def __len__(self) -> int:
        """Batches per epoch in each shard."""
        if self.drop_last:
            return self.shard_size // self.batch_size
        return math.ceil(self.shard_size / self.batch_size)

    def epoch(self, number: int) -> Epoch:
        """The draws of epoch `number` (0-based); any order of requests gives the same answer."""
        if number < self._next:
            self._next = self._restart()
        while self._next < number:
            self._draw()
        state = self._generator.get_state()
        seed, order = self._draw()
        shard = order[: self.shard_size * self.num_shards][self.shard_id :: self.num_shards]
        stop = len(self) * self.batch_size
        batches = tuple(shard[i : i + self.batch_size] for i in range(0, stop, self.batch_size))
        return Epoch(number, seed, state, batches)

    def _restart(self) -> int:
        self._generator.manual_seed(self.seed)
        return 0

    def _draw(self) -> tuple[int, np.ndarray]:
        seed = int(torch.empty((), dtype=torch.int64).random_(generator=self._generator))
        if self.shuffle:
            order = torch.randperm(self.count, generator=self._generator).numpy()
            torch.randperm(self.count, generator=self._generator)
        else:
            order = np.arange(self.count)
        self._next += 1
        return seed, order.astype(np.int64)


class EpochLoader:
    """What every backend shares: `len()`, and `set_epoch` choosing what `iter()` reads.

    Subclasses set `plan` and turn one `Epoch` into batches in `_batches`.
    """

    plan: EpochPlan
    epoch: int = 0

    def __len__(self) -> int:
        return len(self.plan)

    def set_epoch(self, epoch: int) -> None:
        """Make the next `iter()` read epoch `epoch` (0-based), e.g. when resuming."""
        self.epoch = epoch

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        epoch = self.plan.epoch(self.epoch)
        self.epoch += 1
        return self._batches(epoch)

    def _batches(self, epoch: Epoch) -> Iterator[tuple[torch.Tensor, ...]]:
        raise NotImplementedError
