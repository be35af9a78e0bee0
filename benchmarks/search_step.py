"""Search throughput: images/s for weight steps and arch steps, and peak memory.

    python benchmarks/search_step.py --layers 20 --channels 36 --batch 96 --device cuda
    python benchmarks/search_step.py --device cuda --compare   # fp32 vs AMP + channels_last
    python benchmarks/search_step.py --batch 32 --baseline issue-10   # this tree vs a revision

Both views count as images (a batch of 96 pairs is 192 images through the supernet).
`--baseline REV` measures the `sswp` of git revision REV and this tree's in alternating
processes, `--rounds` times each, and prints the medians and their ratio: on a machine
shared with other jobs, only such interleaved figures compare. Each version runs in its own
process, so process-wide settings (threads, the host allocator) are each version's own.
`--clock cpu` counts the process's CPU time instead of wall time, which contention
distorts less.
"""

from __future__ import annotations

import argparse
import importlib
import json
import resource
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from io import BytesIO
from pathlib import Path
from types import SimpleNamespace

import torch

ROOT = Path(__file__).resolve().parent.parent
# Each module as this tree names it, then as older trees did (for --baseline).
MODULES = (
    ("engine.distributed",),
    ("engine.objectives",),
    ("engine.hardware", "engine.runtime"),
    ("engine.stepper", "engine.search"),
    ("nas.supernet",),
)


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
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)  # one version's run
    return parser.parse_args()


def load_sswp(src: Path | None = None) -> SimpleNamespace:
    """The modules the benchmark needs, imported from `src` (default: the usual `sswp`).

    Earlier imports of `sswp` are dropped from `sys.modules` first, so that two versions
    can be loaded one after the other and live side by side.
    """
    for name in [n for n in sys.modules if n == "sswp" or n.startswith("sswp.")]:
        del sys.modules[name]
    if src is not None:
        sys.path.insert(0, str(src))
    try:
        mods = [_first_module(names) for names in MODULES]
    finally:
        if src is not None:
            sys.path.remove(str(src))
    distributed, objectives, hardware, stepper, supernet = mods
    return SimpleNamespace(
        # What a stage's setup does to the process before it builds anything (newer trees).
        prepare_process=getattr(hardware, "keep_freed_memory", lambda: None),
        DistContext=distributed.DistContext,
        SimCLRObjective=objectives.SimCLRObjective,
        Hardware=hardware.Hardware,
        SearchStepper=stepper.SearchStepper,
        SuperNet=supernet.SuperNet,
    )


def _first_module(names: tuple[str, ...]):
    """The first of `names` (under sswp) that this tree has."""
    for name in names[:-1]:
        try:
            return importlib.import_module(f"sswp.{name}")
        except ModuleNotFoundError:
            continue
    return importlib.import_module(f"sswp.{names[-1]}")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _seconds_per_step(
    step: Callable[[], object], count: int, device, clock: Callable[[], float]
) -> float:
    _sync(device)
    start = clock()
    for _ in range(count):
        step()
    _sync(device)
    return (clock() - start) / count


def build_steps(
    args: argparse.Namespace, sswp: SimpleNamespace, channels_last: bool, amp: str
) -> tuple[Callable[[], object], Callable[[], object], torch.device]:
    """A weight step and an arch step of a fresh supernet (seeded), and its device."""
    device = torch.device(args.device)
    sswp.prepare_process()
    hw = sswp.Hardware(device, sswp.DistContext(), channels_last=channels_last, amp=amp)
    torch.manual_seed(0)
    net = hw.model(sswp.SuperNet(args.layers, args.channels, args.gate_mode))
    objective = sswp.SimCLRObjective(net, hw, temperature=0.07)
    stepper = sswp.SearchStepper(
        objective,
        torch.optim.SGD(objective.weight_parameters(), 0.025, momentum=0.9),
        torch.optim.Adam(net.alphas(), 1e-3, betas=(0.0, 0.999)),
        torch.Generator().manual_seed(0),
        hw,
        grad_clip=5.0,
    )
    shape = (args.batch, 3, args.image_size, args.image_size)
    views = (torch.randn(shape), torch.randn(shape))
    return (
        lambda: stepper.weight_step(views, drop_skip=0.2),
        lambda: stepper.arch_step(views),
        device,
    )


