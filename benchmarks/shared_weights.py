"""Why a supernet's shared weights learn little under per-step path sampling: measurements.

    sswp prepare && python benchmarks/shared_weights.py            # the default's search
    python benchmarks/shared_weights.py --epochs 40 --modes sampled fixed

Run it in a checkout with prepared data. Each training mode gives the supernet the search's
own weight steps (its loaders, SGD and cosine over `--epochs`, no arch steps), then reads the
label-free measure (SimCLR on the validation images' fixed views): along the trained path
for the modes with one path, and averaged over 4 sampled paths for the others.

Modes, each isolating one factor of per-step sampling:
  sampled        a fresh path every step (the search's warm-up; the original's)
  fixed          one path, sampled once and kept (the supernet as one network)
  fixed-sparse   that one path, but each op steps in a random 1/7 of the steps: as few updates
                 as sampling gives an op, in a context that never changes
  pool8          8 paths, one drawn at random every step
  no-momentum    fresh paths, SGD without momentum: no stale momentum on ops sampled rarely

Gradient coherence (mean pairwise dot product over mean squared norm, 1 for identical
gradients, about 0 for unrelated ones) of each parametric op's weights, on the untrained
supernet and after the `sampled` mode: across paths on one batch (the noise sampling adds),
across batches on one path (SGD's own noise), and across both (what training sees). The
inputs' statistics: how much each edge's per-channel input mean moves, relative to its
spread, across paths and across batches. BN: a sampled path's loss with the running
statistics against each batch's own.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Iterator

from sswp.pipeline.numerics import pin_portable_numerics

pin_portable_numerics()  # as every stage does (runtime.portable_numerics), before torch loads

import torch  # noqa: E402

from sswp.config.load import load_params  # noqa: E402
from sswp.data.datasets import load_prepared, normalization  # noqa: E402
from sswp.engine.hardware import setup  # noqa: E402
from sswp.engine.heldout import VIEWS_SEED, batch_statistics  # noqa: E402
from sswp.engine.search import SearchLoop  # noqa: E402
from sswp.nas.genotype import EDGES_PER_CELL, STEPS, edge_index  # noqa: E402
from sswp.nas.ops import NON_PARAMETRIC  # noqa: E402

MODES = ("sampled", "fixed", "fixed-sparse", "pool8", "no-momentum")
SAMPLES = 24  # gradients per coherence estimate
FROM_INPUTS = {edge_index(node, src) for node in range(STEPS) for src in (0, 1)}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, help="weight epochs (default: search.epochs)")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    return parser.parse_args()


def new_loop(args: argparse.Namespace, momentum: float | None = None) -> SearchLoop:
    """A fresh, seeded supernet with the search's loaders and weight optimiser."""
    params = load_params(args.params).with_seed(args.seed)
    hw = setup(params.runtime, args.seed, params.data)
    data, splits, manifest = load_prepared()
    loop = SearchLoop(params, data, splits, normalization(manifest), hw)
    if momentum is not None:
        for group in loop.weight_opt.param_groups:
            group["momentum"] = momentum
    return loop


def edges(loop: SearchLoop) -> list:
    return [edge for cell in loop.net.cells for edge in cell.edges]


def path_of(loop: SearchLoop) -> list[tuple[int, tuple[int, ...]]]:
    return [(edge.active, edge.inactive) for edge in edges(loop)]


def set_path(loop: SearchLoop, path: list[tuple[int, tuple[int, ...]]]) -> None:
    for edge, (active, inactive) in zip(edges(loop), path, strict=True):
        edge.set_path(active, inactive)


def sampler(loop: SearchLoop, mode: str) -> Callable[[], None]:
    """What picks the path before each weight step in `mode`."""
    sample = loop.net.sample_paths
    if mode in ("sampled", "no-momentum"):
        return lambda: sample(loop.paths)
    pool = []
    for _ in range(8 if mode == "pool8" else 1):
        sample(loop.paths)
        pool.append(path_of(loop))
    picks = torch.Generator().manual_seed(5)
    return lambda: set_path(loop, pool[int(torch.randint(len(pool), (1,), generator=picks))])


