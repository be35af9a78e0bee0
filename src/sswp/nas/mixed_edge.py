"""A mixed edge with binary gates (ProxylessNAS style).

Only the sampled ops run. In a weight step the active op alone is computed (its gate is
1, the others 0, so this is exact). In an arch step the gates become a leaf tensor whose
gradient dL/dg_k = <dL/dout, o_k> feeds the alpha gradient; the inactive output is
detached so it trains no weights.
"""

from __future__ import annotations

import torch
from torch import nn

from sswp.nas.cpu_fast_paths import Activation, run_op
from sswp.nas.ops import CANDIDATE_OPS, make_op

GATE_MODES = ("two", "full_v2")


class MixedEdge(nn.Module):
    def __init__(self, channels: int, stride: int, mode: str = "two", affine: bool = False):
        super().__init__()
        if mode not in GATE_MODES:
            raise ValueError(f"unknown gate mode {mode!r}")
        self.mode = mode
        self.ops = nn.ModuleList(make_op(name, channels, stride, affine) for name in CANDIDATE_OPS)
        self.active = 0
        self.inactive: tuple[int, ...] = ()
        self.gates: torch.Tensor | None = None

    def set_path(self, active: int, inactive: tuple[int, ...] = ()) -> None:
        self.active, self.inactive, self.gates = active, inactive, None

    def open_gates(self, device: torch.device) -> torch.Tensor:
        """Binary gates for an arch step: 1 on the active op, a leaf that collects gradients."""
        gates = torch.zeros(len(self.ops), device=device)
        gates[self.active] = 1.0
        self.gates = gates.requires_grad_(True)
        return self.gates

    def forward(self, x: torch.Tensor, state: Activation | None = None) -> torch.Tensor:
        """The edge's output on `x`; `state` (x with its shared ReLU) when the cell has one."""
        state = Activation(x) if state is None else state
        if self.gates is None:
            return run_op(self.ops[self.active], state)
        if self.mode == "two":
            active = run_op(self.ops[self.active], state)
            # The inactive output only weighs its gate: no graph, nothing saved for it.
            with torch.no_grad():
                others = [run_op(self.ops[k], state) for k in self.inactive]
            paths = (self.active, *self.inactive)
            return _BinaryGates.apply(self.gates, paths, active, *others)
        return _AllGatesGradient.apply(x, self.gates, self)


class _BinaryGates(torch.autograd.Function):
    """sum_k g_k o_k for binary gates (1 on the active op, 0 elsewhere), without the products.

    The forward is the active output, as 1 x o_a + 0 x o_i is; the backward passes the
    gradient to o_a unchanged and gives each involved gate <dL/dout, o_k>. Autograd through
    the products would spend five full-size passes per edge on multiplying by 1 and 0.
    """

    @staticmethod
    def forward(ctx, gates: torch.Tensor, paths: tuple[int, ...], *outs: torch.Tensor):  # type: ignore[override]
        ctx.paths, ctx.size = paths, gates.shape
        ctx.save_for_backward(*outs)
        return outs[0].view_as(outs[0])

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):  # type: ignore[override]
        outs = ctx.saved_tensors
        grad_gates = grad_out.new_zeros(ctx.size)
        for k, out in zip(ctx.paths, outs, strict=True):
            grad_gates[k] = (grad_out * out).sum()
        return grad_gates, None, grad_out, *(None for _ in outs[1:])


class _AllGatesGradient(torch.autograd.Function):
    """full_v2: run only the active op forward; in backward, estimate every gate's gradient.

    The other ops run under no_grad on the saved input, so their activations are never
    stored: that is the memory saving over running all ops forward.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, gates: torch.Tensor, edge: MixedEdge) -> torch.Tensor:  # type: ignore[override]
        detached = x.detach().requires_grad_(x.requires_grad)
        with torch.enable_grad():
            out = edge.ops[edge.active](detached)
        ctx.edge = edge
        ctx.save_for_backward(detached, out)
        return out.detach()

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):  # type: ignore[override]
        detached, out = ctx.saved_tensors
        edge: MixedEdge = ctx.edge
        grad_x = None
        if detached.requires_grad:
            (grad_x,) = torch.autograd.grad(out, detached, grad_out, allow_unused=True)
        with torch.no_grad():
            grads = []
            for k, op in enumerate(edge.ops):
                o_k = out if k == edge.active else op(detached)
                grads.append((o_k * grad_out).sum())
        return grad_x, torch.stack(grads).to(grad_out.dtype), None


def alpha_gradient(
    alpha: torch.Tensor, gate_grad: torch.Tensor, involved: torch.Tensor | list[int]
) -> torch.Tensor:
    """dL/dalpha_i = sum_j dL/dg_j * p_j * (delta_ij - p_i), p = softmax(alpha[involved]).

    Row-wise over the last dimension (one edge, or a cell's edges at once); entries outside
    `involved` get zero. `two` mode passes the sampled pair; full_v2 all ops.
    """
    idx = torch.as_tensor(involved, device=alpha.device)
    p = torch.softmax(alpha.detach().gather(-1, idx), dim=-1)
    g = gate_grad.gather(-1, idx)
    # sum_j g_j p_j (delta_ij - p_i) = p_i g_i - p_i sum_j g_j p_j
    grad_involved = p * g - p * (g * p).sum(-1, keepdim=True)
    return torch.zeros_like(alpha).scatter_(-1, idx, grad_involved)


def rescale_pair(
    alpha: torch.Tensor, old_alpha: torch.Tensor, involved: torch.Tensor | list[int]
) -> None:
    """Shift the involved logits so their log-sum-exp is what it was before the Adam step.

    Row-wise over the last dimension, like alpha_gradient.
    """
    idx = torch.as_tensor(involved, device=alpha.device)
    with torch.no_grad():
        offset = torch.logsumexp(alpha.gather(-1, idx), -1, keepdim=True) - torch.logsumexp(
            old_alpha.gather(-1, idx), -1, keepdim=True
        )
        alpha.scatter_add_(-1, idx, (-offset).expand(idx.shape))
