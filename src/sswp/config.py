"""Typed params: the one definition of every param, and the JSON schema made from it.

Every entry point (a direct `sswp` call, DVC stages, Snakemake rules) goes through
`load_params`, so a bad value is rejected the same way whichever driver runs it.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args, get_origin, get_type_hints

import yaml

from sswp import yaml12
from sswp.errors import SswpError

if TYPE_CHECKING:
    import jsonschema

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
    references: tuple[Literal["darts_v2", "pdarts"], ...] = rule(
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


@cache
def _hints(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)


_JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string"}


def _type_schema(hint: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(hint):
        return _object_schema(hint)
    if get_origin(hint) is Literal:
        return {"enum": list(get_args(hint))}
    if get_origin(hint) is tuple:
        element, *rest = get_args(hint)
        schema: dict[str, Any] = {"type": "array", "items": _type_schema(element)}
        if rest != [Ellipsis]:
            schema |= {"minItems": len(rest) + 1, "maxItems": len(rest) + 1}
        return schema
    return {"type": _JSON_TYPES[hint]}


def _field_schema(cls: type, spec: dataclasses.Field) -> dict[str, Any]:
    keywords = spec.metadata.get("schema", {})
    schema = {"description": keywords["description"]} if "description" in keywords else {}
    schema |= _type_schema(_hints(cls)[spec.name])
    for key, value in keywords.items():
        schema[key] = schema[key] | value if key == "items" else value
    return schema


def _object_schema(cls: type) -> dict[str, Any]:
    names = [spec.name for spec in file_fields(cls)]
    schema: dict[str, Any] = {"type": "object", "additionalProperties": False, "required": names}
    if cls.__doc__ and not cls.__doc__.startswith(cls.__name__ + "("):
        schema = {"description": cls.__doc__.split("\n\n")[0].strip()} | schema
    schema["properties"] = {spec.name: _field_schema(cls, spec) for spec in file_fields(cls)}
    return schema


@cache
def schema() -> dict[str, Any]:
    """params.yaml's JSON schema, made from the dataclasses above: the one definition of
    every param. workflow/schemas/params.schema.yaml is this, for Snakemake's `validate`."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "sswp params",
        **_object_schema(Params),
        "description": "The one config of the pipeline, generated from src/sswp/config.py by "
        "`sswp params-schema`; validated by sswp, DVC runs (through sswp) and Snakemake.",
    }


SCHEMA_FILE = "workflow/schemas/params.schema.yaml"


class _SchemaDumper(yaml.SafeDumper):
    """Short leaf maps and lists on one line; a map with a description as a block."""


_SchemaDumper.add_representer(
    dict,
    lambda dumper, data: dumper.represent_mapping(
        "tag:yaml.org,2002:map", data, flow_style=False if "description" in data else None
    ),
)


def schema_text() -> str:
    """The committed schema file's text (a test fails when it differs)."""
    header = (
        "# Generated from src/sswp/config.py by `sswp params-schema` (`make params-schema`):\n"
        "# edit the dataclasses there, then regenerate. Snakemake's `validate` reads this file.\n"
    )
    body = yaml.dump(
        schema(), Dumper=_SchemaDumper, sort_keys=False, width=96, default_flow_style=None
    )
    return header + body


def _describe(error: jsonschema.ValidationError) -> str:
    key = ".".join(str(part) for part in error.absolute_path) or "<top level>"
    if error.validator == "additionalProperties":
        return f"{key}: {error.message}; remove it or check its spelling"
    if error.validator == "required":
        return f"{key}: {error.message}"
    if error.validator == "enum":
        allowed = ", ".join(repr(v) for v in error.validator_value)
        return f"{key} = {error.instance!r} is not allowed; use one of {allowed}"
    return f"{key} = {error.instance!r} is invalid: {error.message}"


def non_finite_key(raw: Any, prefix: str = "") -> tuple[str, float] | None:
    """The first key (dotted) holding NaN or an infinity, which YAML reads as numbers
    (`.nan`, `.inf`) and JSON schema lets through: no learning rate or ratio can be one."""
    items = (
        raw.items() if isinstance(raw, dict) else enumerate(raw) if isinstance(raw, list) else ()
    )
    for key, value in items:
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, float) and not math.isfinite(value):
            return name, value
        found = non_finite_key(value, name)
        if found:
            return found
    return None


def validate(raw: Any, source: str = "params") -> None:
    """Raise SswpError naming the first bad key, its value and what is allowed."""
    bad = non_finite_key(raw)
    if bad:
        raise SswpError(f"{source}: {bad[0]} = {bad[1]!r} is not a finite number; give a number")
    import jsonschema  # imported here: GPU images without it can still run the library

    validator_cls = jsonschema.validators.validator_for(schema())
    errors = list(validator_cls(schema()).iter_errors(raw))
    if errors:
        first = min(errors, key=lambda e: [str(p) for p in e.absolute_path])
        raise SswpError(f"{source}: {_describe(first)}")
    whole = [r for r in raw["finetune"]["label_ratios"] if not isinstance(r, float)]
    if whole:
        raise SswpError(
            f"{source}: finetune.label_ratios holds {whole[0]!r}; write ratios as decimals "
            f"({float(whole[0])!r}, not {whole[0]!r}): run names and output folders use them"
        )
    search = raw["search"]
    if search["gate_gradients"] == "accumulate" and search["gate_mode"] != "two":
        raise SswpError(
            f"{source}: search.gate_gradients = 'accumulate' reproduces the original's `two` "
            f"mode only, not gate_mode = {search['gate_mode']!r}; set search.gate_mode: two"
        )
    phases = search["phases"]
    total = sum(phases.values())
    if total > 1 + 1e-9:
        raise SswpError(
            f"{source}: search.phases sum to {total:g}, more than 1; "
            "make warmup + search + prune + stabilise at most 1 (search takes the rest)"
        )


def _build(cls: type, raw: dict[str, Any]) -> Any:
    """A params dataclass from its validated dict: nested ones built alike, lists as tuples."""
    values = {}
    for spec in file_fields(cls):
        hint, value = _hints(cls)[spec.name], raw[spec.name]
        if dataclasses.is_dataclass(hint):
            value = _build(hint, value)
        elif get_origin(hint) is tuple:
            value = tuple(value)
        values[spec.name] = value
    return cls(**values)


def params_from_dict(raw: dict[str, Any], source: str = "params") -> Params:
    validate(raw, source)
    return _build(Params, raw)


def load_params(path: str | Path = "params.yaml") -> Params:
    path = Path(path)
    if not path.is_file():
        raise SswpError(
            f"params file {path} not found; run from the repository root or pass --params"
        )
    try:
        raw = yaml12.load(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise SswpError(
            f"{path} is not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start}); "
            "save it as UTF-8"
        ) from exc
    except yaml.YAMLError as exc:
        raise SswpError(f"{path} is not valid YAML: {_yaml_problem(exc)}") from exc
    return params_from_dict(raw, source=str(path))


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """The parser's complaint with its line and column (1-based), on one line."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    if mark is None:
        return problem
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"
