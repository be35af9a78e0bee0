"""The proxy-free supernet: every cell has its own architecture logits (14 edges x 7 ops).

BatchNorm in the cells is non-affine, so that a child network whose BN starts at
gamma=1, beta=0 computes exactly what the supernet restricted to its genotype computes.
The stem's BN is affine if `stem_affine` (as in the original); the child copies its
learned gamma/beta along with its statistics, so the equality holds either way.
"""

from __future__ import annotations

import torch
from torch import nn

from sswp.nas.cpu_fast_paths import Activation, concat_channels, run_op
from sswp.nas.genotype import (
    EDGES_PER_CELL,
    STEPS,
    CellGenotype,
    Genotype,
    derive_genotype,
    edge_index,
)
from sswp.nas.genotype import reduction_cells as reduction_indices
from sswp.nas.mixed_edge import MixedEdge, alpha_gradient, rescale_pair
from sswp.nas.ops import (
    CANDIDATE_OPS,
    NON_PARAMETRIC,
    POOL_INDICES,
    SKIP_INDEX,
    FactorizedReduce,
    ReLUConvBN,
)

STEM_MULTIPLIER = 3
PROJECTION_DIM = 128
STEMS = ("cifar", "imagenet")


class CifarStem(nn.Sequential):
    """One 3x3 conv + BN at full resolution; both inputs of the first cell are its output.

    A Sequential, so that saved supernets keep their `stem.0` / `stem.1` parameter names.
    """

    def __init__(self, c_out: int, affine: bool):
        super().__init__(
            nn.Conv2d(3, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out, affine=affine)
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s = super().forward(x)
        return s, s


class ImageNetStem(nn.Module):
    """Three stride-2 3x3 convs (overall stride 8), as in DARTS' NetworkImageNet.

    The first cell gets s0 = stem0(x) (stride 4) and s1 = stem1(s0) (stride 8), hence its
    preprocess0 is a FactorizedReduce.
    """

    def __init__(self, c: int, affine: bool):
        super().__init__()
        self.stem0 = nn.Sequential(
            nn.Conv2d(3, c // 2, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(c // 2, affine=affine),
            nn.ReLU(inplace=False),
            nn.Conv2d(c // 2, c, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(c, affine=affine),
        )
        self.stem1 = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(c, c, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(c, affine=affine),
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s0 = self.stem0(x)
        return s0, self.stem1(s0)


def make_stem(stem: str, channels: int, affine: bool) -> nn.Module:
    """The stem for `channels` base channels; its forward returns the first cell's (s0, s1)."""
    if stem == "cifar":
        return CifarStem(STEM_MULTIPLIER * channels, affine)
    if stem == "imagenet":
        return ImageNetStem(channels, affine)
    raise ValueError(f"unknown stem {stem!r}, expected one of {STEMS}")


def cell_channels(
    layers: int, channels: int, stem: str = "cifar"
) -> list[tuple[int, int, int, bool, bool]]:
    """(c_prev_prev, c_prev, c, reduction, reduction_prev) per cell, as in DARTS.

    The cifar stem outputs 3C channels at full resolution; the imagenet stem outputs C
    channels for both inputs, s0 at twice s1's resolution (so the first cell reduces s0).
    """
    if stem not in STEMS:
        raise ValueError(f"unknown stem {stem!r}, expected one of {STEMS}")
    imagenet = stem == "imagenet"
    c_pp = c_p = channels if imagenet else STEM_MULTIPLIER * channels
    c = channels
    reductions = set(reduction_indices(layers))
    plan = []
    reduction_prev = imagenet
    for i in range(layers):
        reduction = i in reductions
        if reduction:
            c *= 2
        plan.append((c_pp, c_p, c, reduction, reduction_prev))
        c_pp, c_p, reduction_prev = c_p, STEPS * c, reduction
    return plan


def search_space(layers: int, channels: int, stem: str = "cifar") -> dict[str, object]:
    """What a saved supernet must match to be reused: layers, channels, stem and the op list."""
    return {"layers": layers, "channels": channels, "ops": list(CANDIDATE_OPS), "stem": stem}


class SearchCell(nn.Module):
    def __init__(
        self, c_pp: int, c_p: int, c: int, reduction: bool, reduction_prev: bool, mode: str
    ):
        super().__init__()
        self.reduction = reduction
        self.preprocess0 = (
            FactorizedReduce(c_pp, c, affine=False)
            if reduction_prev
            else ReLUConvBN(c_pp, c, 1, 1, 0, affine=False)
        )
        self.preprocess1 = ReLUConvBN(c_p, c, 1, 1, 0, affine=False)
        self.edges = nn.ModuleList(
            MixedEdge(c, 2 if reduction and src < 2 else 1, mode)
            for node in range(STEPS)
            for src in range(2 + node)
        )
        self.alpha = nn.Parameter(torch.zeros(EDGES_PER_CELL, len(CANDIDATE_OPS)))
        self.frozen = False
        self.enabled = [True] * EDGES_PER_CELL

    def forward(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        first = Activation(s0)
        return self.run(first, first if s1 is s0 else Activation(s1))

    def run(self, s0: Activation, s1: Activation) -> torch.Tensor:
        """The cell on its inputs, each state's ReLU shared by all the ops that read it."""
        states = [
            Activation(run_op(self.preprocess0, s0)),
            Activation(run_op(self.preprocess1, s1)),
        ]
        for node in range(STEPS):
            inputs = [
                self.edges[edge_index(node, src)](h.x, h)
                for src, h in enumerate(states)
                if self.enabled[edge_index(node, src)]
            ]
            states.append(Activation(sum(inputs[1:], inputs[0])))
        return concat_channels([h.x for h in states[2:]])

    def argmax_ops(self) -> list[int]:
        return self.alpha.detach().argmax(dim=1).tolist()

    def freeze(self, keep: CellGenotype | None = None) -> None:
        """Fix the cell's path; the alphas stop updating.

        Without `keep`, every edge runs its argmax op (the original). With the cell's
        derived genotype, only its 8 edges run, on its ops: the frozen cell is then
        exactly the child's cell, so later epochs train the weights that are preserved.
        """
        if keep is None:
            for edge, op in zip(self.edges, self.argmax_ops(), strict=True):
                edge.set_path(op)
        else:
            self.enabled = [False] * EDGES_PER_CELL
            for k, (op, src) in enumerate(keep.edges):
                e = edge_index(k // 2, src)
                self.enabled[e] = True
                self.edges[e].set_path(CANDIDATE_OPS.index(op))
        self.frozen = True
        self.alpha.requires_grad_(False)


class SuperNet(nn.Module):
    def __init__(
        self,
        layers: int,
        channels: int,
        gate_mode: str = "two",
        stem: str = "cifar",
        stem_affine: bool = False,
    ):
        super().__init__()
        self.layers, self.channels, self.gate_mode = layers, channels, gate_mode
        self.stem = make_stem(stem, channels, affine=stem_affine)
        plan = cell_channels(layers, channels, stem)
        self.cells = nn.ModuleList(SearchCell(*cell, mode=gate_mode) for cell in plan)
        self.pool = nn.AdaptiveAvgPool2d(1)
        feature_dim = STEPS * plan[-1][2]
        self.feature_dim = feature_dim
        self.head = nn.Sequential(
            nn.Linear(feature_dim, feature_dim), nn.ReLU(), nn.Linear(feature_dim, PROJECTION_DIM)
        )

    def features(self, x: torch.Tensor) -> torch.Tensor:
        s0, s1 = self.stem(x)
        # A cell's output is read by the next two cells: one shared ReLU serves both.
        a0 = Activation(s0)
        a1 = a0 if s1 is s0 else Activation(s1)
        for cell in self.cells:
            a0, a1 = a1, Activation(cell.run(a0, a1))
        return self.pool(a1.x).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    # ----- parameters -----
    def alphas(self) -> list[nn.Parameter]:
        return [cell.alpha for cell in self.cells]

    def weight_parameters(self) -> list[nn.Parameter]:
        alpha_ids = {id(a) for a in self.alphas()}
        return [p for p in self.parameters() if id(p) not in alpha_ids]

    def live_cells(self) -> list[SearchCell]:
        return [cell for cell in self.cells if not cell.frozen]

    # ----- paths -----
    def sample_paths(
        self, generator: torch.Generator, *, drop_skip: float = 0.0, drop_pool: float = 0.0
    ) -> None:
        """Sample a path on every edge of every unfrozen cell, all edges at once.

        `two`: 2 distinct ops from softmax(alpha), one made active with probabilities
        softmax over the pair. `full_v2`: one op. A sampled skip (pool) is resampled
        among parametric ops with probability drop_skip (drop_pool), pools first.
        """
        cells = self.live_cells()
        if not cells:
            return
        logits = torch.cat([cell.alpha.detach() for cell in cells]).float().cpu()
        probs = torch.softmax(logits, dim=1)
        draws = 2 if self.gate_mode == "two" else 1
        picks = torch.multinomial(probs, draws, replacement=False, generator=generator)
        parametric_probs = probs.clone()
        parametric_probs[:, list(NON_PARAMETRIC)] = 0
        for drop, ops in ((drop_pool, POOL_INDICES), (drop_skip, (SKIP_INDEX,))):
            hit = torch.isin(picks, torch.tensor(ops)).any(dim=1)
            redraw = hit & (torch.rand(len(picks), generator=generator) < drop)
            if drop > 0 and redraw.any():
                picks[redraw] = torch.multinomial(
                    parametric_probs[redraw], draws, replacement=False, generator=generator
                )
        if self.gate_mode == "two":
            pair_p = torch.softmax(logits.gather(1, picks), dim=1)
            second = torch.rand(len(picks), generator=generator) < pair_p[:, 1]
            active = torch.where(second, picks[:, 1], picks[:, 0]).tolist()
            inactive = torch.where(second, picks[:, 0], picks[:, 1]).tolist()
            others = [(o,) for o in inactive]
        else:
            active = picks[:, 0].tolist()
            others = [tuple(k for k in range(len(CANDIDATE_OPS)) if k != a) for a in active]
        edges = [edge for cell in cells for edge in cell.edges]
        for edge, a, rest in zip(edges, active, others, strict=True):
            edge.set_path(a, rest)

    def active_ops(self) -> torch.Tensor:
        """(cells, 14): the op each edge runs now, -1 where a frozen cell turned the edge off."""
        return torch.tensor(
            [
                [
                    edge.active if on else -1
                    for edge, on in zip(cell.edges, cell.enabled, strict=True)
                ]
                for cell in self.cells
            ]
        )

    def use_argmax_paths(self) -> None:
        """The path used to evaluate the supernet: every edge on its most likely op."""
        for cell in self.live_cells():
            for edge, op in zip(cell.edges, cell.argmax_ops(), strict=True):
                edge.set_path(op)

    def restrict_to(self, genotype: Genotype) -> None:
        """Turn off edges outside the genotype and fix the kept ones (for inheritance checks)."""
        if genotype.layers != self.layers:
            raise ValueError(f"genotype has {genotype.layers} cells, supernet {self.layers}")
        for cell, cell_geno in zip(self.cells, genotype.cells, strict=True):
            cell.freeze(cell_geno)

    def freeze_cell(self, index: int, edges: str, max_skips: int, max_pools: int) -> None:
        """Freeze one cell: `edges` is "all" (every edge on its argmax op) or "genotype"."""
        keep = self.derive(max_skips, max_pools).cells[index] if edges == "genotype" else None
        self.cells[index].freeze(keep)

    def derive(self, max_skips: int, max_pools: int) -> Genotype:
        return derive_genotype(self.alphas(), max_skips, max_pools)

    # ----- arch step -----
    def open_gates(self) -> None:
        device = self.cells[0].alpha.device
        for cell in self.live_cells():
            for edge in cell.edges:
                edge.open_gates(device)

    def set_alpha_gradients(self) -> None:
        """Turn gate gradients into alpha gradients, a cell at a time (frozen cells keep None)."""
        for cell in self.live_cells():
            grads = [
                edge.gates.grad
                if edge.gates is not None and edge.gates.grad is not None
                else torch.zeros_like(cell.alpha[e])
                for e, edge in enumerate(cell.edges)
            ]
            cell.alpha.grad = alpha_gradient(cell.alpha, torch.stack(grads), self._involved(cell))

    def rescale_alphas(self, before: list[torch.Tensor]) -> None:
        """After an arch step in `two` mode, keep each sampled pair's log-sum-exp unchanged."""
        if self.gate_mode != "two":
            return
        for cell, old in zip(self.cells, before, strict=True):
            if not cell.frozen:
                rescale_pair(cell.alpha.data, old, self._involved(cell))

    def close_gates(self) -> None:
        for cell in self.cells:
            for edge in cell.edges:
                edge.gates = None

    @staticmethod
    def _involved(cell: SearchCell) -> torch.Tensor:
        """The sampled ops of each of the cell's edges, active first: one row per edge."""
        rows = [[edge.active, *edge.inactive] for edge in cell.edges]
        return torch.tensor(rows, device=cell.alpha.device)
