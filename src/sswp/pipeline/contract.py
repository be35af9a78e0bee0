"""The stage contract: every stage of the pipeline, declared once.

For each stage: the command that runs it, the params keys its result depends on, the package
files it runs, and what it reads and writes, as templates over a run's `{seed}`, `{ratio}`,
`{init}` and `{architecture}` (Snakemake's wildcard syntax). dvc.yaml is generated from it
(`sswp dvc-yaml`), the Snakemake rules read it, provenance records and checkpoint keys digest
exactly these params and files, and `runs` expands params into every run of the pipeline.
Plain Python, PyYAML and the params dataclasses (sswp.config): the Snakefile imports it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

from sswp.config.params import OptionalInit, Params, SupervisedParams, file_fields

PACKAGE = Path(__file__).resolve().parents[1]  # src/sswp

# The arms linear evaluation probes, in the order it writes them.
LINEAR_EVAL_ARMS = ("preserved", "two_stage", "random")
# The init that starts from `sswp pretrain`'s backbone: its finetunes are their own stage,
# which depends on the pretrain stage. params.yaml's finetune.inits choose among the others.
TWO_STAGE = "two_stage"
FINETUNE_INITS = (*get_args(OptionalInit), TWO_STAGE)


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_SUPERVISED = tuple(spec.name for spec in file_fields(SupervisedParams))
# The seed is not here: each run's seed is in its command (`--seed`), so adding a seed to
# `seeds` runs the new seed's stages and leaves the others alone.
_RUN = _words(
    "runtime.device runtime.gpus runtime.threads runtime.amp runtime.deterministic "
    "runtime.portable_numerics runtime.sync_bn data.loader data.workers data.hflip"
)
_CHILD = (*_RUN, *_words("search.layers search.channels search.stem child.pool_bn_affine"))
_TRAIN = (*_CHILD, *(f"train.{key}" for key in _SUPERVISED))
# Each seed's labelled subsets are drawn with data.split_seed and the run's seed.
_LABELLED = (*_CHILD, "data.split_seed", "finetune.architecture")
_FINETUNE = (*_LABELLED, *(f"finetune.{key}" for key in _SUPERVISED))

# The package files (relative to src/sswp; a folder means its .py files) each stage runs.
_COMMON_CODE = _words(
    "cli.py config errors.py pipeline/atomic.py pipeline/paths.py pipeline/contract.py "
    "pipeline/provenance.py pipeline/numerics.py pipeline/machine.py pipeline/plan.py "
    "pipeline/guard.py pipeline/outputs.py pipeline/records.py pipeline/seeds.py"
)
_LOOP_CODE = (
    *_COMMON_CODE,
    *_words(
        "data engine/hardware.py engine/logs.py engine/loop.py engine/checkpoint.py "
        "engine/interrupt.py nas"
    ),
)
_CHILD_CODE = (
    *_LOOP_CODE,
    *_words(
        "models engine/distributed.py engine/epochs.py engine/supervised.py engine/children.py"
    ),
)
_TRAIN_CODE = (*_CHILD_CODE, "stages/train.py")
_FINETUNE_CODE = (*_CHILD_CODE, "stages/finetune.py")

PREPARED = "data/prepared"
SEARCH = "artifacts/search/seed-{seed}"
PRETRAIN = "artifacts/pretrain/seed-{seed}"
RESULTS = "results"
# The report's outputs; the headline is the one file that `dvc metrics show` reads.
REPORT_FILES = tuple(
    f"{RESULTS}/{name}"
    for name in _words(
        "main_table.csv main_table.md label_ratio.csv label_ratio.md summary.md params.yaml "
        "label_ratio.png training_curves.png alpha_heatmap.png budget.csv budget.md "
        "comparisons.csv comparisons.md learning_curves.csv learning_curves.png ssl_curves.png "
        "metrics.json machine.json"
    )
)
HEADLINE = f"{RESULTS}/headline.json"
# The modules of the report wing that `sswp report` runs (compare and verify it does not).
REPORT_MODULES = _words(
    "arms budget build curves figures gather learned metrics stats summary tables verdicts"
)


@dataclass(frozen=True)
class Stage:
    """One stage of the pipeline; its runs are the product of its matrix's params lists."""

    name: str  # the dvc.yaml stage, whose params and code a run's record digests
    command: str  # template of a run's command
    params: tuple[str, ...]  # the params keys (or whole sections) its result depends on
    code: tuple[str, ...]  # the package files and folders it runs
    group: str = ""  # artifacts/<group>/<tag>; empty for a stage with one run
    tag: str = ""  # template naming a run's artifacts, metrics, live plots and log
    matrix: tuple[tuple[str, str], ...] = ()  # (wildcard, the params list of its values)
    fixed: tuple[tuple[str, str], ...] = ()  # wildcards this stage always sets
    reads: tuple[str, ...] = ()  # templates of the folders it reads
    arms: tuple[str, ...] = ()  # one metrics file per arm, tagged `<arm>-<tag>`
    note: str = ""  # the comment above its dvc.yaml entry

    @property
    def artifact(self) -> str:
        """Template of the folder that holds a run's outputs and record."""
        return f"artifacts/{self.group}/{self.tag}" if self.tag else _SINGLE[self.name]

    @property
    def metric_tags(self) -> tuple[str, ...]:
        if not self.tag:
            return ()
        return tuple(f"{arm}-{self.tag}" for arm in self.arms) or (self.tag,)

    @property
    def metrics(self) -> tuple[str, ...]:
        """Templates of a run's metrics files (metrics/, tracked by git)."""
        return tuple(f"metrics/{self.group}/{tag}.json" for tag in self.metric_tags)

    @property
    def live(self) -> tuple[str, ...]:
        """Templates of a run's per-epoch plot folders (live/)."""
        return tuple(f"live/{self.group}/{tag}/plots/metrics" for tag in self.metric_tags)


