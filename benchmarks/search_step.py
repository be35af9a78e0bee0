"""Search throughput: images/s for weight steps and arch steps, and peak memory.

    python benchmarks/search_step.py --layers 20 --channels 36 --batch 96 --device cuda
    python benchmarks/search_step.py --device cuda --compare   # fp32 vs AMP + channels_last
    python benchmarks/search_step.py --batch 32 --baseline issue-10   # this tree vs a revision

Both views count as images (a batch of 96 pairs is 192 images through the supernet).
`--baseline REV` runs the same measurement on the `src` of git revision REV and on this
tree, in alternating subprocesses, and prints the medians and their ratio: on a machine
shared with other jobs, only such interleaved figures compare. `--clock cpu` counts the
process's CPU time instead of wall time, which contention distorts less.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from io import BytesIO
from pathlib import Path

import torch

from sswp.engine.distributed import DistContext
from sswp.engine.objectives import SimCLRObjective
from sswp.engine.runtime import Hardware
from sswp.engine.search import SearchStepper
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
    parser.add_argument("--amp", choices=("off", "bf16", "fp16"), default="off")
    parser.add_argument("--no-channels-last", action="store_true")
    parser.add_argument(
        "--compare", action="store_true", help="fp32 contiguous against bf16 + channels_last"
    )
    parser.add_argument("--baseline", metavar="REV", help="git revision to compare this tree with")
    parser.add_argument("--rounds", type=int, default=5, help="alternations with --baseline")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _seconds_per_step(
    step: Callable[[], object], count: int, warmup: int, device, clock: Callable[[], float]
) -> float:
    for _ in range(warmup):
        step()
    _sync(device)
    start = clock()
    for _ in range(count):
        step()
    _sync(device)
    return (clock() - start) / count


def measure(args: argparse.Namespace, hw: Hardware) -> dict[str, float]:
    """Seconds per weight step and per arch step, and peak memory in MiB."""
    torch.manual_seed(0)
    net = hw.model(SuperNet(args.layers, args.channels, args.gate_mode))
    objective = SimCLRObjective(net, hw, temperature=0.07)
    stepper = SearchStepper(
        objective,
        torch.optim.SGD(objective.weight_parameters(), 0.025, momentum=0.9),
        torch.optim.Adam(net.alphas(), 1e-3, betas=(0.0, 0.999)),
        torch.Generator().manual_seed(0),
        hw,
        grad_clip=5.0,
    )
    shape = (args.batch, 3, args.image_size, args.image_size)
    views = (torch.randn(shape), torch.randn(shape))
    if hw.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(hw.device)
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    weight_s = _seconds_per_step(
        lambda: stepper.weight_step(views, drop_skip=0.2),
        args.steps,
        args.warmup,
        hw.device,
        clock,
    )
    arch_s = _seconds_per_step(
        lambda: stepper.arch_step(views), args.steps, args.warmup, hw.device, clock
    )
    if hw.device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(hw.device) / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"weight_s": weight_s, "arch_s": arch_s, "peak_mib": peak}


def report(label: str, images: int, result: dict[str, float]) -> None:
    print(
        f"{label:<28} weight {images / result['weight_s']:9.1f} img/s   "
        f"arch {images / result['arch_s']:9.1f} img/s   peak {result['peak_mib']:8.0f} MiB"
    )


def _source_of(rev: str, into: Path) -> Path:
    """The `src` tree of git revision `rev`, unpacked under `into`."""
    root = Path(__file__).resolve().parent.parent
    blob = subprocess.run(
        ["git", "-C", str(root), "archive", "--format=tar", rev, "src"],
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=BytesIO(blob)) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def _child_argv(args: argparse.Namespace) -> list[str]:
    """The options of one measurement, for a subprocess."""
    names = ("layers", "channels", "batch", "image_size", "gate_mode", "steps", "warmup")
    argv = [f"--{name.replace('_', '-')}={getattr(args, name)}" for name in names]
    argv += [f"--device={args.device}", f"--threads={args.threads}", f"--amp={args.amp}"]
    argv += [f"--clock={args.clock}", *(["--no-channels-last"] if args.no_channels_last else [])]
    return argv


def _measure_in(src: Path, argv: list[str]) -> dict[str, float]:
    """One measurement in a fresh process that imports `sswp` from `src`."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    out = subprocess.run(
        [sys.executable, __file__, *argv, "--json"],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    ).stdout
    return json.loads(out.splitlines()[-1])


def compare_with(args: argparse.Namespace, argv: list[str], images: int) -> None:
    """Alternate the baseline revision and this tree; report medians and their ratio."""
    here = Path(__file__).resolve().parent.parent / "src"
    with tempfile.TemporaryDirectory() as tmp:
        # A copy of this tree's src, so that edits during the run do not leak into it.
        sources = {
            f"baseline {args.baseline}": _source_of(args.baseline, Path(tmp) / "baseline"),
            "this tree": Path(shutil.copytree(here, Path(tmp) / "this" / "src")),
        }
        runs: dict[str, list[dict[str, float]]] = {label: [] for label in sources}
        for _ in range(args.rounds):
            for label, src in sources.items():
                runs[label].append(_measure_in(src, argv))
    medians = {
        label: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for label, rs in runs.items()
    }
    for label, result in medians.items():
        report(label, images, result)
    base, new = medians.values()
    weight, arch = (base[k] / new[k] for k in ("weight_s", "arch_s"))
    print(
        f"speed-up ({args.clock} clock, medians of {args.rounds} alternating runs): "
        f"weight {weight:.2f}x, arch {arch:.2f}x"
    )


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    images = 2 * args.batch
    if args.json:
        hw = Hardware(device, DistContext(), not args.no_channels_last, args.amp)
        print(json.dumps(measure(args, hw)))
        return
    print(
        f"search step: layers={args.layers} channels={args.channels} batch={args.batch} pairs "
        f"gate_mode={args.gate_mode} device={device.type} "
        f"(peak: {'CUDA allocated' if device.type == 'cuda' else 'process RSS'})"
    )
    if args.baseline:
        compare_with(args, _child_argv(args), images)
        return
    if args.compare:
        base = measure(args, Hardware(device, DistContext(), channels_last=False, amp="off"))
        fast = measure(args, Hardware(device, DistContext(), channels_last=True, amp="bf16"))
        report("fp32, contiguous", images, base)
        report("bf16 AMP + channels_last", images, fast)
        print(
            f"speed-up: weight {base['weight_s'] / fast['weight_s']:.2f}x, "
            f"arch {base['arch_s'] / fast['arch_s']:.2f}x"
        )
        return
    hw = Hardware(device, DistContext(), channels_last=not args.no_channels_last, amp=args.amp)
    report(f"amp={args.amp} channels_last={hw.channels_last}", images, measure(args, hw))


if __name__ == "__main__":
    main()
