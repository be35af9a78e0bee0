"""Eager against compiled child training steps, interleaved: the ratio and the compile time.

    python benchmarks/compile_step.py                      # the default digits child on CPU
    python benchmarks/compile_step.py --device cuda --layers 20 --channels 36 --image-size 32 \
        --batch 128 --mode max-autotune

Both networks start from the same weights and train on the same batch through the train
stage's SupervisedLoop.train_step. Rounds alternate a few eager and a few compiled steps,
so a machine whose load drifts slows both alike; the median of the per-round ratios is
printed. The compile time is the first compiled step (forward and backward) less an eager
one; torch's on-disk kernel cache makes a second run of the same shapes compile faster.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import statistics
import time

import torch

from sswp.config.load import load_params
from sswp.engine.distributed import DistContext
from sswp.engine.hardware import Hardware
from sswp.engine.supervised import SupervisedLoop
from sswp.models.child import ChildNetwork
from sswp.nas.reference import reference_genotype


class _OneBatch(list):
    def set_epoch(self, epoch: int) -> None:
        """A fixed batch needs no reshuffle."""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=5)
    parser.add_argument("--channels", type=int, default=8)
    parser.add_argument("--image-size", type=int, default=16)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--mode", choices=("default", "max-autotune"), default="default")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--amp", choices=("off", "bf16", "fp16"), default="bf16")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--steps", type=int, default=3, help="steps of each per round")
    return parser.parse_args()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    params = load_params("params.yaml")
    device = torch.device(args.device)
    sp = dataclasses.replace(params.train, batch_size=args.batch)
    runtime = dataclasses.replace(params.runtime, progress="never")
    model = ChildNetwork(reference_genotype("darts_v2", args.layers), args.channels, 10, True)
    shape = (args.batch, 3, args.image_size, args.image_size)
    batch = (torch.randn(shape), torch.randint(0, 10, (args.batch,)))
    loops = {}
    for mode in ("off", args.mode):
        hw = Hardware(device, DistContext(), channels_last=True, amp=args.amp, compile=mode)
        net = hw.model(copy.deepcopy(model))
        loops[mode] = SupervisedLoop(net, _OneBatch([batch]), None, sp, runtime, hw, mode)

    def seconds(mode: str, steps: int) -> float:
        loop = loops[mode]
        _sync(device)
        start = time.perf_counter()
        for _ in range(steps):
            loop.hw.new_step()
            loop.train_step(batch)
        _sync(device)
        return (time.perf_counter() - start) / steps

    seconds("off", 1)  # warm-up: oneDNN primitives, the allocator
    compile_s = seconds(args.mode, 1) - seconds("off", 1)
    ratios, eager, compiled = [], [], []
    for _ in range(args.rounds):
        eager.append(seconds("off", args.steps))
        compiled.append(seconds(args.mode, args.steps))
        ratios.append(eager[-1] / compiled[-1])
    print(
        f"child L={args.layers} C={args.channels} {args.image_size}px batch {args.batch} "
        f"amp={args.amp} device={device.type} threads={args.threads}, compile {args.mode}"
    )
    print(f"compile time  {compile_s:8.1f} s (first compiled step less an eager one)")
    print(f"eager         {args.batch / statistics.median(eager):8.1f} img/s (median round)")
    print(f"compiled      {args.batch / statistics.median(compiled):8.1f} img/s (median round)")
    print(f"speed-up      {statistics.median(ratios):8.2f}x (median of per-round ratios)")
    print(f"pays back after {_payback(compile_s, eager, compiled):8.0f} steps of training")


def _payback(compile_s: float, eager: list[float], compiled: list[float]) -> float:
    """Steps after which the compiled network has caught up with the time it spent compiling."""
    saved = statistics.median(eager) - statistics.median(compiled)
    return float("inf") if saved <= 0 else compile_s / saved


if __name__ == "__main__":
    main()
