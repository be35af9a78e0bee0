"""Provenance records: the params, code and inputs that made each stage output.

A stage writes `provenance.json` into its artifact folder: digests of its tracked params (the
keys the stage contract lists), of the package files it runs, and of the records of the folders it
read. Before a stage starts it checks those records, and theirs in turn, so a result is
never built from inputs that the current params or code would make differently, whichever
driver (or none) made them. Plain Python and PyYAML only: the Snakefile imports this module.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from sswp.errors import SswpError
from sswp.pipeline.contract import PACKAGE, code_paths, tracked_params

RECORD_FILE = "provenance.json"
CHECKOUT_PACKAGE = Path("src/sswp")  # the code that the drivers hash, from the working folder
RERUN_HINT = "(or `dvc repro` / `snakemake`, which rerun it)"


def file_digest(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def params_digest(tracked: Mapping[str, Any]) -> str:
    """Digest of a stage's tracked params ({dotted key: value}), the same for every driver."""
    text = json.dumps(tracked, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def stage_params_digest(params: Any, stage: str) -> str:
    return params_digest(tracked_params(params, stage))


@cache
def code_digest(stage: str, package: Path = PACKAGE) -> str:
    """Digest of a stage's code (file names and bytes) in `package`, by default the one that
    this process runs."""
    digest = hashlib.sha256()
    for path in code_paths(stage, package):
        digest.update(f"{path.relative_to(package).as_posix()}\0".encode())
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def check_checkout_code(stage: str, checkout: Path = CHECKOUT_PACKAGE) -> None:
    """Refuse to run other code than the checkout's, when run in a checkout.

    The drivers hash `src/sswp/` of the working folder, but `sswp` imports whichever package
    is installed: an editable install of another clone would make results that dvc.lock and
    the records credit to code that never ran.
    """
    if not checkout.is_dir() or checkout.resolve() == PACKAGE:
        return
    if code_digest(stage, checkout.resolve()) != code_digest(stage):
        raise SswpError(
            f"this checkout's {checkout}/ differs from the sswp package that runs ({PACKAGE}) "
            f"in the {stage} code: run `pip install -e .` here (or `make setup`), or put src "
            "first on PYTHONPATH"
        )


def record_path(folder: Path) -> Path:
    return Path(folder) / RECORD_FILE


def record_digest(folder: Path) -> str | None:
    """Digest of a folder's record; None when it has none."""
    path = record_path(folder)
    return file_digest(path) if path.is_file() else None


def make_record(
    stage: str, command: str, params: Any, inputs: Iterable[Path], outputs: Mapping[str, Path]
) -> dict[str, Any]:
    """The record of one stage run: what made it (the machine and its CPU kernels too), and
    a digest of every file it wrote."""
    from sswp.pipeline.machine import describe

    return {
        "stage": stage,
        "command": command,
        "params": stage_params_digest(params, stage),
        "code": code_digest(stage),
        "inputs": {str(folder): record_digest(folder) for folder in inputs},
        "outputs": {name: file_digest(path) for name, path in sorted(outputs.items())},
        "machine": describe(),
    }


def _read(folder: Path, command: str | None) -> dict[str, Any]:
    rerun = f"rerun `{command}`" if command else "rerun the stage that writes it"
    if not folder.is_dir():
        raise SswpError(f"{folder} not found; {rerun.replace('rerun', 'run', 1)} first")
    path = record_path(folder)
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        raise SswpError(
            f"{folder} has no provenance record ({RECORD_FILE}), so what made it is unknown; "
            f"{rerun} {RERUN_HINT}"
        ) from None
    except (OSError, ValueError) as exc:
        raise SswpError(f"{path} is unreadable ({type(exc).__name__}); {rerun}") from exc
    if not isinstance(record, dict) or not {"stage", "command", "params", "code"} <= set(record):
        raise SswpError(f"{path} is not a provenance record; {rerun}")
    return record


def stale_reason(params: Any, record: dict[str, Any]) -> str | None:
    """Why a record does not match the current params and code of its stage, or None."""
    stage = record["stage"]
    if record["params"] != stage_params_digest(params, stage):
        return f"it was made with other {stage} params"
    if record["code"] != code_digest(stage):
        return f"it was made by other {stage} code"
    for folder, digest in record.get("inputs", {}).items():
        now = record_digest(Path(folder))
        if now != digest:
            return f"{folder} is gone" if now is None else f"{folder} was remade after it"
    return None


def check_inputs(params: Any, inputs: Mapping[Path, str]) -> None:
    """Refuse stale inputs: each folder (command that makes it) and, first, what it was made of.

    The error names the most upstream stale stage, the one to rerun first. A missing input
    is left to the stage, which names the file it needs.
    """
    seen: set[Path] = set()

    def visit(folder: Path, command: str | None) -> None:
        if folder in seen:
            return
        seen.add(folder)
        record = _read(folder, command)
        for upstream in record.get("inputs", {}):
            visit(Path(upstream), None)
        reason = stale_reason(params, record)
        if reason is not None:
            rerun = f"rerun `{record['command']}` {RERUN_HINT}"
            raise SswpError(f"{folder} is stale: {reason}; {rerun}")

    for folder, command in inputs.items():
        if Path(folder).exists():
            visit(Path(folder), command)