def sparse_updates(loop: SearchLoop, keep: float) -> None:
    """Before each SGD step, drop each edge's gradient with probability 1 - keep."""
    coin = torch.Generator().manual_seed(7)

    def drop(optimizer, args, kwargs) -> None:
        for edge in edges(loop):
            if torch.rand((), generator=coin) >= keep:
                for p in edge.ops[edge.active].parameters():
                    p.grad = None

    loop.weight_opt.register_step_pre_hook(drop)


class MomentumAge:
    """Before each SGD step: the cosine between each trained op's momentum buffer (from the
    last step that trained it) and its new gradient, and how many steps ago that was."""

    def __init__(self, loop: SearchLoop):
        self.loop, self.step, self.last = loop, 0, {}
        self.cosines: list[float] = []
        self.ages: list[int] = []
        loop.weight_opt.register_step_pre_hook(self)

    def __call__(self, optimizer, args, kwargs) -> None:
        self.step += 1
        for e, edge in enumerate(edges(self.loop)):
            if edge.active in NON_PARAMETRIC:
                continue
            params = [p for p in edge.ops[edge.active].parameters() if p.grad is not None]
            buffers = [optimizer.state.get(p, {}).get("momentum_buffer") for p in params]
            if not params:
                continue  # not trained in this step (fixed-sparse drops its gradient)
            if all(b is not None for b in buffers):
                grad = torch.cat([p.grad.flatten() for p in params])
                buffer = torch.cat([b.flatten() for b in buffers])
                cosine = torch.nn.functional.cosine_similarity(grad, buffer, dim=0)
                self.cosines.append(cosine.item())
                self.ages.append(self.step - self.last[(e, edge.active)])
            self.last[(e, edge.active)] = self.step


def train(args: argparse.Namespace, mode: str) -> dict[str, float]:
    loop = new_loop(args, momentum=0.0 if mode == "no-momentum" else None)
    epochs = args.epochs or loop.sp.epochs
    pick = sampler(loop, mode)
    if mode == "fixed-sparse":
        sparse_updates(loop, keep=1 / 7)
    momentum = MomentumAge(loop)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(loop.weight_opt, epochs)
    loop.net.sample_paths = lambda *a, **k: pick()  # the stepper samples through this
    start, losses = time.perf_counter(), []
    for epoch in range(epochs):
        loop.weight_loader.set_epoch(epoch)
        losses = [loop.stepper.weight_step(batch)[0] for batch in loop.weight_loader]
        schedule.step()
    trained = time.perf_counter() - start
    one_path = mode in ("fixed", "fixed-sparse")
    paths = [path_of(loop)] if one_path else []
    if not one_path:
        for _ in range(4):
            pick()
            paths.append(path_of(loop))
    measured = [measure_path(loop, path) for path in paths]
    out = {
        "train loss (last epoch)": statistics.fmean(losses),
        "val loss, batch BN": statistics.fmean(m[0] for m in measured),
        "val loss, running BN": statistics.fmean(m[1] for m in measured),
        "val acc": statistics.fmean(m[2] for m in measured),
        "momentum/grad cosine": statistics.fmean(momentum.cosines or [float("nan")]),
        "steps since op's last update": statistics.fmean(momentum.ages or [float("nan")]),
        "seconds": trained,
    }
    if mode == "sampled":
        out.update({f"after: {k}": v for k, v in coherence(loop).items()})
    return out


def measure_path(loop: SearchLoop, path) -> tuple[float, float, float]:
    """The label-free measure on `path`: with each batch's BN statistics, and with the
    running ones (which average over every path trained)."""
    set_path(loop, path)
    scores = loop.heldout.measure(loop.objective, loop.objective)
    loop.objective.eval()
    with torch.no_grad(), torch.random.fork_rng():
        torch.manual_seed(VIEWS_SEED)
        loop.heldout.loader.set_epoch(0)
        running = statistics.fmean(loop.objective(b)[0].item() for b in loop.heldout.loader)
    loop.objective.train()
    return scores["val_ssl_loss"], running, scores["val_ssl_acc"]


