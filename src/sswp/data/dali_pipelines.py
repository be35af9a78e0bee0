"""DALI pipelines for the three kinds of batches, mirroring the torchvision views in `transforms`.

The same graph runs on the CPU or, with `gpu`, places every image operator on the GPU (random
numbers stay on the CPU, where DALI draws them). Random choices with a probability are DALI
conditionals, so an operator only runs on the samples it applies to. DALI converts these
functions with AutoGraph, which needs their source: they must stay in a real module.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from nvidia.dali import fn, pipeline_def, types
from nvidia.dali.data_node import DataNode

from sswp.data.transforms import (
    BLUR_KERNEL,
    BLUR_P,
    BLUR_SIGMA,
    CROP_RATIO,
    CROP_SCALE,
    GRAY_P,
    JITTER,
    JITTER_P,
    PAD,
    Augment,
    eval_resize,
)

# torchvision gives the hue shift as a fraction of the colour circle, DALI in degrees.
_DEGREES = 360.0


@dataclass(frozen=True)
class ViewSpec:
    """What one pipeline produces; mean and std are per channel on the 0-255 scale."""

    kind: str
    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    cutout: int
    files: bool
    augment: Augment

    @classmethod
    def of(
        cls,
        kind: str,
        image_size: int,
        mean: Sequence[float],
        std: Sequence[float],
        cutout: int,
        files: bool,
        augment: Augment,
    ) -> ViewSpec:
        """Take mean and std on the 0-1 scale, like the torchvision views."""
        scaled_mean, scaled_std = tuple(255 * m for m in mean), tuple(255 * s for s in std)
        return cls(kind, image_size, scaled_mean, scaled_std, cutout, files, augment)


@pipeline_def(enable_conditionals=True)
def array_pipeline(source: Iterable[np.ndarray], spec: ViewSpec, gpu: bool):
    """Augment (N, H, W, 3) uint8 batches that `source` yields in the sampler's order."""
    images = fn.external_source(source=source, batch=True, layout="HWC", dtype=types.UINT8)
    if gpu:
        images = images.gpu()
    return _views(images, spec)


@pipeline_def(enable_conditionals=True)
def file_pipeline(files: list[str], spec: ViewSpec, gpu: bool):
    """Read `files` in the given order and decode them (nvJPEG on the GPU, `mixed`)."""
    encoded, _ = fn.readers.file(files=files, random_shuffle=False)
    images = fn.decoders.image(encoded, device="mixed" if gpu else "cpu", output_type=types.RGB)
    return _views(images, spec)


def _views(images: DataNode, spec: ViewSpec) -> tuple[DataNode, ...]:
    if spec.kind == "simclr":
        return _simclr_view(images, spec), _simclr_view(images, spec)
    if spec.kind == "train":
        return (_train_view(images, spec),)
    return (_eval_view(images, spec),)


def _uniform(low: float, high: float) -> DataNode:
    return fn.random.uniform(range=(low, high))


def _coin(probability: float) -> DataNode:
    return fn.random.coin_flip(probability=probability)


def _normalise(x: DataNode, spec: ViewSpec, **options) -> DataNode:
    """uint8 HWC -> normalised float32 CHW; `options` add a flip (`mirror`) or a centre `crop`."""
    return fn.crop_mirror_normalize(
        x, dtype=types.FLOAT, output_layout="CHW", mean=spec.mean, std=spec.std, **options
    )


def _random_resized_crop(
    images: DataNode, size: int, area: tuple[float, float] = CROP_SCALE
) -> DataNode:
    return fn.random_resized_crop(
        images, size=(size, size), random_area=area, random_aspect_ratio=CROP_RATIO
    )


def _simclr_view(images: DataNode, spec: ViewSpec) -> DataNode:
    brightness, contrast, saturation, hue = JITTER
    x = _random_resized_crop(images, spec.image_size, spec.augment.simclr_scale)
    if _coin(JITTER_P):
        x = fn.color_twist(
            x,
            brightness=_uniform(1 - brightness, 1 + brightness),
            contrast=_uniform(1 - contrast, 1 + contrast),
            saturation=_uniform(1 - saturation, 1 + saturation),
            hue=_uniform(-hue * _DEGREES, hue * _DEGREES),
        )
    if _coin(GRAY_P):
        gray = fn.color_space_conversion(x, image_type=types.RGB, output_type=types.GRAY)
        x = fn.cat(gray, gray, gray, axis=2)
    if _coin(BLUR_P):
        x = fn.gaussian_blur(x, window_size=BLUR_KERNEL, sigma=_uniform(*BLUR_SIGMA))
    return _normalise(x, spec, mirror=_coin(spec.augment.flip_p))


def _train_view(images: DataNode, spec: ViewSpec) -> DataNode:
    size = spec.image_size
    if spec.files:
        x = _random_resized_crop(images, size)
    else:
        offsets = [float(v) for v in range(-PAD, PAD + 1)]
        start = fn.cast(fn.random.uniform(values=offsets, shape=[2]), dtype=types.INT32)
        x = fn.slice(
            images,
            start=start,
            shape=[size, size],
            axis_names="HW",
            out_of_bounds_policy="pad",
            fill_values=0,
        )
    x = _normalise(x, spec, mirror=_coin(spec.augment.flip_p))
    half = spec.cutout // 2
    if half > 0:
        centre = fn.random.uniform(values=[float(v) for v in range(size)], shape=[2])
        x = fn.erase(
            x, anchor=centre - half, shape=[2 * half, 2 * half], axis_names="HW", fill_value=0.0
        )
    return x


def _eval_view(images: DataNode, spec: ViewSpec) -> DataNode:
    if spec.files:
        x = fn.resize(images, resize_shorter=float(eval_resize(spec.image_size)))
        return _normalise(x, spec, crop=(spec.image_size, spec.image_size))
    return _normalise(images, spec)
