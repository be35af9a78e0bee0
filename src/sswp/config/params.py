"""The params dataclasses: the one definition of every param, its type, bounds and meaning.

The JSON schema (sswp.config.schema) is made from them; docs/params.md lists every one (a test
checks it).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

SEED_RANGE = {"minimum": 0, "maximum": 2**32 - 1}  # numpy seeds its generators with 32 bits


def rule(description: str = "", **keywords: Any) -> Any:
    """A required params field with JSON-schema keywords beyond its type (bounds, lengths,
    `items` for a tuple's elements) and the description Snakemake's schema shows."""
    if description:
        keywords["description"] = description
    return field(metadata={"schema": keywords})


def probability(description: str = "") -> Any:
    return rule(description, minimum=0, maximum=1)


def at_least(minimum: int, description: str = "") -> Any:
    return rule(description, minimum=minimum)


def positive(description: str = "") -> Any:
    return rule(description, exclusiveMinimum=0)


def share_below_one(description: str = "") -> Any:
    return rule(description, minimum=0, exclusiveMaximum=1)


def share_above_zero(description: str = "") -> Any:
    return rule(description, exclusiveMinimum=0, maximum=1)


# A search snapshot, and the finetune inits params.yaml chooses (two-stage always runs).
Snapshot = Literal["final", "highest_acc", "lowest_loss"]
OptionalInit = Literal["preserved", "random"]
# The published genotypes that can be trained in place of a searched one (sswp.nas.reference).
Reference = Literal["darts_v2", "pdarts"]


@dataclass(frozen=True)
class RuntimeParams:
    device: Literal["auto", "cpu", "cuda"]
    gpus: int = at_least(0)
    threads: int = at_least(
        1,
        "CPU threads of each stage process, the loader's included: torch computes on "
        "threads - data.workers (DALI takes at least one), so a Snakemake job's threads are this",
    )
    amp: Literal["off", "bf16", "fp16"]
    channels_last: bool
    compile: Literal["off", "default", "max-autotune"] = rule(
        "torch.compile the child network in train, finetune, pretrain and linear eval "
        "(max-autotune: also CUDA graphs on a GPU)"
    )
    deterministic: bool = rule(
        "deterministic kernels: bit-for-bit repeatable CPU runs; on CUDA, "
        "torch.use_deterministic_algorithms and a fixed cuBLAS workspace (no cudnn.benchmark)"
    )
    portable_numerics: bool = rule(
        "pin torch, oneDNN, MKL and OpenBLAS to the AVX2 kernels that every x86-64 machine "
        "with AVX2 runs, before they load, so that a CPU run gives the same bits on any such "
        "machine (off: each library picks the fastest kernels of this CPU)"
    )
    sync_bn: bool
    progress: Literal["auto", "always", "never"]
    keep_checkpoints: bool
    checkpoint_seconds: float = at_least(
        0,
        "at most one end-of-epoch checkpoint per this many seconds (0: every epoch); "
        "SIGTERM and SIGINT always save one",
    )


@dataclass(frozen=True)
class DataParams:
    dataset: Literal["digits", "cifar10", "cifar100", "imagenet", "image_folder"]
    path: str = rule(minLength=1)
    image_size: int = at_least(8)
    subset: float = share_above_zero()
    loader: Literal["auto", "dali", "torch"]
    workers: int = at_least(0)
    split_seed: int = rule(**SEED_RANGE)
    hflip: bool
    simclr_min_crop: float = share_above_zero()
    val_fraction: float = share_below_one(
        "class-balanced fraction of the training images held out, with their labels, as the "
        "validation split where recipes are chosen; no finetune or probe trains on them"
    )


@dataclass(frozen=True)
class PhaseRatios:
    warmup: float = probability()
    search: float = probability()
    prune: float = probability()
    stabilise: float = probability()


@dataclass(frozen=True)
class SearchParams:
    objective: Literal["simclr", "byol", "supervised"]
    stem: Literal["cifar", "imagenet"]
    stem_affine: bool = rule("the supernet stem's BN learns gamma/beta, which the child inherits")
    byol_tau: float = share_below_one()
    layers: int = at_least(3)
    channels: int = at_least(1)
    gate_mode: Literal["two", "full_v2"]
    gate_gradients: Literal["fresh", "accumulate"] = rule(
        "fresh gates every step (ProxylessNAS), or accumulate: reproduce the original's "
        "never-zeroed running sum of gate gradients (a bug; `two` mode only)"
    )
    epochs: int = at_least(1)
    batch_size: int = at_least(2)
    phases: PhaseRatios
    min_warmup_epochs: int = at_least(0)
    arch_delay_epochs: int = at_least(
        0, "epochs after the warm-up before arch steps and skip/pool drops start"
    )
    prune_order: Literal["forward", "backward"]
    freeze_edges: Literal["all", "genotype"]
    eval_every: int = at_least(1)
    temperature: float = positive()
    weight_lr: float = positive()
    weight_momentum: float = probability()
    weight_decay: float = at_least(0)
    grad_clip: float = positive()
    arch_lr: float = positive()
    arch_betas: tuple[float, float] = rule(items={"minimum": 0, "exclusiveMaximum": 1})
    arch_weight_decay: float = at_least(0)
    arch_every: int = at_least(1)
    weight_skip_drop_prob: float = probability()
    weight_pool_drop_prob: float = probability()
    arch_skip_drop_prob: float = probability()
    arch_pool_drop_prob: float = probability()
    max_skips: int = at_least(0)
    max_pools: int = at_least(0)


@dataclass(frozen=True)
class ChildParams:
    """The network built from a genotype (train, finetune, pretrain, linear eval)."""

    pool_bn_affine: bool = rule(
        "the BN after each pool learns gamma/beta (the original's is non-affine)"
    )


@dataclass(frozen=True)
class CosineSGDParams:
    """SGD with linear warm-up then cosine to lr_min, as every child-network stage trains."""

    epochs: int = at_least(1)
    batch_size: int = at_least(1)
    lr: float = positive()
    lr_min: float = at_least(0, "the cosine's floor (the original's eta_min)")
    momentum: float = probability()
    weight_decay: float = at_least(0)
    warmup_epochs: int = at_least(
        0, "epochs of linear warm-up from lr 0, raised every iteration (as the original)"
    )


@dataclass(frozen=True)
class SGDParams(CosineSGDParams):
    """SGD with linear warm-up then cosine: the recipe of every child-network stage."""

    lr_step: Literal["epoch", "iteration"] = rule(
        "the cosine after the warm-up steps once per epoch or once per iteration (the "
        "warm-up always per iteration)"
    )


@dataclass(frozen=True)
class SupervisedParams(SGDParams):
    cutout: int = at_least(0)
    auxiliary_weight: float = at_least(0)
    drop_path: float = share_below_one()
    grad_clip: float = positive()
    label_smoothing: float = share_below_one()
    eval_every: int = at_least(
        1, "epochs between test and validation evaluations (the last is always evaluated)"
    )


@dataclass(frozen=True)
class TrainParams(SupervisedParams):
    architectures: tuple[Snapshot, ...] = rule(minItems=1, uniqueItems=True)
    references: tuple[Reference, ...] = rule(
        "reference genotypes trained with the same recipe (no search needed)", uniqueItems=True
    )

    def trained(self) -> tuple[str, ...]:
        """Every architecture trained from scratch: the search snapshots, then the references."""
        return (*self.architectures, *self.references)


@dataclass(frozen=True)
class FinetuneParams(SupervisedParams):
    architecture: Snapshot
    label_ratios: tuple[float, ...] = rule(
        minItems=1, uniqueItems=True, items={"exclusiveMinimum": 0, "maximum": 1}
    )
    inits: tuple[OptionalInit, ...] = rule(minItems=1, uniqueItems=True)


@dataclass(frozen=True)
class PretrainParams(SGDParams):
    """The two-stage baseline's SimCLR pre-training of the derived network."""

    batch_size: int = at_least(2)
    temperature: float = positive()
    grad_clip: float = positive()
    bn_affine: bool = rule(
        "the cells' BN learns gamma/beta while pre-training (the original's does not)"
    )
    images: Literal["all", "search_weights"] = rule(
        "all training images outside the validation split, or the search's weight half (the "
        "original's)"
    )
    budget: Literal["search", "epochs"] = rule(
        "search: as many SimCLR steps as the search gave the preserved weights (times "
        "budget_fraction), at the search's batch size, so the two arms' budgets match; "
        "epochs: pretrain.epochs at pretrain.batch_size (the original's 100 epochs)"
    )
    budget_fraction: float = positive(
        "the share of the search's SimCLR steps that budget search gives"
    )


@dataclass(frozen=True)
class LinearEvalParams(CosineSGDParams):
    """A linear classifier on the frozen backbone, at finetune.label_ratios."""

    protocol: Literal["features", "augmented"] = rule(
        "features: fit on features computed once (eval-mode BN, no augmentation); "
        "augmented: the original's, augmented images through the backbone in train mode"
    )
    grad_clip: float = positive()

    @property
    def lr_step(self) -> str:
        """Both protocols step their warm-up + cosine per iteration, as the original does."""
        return "iteration"


@dataclass(frozen=True)
class Params:
    """The validated params.yaml, plus the seed of the one run a stage is doing.

    params.yaml lists `seeds`; each stage run is for one of them (`--seed`), and `seed`
    is that one (the first listed unless `with_seed` picked another). A field with a
    default is set by the program, never read from the file.
    """

    seeds: tuple[int, ...] = rule(
        "one run of search, train, pretrain, finetune and linear eval per seed",
        minItems=1,
        uniqueItems=True,
        items=SEED_RANGE,
    )
    runtime: RuntimeParams
    data: DataParams
    search: SearchParams
    child: ChildParams
    train: TrainParams
    finetune: FinetuneParams
    pretrain: PretrainParams
    linear_eval: LinearEvalParams
    seed: int = -1

    def __post_init__(self) -> None:
        if self.seed < 0:
            object.__setattr__(self, "seed", self.seeds[0])

    def with_seed(self, seed: int | None) -> Params:
        """These params for the run of `seed` (None: the first of `seeds`)."""
        return self if seed is None else dataclasses.replace(self, seed=seed)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def file_fields(cls: type) -> list[dataclasses.Field]:
    """The fields of a params dataclass that params.yaml sets, in their order."""
    return [f for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING]
