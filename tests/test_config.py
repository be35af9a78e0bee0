"""Params validation: one schema for sswp and Snakemake, one clear line per problem."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from pathlib import Path
from typing import get_type_hints

import pytest
import yaml

from sswp.config.load import load_params, params_from_dict
from sswp.config.params import Params, file_fields
from sswp.config.schema import SCHEMA_FILE, schema, schema_text
from sswp.errors import SswpError

REPO = Path(__file__).resolve().parents[1]


def _with(config: dict, dotted: str, value) -> dict:
    out = yaml.safe_load(yaml.safe_dump(config))
    *parents, last = dotted.split(".")
    node = out
    for part in parents:
        node = node[part]
    node[last] = value
    return out


def test_shipped_params_files_are_valid():
    for path in [REPO / "params.yaml", *sorted((REPO / "params").glob("*.yaml"))]:
        load_params(path)


def test_the_committed_schema_file_is_the_one_the_dataclasses_make():
    committed = (REPO / SCHEMA_FILE).read_text()
    assert committed == schema_text(), f"{SCHEMA_FILE} is stale: run `make params-schema`"
    assert yaml.safe_load(committed) == schema()


def test_the_schema_requires_every_field_and_only_the_fields_of_each_dataclass():
    def check(cls, node):
        names = [spec.name for spec in file_fields(cls)]
        assert node["required"] == names and list(node["properties"]) == names
        assert node["additionalProperties"] is False
        for spec in file_fields(cls):
            hint = get_type_hints(cls)[spec.name]
            if dataclasses.is_dataclass(hint):
                check(hint, node["properties"][spec.name])

    check(Params, schema())
    assert "seed" not in schema()["properties"]  # set by the program, never by the file


def test_bounds_and_enums_come_from_the_field_declarations():
    finetune = schema()["properties"]["finetune"]["properties"]
    assert finetune["lr"] == {"type": "number", "exclusiveMinimum": 0}
    assert finetune["inits"]["items"] == {"enum": ["preserved", "random"]}
    assert finetune["label_ratios"]["items"] == {
        "type": "number",
        "exclusiveMinimum": 0,
        "maximum": 1,
    }
    betas = schema()["properties"]["search"]["properties"]["arch_betas"]
    assert (betas["minItems"], betas["maxItems"]) == (2, 2)
    assert schema()["properties"]["pretrain"]["properties"]["batch_size"]["minimum"] == 2


def test_the_params_page_table_names_every_param_of_each_group_and_no_other():
    rows = {}
    for line in (REPO / "docs" / "params.md").read_text().splitlines():
        match = re.match(r"\| `(\w+)` \| (.*) \|$", line)
        if match:
            rows[match[1]] = match[2]
    groups = [spec.name for spec in file_fields(Params)]
    assert [name for name in rows if name in groups] == groups
    for spec in file_fields(Params):
        hint = get_type_hints(Params)[spec.name]
        if not dataclasses.is_dataclass(hint):
            continue
        named = set(re.findall(r"`(\w+)`", rows[spec.name]))
        keys = {field.name for field in file_fields(hint)}
        assert keys <= named, f"docs/params.md table, {spec.name}: missing {keys - named}"
        assert named - keys <= set(groups), f"docs/params.md, {spec.name}: unknown {named - keys}"


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("search.epochs", -3, "search.epochs = -3 is invalid"),
        ("data.dataset", "mnist", "data.dataset = 'mnist' is not allowed; use one of"),
        ("search.gate_mode", "three", "'two', 'full_v2'"),
        ("finetune.label_ratios", [0.1, 1.5], "finetune.label_ratios.1 = 1.5"),
        ("finetune.label_ratios", [0.0], "finetune.label_ratios.0 = 0.0"),
        ("train.bogus", 1, "train: Additional properties are not allowed ('bogus'"),
        ("bogus", 1, "remove it or check its spelling"),
        (
            "search.phases",
            {"warmup": 0.5, "search": 0.5, "prune": 0.5, "stabilise": 0},
            "sum to 1.5, more than 1",
        ),
    ],
)
def test_bad_values_name_the_key_the_value_and_what_is_allowed(tiny_config, key, value, expected):
    with pytest.raises(SswpError) as info:
        params_from_dict(_with(tiny_config, key, value))
    message = str(info.value)
    assert expected in message
    assert "\n" not in message


def test_cli_rejects_bad_params_with_one_line_and_exit_2(tmp_path, tiny_config):
    bad = tmp_path / "params.yaml"
    bad.write_text(yaml.safe_dump(_with(tiny_config, "search.layers", 1)))
    proc = subprocess.run(
        [sys.executable, "-m", "sswp.cli", "search", "--params", str(bad)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "sswp search: error: "
        + f"{bad}: search.layers = 1 is invalid: 1 is less than the minimum of 3"
    ]
    assert not (tmp_path / "artifacts").exists() and not (tmp_path / "metrics").exists()


def test_snakemake_rejects_the_same_bad_params(tmp_path, tiny_config):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(_with(tiny_config, "search.epochs", 0)))
    proc = subprocess.run(
        [
            str(Path(sys.executable).parent / "snakemake"),
            "-n",
            "--cores",
            "1",
            "--configfile",
            str(bad),
            "--directory",
            str(REPO),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0
    output = proc.stdout + proc.stderr
    assert "epochs" in output and "minimum" in output


def test_accumulated_gate_gradients_need_the_two_mode(tiny_config):
    config = _with(
        _with(tiny_config, "search.gate_gradients", "accumulate"), "search.gate_mode", "full_v2"
    )
    with pytest.raises(SswpError, match="reproduces the original's `two` mode only"):
        params_from_dict(config)
    assert params_from_dict(_with(config, "search.gate_mode", "two")).search.gate_gradients == (
        "accumulate"
    )
