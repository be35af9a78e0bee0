"""The 7 DARTS candidate ops, shared by the supernet and the child network.

Sharing the modules (with `affine` switched) is what makes weight inheritance a plain
state-dict copy: the child op has the same parameter and buffer names as the supernet op.
Their CPU speed-ups (cpu_fast_paths) keep those names and the results.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from sswp.nas.cpu_fast_paths import BatchNorm2d, PhaseConv2d, ReLUFirst, phases

CANDIDATE_OPS: tuple[str, ...] = (
    "skip_connect",
    "max_pool_3x3",
    "avg_pool_3x3",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
)
SKIP_INDEX = 0
POOL_INDICES = (1, 2)
POOL_NAMES = tuple(CANDIDATE_OPS[i] for i in POOL_INDICES)
NON_PARAMETRIC = (0, 1, 2)
PARAMETRIC = tuple(range(3, len(CANDIDATE_OPS)))
SHORT_NAMES = {
    "skip_connect": "skip",
    "max_pool_3x3": "max3",
    "avg_pool_3x3": "avg3",
    "sep_conv_3x3": "sep3",
    "sep_conv_5x5": "sep5",
    "dil_conv_3x3": "dil3",
    "dil_conv_5x5": "dil5",
}


class ReLUConvBN(ReLUFirst, nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, affine: bool):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False),
            BatchNorm2d(c_out, affine=affine),
        )

    def body(self, activated: torch.Tensor) -> torch.Tensor:
        return self[2](self[1](activated))


class DilConv(ReLUFirst, nn.Sequential):
    def __init__(self, c: int, kernel: int, stride: int, padding: int, dilation: int, affine: bool):
        super().__init__(
            nn.ReLU(inplace=False),
            PhaseConv2d(c, c, kernel, stride, padding, dilation=dilation, groups=c, bias=False),
            nn.Conv2d(c, c, 1, bias=False),
            BatchNorm2d(c, affine=affine),
        )

    def body(self, activated: torch.Tensor) -> torch.Tensor:
        return self[3](self[2](self[1](activated)))


class SepConv(ReLUFirst, nn.Sequential):
    def __init__(self, c: int, kernel: int, stride: int, padding: int, affine: bool):
        super().__init__(
            DilConv(c, kernel, stride, padding, 1, affine),
            DilConv(c, kernel, 1, padding, 1, affine),
        )

    def body(self, activated: torch.Tensor) -> torch.Tensor:
        return self[1](self[0].body(activated))


class Identity(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class FactorizedReduce(ReLUFirst):
    """Halve the resolution with two offset stride-2 1x1 convs (DARTS)."""

    def __init__(self, c_in: int, c_out: int, affine: bool):
        super().__init__()
        if c_out % 2:
            raise ValueError(f"FactorizedReduce needs an even channel count, got {c_out}")
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.bn = BatchNorm2d(c_out, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(self.relu(x))

    def body(self, x: torch.Tensor) -> torch.Tensor:
        """conv_1 samples the even rows and columns, conv_2 the odd ones (DARTS' input
        shifted by one, whose zero pad fills the last row and column of odd sizes).

        Each runs as a stride-1 conv on its phase: a stride-2 1x1 conv on channels_last
        input corrupts the heap in oneDNN's AVX2 backward (docs/known-issues.md).
        """
        even, odd = phases(x, 2, (0, 1))
        rows, cols = even.shape[-2] - odd.shape[-2], even.shape[-1] - odd.shape[-1]
        if rows or cols:
            odd = nn.functional.pad(odd, (0, cols, 0, rows))
        halves = [
            nn.functional.conv2d(even, self.conv_1.weight),
            nn.functional.conv2d(odd, self.conv_2.weight),
        ]
        return self.bn(torch.cat(halves, dim=1))


def _pool(kind: str, c: int, stride: int, affine: bool) -> nn.Module:
    pool: nn.Module
    if kind == "max":
        pool = nn.MaxPool2d(3, stride=stride, padding=1)
    else:
        pool = nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)
    return nn.Sequential(pool, BatchNorm2d(c, affine=affine))


OpFactory = Callable[[int, int, bool], nn.Module]

OPS: dict[str, OpFactory] = {
    "skip_connect": lambda c, s, a: Identity() if s == 1 else FactorizedReduce(c, c, a),
    "max_pool_3x3": lambda c, s, a: _pool("max", c, s, a),
    "avg_pool_3x3": lambda c, s, a: _pool("avg", c, s, a),
    "sep_conv_3x3": lambda c, s, a: SepConv(c, 3, s, 1, a),
    "sep_conv_5x5": lambda c, s, a: SepConv(c, 5, s, 2, a),
    "dil_conv_3x3": lambda c, s, a: DilConv(c, 3, s, 2, 2, a),
    "dil_conv_5x5": lambda c, s, a: DilConv(c, 5, s, 4, 2, a),
}


def make_op(
    name: str, channels: int, stride: int, affine: bool, pool_affine: bool | None = None
) -> nn.Module:
    """The op `name`; the BN after a pool is affine if `pool_affine` (default: `affine`)."""
    if name in POOL_NAMES:
        return OPS[name](channels, stride, affine if pool_affine is None else pool_affine)
    return OPS[name](channels, stride, affine)
