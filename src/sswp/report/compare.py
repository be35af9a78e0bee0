"""Compare two runs' results: which params differ and how every reported metric moved.

It reads only the params.yaml and metrics.json that `sswp report` writes into results/, so
it is light (no torch) and works on any two result folders, wherever they were made, and
on any two git revisions or DVC experiments, whose commits carry their results/.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from sswp.config import yaml12
from sswp.errors import SswpError
from sswp.pipeline.paths import RESULTS_DIR
from sswp.report.revisions import read_at, resolve

METRICS_FILE = "metrics.json"
PARAMS_FILE = "params.yaml"
ABSENT = "—"
_NOTHING = object()


def results_folder(path: Path) -> Path:
    """`path` itself if it holds the report's metrics, else its results/ folder if it has one."""
    if not path.is_dir():
        raise SswpError(f"{path} is not a folder; give a results/ folder or a run folder")
    nested = path / RESULTS_DIR
    return nested if not (path / METRICS_FILE).is_file() and nested.is_dir() else path


def _parse(text: str, parse: Any, kind: str, where: str) -> dict[str, Any]:
    try:
        data = parse(text)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        reason = str(exc).splitlines()[0]
        raise SswpError(f"{where} is not valid {kind} ({reason}); rerun `sswp report`") from exc
    if not isinstance(data, dict):
        raise SswpError(f"{where} is not a {kind} mapping; rerun `sswp report`")
    return data


def _read(path: Path, parse: Any, kind: str) -> dict[str, Any]:
    if not path.is_file():
        raise SswpError(f"{path} not found; run `sswp report` in that run first")
    try:
        text = path.read_text()
    except UnicodeDecodeError as exc:
        raise SswpError(f"{path} is not valid {kind} ({exc}); rerun `sswp report`") from exc
    return _parse(text, parse, kind, str(path))


def read_run(side: str | Path) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """One side's name, params and metrics: from a results/ folder or the run folder holding
    it, or else from a git revision or DVC experiment of the repository here."""
    path = Path(side)
    if path.is_dir():
        folder = results_folder(path)
        params = _read(folder / PARAMS_FILE, yaml12.load, "YAML")
        return str(folder), params, _read(folder / METRICS_FILE, json.loads, "JSON")
    if path.exists():
        raise SswpError(f"{path} is not a folder; give a results/ folder or a run folder")
    commit = resolve(str(side))
    files = [f"{RESULTS_DIR}/{name}" for name in (PARAMS_FILE, METRICS_FILE)]
    params, metrics = (
        _parse(read_at(commit, name), parse, kind, f"{side}:{name}")
        for name, parse, kind in zip(
            files, (yaml12.load, json.loads), ("YAML", "JSON"), strict=True
        )
    )
    return f"{side} ({commit[:12]})", params, metrics


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as dotted keys (`search.epochs`), the form DVC shows; lists are leaves."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat |= flatten(value, f"{name}.")
        else:
            flat[name] = value
    return flat


def value_text(value: Any) -> str:
    """A value as YAML/JSON would show it, floats to 6 significant digits."""
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, str):
        return value
    return json.dumps(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _cell(side: Mapping[str, Any], key: str) -> str:
    return value_text(side[key]) if key in side else ABSENT


def text_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Left-aligned columns two spaces apart, indented, without trailing blanks."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return [
        "  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]


def params_section(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    """The flattened params whose values differ, or that only one side has."""
    keys = sorted(k for k in a.keys() | b.keys() if a.get(k, _NOTHING) != b.get(k, _NOTHING))
    if not keys:
        return ["Params: identical"]
    rows = [[k, _cell(a, k), _cell(b, k)] for k in keys]
    return [f"Params that differ ({len(keys)}):", *text_table(["key", "A", "B"], rows)]


def metric_status(a: Mapping[str, Any], b: Mapping[str, Any], key: str) -> str:
    if key not in b:
        return "only in A"
    if key not in a:
        return "only in B"
    return "changed" if a[key] != b[key] else ""


def metrics_section(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    """Every flattened metric with A, B and B-A (for two numbers) and whether it moved."""
    rows = []
    for key in sorted(a.keys() | b.keys()):
        numbers = _is_number(a.get(key)) and _is_number(b.get(key))
        delta = f"{b[key] - a[key]:+.6g}" if numbers else ""
        rows.append([key, _cell(a, key), _cell(b, key), delta, metric_status(a, b, key)])
    moved = sum(1 for r in rows if r[-1])
    title = f"Metrics ({len(rows)}, {moved} changed or on one side only):"
    return [title, *text_table(["key", "A", "B", "B-A", ""], rows)]


@dataclass(frozen=True)
class Comparison:
    """The text `sswp compare` prints, and whether the runs differ (its exit status, as diff)."""

    text: str
    differ: bool


def compare(a: str | Path, b: str | Path) -> Comparison:
    """Both runs read, diffed and laid out: the params that differ, then every metric."""
    name_a, *parts_a = read_run(a)
    name_b, *parts_b = read_run(b)
    params_a, metrics_a = (flatten(part) for part in parts_a)
    params_b, metrics_b = (flatten(part) for part in parts_b)
    lines = [
        f"A: {name_a}",
        f"B: {name_b}",
        "",
        *params_section(params_a, params_b),
        "",
        *metrics_section(metrics_a, metrics_b),
    ]
    differ = params_a != params_b or metrics_a != metrics_b
    return Comparison("\n".join(lines) + "\n", differ)
