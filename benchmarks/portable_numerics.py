"""What runtime.portable_numerics costs: a search step and a finetune epoch, pinned and not.

    python benchmarks/portable_numerics.py                 # default params, 5 rounds
    python benchmarks/portable_numerics.py --rounds 9 --steps 20

Each measurement runs in its own process, with the environment `sswp` sets when the
setting is on (sswp.pipeline.numerics.PORTABLE_ENV) or the machine's own when it is off, the two
alternating `--rounds` times; the medians and their ratio are printed. On a machine that
other jobs share, only such interleaved figures compare, and even they are noisy.

The search step is a weight step of the default supernet on a batch of SimCLR view pairs
(random images at data.image_size); the finetune epoch is `finetune.batch_size` steps of
the child of the P-DARTS genotype over as many images as the default's largest label ratio
of digits' 1437 training images, plus momentum SGD. Both in fp32, channels_last, on
runtime.threads threads, as the stages run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from sswp.pipeline.numerics import PORTABLE_ENV

DIGITS_TRAIN_IMAGES = 1437
CLASSES = 10


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--rounds", type=int, default=5, help="alternations of on and off")
    parser.add_argument("--steps", type=int, default=10, help="search steps timed per process")
    parser.add_argument("--worker", choices=("on", "off"), help=argparse.SUPPRESS)
    return parser.parse_args()


def _timed(fn, count: int) -> float:
    """Median seconds of `count` calls, after one untimed warm-up call."""
    fn()
    times = []
    for _ in range(count):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(params_file: Path, steps: int) -> dict[str, object]:
    """In a worker process: seconds per search step and per finetune epoch."""
    import torch

    from sswp.config.load import load_params
    from sswp.models.child import ChildNetwork
    from sswp.nas.reference import reference_genotype
    from sswp.nas.supernet import SuperNet
    from sswp.ssl.simclr import nt_xent

    params = load_params(params_file)
    torch.set_num_threads(params.runtime.threads)
    torch.manual_seed(0)
    size, search = params.data.image_size, params.search
    net = SuperNet(search.layers, search.channels, search.gate_mode, search.stem)
    net = net.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(net.weight_parameters(), lr=0.01, momentum=0.9)
    generator = torch.Generator().manual_seed(0)
    views = [
        torch.randn(search.batch_size, 3, size, size).contiguous(memory_format=torch.channels_last)
        for _ in range(2)
    ]

    def search_step() -> None:
        net.sample_paths(generator)
        optimizer.zero_grad(set_to_none=True)
        loss, _ = nt_xent(net(views[0]), net(views[1]), search.temperature)
        loss.backward()
        optimizer.step()

    finetune = params.finetune
    genotype = reference_genotype("pdarts", search.layers)
    child = ChildNetwork(genotype, search.channels, CLASSES, auxiliary=False)
    child = child.to(memory_format=torch.channels_last)
    child_optimizer = torch.optim.SGD(child.parameters(), lr=0.01, momentum=0.9)
    images = max(finetune.batch_size, round(max(finetune.label_ratios) * DIGITS_TRAIN_IMAGES))
    batches = math.ceil(images / finetune.batch_size)
    batch = torch.randn(finetune.batch_size, 3, size, size).contiguous(
        memory_format=torch.channels_last
    )
    labels = torch.arange(finetune.batch_size) % CLASSES

    def finetune_epoch() -> None:
        for _ in range(batches):
            child_optimizer.zero_grad(set_to_none=True)
            out = child(batch)
            logits = out[0] if isinstance(out, tuple) else out
            torch.nn.functional.cross_entropy(logits, labels).backward()
            child_optimizer.step()

    return {
        "capability": torch.backends.cpu.get_cpu_capability(),
        "search_step_s": _timed(search_step, steps),
        "finetune_epoch_s": _timed(finetune_epoch, 3),
    }


def run_worker(setting: str, args: argparse.Namespace) -> dict[str, object]:
    env = dict(os.environ)
    if setting == "on":
        env.update(PORTABLE_ENV)
    command = [sys.executable, __file__, "--worker", setting, "--params", str(args.params)]
    command += ["--steps", str(args.steps)]
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    args = parse_args()
    if args.worker:
        print(json.dumps(measure(args.params, args.steps)))
        return
    results: dict[str, list[dict[str, object]]] = {"on": [], "off": []}
    for round_ in range(args.rounds):
        for setting in ("on", "off") if round_ % 2 == 0 else ("off", "on"):
            result = run_worker(setting, args)
            results[setting].append(result)
            print(f"round {round_ + 1} {setting}: {result}", file=sys.stderr, flush=True)
    print(f"{args.rounds} alternating rounds, {os.cpu_count()} CPUs; medians:")
    for key, label in (("search_step_s", "search step"), ("finetune_epoch_s", "finetune epoch")):
        on = statistics.median(float(r[key]) for r in results["on"])
        off = statistics.median(float(r[key]) for r in results["off"])
        print(f"  {label}: on {on:.4f} s, off {off:.4f} s, on/off = {on / off:.3f}")
    for setting in ("on", "off"):
        print(f"  torch CPU kernels, {setting}: {results[setting][0]['capability']}")


if __name__ == "__main__":
    main()
