"""DALI's CPU pipelines against the torchvision views: same contract, same statistics.

The test images encode where each pixel came from (R grows with x, G with y, B is constant),
so a view tells its flip, its crop's area and whether colour jitter or grayscale touched it.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sswp.data.loaders import LoaderContext, in_order, make_loader

pytest.importorskip(
    "nvidia.dali", reason="NVIDIA DALI is not installed (pip install nvidia-dali-cuda130)"
)

MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
SIDE, RAMP, FLAT = 32, 8, 128
BACKENDS = ("torch", "dali")


def _ramps(count: int) -> np.ndarray:
    y, x = np.mgrid[0:SIDE, 0:SIDE]
    image = np.stack([RAMP * x, RAMP * y, np.full_like(x, FLAT)], axis=-1).astype(np.uint8)
    return np.repeat(image[None], count, axis=0)


def _batches(images, kind, backend, seed=0, batch_size=128, cutout=0, **options):
    torch.manual_seed(seed)
    loader = make_loader(
        images,
        np.arange(len(images), dtype=np.int64),
        np.arange(len(images)),
        kind,
        LoaderContext(batch_size, MEAN, STD, seed, loader=backend, **options),
        name="test",
        shuffle=True,
        drop_last=False,
        cutout=cutout,
    )
    return list(loader)


def _raw(x: torch.Tensor) -> torch.Tensor:
    """Back to the 0-255 scale."""
    return (x * STD[0] + MEAN[0]) * 255


def _simclr_stats(backend: str) -> dict[str, float | np.ndarray]:
    views = torch.cat([torch.cat(b[:2]) for b in _batches(_ramps(512), "simclr", backend)])
    r, g, b = _raw(views).unbind(1)
    gray = ((r - g).abs().amax((1, 2)) < 0.6) & ((g - b).abs().amax((1, 2)) < 0.6)
    flat_blue = (b - FLAT).abs().amax((1, 2)) < 0.6
    clean = flat_blue & ~gray  # neither jittered nor grey: R and G still measure x and y
    slope_x = (r[:, 3:29, 28] - r[:, 3:29, 3]).mean(1) / 25
    slope_y = (g[:, 28, 3:29] - g[:, 3, 3:29]).mean(1) / 25
    area = (slope_x.abs() / RAMP * slope_y.abs() / RAMP)[clean]
    return {
        "gray": gray.float().mean().item(),
        "jitter": (~flat_blue[~gray]).float().mean().item(),
        "flip": (slope_x[clean] < 0).float().mean().item(),
        "area": area.numpy(),
    }


@pytest.fixture(scope="module")
def simclr_stats():
    torch.set_num_threads(1)  # as the per-test default does, which module fixtures precede
    return {backend: _simclr_stats(backend) for backend in BACKENDS}


@pytest.mark.parametrize("backend", BACKENDS)
def test_simclr_rates_match_the_design(simclr_stats, backend):
    stats = simclr_stats[backend]
    assert stats["gray"] == pytest.approx(0.2, abs=0.05)
    assert stats["jitter"] == pytest.approx(0.3, abs=0.06)
    assert stats["flip"] == pytest.approx(0.5, abs=0.08)


@pytest.mark.parametrize("backend", BACKENDS)
def test_simclr_crops_cover_the_scale_range(simclr_stats, backend):
    area = simclr_stats[backend]["area"]
    assert area.min() > 0.08 - 0.02 and area.max() < 1 + 0.03
    assert area.min() < 0.15 and area.max() > 0.85


def test_simclr_crop_areas_agree_across_backends(simclr_stats):
    means = [simclr_stats[backend]["area"].mean() for backend in BACKENDS]
    assert means[0] == pytest.approx(means[1], abs=0.07)


@pytest.mark.parametrize("kind", ["simclr", "train", "eval"])
def test_same_contract_for_both_backends(kind):
    images = _ramps(20)
    for backend in BACKENDS:
        batches = _batches(images, kind, backend, batch_size=8, cutout=8)
        assert [len(b[-1]) for b in batches] == [8, 8, 4]
        *views, labels = batches[0]
        assert len(views) == (2 if kind == "simclr" else 1)
        assert labels.dtype == torch.int64 and labels.device.type == "cpu"
        for view in views:
            assert view.shape == (8, 3, SIDE, SIDE) and view.dtype == torch.float32
            assert view.is_contiguous() and view.device.type == "cpu"


def test_eval_normalises_identically():
    images = np.random.default_rng(0).integers(0, 256, (10, SIDE, SIDE, 3), dtype=np.uint8)
    expected = (torch.from_numpy(images).permute(0, 3, 1, 2) / 255 - 0.5) / 0.25
    for backend in BACKENDS:
        context = LoaderContext(10, MEAN, STD, seed=0, loader=backend)
        loader = in_order(images, np.zeros(10, np.int64), np.arange(10), context, "test")
        assert torch.allclose(next(iter(loader))[0], expected, atol=1e-5)


def _train_stats(backend: str) -> dict[str, float]:
    images = _ramps(256)
    images[..., 0] += 4  # no zero pixels of its own: zeros are padding
    images[..., 1:] = 200
    x = torch.cat([b[0] for b in _batches(images, "train", backend, cutout=8)])
    cut = x[:, 1] == 0  # cutout writes zeros after normalising
    padded = _raw(x[:, 1]).abs() < 0.6
    r = _raw(x[:, 0])
    slope = (r[:, 4:28, 23] - r[:, 4:28, 8]).median(1).values
    return {
        "cut": cut.sum((1, 2)).float().mean().item(),
        "padded": padded.sum((1, 2)).float().mean().item(),
        "max_padded": padded.sum((1, 2)).max().item(),
        "flip": (slope < 0).float().mean().item(),
    }


def test_train_crops_flips_and_cutout_agree():
    torch_stats, dali_stats = (_train_stats(backend) for backend in BACKENDS)
    for stats in (torch_stats, dali_stats):
        assert stats["flip"] == pytest.approx(0.5, abs=0.1)
        assert stats["max_padded"] <= 2 * 4 * SIDE - 16  # shifts of at most 4 pixels
        assert stats["cut"] == pytest.approx(56.25, abs=6)  # mean area of clipped 8x8 squares
    assert dali_stats["padded"] == pytest.approx(torch_stats["padded"], abs=15)


@pytest.mark.parametrize("kind", ["simclr", "train"])
def test_dali_is_deterministic_per_seed(kind):
    images = np.random.default_rng(0).integers(0, 256, (40, SIDE, SIDE, 3), dtype=np.uint8)

    def run(seed):
        return _batches(images, kind, "dali", seed=seed, batch_size=16, cutout=8)

    first, again, other = run(3), run(3), run(4)
    for a, b in zip(first, again, strict=True):
        assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not torch.equal(first[0][0], other[0][0])
