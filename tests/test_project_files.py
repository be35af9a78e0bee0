"""The files researchers look for: CITATION.cff (the software, the paper as a reference) and
the changelog, and one version everywhere it is written.

CI also validates CITATION.cff with `cffconvert --validate` against the official CFF 1.2.0
schema (.ci/run); here the same rules for the fields the file uses, with jsonschema.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import yaml

import sswp

REPO = Path(__file__).resolve().parents[1]
VERSION = re.search(r'^version = "([^"]+)"', (REPO / "pyproject.toml").read_text(), re.M)[1]
TEXT = {"type": "string", "minLength": 1}
PERSON = {
    "type": "object",
    "anyOf": [{"required": ["family-names"]}, {"required": ["name"]}],
    "properties": {"family-names": TEXT, "given-names": TEXT, "name": TEXT},
}
AUTHORS = {"type": "array", "minItems": 1, "items": PERSON}
# CFF 1.2.0's rules for the keys CITATION.cff uses (an unknown key is an error, as there).
CFF = {
    "type": "object",
    "required": ["cff-version", "message", "title", "authors"],
    "additionalProperties": False,
    "properties": {
        "cff-version": {"const": "1.2.0"},
        "message": TEXT,
        "type": {"enum": ["software", "dataset"]},
        "title": TEXT,
        "abstract": TEXT,
        "authors": AUTHORS,
        "version": TEXT,
        "date-released": {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}$"},
        "license": TEXT,
        "keywords": {"type": "array", "items": TEXT},
        "references": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["type", "title", "authors"],
                "properties": {
                    "type": {"enum": ["article", "software", "book", "conference-paper"]},
                    "title": TEXT,
                    "authors": AUTHORS,
                    "year": {"type": "integer"},
                    "journal": TEXT,
                    "url": {"type": "string", "pattern": "^https://"},
                    "identifiers": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["type", "value"],
                            "properties": {"type": {"enum": ["doi", "url", "swh", "other"]}},
                        },
                    },
                },
            },
        },
    },
}


def test_citation_follows_the_cff_rules_and_cites_the_paper():
    citation = yaml.safe_load((REPO / "CITATION.cff").read_text())
    citation["date-released"] = str(citation["date-released"])
    jsonschema.validate(citation, CFF)
    (paper,) = citation["references"]
    assert paper["type"] == "article" and "arXiv:2206.04125" in str(paper["identifiers"])
    assert "Weight-preserving Neural Architecture Search" in paper["title"]


def test_one_version_everywhere():
    citation = yaml.safe_load((REPO / "CITATION.cff").read_text())
    newest = re.search(r"^## (\S+) \(", (REPO / "CHANGELOG.md").read_text(), re.M)[1]
    dockerfile = (REPO / "docker" / "Dockerfile").read_text()
    apptainer = (REPO / "docker" / "apptainer.def").read_text()
    assert sswp.__version__ == VERSION == citation["version"] == newest
    assert f'org.opencontainers.image.version="{VERSION}"' in dockerfile
    assert f"org.opencontainers.image.version {VERSION}" in apptainer
    shown = subprocess.run(
        [sys.executable, "-m", "sswp.cli", "--version"], capture_output=True, text=True, check=True
    )
    assert shown.stdout.strip() == f"sswp {VERSION}"


def test_the_changelog_has_a_dated_entry_for_every_version_newest_first():
    headings = re.findall(
        r"^## (\d+)\.(\d+)\.(\d+) \((\d{4}-\d{2}-\d{2})\)$",
        (REPO / "CHANGELOG.md").read_text(),
        re.M,
    )
    versions = [tuple(map(int, h[:3])) for h in headings]
    assert versions == sorted(versions, reverse=True) and len(versions) >= 2
    dates = [h[3] for h in headings]
    assert dates == sorted(dates, reverse=True)