_SINGLE = {"prepare": PREPARED, "report": RESULTS}


def _train_stage(name: str, architectures: str, reads: tuple[str, ...], note: str = "") -> Stage:
    """Training from scratch, one run per seed and architecture of the `architectures` list:
    the searched ones and the references share the command, params and folders."""
    return Stage(
        name,
        "sswp train --seed {seed} --architecture {architecture}",
        _TRAIN,
        _TRAIN_CODE,
        group="train",
        tag="{architecture}-seed-{seed}",
        matrix=(("seed", "seeds"), ("architecture", architectures)),
        reads=reads,
        note=note,
    )


STAGES: dict[str, Stage] = {
    stage.name: stage
    for stage in (
        Stage(
            "prepare",
            "sswp prepare",
            (
                "data.split_seed",
                "data.dataset",
                "data.path",
                "data.image_size",
                "data.subset",
                "data.val_fraction",
            ),
            (*_COMMON_CODE, "data", "stages/prepare.py"),
        ),
        Stage(
            "search",
            "sswp search --seed {seed}",
            (*_RUN, "data.simclr_min_crop", "search"),
            (
                *_LOOP_CODE,
                *_words(
                    "ssl engine/distributed.py engine/epochs.py engine/phases.py "
                    "engine/objectives.py engine/heldout.py engine/stepper.py engine/search.py "
                    "stages/search.py"
                ),
            ),
            group="search",
            tag="seed-{seed}",
            matrix=(("seed", "seeds"),),
            reads=(PREPARED,),
        ),
        _train_stage("train", "train.architectures", (PREPARED, SEARCH)),
        _train_stage(
            "train_reference",
            "train.references",
            (PREPARED,),
            note="Reference genotypes need no search, so they do not rerun when the search "
            "changes.",
        ),
        Stage(
            "pretrain",
            "sswp pretrain --seed {seed}",
            # pretrain.budget: search pre-trains at search.batch_size.
            (
                *_CHILD,
                "data.simclr_min_crop",
                "search.batch_size",
                "finetune.architecture",
                "pretrain",
            ),
            (*_CHILD_CODE, "ssl", "engine/heldout.py", "engine/pretrain.py", "stages/pretrain.py"),
            group="pretrain",
            tag="seed-{seed}",
            matrix=(("seed", "seeds"),),
            reads=(PREPARED, SEARCH),
        ),
        Stage(
            "finetune",
            "sswp finetune --seed {seed} --init {init} --ratio {ratio}",
            _FINETUNE,
            _FINETUNE_CODE,
            group="finetune",
            tag="{init}-{ratio}-seed-{seed}",
            matrix=(
                ("seed", "seeds"),
                ("init", "finetune.inits"),
                ("ratio", "finetune.label_ratios"),
            ),
            reads=(PREPARED, SEARCH),
        ),
        Stage(
            "finetune_two_stage",
            "sswp finetune --seed {seed} --init {init} --ratio {ratio}",
            _FINETUNE,
            _FINETUNE_CODE,
            group="finetune",
            tag="{init}-{ratio}-seed-{seed}",
            matrix=(("seed", "seeds"), ("ratio", "finetune.label_ratios")),
            fixed=(("init", TWO_STAGE),),
            reads=(PREPARED, SEARCH, PRETRAIN),
            note="The two-stage baseline's finetunes start from the pretrain stage's backbone.",
        ),
        Stage(
            "linear_eval",
            "sswp linear_eval --seed {seed} --ratio {ratio}",
            (*_LABELLED, "linear_eval"),
            (
                *_CHILD_CODE,
                *_words("engine/linear_eval.py stages/finetune.py stages/linear_eval.py"),
            ),
            group="linear_eval",
            tag="{ratio}-seed-{seed}",
            matrix=(("seed", "seeds"), ("ratio", "finetune.label_ratios")),
            reads=(PREPARED, SEARCH, PRETRAIN),
            arms=LINEAR_EVAL_ARMS,
        ),
        Stage(
            "report",
            "sswp report",
            (),  # every top-level key: see stage_params
            (
                *_COMMON_CODE,
                "nas",
                *(f"report/{name}.py" for name in REPORT_MODULES),
                "stages/report.py",
            ),
            reads=(
                PREPARED,
                *_words(
                    "metrics/search metrics/train metrics/finetune metrics/linear_eval "
                    "metrics/pretrain artifacts/search artifacts/train artifacts/finetune"
                ),
            ),
        ),
    )
}


