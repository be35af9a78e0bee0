"""`sswp verify`: rerun the committed default (or some of its runs) in a scratch folder and
compare every metric and genotype with the committed ones.

The rerun reads a copy of the params file and prepares its own data in the scratch folder,
so the user's artifacts, metrics and results are never touched. With portable numerics on
a CPU the rerun is bit-identical by design, and any difference fails; on CUDA, or with
portable numerics off, kernels differ from machine to machine, so numbers are compared
within TOLERANCE and the output says so.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sswp.config.params import Params
from sswp.errors import SswpError
from sswp.pipeline.paths import (
    GENOTYPE_FILE,
    METRICS_DIR,
    RESULTS_DIR,
    probe_tag,
    ratio_tag,
    seed_tag,
    snapshot_dir,
    train_tag,
)

# Wall-clock and throughput fields: they differ between any two runs, and are never compared.
TIMING_FIELDS = frozenset({"search_hours", "train_hours", "pretrain_hours"})
# Where a rerun is not bit-identical by design: |a - b| <= max(REL * |b|, ABS).
TOLERANCE = {"rel": 0.05, "abs": 0.02}
STAGE_ORDER = ("search", "train", "pretrain", "finetune", "linear_eval", "report")
SUMMARY_MD = RESULTS_DIR / "summary.md"
HEADLINE_JSON = RESULTS_DIR / "headline.json"
LINEAR_EVAL_ARMS = ("preserved", "two_stage", "random")


@dataclass(frozen=True)
class Run:
    """One stage run of the committed default: its name, command and the files it commits."""

    stage: str
    tag: str
    args: tuple[str, ...]
    metrics: tuple[Path, ...]
    needs: tuple[str, ...] = ()
    genotype_seed: int | None = None

    @property
    def name(self) -> str:
        return f"{self.stage}:{self.tag}" if self.tag else self.stage


def default_runs(params: Params) -> list[Run]:
    """Every run that params asks for, upstream first (the report last)."""
    runs: list[Run] = []
    for seed in params.seeds:
        s = str(seed)
        search = f"search:{seed_tag(seed)}"
        pretrain = f"pretrain:{seed_tag(seed)}"
        runs.append(
            Run(
                "search",
                seed_tag(seed),
                ("search", "--seed", s),
                (METRICS_DIR / "search" / f"{seed_tag(seed)}.json",),
                genotype_seed=seed,
            )
        )
        for arch in params.train.trained():
            tag = train_tag(arch, seed)
            needs = (search,) if arch in params.train.architectures else ()
            args = ("train", "--seed", s, "--architecture", arch)
            runs.append(Run("train", tag, args, (METRICS_DIR / "train" / f"{tag}.json",), needs))
        metrics = (METRICS_DIR / "pretrain" / f"{seed_tag(seed)}.json",)
        runs.append(Run("pretrain", seed_tag(seed), ("pretrain", "--seed", s), metrics, (search,)))
        for ratio in params.finetune.label_ratios:
            for init in (*params.finetune.inits, "two_stage"):
                tag = ratio_tag(init, ratio, seed)
                needs = (search, pretrain) if init == "two_stage" else (search,)
                args = ("finetune", "--seed", s, "--init", init, "--ratio", str(ratio))
                paths = (METRICS_DIR / "finetune" / f"{tag}.json",)
                runs.append(Run("finetune", tag, args, paths, needs))
            tag = probe_tag(ratio, seed)
            paths = tuple(
                METRICS_DIR / "linear_eval" / f"{ratio_tag(arm, ratio, seed)}.json"
                for arm in LINEAR_EVAL_ARMS
            )
            args = ("linear_eval", "--seed", s, "--ratio", str(ratio))
            runs.append(Run("linear_eval", tag, args, paths, (search, pretrain)))
    everything = tuple(run.name for run in runs)
    runs.append(Run("report", "", ("report",), (HEADLINE_JSON,), everything))
    return runs


def select(runs: list[Run], wanted: list[str] | None) -> list[Run]:
    """The runs named (a stage: all its runs; `stage:tag`: one), with what they need, in order."""
    by_name = {run.name: run for run in runs}
    if not wanted:
        return runs
    chosen: set[str] = set()
    for item in wanted:
        hits = [r.name for r in runs if item in (r.stage, r.name)]
        if not hits:
            names = ", ".join([*STAGE_ORDER, *(r.name for r in runs if r.tag)][:12])
            raise SswpError(f"verify: no stage or run {item!r}; choose among {names}, ...")
        chosen.update(hits)
    pending = list(chosen)
    while pending:
        for need in by_name[pending.pop()].needs:
            if need not in chosen:
                chosen.add(need)
                pending.append(need)
    return [run for run in runs if run.name in chosen]


@dataclass
class Comparison:
    lines: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def differ(self) -> bool:
        return bool(self.lines)


def numbers(data: Any, prefix: str = "") -> Iterator[tuple[str, float]]:
    """(dotted key, value) of every numeric field, timing fields left out."""
    if isinstance(data, dict):
        for key, value in sorted(data.items()):
            if key not in TIMING_FIELDS:
                yield from numbers(value, f"{prefix}{key}.")
    elif isinstance(data, (int, float)) and not isinstance(data, bool):
        yield prefix.rstrip("."), float(data)


def same(a: float, b: float, exact: bool) -> bool:
    if exact:
        return a == b or (math.isnan(a) and math.isnan(b))
    return math.isclose(a, b, rel_tol=TOLERANCE["rel"], abs_tol=TOLERANCE["abs"])


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SswpError(f"{path} is unreadable ({type(exc).__name__})") from exc


def compare_metrics(path: Path, repo: Path, scratch: Path, exact: bool, out: Comparison) -> None:
    """The numbers of one metrics file (`path`, relative) committed in repo and rerun."""
    if not (repo / path).is_file():
        out.lines.append(f"{path}: not committed (the rerun made it)")
        return
    old, new = dict(numbers(_read_json(repo / path))), dict(numbers(_read_json(scratch / path)))
    for key in sorted(old.keys() | new.keys()):
        if key not in new or key not in old:
            where = "rerun" if key not in new else "committed file"
            out.lines.append(f"{path}: {key} missing from the {where}")
        elif not same(old[key], new[key], exact):
            out.lines.append(f"{path}: {key} = {new[key]!r}, committed {old[key]!r}")


def committed_genotypes(summary: Path) -> dict[int, str]:
    """{seed: short genotype} of the Genotypes section of the committed summary."""
    if not summary.is_file():
        return {}
    found = re.findall(r"^seed (\d+): (.+)$", summary.read_text(), flags=re.MULTILINE)
    return {int(seed): short.strip() for seed, short in found}


def compare_genotype(
    seed: int, architecture: str, repo: Path, scratch: Path, exact: bool, out: Comparison
) -> None:
    from sswp.nas.genotype import Genotype

    committed = committed_genotypes(repo / SUMMARY_MD).get(seed)
    rerun = Genotype.load(scratch / snapshot_dir(seed, architecture) / GENOTYPE_FILE).short()
    if committed == rerun:
        return
    line = f"genotype of seed {seed} ({architecture}): {rerun}, committed {committed}"
    (out.lines if exact else out.notes).append(line)


def bit_identical_by_design(params: Params) -> bool:
    """Portable numerics on a CPU: the same bits on every x86-64 machine with AVX2."""
    if not params.runtime.portable_numerics or params.runtime.device == "cuda":
        return False
    if params.runtime.device == "cpu":
        return True
    import torch

    return not torch.cuda.is_available()


def prepare_scratch(repo: Path, params_file: Path, params: Params, scratch: Path) -> None:
    """The params file and (for datasets read from disk) a link to the data, nothing else."""
    scratch.mkdir(parents=True, exist_ok=True)
    shutil.copy2(params_file, scratch / "params.yaml")
    data = Path(params.data.path)
    if not data.is_absolute() and (repo / data).exists() and not (scratch / data).exists():
        (scratch / data).parent.mkdir(parents=True, exist_ok=True)
        (scratch / data).symlink_to((repo / data).resolve())


def rerun(run_args: tuple[str, ...], scratch: Path) -> None:
    """One stage in its own process (which pins the kernels before torch loads)."""
    command = [sys.executable, "-m", "sswp.cli", *run_args]
    print(f"verify: sswp {' '.join(run_args)}", file=sys.stderr, flush=True)
    if subprocess.run(command, cwd=scratch).returncode != 0:
        raise SswpError(f"`sswp {' '.join(run_args)}` failed in {scratch}; see its log above")


def verify(
    params: Params, params_file: Path, repo: Path, scratch: Path, wanted: list[str] | None
) -> Comparison:
    runs = select(default_runs(params), wanted)
    exact = bit_identical_by_design(params)
    prepare_scratch(repo, params_file, params, scratch)
    out = Comparison()
    if not exact:
        out.notes.append(
            "not bit-identical by design (CUDA, or runtime.portable_numerics off): numbers "
            f"compared within {TOLERANCE['rel']:.0%} or {TOLERANCE['abs']} absolute, "
            "genotypes only noted"
        )
    rerun(("prepare",), scratch)
    for run in runs:
        rerun(run.args, scratch)
    for run in runs:
        for path in run.metrics:
            compare_metrics(path, repo, scratch, exact, out)
        if run.genotype_seed is not None:
            architecture = params.finetune.architecture
            compare_genotype(run.genotype_seed, architecture, repo, scratch, exact, out)
    return out


def scratch_folder(given: str | None) -> tuple[Path, bool]:
    """The folder to rerun in, and whether verify made it (and removes it afterwards)."""
    if given is None:
        return Path(tempfile.mkdtemp(prefix="sswp-verify-")), True
    path = Path(given)
    if path.exists() and any(path.iterdir()):
        raise SswpError(f"--scratch {path} is not empty; name a new or empty folder")
    return path, False
