"""params.yaml's JSON schema, made from the params dataclasses, and the validation by it.

Every entry point (a direct `sswp` call, DVC stages, Snakemake rules) validates with it, so
a bad value is rejected the same way whichever driver runs it.
"""

from __future__ import annotations

import dataclasses
import math
from functools import cache
from typing import TYPE_CHECKING, Any, Literal, get_args, get_origin, get_type_hints

import yaml

from sswp.config.params import Params, file_fields
from sswp.errors import SswpError

if TYPE_CHECKING:
    import jsonschema


@cache
def field_types(cls: type) -> dict[str, Any]:
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
    schema |= _type_schema(field_types(cls)[spec.name])
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
        "description": "The one config of the pipeline, generated from "
        "src/sswp/config/params.py by `sswp params-schema`; validated by sswp, DVC runs "
        "(through sswp) and Snakemake.",
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
        "# Generated from src/sswp/config/params.py by `sswp params-schema`\n"
        "# (`make params-schema`): edit the dataclasses there, then regenerate. Snakemake's\n"
        "# `validate` reads this file.\n"
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
