"""Read params files with YAML 1.2's scalars, the way DVC writes them.

`dvc exp run -S key=value` rewrites params.yaml with a YAML 1.2 writer: it drops the
quotes around "off" and writes small floats as 1e-05. PyYAML (and Snakemake, through it)
reads YAML 1.1, where `off` is false and `1e-05` a string, so a rewritten file would fail
validation. Here only true/false are booleans and a float needs no dot before its exponent.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

BOOL_TAG = "tag:yaml.org,2002:bool"
FLOAT_TAG = "tag:yaml.org,2002:float"


class Yaml12Loader(yaml.SafeLoader):
    """yaml.SafeLoader with the YAML 1.2 core schema's booleans and floats."""


Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in (BOOL_TAG, FLOAT_TAG)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
Yaml12Loader.add_implicit_resolver(
    BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
Yaml12Loader.add_implicit_resolver(
    FLOAT_TAG,
    re.compile(
        r"""^(?:[-+]?(?:(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|[0-9]+[eE][-+]?[0-9]+)
        |[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$""",
        re.VERBOSE,
    ),
    list("-+0123456789."),
)


def load(text: str) -> Any:
    return yaml.load(text, Loader=Yaml12Loader)


def load_file(path: str | Path) -> Any:
    return load(Path(path).read_bytes().decode("utf-8"))
