"""Search phases (warm-up, search, prune, stabilise) and the progressive freezing schedule."""

from __future__ import annotations

from dataclasses import dataclass

from sswp.config.params import SearchParams
from sswp.errors import SswpError


@dataclass(frozen=True)
class SearchSchedule:
    warmup: int
    search: int
    prune: int
    stabilise: int
    freeze_epochs: tuple[tuple[int, int], ...]  # (epoch, cell) in freezing order
    arch_start: int  # first epoch with arch steps and skip/pool drops

    def warm(self, epoch: int) -> bool:
        """Still warming up: no arch steps, no skip/pool drops, alphas untouched."""
        return epoch < self.arch_start

    @property
    def epochs(self) -> int:
        return self.warmup + self.search + self.prune + self.stabilise

    @property
    def prune_start(self) -> int:
        return self.warmup + self.search

    @property
    def eval_start(self) -> int:
        """First epoch whose end is evaluated for selection: pruning done, or warm-up done."""
        if self.prune:
            return self.prune_start + self.prune - 1
        return self.warmup

    def phase(self, epoch: int) -> str:
        if epoch < self.warmup:
            return "warmup"
        if epoch < self.prune_start:
            return "search"
        if epoch < self.prune_start + self.prune:
            return "prune"
        return "stabilise"

    def cells_to_freeze(self, epoch: int) -> list[int]:
        return [cell for e, cell in self.freeze_epochs if e == epoch]


def build_schedule(params: SearchParams) -> SearchSchedule:
    """Epoch counts from the phase ratios; the minimum warm-up is taken from the search phase.

    Cells freeze at evenly spaced epochs over the prune phase, first at its first epoch,
    last at its last epoch, so every cell is frozen when the prune phase ends. Arch steps
    start `arch_delay_epochs` after the warm-up (the original's start one epoch late).
    """
    ratios = params.phases
    total = params.epochs
    warmup = round(ratios.warmup * total)
    prune = round(ratios.prune * total)
    stabilise = round(ratios.stabilise * total)
    warmup_floor = max(warmup, params.min_warmup_epochs)
    search = total - warmup_floor - prune - stabilise
    if search < 0:
        raise SswpError(
            f"search.epochs = {total} is too few for a warm-up of {warmup_floor}, a prune phase "
            f"of {prune} and a stabilise phase of {stabilise} epochs; raise search.epochs or "
            "lower search.min_warmup_epochs / search.phases"
        )
    order = list(range(params.layers))
    if params.prune_order == "backward":
        order.reverse()
    freeze: list[tuple[int, int]] = []
    if prune:
        start = warmup_floor + search
        last = params.layers - 1
        for k, cell in enumerate(order):
            offset = (k * (prune - 1)) // last if last else 0
            freeze.append((start + offset, cell))
    return SearchSchedule(
        warmup_floor,
        search,
        prune,
        stabilise,
        tuple(freeze),
        arch_start=warmup_floor + params.arch_delay_epochs,
    )
