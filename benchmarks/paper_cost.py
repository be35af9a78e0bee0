"""GPU-hours of every stage of a params file, from measured step rates: an estimate.

    python benchmarks/paper_cost.py                           # params/cifar10.yaml, the rates below
    python benchmarks/paper_cost.py --rates rates.json        # {"device": ..., "weight_step": ...}
    python benchmarks/paper_cost.py --train-rate 2500 --device "H200, compiled child"

It reads the real config (epochs, batch sizes, search phases and arch_every, the trained
architectures, label ratios, finetune arms, linear-eval protocol, seeds) and counts the
images each stage puts through its network, then divides by the rates. Rates are images/s
of one GPU; both views of a SimCLR pair count as images (as benchmarks/search_step.py
counts them). Passes without a backward (test passes, linear-eval features, the frozen
backbone of the augmented protocol) run `--forward-factor` times faster than a training
step: an assumption (a backward costs about two forwards), not a measurement. Loader and
start-up time are left out (benchmarks/epoch.py measures the loop's efficiency).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from sswp.config.load import load_params
from sswp.config.params import Params
from sswp.engine.phases import build_schedule
from sswp.errors import SswpError
from sswp.pipeline.contract import LINEAR_EVAL_ARMS

# The last GPU measurement (issue 13): search steps and a child training epoch.
MEASURED = {
    "device": "H100-class GPU, L=20, C=36, bf16, eager",
    "weight_step": 870.0,  # search weight steps, batch 96 pairs
    "arch_step": 455.0,  # search arch steps, batch 96 pairs
    "child_train": 817.0,  # child network training, batch 128
}
# (training images, test images) of the built-in datasets, before data.subset.
DATASET_SIZES = {
    "cifar10": (50_000, 10_000),
    "cifar100": (50_000, 10_000),
    "imagenet": (1_281_167, 50_000),
    "digits": (1_437, 360),
}
FINETUNE_ARMS = ("preserved", "random", "two_stage")


@dataclass(frozen=True)
class Rates:
    device: str
    weight_step: float
    arch_step: float
    child_train: float
    forward_factor: float

    @property
    def child_forward(self) -> float:
        return self.child_train * self.forward_factor


@dataclass(frozen=True)
class Cost:
    """One stage for one seed: its runs, and the seconds of all of them."""

    stage: str
    runs: int
    epochs: int
    images: float  # through the network, all runs
    seconds: float


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params/cifar10.yaml"))
    parser.add_argument("--rates", type=Path, help="JSON with any of the rate keys and device")
    parser.add_argument("--weight-rate", type=float, help="search weight steps, images/s")
    parser.add_argument("--arch-rate", type=float, help="search arch steps, images/s")
    parser.add_argument("--train-rate", type=float, help="child training, images/s")
    parser.add_argument("--device", help="where the rates were measured")
    parser.add_argument("--forward-factor", type=float, default=3.0)
    parser.add_argument("--train-images", type=int, help="default: the dataset's")
    parser.add_argument("--test-images", type=int, help="default: the dataset's")
    return parser.parse_args()


def rates_of(args: argparse.Namespace) -> Rates:
    """The measured defaults, then the JSON file, then the flags."""
    rates: dict = dict(MEASURED)
    if args.rates:
        try:
            given = json.loads(args.rates.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise SswpError(f"cannot read rates {args.rates}: {exc}") from None
        unknown = set(given) - set(MEASURED)
        if unknown:
            raise SswpError(f"{args.rates}: unknown keys {sorted(unknown)}; use {list(MEASURED)}")
        rates.update(given)
    flags = {
        "weight_step": args.weight_rate,
        "arch_step": args.arch_rate,
        "child_train": args.train_rate,
        "device": args.device,
    }
    rates.update({key: value for key, value in flags.items() if value is not None})
    for key in ("weight_step", "arch_step", "child_train"):
        if not isinstance(rates[key], int | float) or rates[key] <= 0:
            raise SswpError(f"rate {key} = {rates[key]!r} must be a positive number of images/s")
    if args.forward_factor <= 0:
        raise SswpError(f"--forward-factor {args.forward_factor} must be positive")
    return Rates(forward_factor=args.forward_factor, **rates)


def dataset_size(params: Params, args: argparse.Namespace) -> tuple[int, int]:
    known = DATASET_SIZES.get(params.data.dataset)
    if known is None and (args.train_images is None or args.test_images is None):
        raise SswpError(
            f"data.dataset = {params.data.dataset!r} has no built-in size; "
            "give --train-images and --test-images"
        )
    train, test = known or (0, 0)
    train = args.train_images or train
    return round(train * params.data.subset), args.test_images or test


def search_cost(params: Params, train: int, test: int, rates: Rates) -> Cost:
    """Weight steps on one half, an arch step every arch_every while a cell is unfrozen,
    and forward passes of both views of the test set at the selection evaluations."""
    sp = params.search
    schedule = build_schedule(sp)
    weight_steps = (train // 2) // sp.batch_size
    arch_steps = weight_steps // sp.arch_every
    pair = 2 * sp.batch_size
    freezes = sorted(epoch for epoch, _ in schedule.freeze_epochs)
    arch_epochs = sum(
        1
        for epoch in range(schedule.arch_start, schedule.epochs)
        if sum(e <= epoch for e in freezes) < sp.layers
    )
    evaluations = len(
        {schedule.epochs - 1} | set(range(schedule.eval_start, schedule.epochs, sp.eval_every))
    )
    weight_images = schedule.epochs * weight_steps * pair
    arch_images = arch_epochs * arch_steps * pair
    eval_images = evaluations * 2 * test
    seconds = (
        weight_images / rates.weight_step
        + arch_images / rates.arch_step
        + eval_images / (rates.weight_step * rates.forward_factor)
    )
    return Cost("search", 1, schedule.epochs, weight_images + arch_images + eval_images, seconds)


def supervised_seconds(
    labelled: int, epochs: int, batch: int, test: int, rates: Rates
) -> tuple[float, float]:
    """(images, seconds) of a train or finetune run: full batches, a test pass every epoch."""
    trained = epochs * (labelled // batch) * batch
    tested = epochs * test
    return trained + tested, trained / rates.child_train + tested / rates.child_forward


def labelled_count(train: int, ratio: float) -> int:
    """Class-balanced subsets round each class's share; the total is close to this."""
    return round(train * ratio)


