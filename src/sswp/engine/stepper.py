"""The search's two kinds of step on a sampled path: an SGD step on the weights, and an Adam
step on the architecture logits from binary-gate gradients."""

from __future__ import annotations

import torch
from torch import nn

from sswp.engine.distributed import average_
from sswp.engine.hardware import Hardware
from sswp.engine.objectives import Batch, Objective


class SearchStepper:
    """Weight and arch steps of the supernet under an objective, on 1 process or under DDP.

    Under DDP every rank samples the same paths (identically seeded generator, identical
    alphas), DDP wraps the whole objective (supernet and heads) and averages the weight
    gradients, and gate gradients are averaged by one all-reduce, so the alphas stay
    identical on every rank. SimCLR's loss sees the views of all ranks (gathered with
    gradients inside the objective); BYOL's and cross-entropy are per-sample means, which
    the gradient averaging already makes global.
    """

    def __init__(
        self,
        objective: Objective,
        weight_opt: torch.optim.Optimizer,
        arch_opt: torch.optim.Optimizer,
        paths: torch.Generator,
        hw: Hardware,
        grad_clip: float,
        gate_gradients: str = "fresh",
    ):
        self.objective, self.net = objective, objective.net
        self.weight_opt, self.arch_opt, self.paths, self.hw = weight_opt, arch_opt, paths, hw
        self.grad_clip = grad_clip
        # `accumulate` (the original's bug): every step's gate gradients, weight steps
        # included, add to one running sum per edge that is never zeroed; arch steps use it.
        self.gate_sums: torch.Tensor | None = None
        if gate_gradients == "accumulate":
            if self.net.gate_mode != "two":
                raise ValueError("accumulated gate gradients reproduce the `two` mode only")
            cells, edges = len(self.net.cells), len(self.net.cells[0].edges)
            alpha = self.net.cells[0].alpha
            self.gate_sums = torch.zeros(cells, edges, alpha.shape[1], device=alpha.device)
        self.weight_params = objective.weight_parameters()  # once: thousands of tensors
        self.scaler = hw.grad_scaler()
        # Each step trains one sampled path: the other ops are unused, on every rank alike.
        self.forward_module: nn.Module = hw.ddp(objective, find_unused=True)

    def weight_step(
        self, batch: Batch, drop_skip: float = 0.0, drop_pool: float = 0.0
    ) -> tuple[float, float]:
        """SGD on the weights of one sampled path; unsampled ops get no gradient at all.

        Accumulating gate gradients, the gates are open here too (the inactive op runs,
        detached) and their gradients join the running sums.
        """
        self.net.sample_paths(self.paths, drop_skip=drop_skip, drop_pool=drop_pool)
        if self.gate_sums is not None:
            self.net.open_gates()
        loss, acc = self.forward_module(batch)
        self.weight_opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.gate_sums is not None:
            gates = self._live_gates()
            grads = [g.grad if g.grad is not None else torch.zeros_like(g) for _, _, g in gates]
            average_(grads, self.hw.dist)
            if torch.isfinite(torch.stack(grads)).all():
                self._accumulate(gates, grads)
            self.net.close_gates()
        self.scaler.unscale_(self.weight_opt)
        nn.utils.clip_grad_norm_(self.weight_params, self.grad_clip)
        self.scaler.step(self.weight_opt)
        self.scaler.update()
        self.objective.after_weight_step()
        return loss.item(), acc.item()

    def arch_step(self, batch: Batch, drop_skip: float = 0.0, drop_pool: float = 0.0) -> float:
        """One Adam step on the alphas of unfrozen cells, from binary-gate gradients."""
        net = self.net
        net.sample_paths(self.paths, drop_skip=drop_skip, drop_pool=drop_pool)
        net.open_gates()
        live = self._live_gates()
        gates = [gate for _, _, gate in live]
        loss, _ = self.objective(batch)  # no DDP: only gate gradients are needed
        grads = list(torch.autograd.grad(self.scaler.scale(loss), gates))
        average_(grads, self.hw.dist)
        if torch.isfinite(torch.stack(grads)).all():
            if self.gate_sums is None:
                for gate, grad in zip(gates, grads, strict=True):
                    gate.grad = grad / self._scale()
            else:
                self._accumulate(live, grads)
                for c, e, gate in live:
                    gate.grad = self.gate_sums[c, e].clone()
            net.set_alpha_gradients()
            before = [a.detach().clone() for a in net.alphas()]
            self.arch_opt.step()
            net.rescale_alphas(before)
        self.arch_opt.zero_grad(set_to_none=True)
        net.close_gates()
        return loss.item()

    def _scale(self) -> float:
        return self.scaler.get_scale() if self.scaler.is_enabled() else 1.0

    def _live_gates(self) -> list[tuple[int, int, torch.Tensor]]:
        """(cell, edge, gates) of every edge of the unfrozen cells, gates open."""
        return [
            (c, e, edge.gates)
            for c, cell in enumerate(self.net.cells)
            if not cell.frozen
            for e, edge in enumerate(cell.edges)
            if edge.gates is not None
        ]

    def _accumulate(
        self, live: list[tuple[int, int, torch.Tensor]], grads: list[torch.Tensor]
    ) -> None:
        assert self.gate_sums is not None
        scale = self._scale()
        for (c, e, _), grad in zip(live, grads, strict=True):
            self.gate_sums[c, e] += grad.to(self.gate_sums.dtype) / scale
