"""The 7 DARTS candidate ops, shared by the supernet and the child network.

Sharing the modules (with `affine` switched) is what makes weight inheritance a plain
state-dict copy: the child op has the same parameter and buffer names as the supernet op.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

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


class Activation:
    """A tensor and its ReLU, computed at most once however many ops read it.

    In the supernet one state feeds several edges and two cells' preprocessing, and
    every op but skip and the pools starts with a ReLU of it: sharing that ReLU saves
    a full-size pass forward and backward per extra reader.
    """

    def __init__(self, x: torch.Tensor):
        self.x = x
        self._relu: torch.Tensor | None = None

    def relu(self) -> torch.Tensor:
        stale = self._relu is None or (
            torch.is_grad_enabled() and self.x.requires_grad and not self._relu.requires_grad
        )
        if stale:  # (a ReLU first taken under no_grad has no graph for a later reader)
            self._relu = nn.functional.relu(self.x)
        return self._relu


class ReLUFirst(nn.Module):
    """An op that starts with a ReLU: `body` is the rest, for callers that share the ReLU."""

    def body(self, activated: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(nn.functional.relu(x))


def run_op(op: nn.Module, state: Activation) -> torch.Tensor:
    """`op(state.x)`, taking the ReLU of an op that starts with one from `state`."""
    return op.body(state.relu()) if isinstance(op, ReLUFirst) else op(state.x)


# Below this many channels, torch's channels_last batch norm on CPU (one vector of
# channels per pixel) is slower than its contiguous kernel: about 0.7x at 8 channels and
# 2 threads, measured on an AVX-512 CPU, copies included.
SMALL_CHANNELS = 16


class BatchNorm2d(nn.BatchNorm2d):
    """nn.BatchNorm2d that normalises a few-channel channels_last CPU batch in contiguous
    layout (same parameters, buffers and names; the result is handed back channels_last)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self._contiguous_pays(x):
            return super().forward(x)
        assert self.num_batches_tracked is not None
        self.num_batches_tracked.add_(1)
        momentum = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        return _ContiguousBatchNorm.apply(x, self.weight, self.bias, self, momentum)

    def _contiguous_pays(self, x: torch.Tensor) -> bool:
        return (
            self.training
            and self.track_running_stats
            and x.device.type == "cpu"
            and x.dtype == torch.float32
            and x.shape[1] < SMALL_CHANNELS
            and _memory_format(x) == torch.channels_last
            and not torch.is_autocast_enabled("cpu")
        )


class _ContiguousBatchNorm(torch.autograd.Function):
    """Training batch norm computed on a contiguous copy; gradients come back channels_last."""

    @staticmethod
    def forward(ctx, x, weight, bias, bn: nn.BatchNorm2d, momentum: float):  # type: ignore[override]
        flat = x.contiguous()
        out, mean, invstd = torch.ops.aten.native_batch_norm(
            flat, weight, bias, bn.running_mean, bn.running_var, True, momentum, bn.eps
        )
        ctx.eps = bn.eps
        ctx.save_for_backward(flat, weight, mean, invstd)
        return out.contiguous(memory_format=torch.channels_last)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):  # type: ignore[override]
        flat, weight, mean, invstd = ctx.saved_tensors
        mask = [ctx.needs_input_grad[0], ctx.needs_input_grad[1], ctx.needs_input_grad[2]]
        grad_x, grad_w, grad_b = torch.ops.aten.native_batch_norm_backward(
            grad_out.contiguous(), flat, weight, None, None, mean, invstd, True, ctx.eps, mask
        )
        if grad_x is not None:
            grad_x = grad_x.contiguous(memory_format=torch.channels_last)
        return grad_x, grad_w, grad_b, None, None


class ReLUConvBN(ReLUFirst, nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, affine: bool):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False),
            BatchNorm2d(c_out, affine=affine),
        )

    def body(self, activated: torch.Tensor) -> torch.Tensor:
        return self[2](self[1](activated))


