"""The discrete network of a genotype, and weight inheritance from the supernet.

The child keeps the supernet's stem, cells and channels; only the kept edges exist.
Its module names mirror the supernet's (`cells.i.ops.k` <- `cells.i.edges.e.ops.op`),
so inheritance is a prefix-mapped state-dict copy.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from sswp.nas.genotype import STEPS, CellGenotype, Genotype, edge_index
from sswp.nas.ops import CANDIDATE_OPS, FactorizedReduce, Identity, ReLUConvBN, make_op
from sswp.nas.supernet import cell_channels, make_stem


def drop_path(x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Zero whole samples with probability 1 - keep, rescaling the rest (DARTS)."""
    mask = torch.empty(x.size(0), 1, 1, 1, device=x.device, dtype=x.dtype).bernoulli_(keep)
    return x / keep * mask


@dataclass(frozen=True)
class BatchNormAffinity:
    """Which of the child's BatchNorms learn gamma/beta.

    `cells`: every BN inside the cells (the original pre-trains its two-stage baseline with
    none). `pools`: the BN after a pool, non-affine in the original child; it only applies
    when `cells` is true. The stem's BN is always affine.
    """

    cells: bool = True
    pools: bool = True


class ChildCell(nn.Module):
    def __init__(
        self,
        genotype: CellGenotype,
        c_pp: int,
        c_p: int,
        c: int,
        reduction_prev: bool,
        bn: BatchNormAffinity,
    ):
        super().__init__()
        self.reduction = genotype.reduction
        affine, pools = bn.cells, bn.cells and bn.pools
        self.preprocess0 = (
            FactorizedReduce(c_pp, c, affine=affine)
            if reduction_prev
            else ReLUConvBN(c_pp, c, 1, 1, 0, affine=affine)
        )
        self.preprocess1 = ReLUConvBN(c_p, c, 1, 1, 0, affine=affine)
        self.sources = [src for _, src in genotype.edges]
        self.ops = nn.ModuleList(
            make_op(op, c, 2 if self.reduction and src < 2 else 1, affine, pool_affine=pools)
            for op, src in genotype.edges
        )

    def forward(
        self, s0: torch.Tensor, s1: torch.Tensor, keep: torch.Tensor | None
    ) -> torch.Tensor:
        """`keep`: drop path's keep probability, None without drop path."""
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for node in range(STEPS):
            total = None
            for k in (2 * node, 2 * node + 1):
                op = self.ops[k]
                h = op(states[self.sources[k]])
                if keep is not None and self.training and not isinstance(op, Identity):
                    h = drop_path(h, keep)
                total = h if total is None else total + h
            states.append(total)
        return torch.cat(states[2:], dim=1)


class AuxPool(nn.Module):
    """DARTS' 5x5 average pool (no padding), falling back to an adaptive 2x2 pool on maps too
    small to give 2x2 with it.

    At the real sizes (CIFAR 8x8 stride 3, ImageNet 7x7 stride 2) the fixed pool gives 2x2 and
    is used unchanged; the fallback lets tiny test images (1-6 px maps) reach the 2x2 conv.
    """

    def __init__(self, stride: int, kernel: int = 5):
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if min(x.shape[-2:]) < self.kernel + self.stride:
            return F.adaptive_avg_pool2d(x, 2)
        return F.avg_pool2d(x, self.kernel, self.stride, count_include_pad=False)


class AuxiliaryHead(nn.Module):
    """Auxiliary classifier on the maps after the second reduction (DARTS).

    CIFAR (8x8 maps) pools with stride 3, ImageNet (7x7 maps) with stride 2; both give 2x2,
    which the 2x2 conv turns into one 768-vector. Unlike DARTS' released ImageNet head, the
    BN after that conv is kept for both, so the heads differ only in the pool stride.
    """

    def __init__(self, c: int, num_classes: int, pool_stride: int):
        super().__init__()
        self.features = nn.Sequential(
            nn.ReLU(inplace=False),
            AuxPool(pool_stride),
            nn.Conv2d(c, 128, 1, bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(inplace=False),
            nn.Conv2d(128, 768, 2, bias=False),
            nn.BatchNorm2d(768),
            nn.ReLU(inplace=False),
            nn.AdaptiveAvgPool2d(1),
        )
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))


AUX_POOL_STRIDE = {"cifar": 3, "imagenet": 2}