def _peak_mib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(
    args: argparse.Namespace, sswp: SimpleNamespace, channels_last: bool, amp: str
) -> dict[str, float]:
    """Seconds per weight step and per arch step, and peak memory in MiB."""
    weight, arch, device = build_steps(args, sswp, channels_last, amp)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    result = {}
    for key, step in (("weight_s", weight), ("arch_s", arch)):
        for _ in range(args.warmup):
            step()
        result[key] = _seconds_per_step(step, args.steps, device, clock)
    return {**result, "peak_mib": _peak_mib(device)}


def report(label: str, images: int, result: dict[str, float]) -> None:
    print(
        f"{label:<28} weight {images / result['weight_s']:9.1f} img/s   "
        f"arch {images / result['arch_s']:9.1f} img/s   peak {result['peak_mib']:8.0f} MiB"
    )


def _source_of(rev: str, into: Path) -> Path:
    """The `src` tree of git revision `rev`, unpacked under `into`."""
    blob = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", rev, "src"],
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=BytesIO(blob)) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def compare_with(args: argparse.Namespace, images: int) -> None:
    """Alternate processes that measure revision `args.baseline` and this tree."""
    with tempfile.TemporaryDirectory() as tmp:
        sources = {
            f"baseline {args.baseline}": _source_of(args.baseline, Path(tmp)),
            "this tree": ROOT / "src",
        }
        runs: dict[str, list[dict[str, float]]] = {label: [] for label in sources}
        for _ in range(args.rounds):
            for label, src in sources.items():
                worker = [sys.executable, __file__, *sys.argv[1:], "--worker", str(src)]
                out = subprocess.run(worker, check=True, capture_output=True, text=True).stdout
                runs[label].append(json.loads(out.splitlines()[-1]))
    medians = {
        label: {key: statistics.median(r[key] for r in results) for key in results[0]}
        for label, results in runs.items()
    }
    for label, result in medians.items():
        report(label, images, result)
    base, new = medians.values()
    weight, arch = (base[k] / new[k] for k in ("weight_s", "arch_s"))
    print(
        f"speed-up ({args.clock} clock, medians of {args.rounds} alternating processes of "
        f"{args.steps} steps each): weight {weight:.2f}x, arch {arch:.2f}x"
    )


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    images = 2 * args.batch
    print(
        f"search step: layers={args.layers} channels={args.channels} batch={args.batch} pairs "
        f"gate_mode={args.gate_mode} device={device.type} threads={args.threads} "
        f"(peak: {'CUDA allocated' if device.type == 'cuda' else 'process RSS'})"
    )
    if args.worker:
        layout = (not args.no_channels_last, args.amp)
        print(json.dumps(measure(args, load_sswp(args.worker), *layout)))
        return
    if args.baseline:
        compare_with(args, images)
        return
    sswp = load_sswp()
    if args.compare:
        base = measure(args, sswp, channels_last=False, amp="off")
        fast = measure(args, sswp, channels_last=True, amp="bf16")
        report("fp32, contiguous", images, base)
        report("bf16 AMP + channels_last", images, fast)
        print(
            f"speed-up: weight {base['weight_s'] / fast['weight_s']:.2f}x, "
            f"arch {base['arch_s'] / fast['arch_s']:.2f}x"
        )
        return
    channels_last = not args.no_channels_last
    result = measure(args, sswp, channels_last, args.amp)
    report(f"amp={args.amp} channels_last={channels_last}", images, result)


if __name__ == "__main__":
    main()
