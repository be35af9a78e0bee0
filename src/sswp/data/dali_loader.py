"""The DALI backend: one pipeline per epoch, fed in the order of the shared `EpochPlan`.

A pipeline is built for every epoch with the epoch's seed, so an epoch's augmentations depend
only on `seed` and its number (a resumed run sees the same ones), and the image order is the
torch backend's. Labels never enter the pipeline: they are gathered here from the same plan.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from nvidia.dali.backend import TensorListCPU, TensorListGPU
from nvidia.dali.pipeline import Pipeline
from nvidia.dali.plugin.pytorch import feed_ndarray

from sswp.data.backend import Backend
from sswp.data.dali_pipelines import ViewSpec, array_pipeline, file_pipeline
from sswp.data.sampling import Epoch, EpochLoader, EpochPlan

# Two batches in flight keep DALI's threads busy while the caller trains on the previous one.
PREFETCH = 2
_SEED_RANGE = 2**31


class DaliLoader(EpochLoader):
    """Batches of `images[indices]` as torch tensors on `device` (the GPU for GPU pipelines)."""

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        indices: np.ndarray,
        spec: ViewSpec,
        plan: EpochPlan,
        backend: Backend,
        threads: int,
    ) -> None:
        self.spec, self.plan, self.backend, self.threads = spec, plan, backend, threads
        if spec.files:
            self.images: np.ndarray | list[str] = [str(p) for p in images[indices]]
        else:
            self.images = np.ascontiguousarray(images[indices])
        self.labels = labels[indices].astype(np.int64)
        self.device = backend.device

    def _batches(self, epoch: Epoch) -> Iterator[tuple[torch.Tensor, ...]]:
        pipe = self._pipeline(epoch)
        pipe.build()
        for positions in epoch.batches:
            views = tuple(self._to_torch(out, len(positions)) for out in pipe.run())
            yield (*views, torch.from_numpy(self.labels[positions]).to(self.device))

    def _pipeline(self, epoch: Epoch) -> Pipeline:
        options = dict(
            batch_size=self.plan.batch_size,
            num_threads=self.threads,
            device_id=self.backend.device_id,
            seed=epoch.seed % _SEED_RANGE,
            prefetch_queue_depth=PREFETCH,
            spec=self.spec,
            gpu=self.backend.gpu,
        )
        if self.spec.files:
            order = np.concatenate(epoch.batches)
            return file_pipeline(files=[self.images[i] for i in order], **options)
        return array_pipeline(source=(self.images[b] for b in epoch.batches), **options)

    def _to_torch(self, output: TensorListCPU | TensorListGPU, count: int) -> torch.Tensor:
        """Copy a pipeline output out before the next run reuses its buffer; keep `count` rows
        (a file reader fills a short last batch with images of the next round)."""
        tensor = output.as_tensor()
        out = torch.empty(tensor.shape(), dtype=torch.float32, device=self.device)
        stream = torch.cuda.current_stream(self.device) if self.backend.gpu else None
        feed_ndarray(tensor, out, cuda_stream=stream)
        return out[:count]
