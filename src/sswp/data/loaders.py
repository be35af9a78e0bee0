"""The one entry point for batches: `make_loader`, over DALI or torchvision, with the
settings a stage's loaders share in one `LoaderContext`.

Batch contract, whichever backend: "simclr" yields (view1, view2, labels); "train" and "eval"
yield (images, labels); images are float32 NCHW normalised, labels int64, both on the CUDA
device when a DALI GPU pipeline made them and on the CPU otherwise. Every `iter()` is one epoch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

import numpy as np
import torch

from sswp.data.backend import choose_backend, loader_threads
from sswp.data.sampling import EpochPlan
from sswp.data.torch_loader import ImageSet, TorchLoader
from sswp.data.transforms import DEFAULT_AUGMENT, Augment, view_for
from sswp.errors import SswpError

if TYPE_CHECKING:
    from sswp.config.params import DataParams

Kind = Literal["simclr", "train", "eval"]
KINDS: tuple[str, ...] = ("simclr", "train", "eval")


class Loader(Protocol):
    """What `make_loader` returns: an epoch per `iter()`, `len()` batches per epoch."""

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]: ...

    def __len__(self) -> int: ...

    def set_epoch(self, epoch: int) -> None: ...


def augment_of(data: DataParams) -> Augment:
    """The augmentation choices that `data.hflip` and `data.simclr_min_crop` make."""
    return Augment(flip=data.hflip, simclr_min_crop=data.simclr_min_crop)


# Evaluation batches hold at least this many images: without gradients a larger batch only
# saves per-batch overhead, and at a training batch of 8, testing cost more than training.
EVAL_BATCH_SIZE = 256


@dataclass(frozen=True)
class LoaderContext:
    """What every loader of one stage shares, built once per stage.

    `batch_size` is per process, `batch_key` the params key that sets it (for the error when
    a split is too small). Each of `num_shards` shards reads its own equal, disjoint part of
    an epoch (`shard_id`). `loader` picks the backend (`data.loader`: auto, dali or torch);
    DALI runs on the GPU when `device` is CUDA. `workers` is the number of worker processes
    for torchvision, of threads for DALI. `image_size` is the crop size of image files (for
    arrays it must match them if given).
    """

    batch_size: int
    mean: Sequence[float]
    std: Sequence[float]
    seed: int
    batch_key: str = "batch_size"
    augment: Augment = DEFAULT_AUGMENT
    workers: int = 0
    image_size: int | None = None
    loader: str = "torch"
    device: torch.device | None = None
    shard_id: int = 0
    num_shards: int = 1

    def for_evaluation(self) -> LoaderContext:
        """The same, with batches of at least EVAL_BATCH_SIZE images."""
        return dataclasses.replace(self, batch_size=max(self.batch_size, EVAL_BATCH_SIZE))


def make_loader(
    images: np.ndarray,
    labels: np.ndarray,
    indices: np.ndarray,
    kind: Kind,
    context: LoaderContext,
    *,
    name: str,
    shuffle: bool,
    drop_last: bool,
    cutout: int = 0,
) -> Loader:
    """A loader over `images[indices]`, reproducible for a given `context.seed`.

    `images` is (N, H, W, 3) uint8, or for image folders (N,) file paths. Epoch e's order
    and augmentation seed depend only on the seed and e. torchvision augmentations draw from
    torch's global RNG in the main process (workers=0; the caller seeds it) and from seeds
    torch derives from the loader's generator in workers. `name` (the split) makes the
    batch-size error actionable.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    files = images.ndim == 1
    size = _image_size(images, context.image_size, files)
    plan = EpochPlan(
        len(indices),
        context.batch_size,
        shuffle=shuffle,
        drop_last=drop_last,
        seed=context.seed,
        shard_id=context.shard_id,
        num_shards=context.num_shards,
    )
    _check_size(plan, name, context.batch_key)
    indices = np.asarray(indices)
    mean, std, augment = context.mean, context.std, context.augment
    backend = choose_backend(context.loader, context.device)
    if backend.dali:
        from sswp.data.dali_loader import DaliLoader
        from sswp.data.dali_pipelines import ViewSpec

        spec = ViewSpec.of(kind, size, mean, std, cutout, files, augment)
        threads = loader_threads(True, context.workers)
        return DaliLoader(images, labels, indices, spec, plan, backend, threads)
    transform = view_for(kind, files, size, mean, std, cutout, augment)
    dataset = ImageSet(images, labels, indices, transform, two_views=kind == "simclr")
    return TorchLoader(dataset, plan, context.workers)


def in_order(
    images: np.ndarray, labels: np.ndarray, indices: np.ndarray, context: LoaderContext, name: str
) -> Loader:
    """Every image of `indices` once, in order, without augmentation, at the context's batch."""
    return make_loader(
        images, labels, indices, "eval", context, name=name, shuffle=False, drop_last=False
    )


def _image_size(images: np.ndarray, image_size: int | None, files: bool) -> int:
    if files:
        if image_size is None:
            raise ValueError("image files need image_size (the crop size) to be given")
        return image_size
    if image_size is not None and image_size != images.shape[1]:
        raise ValueError(f"image_size {image_size} differs from the arrays' {images.shape[1]}")
    return int(images.shape[1])


def _check_size(plan: EpochPlan, name: str, batch_key: str) -> None:
    if plan.count == 0:
        raise SswpError(f"the {name} split has no images; use more data or a larger label ratio")
    if plan.shard_size == 0:
        raise SswpError(
            f"the {plan.count} images of the {name} split cannot feed {plan.num_shards} shards; "
            "use more data or fewer processes"
        )
    if plan.drop_last and plan.batch_size > plan.shard_size:
        where = f"the {plan.count} images of the {name} split"
        if plan.num_shards > 1:
            where = f"the {plan.shard_size} images per shard of the {name} split"
        raise SswpError(
            f"batch size {plan.batch_size} is larger than {where}; "
            f"lower {batch_key} to at most {plan.shard_size}"
        )
