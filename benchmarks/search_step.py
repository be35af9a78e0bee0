"""Search throughput: images/s for weight steps and arch steps, and peak memory.

    python benchmarks/search_step.py --layers 20 --channels 36 --batch 96 --device cuda

Both views count as images (a batch of 96 pairs is 192 images through the supernet).
"""

from __future__ import annotations

import argparse
import resource
import time

import torch

from sswp.engine.runtime import prepare_model, to_device
from sswp.engine.search import arch_step, weight_step
from sswp.nas.supernet import SuperNet


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=5)
    parser.add_argument("--channels", type=int, default=8)
    parser.add_argument("--batch", type=int, default=64, help="image pairs per step")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--gate-mode", choices=("two", "full_v2"), default="two")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=2)
    return parser.parse_args()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time_steps(step, count: int, warmup: int, device: torch.device) -> float:
    for _ in range(warmup):
        step()
    _sync(device)
    start = time.perf_counter()
    for _ in range(count):
        step()
    _sync(device)
    return (time.perf_counter() - start) / count


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    net = prepare_model(SuperNet(args.layers, args.channels, args.gate_mode), device)
    weight_opt = torch.optim.SGD(net.weight_parameters(), 0.025, momentum=0.9)
    arch_opt = torch.optim.Adam(net.alphas(), 1e-3, betas=(0.0, 0.999))
    generator = torch.Generator().manual_seed(0)
    shape = (args.batch, 3, args.image_size, args.image_size)
    v1, v2 = to_device(torch.randn(shape), device), to_device(torch.randn(shape), device)

    def one_weight_step() -> None:
        weight_step(net, weight_opt, generator, (v1, v2), 0.07, 5.0, drop_skip=0.2)

    def one_arch_step() -> None:
        arch_step(net, arch_opt, generator, (v1, v2), 0.07)

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    weight_s = _time_steps(one_weight_step, args.steps, args.warmup, device)
    arch_s = _time_steps(one_arch_step, args.steps, args.warmup, device)
    images = 2 * args.batch
    if device.type == "cuda":
        peak = f"{torch.cuda.max_memory_allocated(device) / 2**20:.0f} MiB (CUDA allocated)"
    else:
        peak = f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB (process RSS)"
    print(
        f"search step  layers={args.layers} channels={args.channels} batch={args.batch} pairs "
        f"gate_mode={args.gate_mode} device={device.type}"
    )
    print(f"weight step  {images / weight_s:9.1f} images/s  ({weight_s * 1000:.1f} ms/step)")
    print(f"arch step    {images / arch_s:9.1f} images/s  ({arch_s * 1000:.1f} ms/step)")
    print(f"arch/weight  {weight_s / arch_s:9.2f}x throughput ratio")
    print(f"peak memory  {peak}")


if __name__ == "__main__":
    main()
