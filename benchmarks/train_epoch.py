"""One short training epoch of a child network: images/s and the epoch's wall time.

    python benchmarks/train_epoch.py --device cuda --layers 20 --channels 36 --images 10240

Random CIFAR-shaped data, the supervised loop of the train stage (AMP, channels_last,
auxiliary head, drop path, grad clipping), so the number is what `sswp train` gets per image.
"""

from __future__ import annotations

import argparse
import time
from types import SimpleNamespace

import torch

from sswp.config import SupervisedParams
from sswp.engine.distributed import DistContext
from sswp.engine.interrupt import StopFlag
from sswp.engine.runtime import Hardware
from sswp.engine.supervised import SupervisedLoop
from sswp.models.child import ChildNetwork
from sswp.nas.genotype import derive_genotype


class _Batches(list):
    def set_epoch(self, epoch: int) -> None:
        """Random data needs no reshuffle."""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--images", type=int, default=2048)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--amp", choices=("off", "bf16", "fp16"), default="bf16")
    parser.add_argument("--threads", type=int, default=2)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    hw = Hardware(torch.device(args.device), DistContext(), channels_last=True, amp=args.amp)
    genotype = derive_genotype([torch.randn(14, 7) for _ in range(args.layers)])
    model = hw.model(ChildNetwork(genotype, args.channels, num_classes=10, auxiliary=True))
    batches = _Batches(
        (torch.randn(args.batch, 3, 32, 32), torch.randint(0, 10, (args.batch,)))
        for _ in range(args.images // args.batch)
    )
    sp = SupervisedParams(1, args.batch, 0.025, 0.9, 3e-4, 0, 16, 0.4, 0.3, 5.0, 0.0)
    runtime = SimpleNamespace(sync_bn=False, progress="never")
    loop = SupervisedLoop(model, batches, _Batches(batches[:2]), sp, runtime, hw, "bench")
    loop.train_epoch(0, StopFlag(), None, None)  # warm-up: cuDNN autotuning, allocator
    if hw.device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    loop.train_epoch(1, StopFlag(), None, None)
    if hw.device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    images = len(batches) * args.batch
    rate = images / seconds
    print(
        f"train epoch: layers={args.layers} channels={args.channels} amp={args.amp} "
        f"device={hw.device.type}: {images} images in {seconds:.2f} s = {rate:.0f} img/s"
    )


if __name__ == "__main__":
    main()
