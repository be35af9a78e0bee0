"""Every cheap command that the README and the docs show runs, on a fresh clone of the
committed state: a reader copying one gets its output, not an error. The experiments that
the pages name (`dvc exp run -n NAME -S key=value`) exist in that clone as DVC keeps them, a
commit under refs/exps/ with the changed params, so the commands that read them run too."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sswp.config import yaml12

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
NAMED_EXPERIMENT = re.compile(r"dvc exp run\b(?=.*\s-n\s+(\S+))(.*)")
# `sswp compare` exits 1 when the runs differ, as diff does.
ALLOWED = {"sswp compare": (0, 1)}


def shell_lines(page: Path) -> list[str]:
    """The commands of the page's shell blocks, one a line, comments cut off."""
    blocks = re.findall(r"```(?:bash|sh)\n(.*?)```", page.read_text(), re.S)
    lines = [line for block in blocks for line in block.splitlines()]
    return [re.split(r"\s+#", line.strip(), maxsplit=1)[0].strip() for line in lines]


def shown_commands() -> list[tuple[str, str]]:
    """(page, command) for each cheap command in the pages' shell blocks."""
    return [
        (page.relative_to(REPO).as_posix(), command)
        for page in PAGES
        for command in shell_lines(page)
        if command.startswith(CHEAP)
    ]


def named_experiments() -> dict[str, dict[str, str]]:
    """{name: {dotted key: value}} for every `dvc exp run -n NAME -S key=value` shown."""
    found = {}
    for page in PAGES:
        for command in shell_lines(page):
            if match := NAMED_EXPERIMENT.match(command):
                found[match[1]] = dict(re.findall(r"-S\s+'?([\w.]+)=([^\s']+)", match[2]))
    return found


COMMANDS = shown_commands()


def test_the_pages_show_every_kind_of_cheap_command():
    shown = {prefix for prefix in CHEAP if any(c.startswith(prefix) for _, c in COMMANDS)}
    assert shown >= {"dvc metrics diff", "dvc params diff", "dvc exp show", "dvc plots show"}
    assert shown >= {"dvc dag", "snakemake -n", "sswp compare"}


def _git(root: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t"}
    env |= {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    done = subprocess.run(
        ["git", *args], cwd=root, env=env, check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


def _set(path: Path, settings: dict[str, str]) -> None:
    params = yaml12.load(path.read_text())
    for dotted, value in settings.items():
        group, key = dotted.split(".")
        params[group][key] = yaml.safe_load(value)
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def _add_experiment(root: Path, base: str, name: str, settings: dict[str, str]) -> None:
    """A commit on `base` with the changed params, under the ref DVC gives an experiment."""
    _git(root, "checkout", "-q", "--detach", base)
    for path in (root / "params.yaml", root / "results" / "params.yaml"):
        _set(path, settings)
    _git(root, "commit", "-qam", name, "--allow-empty")
    _git(root, "update-ref", f"refs/exps/{base[:2]}/{base[2:]}/{name}", "HEAD")


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    """A fresh clone of the committed state, as a reader gets it, with the pages' experiments."""
    root = tmp_path_factory.mktemp("readme") / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(root)], check=True)
    base, branch = _git(root, "rev-parse", "HEAD"), _git(root, "branch", "--show-current")
    for name, settings in named_experiments().items():
        _add_experiment(root, base, name, settings)
    _git(root, "checkout", "-q", branch)
    return root


def test_the_pages_name_the_experiments_they_compare():
    assert named_experiments()["lr-0.1"] == {"finetune.lr": "0.1"}


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