def stage_params(stage: str) -> tuple[str, ...]:
    """The params keys a stage's result depends on. The report's are every top-level key:
    it copies all params into results/params.yaml."""
    return STAGES[stage].params or tuple(spec.name for spec in file_fields(Params))


def lookup(raw: Mapping[str, Any], key: str) -> Any:
    """The value of a dotted key, e.g. `data.loader`, in a params dict."""
    value: Any = raw
    for part in key.split("."):
        value = value[part]
    return value


def tracked_params(params: Any, stage: str) -> dict[str, Any]:
    """{dotted key: value} for the stage's keys, of a params dict or anything with to_dict."""
    raw = params if isinstance(params, Mapping) else params.to_dict()
    return {key: lookup(raw, key) for key in stage_params(stage)}


def code_paths(stage: str, package: Path = PACKAGE) -> list[Path]:
    """The package files a stage runs: listed files, and the .py files of listed folders."""
    files: list[Path] = []
    for name in STAGES[stage].code:
        path = package / name
        files.extend(sorted(path.rglob("*.py")) if path.is_dir() else [path])
    return files


@dataclass(frozen=True)
class Run:
    """One run of a stage: what it runs, reads and writes."""

    stage: str  # the contract stage: which params and code digests its record holds
    name: str  # e.g. `search/seed-0`: the run's lock (one run at a time) and log name
    command: str
    artifact: Path  # the folder that holds the run's record
    files: tuple[Path, ...] = ()  # its other outputs (metrics files)
    inputs: dict[Path, str] = field(default_factory=dict)  # folder read -> command making it
    temp_dirs: tuple[Path, ...] = ()  # folders where every `.*.tmp` is this run's
    live: tuple[Path, ...] = ()  # its per-epoch plot folders
    values: tuple[tuple[str, str], ...] = ()  # its wildcards, e.g. (("seed", "0"),)

    @property
    def group(self) -> str:
        """The stage's folder under artifacts/, metrics/ and live/ (its name if it has none)."""
        return self.name.split("/")[0]

    @property
    def log_name(self) -> str:
        """The run's log file name, e.g. `finetune-preserved-0.1-seed-0`."""
        return self.name.replace("/", "-", 1)

    def orphans(self) -> list[Path]:
        """Temp files and folders that an interrupted write of these outputs left behind."""
        found: set[Path] = set()
        for path in (self.artifact, *self.files):
            found.update(path.parent.glob(f".{path.name}.*.tmp"))
        for folder in self.temp_dirs:
            found.update(folder.glob(".*.tmp"))
        return sorted(found)


def _wildcard(name: str, value: Any) -> str:
    """A wildcard's value as commands and paths write it: a ratio as Python writes the float."""
    return str(float(value)) if name == "ratio" else str(value)


def run_of(stage: str, **values: Any) -> Run:
    """The run of `stage` at these wildcard values (its fixed ones are added)."""
    spec = STAGES[stage]
    given = {**{k: _wildcard(k, v) for k, v in values.items()}, **dict(spec.fixed)}
    expected = {name for name, _ in spec.matrix} | {name for name, _ in spec.fixed}
    if set(given) != expected:
        raise ValueError(f"{stage} runs take {sorted(expected)}, not {sorted(given)}")
    inputs = {
        Path(template.format(**given)): _MAKERS[template].command.format(**given)
        for template in spec.reads
        if template in _MAKERS
    }
    tag = spec.tag.format(**given)
    return Run(
        stage=stage,
        name=f"{spec.group}/{tag}" if tag else stage,
        command=spec.command.format(**given),
        artifact=Path(spec.artifact.format(**given)),
        files=tuple(Path(t.format(**given)) for t in spec.metrics),
        inputs=inputs,
        temp_dirs=(Path(RESULTS),) if stage == "report" else (),
        live=tuple(Path(t.format(**given)) for t in spec.live),
        values=tuple(sorted(given.items())),
    )


# The stage that writes each folder that other stages read.
_MAKERS = {STAGES[name].artifact: STAGES[name] for name in ("prepare", "search", "pretrain")}


def runs(params: Any) -> list[Run]:
    """Every run that params (a dict, or anything with to_dict) ask for, in dvc.yaml's order:
    each stage's matrix, its first list outermost; the report last, reading every run."""
    raw = params if isinstance(params, Mapping) else params.to_dict()
    planned: list[Run] = []
    for spec in STAGES.values():
        if spec.name == "report":
            continue
        combos: list[dict[str, Any]] = [{}]
        for name, key in spec.matrix:
            combos = [{**combo, name: value} for combo in combos for value in lookup(raw, key)]
        planned.extend(run_of(spec.name, **combo) for combo in combos)
    inputs = {run.artifact: run.command for run in planned}
    return [*planned, dataclasses.replace(run_of("report"), inputs=inputs)]


def finetune_stage(init: str) -> str:
    """The stage of a finetune run: the two-stage init's runs also read the pretrain stage."""
    return "finetune_two_stage" if init == TWO_STAGE else "finetune"
