"""Where and how a stage computes: the device, threads, seeds, DDP, mixed precision, the
compiler, and the CPU kernels it runs."""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from sswp.config.params import DataParams, RuntimeParams
from sswp.data.backend import choose_backend, loader_threads
from sswp.data.loaders import LoaderContext, augment_of
from sswp.engine.allocator import keep_freed_memory
from sswp.engine.distributed import DistContext, init_distributed
from sswp.engine.logs import HOLD_ON_STDERR
from sswp.errors import SswpError
from sswp.pipeline.numerics import PORTABLE_ENV

T = TypeVar("T")
log = logging.getLogger("sswp")


def select_device(runtime: RuntimeParams) -> torch.device:
    if runtime.device == "cuda" and not torch.cuda.is_available():
        raise SswpError(
            "runtime.device = 'cuda' but no CUDA device is visible; use 'auto' or 'cpu'"
        )
    if runtime.device == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda")


@dataclass(frozen=True)
class Hardware:
    """Where and how tensors run: device, DDP rank, memory format, mixed precision, compiler."""

    device: torch.device
    dist: DistContext
    channels_last: bool = True
    amp: str = "off"
    compile: str = "off"

    @property
    def amp_enabled(self) -> bool:
        return self.device.type == "cuda" and self.amp != "off"

    def images(self, batch: torch.Tensor) -> torch.Tensor:
        """Image batches to the device; channels-last is 1.4x faster on CPU (oneDNN) too."""
        fmt = torch.channels_last if self.channels_last else torch.preserve_format
        return batch.to(self.device, memory_format=fmt, non_blocking=True)

    def model(self, model: torch.nn.Module) -> torch.nn.Module:
        fmt = torch.channels_last if self.channels_last else torch.preserve_format
        return model.to(self.device, memory_format=fmt)

    def ddp(self, module: torch.nn.Module, find_unused: bool = False) -> torch.nn.Module:
        """`module` wrapped for DDP when several processes train it, else itself.

        `find_unused`: steps that train one sampled path leave the other ops unused.
        """
        if not self.dist.enabled:
            return module
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(
            module, device_ids=device_ids, find_unused_parameters=find_unused
        )

    def compiled(self, fn: Callable[..., T]) -> Callable[..., T]:
        """`fn` (a module or a bound method) compiled as `runtime.compile` asks, else itself.

        Shapes stay static (training loaders drop the last batch), which CUDA graphs need;
        `max-autotune` captures them on a GPU. Compile a DDP-wrapped module, not the module
        inside DDP, so that the graph breaks at DDP's gradient buckets. Checkpoints keep
        saving the module itself, so their keys never gain the wrapper's `_orig_mod.` prefix.
        """
        if self.compile == "off":
            return fn
        mode = None if self.compile == "default" else self.compile
        return torch.compile(fn, mode=mode, dynamic=False)

    def new_step(self) -> None:
        """Before each compiled call: CUDA graphs may then reuse the previous step's outputs."""
        if self.compile == "max-autotune" and self.device.type == "cuda":
            torch.compiler.cudagraph_mark_step_begin()

    def autocast(self) -> torch.autocast:
        dtype = torch.float16 if self.amp == "fp16" else torch.bfloat16
        return torch.autocast(self.device.type, dtype=dtype, enabled=self.amp_enabled)

    def loader_context(
        self,
        data: DataParams,
        seed: int,
        batch: tuple[str, int],
        image_size: int | None,
        norm: tuple[Sequence[float], Sequence[float]],
    ) -> LoaderContext:
        """A stage's loader settings here: the batch size (named by its params key, for
        errors) split over the processes, each of which reads its own shard."""
        batch_key, batch_size = batch
        if batch_size % self.dist.world_size:
            raise SswpError(
                f"{batch_key} = {batch_size} does not split over {self.dist.world_size} "
                "processes; use a multiple of runtime.gpus"
            )
        mean, std = norm
        return LoaderContext(
            batch_size=batch_size // self.dist.world_size,
            mean=mean,
            std=std,
            seed=seed,
            batch_key=batch_key,
            augment=augment_of(data),
            workers=data.workers,
            image_size=image_size,
            loader=data.loader,
            device=self.device,
            shard_id=self.dist.rank,
            num_shards=self.dist.world_size,
        )

    def grad_scaler(self) -> torch.amp.GradScaler:
        """Loss scaling for fp16 only; bf16 has fp32's range and needs none."""
        return torch.amp.GradScaler(
            self.device.type, enabled=self.amp_enabled and self.amp == "fp16"
        )


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def compute_threads(runtime: RuntimeParams, data: DataParams | None, dali: bool) -> int:
    """torch's threads: `runtime.threads` less the loader's, so that the stage never uses
    more cores than its job reserves."""
    workers = data.workers if data is not None else 0
    loader = loader_threads(dali, workers)
    if runtime.threads - loader < 1:
        raise SswpError(
            f"runtime.threads = {runtime.threads} leaves no thread for the network beside the "
            f"loader's {loader} (data.workers = {workers}); raise runtime.threads or lower "
            "data.workers"
        )
    return runtime.threads - loader


# cuBLAS's deterministic workspace: 8 buffers of 4096 KiB (":16:8" works too, slower).
CUBLAS_WORKSPACE = ":4096:8"


def warn_if_not_portable(runtime: RuntimeParams) -> None:
    """A stage called in-process, after torch loaded, runs the kernels torch chose then.

    The note goes to the stage's log file at once, but to stderr only once the stage has
    succeeded (`release_held_warnings`): it is about the last bits of a result, so it
    matters when there is one, and must not stand between a user and the one-line error
    of a stage that failed.
    """
    capability = torch.backends.cpu.get_cpu_capability()
    if runtime.portable_numerics and capability.lower() != PORTABLE_ENV["ATEN_CPU_CAPABILITY"]:
        log.warning(
            "runtime.portable_numerics is on but torch runs %s CPU kernels, not AVX2 ones: "
            "torch loaded before `sswp` could pin them, or the CPU has no AVX2; results may "
            "differ in their last bits from other machines'",
            capability,
            extra={HOLD_ON_STDERR: True},
        )


def setup(runtime: RuntimeParams, seed: int, data: DataParams | None = None) -> Hardware:
    """Threads, seeds, device, host allocator, DDP and kernel choice for one stage process.

    `data` (the stage's loader settings) takes the loader's threads out of runtime.threads.
    With `deterministic`, CPU runs are bit-for-bit repeatable, and CUDA runs use torch's
    deterministic algorithms (warning where an op has none) and a fixed cuBLAS workspace;
    without it, cuDNN may benchmark and pick the fastest (non-deterministic) kernels.
    """
    device = select_device(runtime)
    warn_if_not_portable(runtime)
    keep_freed_memory()
    dali = data is not None and choose_backend(data.loader, device).dali
    torch.set_num_threads(compute_threads(runtime, data, dali))
    seed_everything(seed)
    ctx = init_distributed(device.type)
    if device.type == "cuda":
        device = torch.device("cuda", ctx.local_rank)
        torch.backends.cudnn.benchmark = not runtime.deterministic
        torch.backends.cuda.matmul.allow_tf32 = not runtime.deterministic
        torch.backends.cudnn.allow_tf32 = not runtime.deterministic
        torch.backends.cudnn.deterministic = runtime.deterministic
    if runtime.deterministic:
        if device.type == "cuda":
            # cuBLAS reads it when it creates its handle, at the first matmul: after this.
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
        torch.use_deterministic_algorithms(True, warn_only=device.type == "cuda")
    return Hardware(device, ctx, runtime.channels_last, runtime.amp, runtime.compile)
