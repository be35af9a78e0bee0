"""One real search epoch and one real train epoch: images/s, loop efficiency, peak memory.

    python benchmarks/epoch.py                                    # CPU, small, minutes
    python benchmarks/epoch.py --params params/cifar10.yaml --images 20480 --device cuda
    python benchmarks/epoch.py --image-size 16 --stages train --compile off default

Both epochs go through the stages' own code: `make_loader` with `data.loader` (torch, and
DALI when it imports), the search's SearchLoop (weight steps, an arch step every
`search.arch_every`) and the train stage's SupervisedLoop (its test pass timed apart), with
the threads split as `sswp.engine.hardware.setup` does. The data is random CIFAR-shaped
uint8 images, in memory. The loop efficiency is the epoch's images/s over the isolated
step's, the same steps repeated on one batch already in memory, timed just before and just
after the epoch (their mean): 1.0 means the loader and the loop cost nothing. Search
images count both views of a pair. Peak memory is CUDA's allocated peak per measurement on
a GPU, the process's RSS so far on CPU.
"""

from __future__ import annotations

import argparse
import dataclasses
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from sswp.config.load import load_params
from sswp.config.params import Params
from sswp.data.backend import import_dali
from sswp.data.datasets import ArrayDataset
from sswp.data.loaders import LoaderContext, augment_of, in_order, make_loader
from sswp.data.splits import Splits
from sswp.engine.hardware import Hardware, setup
from sswp.engine.interrupt import StopFlag
from sswp.engine.search import SearchLoop
from sswp.engine.supervised import SupervisedLoop
from sswp.errors import SswpError
from sswp.models.child import ChildNetwork
from sswp.nas.reference import reference_genotype