class PhaseConv2d(nn.Conv2d):
    """A conv whose stride equals its dilation reads one phase of the input only.

    With "same" padding (dilation x (kernel - 1) / 2), the taps of output i sit at input
    rows stride x (i + j - kernel // 2): all on the phase-0 grid. So the conv equals an
    undilated stride-1 conv over `x[..., ::stride, ::stride]`, with the same products,
    and runs far faster on CPU, where the dilated strided backward is a slow path.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        sizes = zip(self.stride, self.dilation, self.padding, self.kernel_size, strict=True)
        square = self.stride[0] == self.stride[1] and self.padding_mode == "zeros"
        # Decided once: the shape of the conv never changes, and forward is a hot path.
        self.one_phase = square and all(s == d > 1 and 2 * p == d * (k - 1) for s, d, p, k in sizes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.one_phase:
            return super().forward(x)
        half = (self.kernel_size[0] // 2, self.kernel_size[1] // 2)
        (phase,) = _Phases.apply(x, self.stride[0], (0,))
        return nn.functional.conv2d(phase, self.weight, self.bias, 1, half, 1, self.groups)


def _memory_format(x: torch.Tensor) -> torch.memory_format:
    if x.is_contiguous() or not x.is_contiguous(memory_format=torch.channels_last):
        return torch.contiguous_format
    return torch.channels_last


class _Phases(torch.autograd.Function):
    """`x[..., o::step, o::step]` for each offset o, whose gradient keeps x's memory format.

    Slicing's own backward scatters into a contiguous tensor; against a channels_last
    input, the ReLU backward before it then mixes layouts and takes a slow path. All the
    phases' gradients go into one zeroed tensor.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, step: int, offsets: tuple[int, ...]):  # type: ignore[override]
        ctx.shape, ctx.step, ctx.offsets, ctx.format = x.shape, step, offsets, _memory_format(x)
        return tuple(
            x[:, :, o::step, o::step].contiguous(memory_format=ctx.format) for o in offsets
        )

    @staticmethod
    def backward(ctx, *grad_outs: torch.Tensor | None):  # type: ignore[override]
        step = ctx.step
        like = next(g for g in grad_outs if g is not None)
        grad = torch.empty(
            ctx.shape, dtype=like.dtype, device=like.device, memory_format=ctx.format
        ).zero_()
        for o, g in zip(ctx.offsets, grad_outs, strict=True):
            if g is not None:
                grad[:, :, o::step, o::step] = g
        return grad, None, None


class _ChannelConcat(torch.autograd.Function):
    """`torch.cat(xs, dim=1)` whose gradients come in each input's memory format.

    Cat's own backward hands out channel slices of the output gradient: strided in
    channels_last, and batch norm's backward on such a gradient takes a slow path.
    """

    @staticmethod
    def forward(ctx, *xs: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.sizes = [x.shape[1] for x in xs]
        ctx.formats = [_memory_format(x) for x in xs]
        return torch.cat(xs, dim=1)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):  # type: ignore[override]
        parts = grad_out.split(ctx.sizes, dim=1)
        return tuple(
            g.contiguous(memory_format=fmt) for g, fmt in zip(parts, ctx.formats, strict=True)
        )


def concat_channels(xs: list[torch.Tensor]) -> torch.Tensor:
    """Concatenate along channels, with gradients in the inputs' memory formats."""
    return _ChannelConcat.apply(*xs)


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
        if x.shape[-1] % 2 == 0 and x.shape[-2] % 2 == 0:
            # Even sizes: conv_1 reads the even phase, conv_2 the odd one (the pad is never
            # read), so both run as stride-1 convs on the phases, one scatter backward.
            even, odd = _Phases.apply(x, 2, (0, 1))
            halves = [
                nn.functional.conv2d(even, self.conv_1.weight),
                nn.functional.conv2d(odd, self.conv_2.weight),
            ]
            return self.bn(torch.cat(halves, dim=1))
        # The zero pad never reaches a sampled position for even sizes and keeps odd sizes aligned.
        shifted = nn.functional.pad(x[:, :, 1:, 1:], (0, 1, 0, 1))
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(shifted)], dim=1))


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