def label_ratio_costs(
    params: Params, train: int, test: int, rates: Rates
) -> dict[str, dict[float, tuple[float, float]]]:
    """{arm: {ratio: (images, seconds)}}: finetune arms, then linear eval (all its arms)."""
    ft, lp = params.finetune, params.linear_eval
    arms = [a for a in FINETUNE_ARMS if a in (*ft.inits, "two_stage")]
    table: dict[str, dict[float, tuple[float, float]]] = {}
    for arm in arms:
        table[f"finetune {arm}"] = {
            r: supervised_seconds(labelled_count(train, r), ft.epochs, ft.batch_size, test, rates)
            for r in ft.label_ratios
        }
    linear: dict[float, tuple[float, float]] = {}
    for ratio in ft.label_ratios:
        labelled = labelled_count(train, ratio)
        if lp.protocol == "features":
            images = float(labelled + test)
        else:
            images = float(lp.epochs * ((labelled // lp.batch_size) * lp.batch_size + test))
        images *= len(LINEAR_EVAL_ARMS)
        linear[ratio] = (images, images / rates.child_forward)
    table[f"linear eval ({len(LINEAR_EVAL_ARMS)} arms)"] = linear
    return table


def stage_costs(params: Params, train: int, test: int, rates: Rates) -> list[Cost]:
    costs = [search_cost(params, train, test, rates)]
    tp = params.train
    images, seconds = supervised_seconds(train, tp.epochs, tp.batch_size, test, rates)
    runs = len(tp.trained())
    costs.append(Cost("train", runs, tp.epochs, runs * images, runs * seconds))
    pp = params.pretrain
    pretrain_images = train if pp.images == "all" else train // 2
    images = pp.epochs * (pretrain_images // pp.batch_size) * 2 * pp.batch_size
    costs.append(Cost("pretrain", 1, pp.epochs, images, images / rates.child_train))
    for arm, by_ratio in label_ratio_costs(params, train, test, rates).items():
        epochs = params.finetune.epochs if arm.startswith("finetune") else params.linear_eval.epochs
        costs.append(
            Cost(
                arm,
                len(by_ratio),
                epochs,
                sum(i for i, _ in by_ratio.values()),
                sum(s for _, s in by_ratio.values()),
            )
        )
    return costs


def print_tables(params: Params, costs: list[Cost], rates: Rates, source: Path) -> None:
    seeds = len(params.seeds)
    print(
        f"Estimated GPU-hours of {source} from measured rates ({rates.device}): weight step "
        f"{rates.weight_step:g} img/s, arch step {rates.arch_step:g} img/s, child training "
        f"{rates.child_train:g} img/s, forward-only passes x{rates.forward_factor:g}.\n"
    )
    print("| stage | runs per seed | epochs | images (M) | GPU-hours per seed |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for cost in costs:
        print(
            f"| {cost.stage} | {cost.runs} | {cost.epochs} | {cost.images / 1e6:.1f} "
            f"| {cost.seconds / 3600:.1f} |"
        )
    per_seed = sum(c.seconds for c in costs) / 3600
    table = sum(c.seconds for c in costs if c.stage.startswith(("finetune", "linear", "pre")))
    print(f"| **label-ratio table** (pretrain, finetune, linear eval) | | | | {table / 3600:.1f} |")
    print(f"| **one seed** | | | | {per_seed:.1f} |")
    print(f"| **{seeds} seeds** | | | | {per_seed * seeds:.1f} |")


def main() -> None:
    args = parse_args()
    rates = rates_of(args)
    params = load_params(args.params)
    train, test = dataset_size(params, args)
    costs = stage_costs(params, train, test, rates)
    print_tables(params, costs, rates, args.params)
    by_ratio = label_ratio_costs(params, train, test, rates)
    ratios = params.finetune.label_ratios
    print("\nGPU-hours per label ratio and arm, one seed:\n")
    print("| arm | " + " | ".join(f"{r:g}" for r in ratios) + " |")
    print("| --- |" + " ---: |" * len(ratios))
    for arm, cells in by_ratio.items():
        print(f"| {arm} | " + " | ".join(f"{cells[r][1] / 3600:.1f}" for r in ratios) + " |")


if __name__ == "__main__":
    try:
        main()
    except SswpError as exc:
        sys.exit(f"paper_cost: {exc}")