def gradients(loop: SearchLoop, batch) -> dict[tuple[int, int], torch.Tensor]:
    """The gradient of each active parametric op's weights, keyed by (edge, op)."""
    loop.objective.zero_grad(set_to_none=True)
    loss, _ = loop.objective(batch)
    loss.backward()
    out = {}
    for e, edge in enumerate(edges(loop)):
        params = [p for p in edge.ops[edge.active].parameters() if p.grad is not None]
        if edge.active not in NON_PARAMETRIC and params:
            out[(e, edge.active)] = torch.cat([p.grad.flatten() for p in params])
    return out


def input_scales(loop: SearchLoop, batch) -> dict[int, torch.Tensor]:
    """Each edge's per-channel input standard deviation (every state's channel mean is 0:
    each op ends in a batch-statistics BN)."""
    seen, hooks = {}, []
    for e, edge in enumerate(edges(loop)):

        def record(module, inputs, e=e) -> None:
            seen[e] = inputs[0].detach().float().std(dim=(0, 2, 3))

        hooks.append(edge.register_forward_pre_hook(record))
    with torch.no_grad(), batch_statistics(loop.objective):
        loop.objective(batch)
    for hook in hooks:
        hook.remove()
    return seen


def agreement(samples: list[torch.Tensor]) -> float:
    """Mean pairwise dot product over mean squared norm."""
    total = torch.stack(samples).sum(0)
    squares = sum(float(s @ s) for s in samples)
    n = len(samples)
    return (float(total @ total) - squares) / (n - 1) / squares


def coherence(loop: SearchLoop) -> dict[str, float]:
    """Gradient coherence and input-scale drift across paths, batches, and both."""
    batches = iter_batches(loop)
    fixed_batch = next(batches)
    loop.net.sample_paths(loop.paths)
    fixed_path = path_of(loop)
    draws = {"paths": [], "batches": [], "both": []}
    inputs = {"paths": [], "batches": []}
    for _ in range(SAMPLES):
        loop.net.sample_paths(loop.paths)
        draws["paths"].append(gradients(loop, fixed_batch))
        inputs["paths"].append(input_scales(loop, fixed_batch))
        batch = next(batches)
        draws["both"].append(gradients(loop, batch))
        set_path(loop, fixed_path)
        draws["batches"].append(gradients(loop, batch))
        inputs["batches"].append(input_scales(loop, batch))
    loop.objective.zero_grad(set_to_none=True)
    out = {}
    for name, runs in draws.items():
        by_op = defaultdict(list)
        for grads in runs:
            for key, grad in grads.items():
                by_op[key].append(grad)
        values = [agreement(g) for g in by_op.values() if len(g) >= 3]
        out[f"gradient coherence across {name}"] = statistics.median(values)
    # Inputs from the cell's two inputs are BN outputs (scale 1): the nodes' sums are not.
    from_nodes = [e for e in inputs["paths"][0] if e % EDGES_PER_CELL not in FROM_INPUTS]
    for name, runs in inputs.items():
        scales = [torch.stack([r[e] for r in runs]) for e in from_nodes]
        drift = [(s.std(0) / s.mean(0).clamp_min(1e-6)).mean().item() for s in scales]
        out[f"input-scale drift across {name} (sd / mean)"] = statistics.median(drift)
    return out


def iter_batches(loop: SearchLoop) -> Iterator:
    epoch = 1000
    while True:
        loop.weight_loader.set_epoch(epoch)
        yield from loop.weight_loader
        epoch += 1


def main() -> None:
    args = parse_args()
    untrained = new_loop(args)
    before = coherence(untrained)
    print(f"SimCLR chance on the validation views: {untrained.heldout.chance:.3f}")
    print("untrained supernet:")
    for key, value in before.items():
        print(f"  {key:48s} {value:8.3f}")
    for mode in args.modes:
        result = train(args, mode)
        print(f"{mode}:")
        for key, value in result.items():
            print(f"  {key:48s} {value:8.3f}", flush=True)


if __name__ == "__main__":
    main()
