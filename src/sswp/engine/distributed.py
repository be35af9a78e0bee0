"""torch.distributed plumbing: one process per GPU under torchrun, gloo on CPU.

Every rank samples the same architecture paths (a generator seeded identically and
identical alphas), trains on its own shard, and only rank 0 writes files.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def launched_by_torchrun() -> bool:
    return "LOCAL_RANK" in os.environ and "WORLD_SIZE" in os.environ


def init_distributed(device_type: str) -> DistContext:
    """Join the process group torchrun set up (NCCL on CUDA, gloo on CPU), if any."""
    if not launched_by_torchrun() or int(os.environ["WORLD_SIZE"]) == 1:
        return DistContext()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device_type == "cuda" else "gloo")
    local_rank = int(os.environ["LOCAL_RANK"])
    if device_type == "cuda":
        torch.cuda.set_device(local_rank)
    return DistContext(dist.get_rank(), dist.get_world_size(), local_rank)


def all_gather_with_grad(tensor: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Concatenate every rank's tensor; gradients flow back to each rank's own part.

    Used for SimCLR's negatives: the loss sees the global batch, as with one process.
    """
    if not ctx.enabled:
        return tensor
    from torch.distributed.nn.functional import all_gather

    with warnings.catch_warnings():  # its deprecation names only a private replacement
        warnings.simplefilter("ignore", FutureWarning)
        return torch.cat(all_gather(tensor), dim=0)


def average_(tensors: list[torch.Tensor], ctx: DistContext) -> None:
    """In-place mean over ranks, as one flat all-reduce."""
    if not ctx.enabled or not tensors:
        return
    flat = torch.cat([t.reshape(-1) for t in tensors])
    dist.all_reduce(flat)
    flat /= ctx.world_size
    offset = 0
    for t in tensors:
        t.copy_(flat[offset : offset + t.numel()].view_as(t))
        offset += t.numel()


def sum_scalars(values: list[float], ctx: DistContext, device: torch.device) -> list[float]:
    if not ctx.enabled:
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.tolist()


def any_rank(flag: bool, ctx: DistContext, device: torch.device) -> bool:
    """True on every rank if it is true on one: ranks must stop at the same step."""
    if not ctx.enabled:
        return flag
    tensor = torch.tensor([int(flag)], device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return bool(tensor.item())


def shutdown() -> None:
    """Leave the process group, if this process joined one."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