class ChildNetwork(nn.Module):
    def __init__(
        self,
        genotype: Genotype,
        channels: int,
        num_classes: int,
        auxiliary: bool,
        stem: str = "cifar",
        bn: BatchNormAffinity = BatchNormAffinity(),
    ):
        super().__init__()
        self.genotype = genotype
        # The keep probability is a tensor, not a float attribute: a compiled network then
        # reads the value drop_path_prob ramps to each epoch instead of recompiling for it.
        self.register_buffer("drop_keep", torch.ones(()), persistent=False)
        # A bool beside the float: the compiler guards on what forward reads, and a bool
        # changes once, where a test of the float would recompile at every new value.
        self.drop_path_active, self._drop_path_prob = False, 0.0
        self.stem = make_stem(stem, channels, affine=True)
        plan = cell_channels(genotype.layers, channels, stem)
        self.cells = nn.ModuleList(
            ChildCell(cell_geno, c_pp, c_p, c, reduction_prev, bn)
            for cell_geno, (c_pp, c_p, c, _, reduction_prev) in zip(
                genotype.cells, plan, strict=True
            )
        )
        self.aux_index = 2 * genotype.layers // 3
        self.auxiliary = (
            AuxiliaryHead(STEPS * plan[self.aux_index][2], num_classes, AUX_POOL_STRIDE[stem])
            if auxiliary
            else None
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(STEPS * plan[-1][2], num_classes)

    @property
    def drop_path_prob(self) -> float:
        return self._drop_path_prob

    @drop_path_prob.setter
    def drop_path_prob(self, value: float) -> None:
        self.drop_path_active, self._drop_path_prob = value > 0.0, value
        with torch.no_grad():
            self.drop_keep.fill_(1.0 - value)

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        s0, s1 = self.stem(x)
        aux_input = None
        keep = self.drop_keep if self.drop_path_active else None
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, keep)
            if i == self.aux_index:
                aux_input = s1
        return self.pool(s1).flatten(1), aux_input

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        pooled, aux_input = self.features(x)
        aux_logits = None
        if self.auxiliary is not None and self.training and aux_input is not None:
            aux_logits = self.auxiliary(aux_input)
        return self.classifier(pooled), aux_logits


def inheritance_map(genotype: Genotype) -> dict[str, str]:
    """Child module prefix -> supernet module prefix, for every inherited module."""
    mapping = {"stem.": "stem."}
    for i, cell in enumerate(genotype.cells):
        for part in ("preprocess0", "preprocess1"):
            mapping[f"cells.{i}.{part}."] = f"cells.{i}.{part}."
        for k, (op, src) in enumerate(cell.edges):
            e = edge_index(k // 2, src)
            mapping[f"cells.{i}.ops.{k}."] = f"cells.{i}.edges.{e}.ops.{CANDIDATE_OPS.index(op)}."
    return mapping


def inherit_weights(child: ChildNetwork, supernet_state: dict[str, torch.Tensor]) -> int:
    """Copy stem, preprocess, op weights and BN statistics; heads stay new. Returns count.

    Supernet BN in the cells has no affine parameters, so the child's gamma=1, beta=0 are
    kept there; an affine supernet stem (search.stem_affine) passes on its learned gamma/beta.
    """
    mapping = inheritance_map(child.genotype)
    child_state = child.state_dict()
    copied = 0
    missing = []
    for name in child_state:
        prefix = next((p for p in mapping if name.startswith(p)), None)
        if prefix is None:
            continue
        source = mapping[prefix] + name[len(prefix) :]
        if source in supernet_state:
            if supernet_state[source].shape != child_state[name].shape:
                raise ValueError(f"shape mismatch for {name}: supernet {source} differs")
            child_state[name] = supernet_state[source].clone()
            copied += 1
        elif not _bn_affine_param(name, child_state):
            missing.append(source)
    if missing:
        raise MissingWeights(missing)
    child.load_state_dict(child_state)
    return copied


class MissingWeights(ValueError):
    """Supernet tensors the child needs are absent: preserving would start partly at random."""

    def __init__(self, keys: list[str]):
        self.keys = keys
        super().__init__(f"{len(keys)} tensors missing: {', '.join(keys)}")


def _bn_affine_param(name: str, child_state: dict[str, torch.Tensor]) -> bool:
    """gamma/beta of a child BN: a non-affine supernet has none (the child keeps 1 and 0).

    A BN absent from the supernet is still found: its running statistics are missing.
    """
    module, _, part = name.rpartition(".")
    return part in ("weight", "bias") and f"{module}.running_mean" in child_state