NORM = ((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
CLASSES = 10


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--images", type=int, default=1024, help="training images")
    parser.add_argument("--test-images", type=int, default=256)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument(
        "--stages", nargs="+", choices=("search", "train"), default=["search", "train"]
    )
    parser.add_argument("--loaders", nargs="+", choices=("torch", "dali"), help="default: both")
    parser.add_argument(
        "--compile",
        nargs="+",
        choices=("off", "default", "max-autotune"),
        default=["off"],
        help="runtime.compile of the train epoch; several are measured one after the other",
    )
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--threads", type=int, help="runtime.threads (default: the params')")
    parser.add_argument("--workers", type=int, help="data.workers (default: the params')")
    parser.add_argument("--steps", type=int, default=5, help="isolated steps timed per kind")
    return parser.parse_args()


def synthetic(images: int, test_images: int, size: int, seed: int = 0) -> ArrayDataset:
    """Random uint8 images (N, size, size, 3) and labels, in the arrays loaders read."""
    rng = np.random.default_rng(seed)
    shape = (size, size, 3)
    return ArrayDataset(
        train_x=rng.integers(0, 256, (images, *shape), dtype=np.uint8),
        train_y=rng.integers(0, CLASSES, images).astype(np.int64),
        test_x=rng.integers(0, 256, (test_images, *shape), dtype=np.uint8),
        test_y=rng.integers(0, CLASSES, test_images).astype(np.int64),
        classes=tuple(str(c) for c in range(CLASSES)),
        name="synthetic",
    )


def _sync(hw: Hardware) -> None:
    if hw.device.type == "cuda":
        torch.cuda.synchronize(hw.device)


def _reset_peak(hw: Hardware) -> None:
    if hw.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(hw.device)


def _peak_mib(hw: Hardware) -> float:
    if hw.device.type == "cuda":
        return torch.cuda.max_memory_allocated(hw.device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _timed(hw: Hardware, fn: Callable[[], object], count: int = 1) -> float:
    """Seconds per call of `fn`, synchronised with the device."""
    _sync(hw)
    start = time.perf_counter()
    for _ in range(count):
        fn()
    _sync(hw)
    return (time.perf_counter() - start) / count


def search_epoch(params: Params, data: ArrayDataset, hw: Hardware, steps: int) -> dict:
    """A warm-up epoch (untimed), then a timed epoch with arch steps, against isolated steps."""
    half = len(data.train_y) // 2
    order = np.arange(len(data.train_y))
    splits = Splits(order[:half], order[half:], order)
    loop = SearchLoop(params, data, splits, NORM, hw)
    timed_epoch = next(e for e in range(params.search.epochs) if not loop.schedule.warm(e))
    weight_steps = len(loop.weight_loader)
    arch_steps = weight_steps // params.search.arch_every
    pair_images = 2 * loop.weight_loader.plan.batch_size
    batch = next(iter(loop.weight_loader))
    drop = params.search.weight_skip_drop_prob

    def isolated() -> float:
        weight_s = _timed(hw, lambda: loop.stepper.weight_step(batch, drop), steps)
        return weight_steps * weight_s + arch_steps * _timed(
            hw, lambda: loop.stepper.arch_step(batch), steps
        )

    loop.run_epoch(0, StopFlag(), None)
    _reset_peak(hw)
    before = isolated()
    seconds = _timed(hw, lambda: loop.run_epoch(timed_epoch, StopFlag(), None))
    isolated_s = (before + isolated()) / 2
    images = (weight_steps + arch_steps) * pair_images
    return {"images": images, "seconds": seconds, "isolated": isolated_s, "peak": _peak_mib(hw)}


def train_epoch(params: Params, data: ArrayDataset, hw: Hardware, steps: int) -> dict:
    """The first epoch (compilation, if any), a second timed one, against isolated steps;
    images/s and efficiency leave out the test pass after the epoch, reported apart."""
    sp = params.train
    context = LoaderContext(
        sp.batch_size,
        mean=NORM[0],
        std=NORM[1],
        seed=params.seed,
        augment=augment_of(params.data),
        workers=params.data.workers,
        loader=params.data.loader,
        device=hw.device,
    )
    train = make_loader(
        data.train_x,
        data.train_y,
        np.arange(len(data.train_y)),
        "train",
        context,
        name="train",
        shuffle=True,
        drop_last=True,
        cutout=sp.cutout,
    )
    test = in_order(data.test_x, data.test_y, np.arange(len(data.test_y)), context, "test")
    torch.manual_seed(params.seed)
    genotype = reference_genotype("darts_v2", params.search.layers)
    model = ChildNetwork(
        genotype, params.search.channels, CLASSES, sp.auxiliary_weight > 0, params.search.stem
    )
    loop = SupervisedLoop(hw.model(model), train, test, sp, params.runtime, hw, "bench")
    batch = next(iter(train))

    def isolated() -> float:
        loop.begin_epoch(1)  # train mode, as in the timed epoch: the test pass leaves eval mode
        return len(train) * _timed(hw, lambda: (hw.new_step(), loop.train_step(batch)), steps)

    tested: list[float] = []
    end_epoch = loop.end_epoch

    def timed_end_epoch(*args: float) -> dict[str, float]:
        """The test pass after the epoch, timed apart: it is not the loop's overhead."""
        start = time.perf_counter()
        metrics = end_epoch(*args)
        _sync(hw)
        tested.append(time.perf_counter() - start)
        return metrics

    loop.end_epoch = timed_end_epoch  # type: ignore[method-assign]
    first = _timed(hw, lambda: loop.run_epoch(0, StopFlag(), None))
    _reset_peak(hw)
    before = isolated()
    seconds = _timed(hw, lambda: loop.run_epoch(1, StopFlag(), None))
    isolated_s = (before + isolated()) / 2
    images = len(train) * train.plan.batch_size
    return {
        "images": images,
        "seconds": seconds - tested[-1],
        "test": tested[-1],
        "first": first,
        "isolated": isolated_s,
        "peak": _peak_mib(hw),
    }


def report(label: str, result: dict) -> None:
    rate = result["images"] / result["seconds"]
    efficiency = result["isolated"] / result["seconds"]
    first = ""
    if "first" in result:
        first = f"   test pass {result['test']:6.2f} s   first epoch {result['first']:7.2f} s"
    print(
        f"{label:<34} {rate:9.1f} img/s   efficiency {efficiency:5.2f}   "
        f"peak {result['peak']:8.0f} MiB   epoch {result['seconds']:7.2f} s{first}"
    )


def configured(args: argparse.Namespace, loader: str, compile_mode: str) -> Params:
    """The params file with this measurement's loader, compiler, device and threads."""
    params = load_params(args.params)
    runtime = dataclasses.replace(
        params.runtime,
        device=args.device,
        compile=compile_mode,
        progress="never",
        threads=args.threads or params.runtime.threads,
    )
    workers = params.data.workers if args.workers is None else args.workers
    data = dataclasses.replace(params.data, loader=loader, workers=workers)
    search = dataclasses.replace(params.search, epochs=max(params.search.epochs, 2))
    train = dataclasses.replace(params.train, epochs=2)
    return dataclasses.replace(params, runtime=runtime, data=data, search=search, train=train)


def loaders(args: argparse.Namespace) -> list[str]:
    if args.loaders:
        return args.loaders
    try:
        import_dali()
    except ImportError:
        print("DALI does not import: measuring data.loader torch only")
        return ["torch"]
    return ["torch", "dali"]


def main() -> None:
    args = parse_args()
    data = synthetic(args.images, args.test_images, args.image_size)
    for loader in loaders(args):
        params = configured(args, loader, args.compile[0])
        hw = setup(params.runtime, params.seed, params.data)
        sp = params.search
        print(
            f"data.loader={loader} device={hw.device.type} threads={params.runtime.threads} "
            f"(torch {torch.get_num_threads()}) workers={params.data.workers} "
            f"L={sp.layers} C={sp.channels} {args.image_size}px amp={params.runtime.amp}"
        )
        if "search" in args.stages:
            report(
                f"  search epoch (batch {sp.batch_size} pairs)",
                search_epoch(params, data, hw, args.steps),
            )
        if "train" in args.stages:
            for mode in args.compile:
                params = configured(args, loader, mode)
                hw = dataclasses.replace(hw, compile=mode)
                label = f"  train epoch (batch {params.train.batch_size}, compile {mode})"
                report(label, train_epoch(params, data, hw, args.steps))


if __name__ == "__main__":
    try:
        main()
    except SswpError as exc:
        sys.exit(f"epoch: {exc}")
