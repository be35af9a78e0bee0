"""CPU speed-ups of the candidate ops, all behind one switch (`use_fast_paths`).

Each computes what the plain torch code computes (tests/nas/test_fast_paths.py checks the
outputs, gradients and parameter names), only faster on CPU with channels_last tensors:
a ReLU shared by every op that reads one state, batch norm in contiguous layout for few
channels, convs that read one phase of their input, and gradients that keep their memory
format. With the switch off, every one of them falls back to the plain torch call.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

_enabled = True


def fast_paths_enabled() -> bool:
    return _enabled


@contextmanager
def use_fast_paths(enabled: bool) -> Iterator[None]:
    """Turn every CPU fast path on or off within the block (on by default)."""
    global _enabled
    before, _enabled = _enabled, enabled
    try:
        yield
    finally:
        _enabled = before


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
    """`op(state.x)`; with the fast paths, an op that starts with a ReLU takes `state`'s."""
    if _enabled and isinstance(op, ReLUFirst):
        return op.body(state.relu())
    return op(state.x)


def memory_format(x: torch.Tensor) -> torch.memory_format:
    if x.is_contiguous() or not x.is_contiguous(memory_format=torch.channels_last):
        return torch.contiguous_format
    return torch.channels_last


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
            _enabled
            and self.training
            and self.track_running_stats
            and x.device.type == "cpu"
            and x.dtype == torch.float32
            and x.shape[1] < SMALL_CHANNELS
            and memory_format(x) == torch.channels_last
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
        if not (_enabled and self.one_phase):
            return super().forward(x)
        half = (self.kernel_size[0] // 2, self.kernel_size[1] // 2)
        (phase,) = phases(x, self.stride[0], (0,))
        return nn.functional.conv2d(phase, self.weight, self.bias, 1, half, 1, self.groups)


def phases(x: torch.Tensor, step: int, offsets: tuple[int, ...]) -> tuple[torch.Tensor, ...]:
    """`x[..., o::step, o::step]` for each offset o; with the fast paths, as dense tensors
    whose gradient keeps x's memory format."""
    if _enabled:
        return _Phases.apply(x, step, offsets)
    return tuple(x[:, :, o::step, o::step] for o in offsets)


class _Phases(torch.autograd.Function):
    """The phases of x, whose gradient keeps x's memory format.

    Slicing's own backward scatters into a contiguous tensor; against a channels_last
    input, the ReLU backward before it then mixes layouts and takes a slow path. All the
    phases' gradients go into one zeroed tensor.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, step: int, offsets: tuple[int, ...]):  # type: ignore[override]
        ctx.shape, ctx.step, ctx.offsets, ctx.format = x.shape, step, offsets, memory_format(x)
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
        ctx.formats = [memory_format(x) for x in xs]
        return torch.cat(xs, dim=1)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):  # type: ignore[override]
        parts = grad_out.split(ctx.sizes, dim=1)
        return tuple(
            g.contiguous(memory_format=fmt) for g, fmt in zip(parts, ctx.formats, strict=True)
        )


def concat_channels(xs: list[torch.Tensor]) -> torch.Tensor:
    """Concatenate along channels; with the fast paths, gradients keep the inputs' formats."""
    return _ChannelConcat.apply(*xs) if _enabled else torch.cat(xs, dim=1)
