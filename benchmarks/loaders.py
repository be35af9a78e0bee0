"""SimCLR loader throughput: DALI's CPU pipeline against torchvision, on CIFAR-shaped data.

    python benchmarks/loaders.py --images 10000 --batch-size 256 --threads 2 --epochs 3

Both views count as images (a batch of 256 pairs is 512 images). Both backends get the same
cores: DALI `--threads` threads, torchvision `--threads` worker processes. After an untimed
epoch each, the timed epochs alternate between the backends, so that a busy machine slows both
alike; they include DALI's per-epoch pipeline build and the start of torch's workers.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from sswp.data.datasets import NORMALIZATION
from sswp.data.loaders import Loader, LoaderContext, make_loader

BACKENDS = {"dali": "DALI CPU", "torch": "torchvision"}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=256, help="image pairs per batch")
    parser.add_argument("--threads", type=int, default=2, help="DALI threads, torch workers")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per backend")
    return parser.parse_args()


def simclr_loader(backend: str, images: np.ndarray, args: argparse.Namespace) -> Loader:
    mean, std = NORMALIZATION["cifar10"]
    context = LoaderContext(
        args.batch_size, mean, std, seed=0, workers=args.threads, loader=backend
    )
    return make_loader(
        images,
        np.zeros(len(images), dtype=np.int64),
        np.arange(len(images)),
        "simclr",
        context,
        name="benchmark",
        shuffle=True,
        drop_last=True,
    )


def timed_epoch(loader: Loader) -> tuple[int, float]:
    """(images, seconds) of one epoch, counting both views."""
    count = 0
    start = time.perf_counter()
    for view1, view2, _ in loader:
        count += len(view1) + len(view2)
    return count, time.perf_counter() - start


def main() -> None:
    args = parse_args()
    images = np.random.default_rng(0).integers(0, 256, (args.images, 32, 32, 3), dtype=np.uint8)
    print(
        f"SimCLR two views, {args.images} images 32x32, batch {args.batch_size}, "
        f"{args.threads} threads/workers, {args.epochs} timed epochs each"
    )
    loaders = {backend: simclr_loader(backend, images, args) for backend in BACKENDS}
    totals = {backend: [0, 0.0] for backend in BACKENDS}
    for epoch in range(args.epochs + 1):
        for backend, loader in loaders.items():
            count, seconds = timed_epoch(loader)
            if epoch:
                totals[backend][0] += count
                totals[backend][1] += seconds
    rates = {backend: count / seconds for backend, (count, seconds) in totals.items()}
    for backend, title in BACKENDS.items():
        print(f"{title:>12}: {rates[backend]:8.0f} images/s")
    print(f"{'DALI / torch':>12}: {rates['dali'] / rates['torch']:8.1f}x")


if __name__ == "__main__":
    main()
