"""Every cheap command that the README and the docs show runs, on a fresh clone of the
committed state: a reader copying one gets its output, not an error."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
# Commands that read the committed state and change nothing tracked; the rest (runs, pushes,
# installs) the end-to-end and remote tests run.
CHEAP = (
    "dvc metrics show",
    "dvc metrics diff",
    "dvc params diff",
    "dvc exp show",
    "dvc exp list",
    "dvc plots show",
    "dvc dag",
    "dvc status",
    "snakemake -n",
    "sswp compare",
)
# `sswp compare` exits 1 when the runs differ, as diff does.
ALLOWED = {"sswp compare": (0, 1)}


def shown_commands() -> list[tuple[str, str]]:
    """(page, command) for each cheap command in the pages' shell blocks."""
    found = []
    for page in PAGES:
        blocks = re.findall(r"```(?:bash|sh)\n(.*?)```", page.read_text(), re.S)
        for block in blocks:
            for line in block.splitlines():
                command = re.split(r"\s+#", line.strip(), maxsplit=1)[0].strip()
                if command.startswith(CHEAP):
                    found.append((page.relative_to(REPO).as_posix(), command))
    return found


COMMANDS = shown_commands()


def test_the_pages_show_every_kind_of_cheap_command():
    shown = {prefix for prefix in CHEAP if any(c.startswith(prefix) for _, c in COMMANDS)}
    assert shown >= {"dvc metrics diff", "dvc params diff", "dvc exp show", "dvc plots show"}
    assert shown >= {"dvc dag", "snakemake -n", "sswp compare"}


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    """A fresh clone of the committed state, as a reader gets it."""
    root = tmp_path_factory.mktemp("readme") / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(root)], check=True)
    return root


@pytest.mark.parametrize(("page", "command"), COMMANDS, ids=[c for _, c in COMMANDS])
def test_a_shown_command_runs(clone, page, command):
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "DVC_NO_ANALYTICS": "1",
        "COLUMNS": "200",
    }
    args = [*shlex.split(command), *(["--no-pager"] if command.startswith("dvc exp show") else [])]
    proc = subprocess.run(args, cwd=clone, env=env, capture_output=True, text=True, timeout=600)
    allowed = next((v for k, v in ALLOWED.items() if command.startswith(k)), (0,))
    assert proc.returncode in allowed, (
        f"{page}: {command}\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
    )
