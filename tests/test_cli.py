"""The command line: a stage's process parses only its own stage's arguments."""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest

from sswp import cli

# What parsing a command line leaves imported: the sswp.stages modules and the heavy libraries.
PARSED_IMPORTS = """
import sys
from sswp import cli
cli.build_parser(sys.argv[1:2]).parse_args(sys.argv[1:])
print(sorted(name for name in sys.modules
             if name.startswith("sswp.stages.") or name in ("scipy", "matplotlib")))
"""


def _parsed_imports(*argv: str) -> list[str]:
    run = subprocess.run(
        [sys.executable, "-c", PARSED_IMPORTS, *argv], capture_output=True, text=True, check=True
    )
    return ast.literal_eval(run.stdout.strip())


def test_a_stage_command_imports_its_own_stage_module_only():
    imported = _parsed_imports("finetune", "--seed", "0", "--init", "random", "--ratio", "0.02")
    assert "sswp.stages.finetune" in imported
    stage_modules = {f"sswp.stages.{name.replace('-', '_')}" for name in cli.STAGES}
    assert stage_modules & set(imported) == {"sswp.stages.finetune"}
    assert "scipy" not in imported and "matplotlib" not in imported  # the report's


@pytest.mark.parametrize("stage", sorted(cli.STAGES))
def test_each_stage_parses_its_own_arguments_when_alone(stage, capsys):
    # The full parser (every stage's arguments) and the one-stage parser give the same help.
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args([stage, "--help"])
    full = capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli.build_parser([stage]).parse_args([stage, "--help"])
    assert capsys.readouterr().out == full
