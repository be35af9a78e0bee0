"""Typed params, loaded from params.yaml and validated against the package's JSON schema.

Every entry point (a direct `sswp` call, DVC stages, Snakemake rules) goes through
`load_params`, so a bad value is rejected the same way whichever driver runs it.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from sswp import yaml12
from sswp.errors import SswpError

if TYPE_CHECKING:
    import jsonschema

SCHEMA_NAME = "params.schema.yaml"


@dataclass(frozen=True)
class RuntimeParams:
    device: str
    gpus: int
    threads: int
    amp: str
    channels_last: bool
    compile: str
    deterministic: bool
    portable_numerics: bool
    sync_bn: bool
    progress: str
    keep_checkpoints: bool


@dataclass(frozen=True)
class DataParams:
    dataset: str
    path: str
    image_size: int
    subset: float
    loader: str
    workers: int
    split_seed: int
    hflip: bool
    simclr_min_crop: float
    val_fraction: float


@dataclass(frozen=True)
class PhaseRatios:
    warmup: float
    search: float
    prune: float
    stabilise: float


@dataclass(frozen=True)
class SearchParams:
    objective: str
    stem: str
    stem_affine: bool
    byol_tau: float
    layers: int
    channels: int
    gate_mode: str
    gate_gradients: str
    epochs: int
    batch_size: int
    phases: PhaseRatios
    min_warmup_epochs: int
    arch_delay_epochs: int
    prune_order: str
    freeze_edges: str
    eval_every: int
    temperature: float
    weight_lr: float
    weight_momentum: float
    weight_decay: float
    grad_clip: float
    arch_lr: float
    arch_betas: tuple[float, float]
    arch_weight_decay: float
    arch_every: int
    weight_skip_drop_prob: float
    weight_pool_drop_prob: float
    arch_skip_drop_prob: float
    arch_pool_drop_prob: float
    max_skips: int
    max_pools: int


@dataclass(frozen=True)
class ChildParams:
    """The discrete network built from a genotype, in every stage that trains or probes it."""

    pool_bn_affine: bool


@dataclass(frozen=True)
class SGDParams:
    """SGD with linear warm-up then cosine: the recipe of every child-network stage."""

    epochs: int
    batch_size: int
    lr: float
    lr_min: float
    lr_step: str
    momentum: float
    weight_decay: float
    warmup_epochs: int


@dataclass(frozen=True)
class SupervisedParams(SGDParams):
    cutout: int
    auxiliary_weight: float
    drop_path: float
    grad_clip: float
    label_smoothing: float
    eval_every: int


@dataclass(frozen=True)
class TrainParams(SupervisedParams):
    architectures: tuple[str, ...]
    references: tuple[str, ...]

    def trained(self) -> tuple[str, ...]:
        """Every architecture trained from scratch: the search snapshots, then the references."""
        return (*self.architectures, *self.references)


@dataclass(frozen=True)
class FinetuneParams(SupervisedParams):
    architecture: str
    label_ratios: tuple[float, ...]
    inits: tuple[str, ...]


@dataclass(frozen=True)
class PretrainParams(SGDParams):
    temperature: float
    grad_clip: float
    bn_affine: bool
    images: str
    budget: str
    budget_fraction: float


@dataclass(frozen=True)
class LinearEvalParams:
    protocol: str
    epochs: int
    batch_size: int
    lr: float
    lr_min: float
    momentum: float
    weight_decay: float
    warmup_epochs: int
    grad_clip: float

    @property
    def lr_step(self) -> str:
        """Both protocols step their warm-up + cosine per iteration, as the original does."""
        return "iteration"


@dataclass(frozen=True)
class Params:
    """The validated params.yaml, plus the seed of the one run a stage is doing.

    params.yaml lists `seeds`; each stage run is for one of them (`--seed`), and `seed`
    is that one (the first listed unless `with_seed` picked another).
    """

    seeds: tuple[int, ...]
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


@cache
def schema() -> dict[str, Any]:
    text = resources.files("sswp").joinpath(SCHEMA_NAME).read_text()
    return yaml.safe_load(text)


def _describe(error: jsonschema.ValidationError) -> str:
    key = ".".join(str(part) for part in error.absolute_path) or "<top level>"
    if error.validator in ("additionalProperties", "unevaluatedProperties"):
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
        # A bad value inside train/finetune also makes every key there "unevaluated";
        # report the bad value itself, which is what the user has to fix.
        first = min(
            errors,
            key=lambda e: (
                e.validator == "unevaluatedProperties",
                [str(p) for p in e.absolute_path],
            ),
        )
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


def params_from_dict(raw: dict[str, Any], source: str = "params") -> Params:
    validate(raw, source)
    search = dict(raw["search"])
    search["phases"] = PhaseRatios(**search["phases"])
    search["arch_betas"] = tuple(search["arch_betas"])
    train = dict(raw["train"])
    train["architectures"] = tuple(train["architectures"])
    train["references"] = tuple(train["references"])
    finetune = dict(raw["finetune"])
    finetune["label_ratios"] = tuple(float(r) for r in finetune["label_ratios"])
    finetune["inits"] = tuple(finetune["inits"])
    return Params(
        seeds=tuple(raw["seeds"]),
        runtime=RuntimeParams(**raw["runtime"]),
        data=DataParams(**raw["data"]),
        search=SearchParams(**search),
        child=ChildParams(**raw["child"]),
        train=TrainParams(**train),
        finetune=FinetuneParams(**finetune),
        pretrain=PretrainParams(**raw["pretrain"]),
        linear_eval=LinearEvalParams(**raw["linear_eval"]),
    )


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
