"""Every YAML file the project ships holds each key once: PyYAML, DVC and Snakemake all keep
the last of two equal keys without a word, so a duplicate silently drops the first."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SHIPPED = sorted(
    {
        *REPO.glob("*.yaml"),
        REPO / "dvc.lock",
        *REPO.glob("params/*.yaml"),
        *REPO.glob("results/*.yaml"),
        *REPO.glob("src/sswp/*.yaml"),
        *REPO.glob("workflow/**/*.yaml"),
        *REPO.glob("profiles/**/*.yaml"),
    }
)


class UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader that refuses a mapping holding the same key twice."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def test_every_shipped_yaml_file_is_checked():
    names = {path.relative_to(REPO).as_posix() for path in SHIPPED}
    assert {"params.yaml", "dvc.yaml", "workflow/schemas/params.schema.yaml"} <= names
    assert any(name.startswith("profiles/") for name in names)
    assert any(name.startswith("params/") for name in names)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.relative_to(REPO).as_posix())
def test_yaml_file_has_no_duplicate_key(path):
    yaml.load(path.read_text(), Loader=UniqueKeyLoader)


def test_a_duplicate_key_is_refused():
    with pytest.raises(yaml.constructor.ConstructorError, match="duplicate key 'seed'"):
        yaml.load("a:\n  seed: 1\n  other: 2\n  seed: 3\n", Loader=UniqueKeyLoader)
