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
import shlex
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
from sswp.pipeline.contract import Run
from sswp.pipeline.contract import runs as plan_runs
from sswp.pipeline.paths import GENOTYPE_FILE, RESULTS_DIR, snapshot_dir

# Wall-clock and throughput fields: they differ between any two runs, and are never compared.
TIMING_FIELDS = frozenset({"search_hours", "train_hours", "pretrain_hours"})
# Where a rerun is not bit-identical by design: |a - b| <= max(REL * |b|, ABS).
TOLERANCE = {"rel": 0.05, "abs": 0.02}
STAGE_ORDER = ("prepare", "search", "train", "pretrain", "finetune", "linear_eval", "report")
SUMMARY_MD = RESULTS_DIR / "summary.md"
HEADLINE_JSON = RESULTS_DIR / "headline.json"


def run_name(run: Run) -> str:
    """How `--stages` names one run: `stage:tag`, e.g. `finetune:preserved-0.02-seed-0`."""
    return run.name.replace("/", ":", 1)


def select(runs: list[Run], wanted: list[str] | None) -> list[Run]:
    """The runs named (a stage: all its runs; `stage:tag`: one), with what they need, in the
    plan's order."""
    if not wanted:
        return runs
    makers = {run.artifact: run for run in runs}
    chosen: set[str] = set()
    for item in wanted:
        hits = [run.name for run in runs if item in (run.group, run_name(run))]
        if not hits:
            tagged = [run_name(run) for run in runs if "/" in run.name]
            names = ", ".join([*STAGE_ORDER, *tagged][:12])
            raise SswpError(f"verify: no stage or run {item!r}; choose among {names}, ...")
        chosen.update(hits)
    pending = [run for run in runs if run.name in chosen]
    while pending:
        for folder in pending.pop().inputs:
            need = makers.get(folder)
            if need is not None and need.name not in chosen:
                chosen.add(need.name)
                pending.append(need)
    return [run for run in runs if run.name in chosen]


def compared_files(run: Run) -> tuple[Path, ...]:
    """The metrics files of a run that verify compares (the report's: its headline)."""
    return (HEADLINE_JSON,) if run.stage == "report" else run.files


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
    runs = select(plan_runs(params), wanted)
    exact = bit_identical_by_design(params)
    prepare_scratch(repo, params_file, params, scratch)
    out = Comparison()
    if not exact:
        out.notes.append(
            "not bit-identical by design (CUDA, or runtime.portable_numerics off): numbers "
            f"compared within {TOLERANCE['rel']:.0%} or {TOLERANCE['abs']} absolute, "
            "genotypes only noted"
        )
    for run in runs:
        rerun(tuple(shlex.split(run.command)[1:]), scratch)
    for run in runs:
        for path in compared_files(run):
            compare_metrics(path, repo, scratch, exact, out)
        if run.stage == "search":
            seed = int(dict(run.values)["seed"])
            compare_genotype(seed, params.finetune.architecture, repo, scratch, exact, out)
    return out


def scratch_folder(given: str | None) -> tuple[Path, bool]:
    """The folder to rerun in, and whether verify made it (and removes it afterwards)."""
    if given is None:
        return Path(tempfile.mkdtemp(prefix="sswp-verify-")), True
    path = Path(given)
    if path.exists() and any(path.iterdir()):
        raise SswpError(f"--scratch {path} is not empty; name a new or empty folder")
    return path, False
