"""Loading params.yaml: YAML 1.2, validated, built into the params dataclasses."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, get_origin

import yaml

from sswp.config import yaml12
from sswp.config.params import Params, file_fields
from sswp.config.schema import field_types, validate
from sswp.errors import SswpError


def _build(cls: type, raw: dict[str, Any]) -> Any:
    """A params dataclass from its validated dict: nested ones built alike, lists as tuples."""
    values = {}
    for spec in file_fields(cls):
        hint, value = field_types(cls)[spec.name], raw[spec.name]
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
