"""runtime.portable_numerics pins the CPU kernels before torch loads, in every stage process:
a direct `sswp <stage>`, the DDP workers torchrun launches, and Snakemake's jobs.

A sitecustomize on PYTHONPATH records, in each Python process, the kernel switches that
the environment holds at the moment the process first imports torch.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sswp import cli
from sswp.pipeline.numerics import PORTABLE_ENV, params_file_of, pin_for_command

BIN = Path(sys.executable).parent
RECORDER = """
import json, os, sys

KEYS = {keys!r}


class _RecordTorchImport:
    def find_spec(self, name, path=None, target=None):
        if name == "torch":
            sys.meta_path.remove(self)
            env = {{key: os.environ.get(key) for key in KEYS}}
            out = os.path.join({out!r}, f"{{os.getpid()}}.json")
            with open(out, "w") as handle:
                json.dump({{"argv": sys.argv, "env": env}}, handle)
        return None


sys.meta_path.insert(0, _RecordTorchImport())
"""
# The workplace or the user may set some switches themselves: the setting overrides them.
OTHER_VALUES = {"OPENBLAS_CORETYPE": "Sandybridge", "ONEDNN_MAX_CPU_ISA": "SSE41"}


def _repo(root: Path, config: dict, repo_copy, merge_config, portable: bool, **runtime) -> Path:
    overrides = {"runtime": {"portable_numerics": portable, **runtime}}
    return repo_copy(root, merge_config(config, overrides))


def _run(command: list[str], root: Path, records: Path) -> subprocess.CompletedProcess:
    hook = records.parent / "hook"
    hook.mkdir(exist_ok=True)
    (hook / "sitecustomize.py").write_text(
        RECORDER.format(keys=list(PORTABLE_ENV), out=str(records))
    )
    env = {
        **os.environ,
        **OTHER_VALUES,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(hook), os.environ.get("PYTHONPATH")])),
        "PATH": os.pathsep.join([str(BIN), os.environ["PATH"]]),
    }
    run = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return run


def _torch_imports(records: Path, stage: str) -> list[dict]:
    """The records of the processes that ran `stage` (not the drivers around them)."""
    found = [json.loads(path.read_text()) for path in sorted(records.glob("*.json"))]
    return [r for r in found if stage in r["argv"]]


@pytest.fixture
def records(tmp_path) -> Path:
    out = tmp_path / "records"
    out.mkdir()
    return out


@pytest.mark.parametrize("portable", [True, False])
def test_a_stage_pins_the_kernels_before_torch_loads(
    portable, tmp_path, records, tiny_config, repo_copy, merge_config
):
    root = _repo(tmp_path / "repo", tiny_config, repo_copy, merge_config, portable)
    _run([str(BIN / "sswp"), "prepare"], root, records)
    (seen,) = _torch_imports(records, "prepare")
    expected = {key: os.environ.get(key) for key in PORTABLE_ENV} | OTHER_VALUES
    assert seen["env"] == (PORTABLE_ENV if portable else expected)
    machine = json.loads((root / "data" / "prepared" / "provenance.json").read_text())["machine"]
    assert machine["environment"] == seen["env"]
    assert machine["isa_flags"] and machine["cpu"]
    if portable:
        assert machine["torch_cpu_capability"] == "AVX2"


def test_ddp_workers_launched_through_torchrun_pin_the_kernels(
    tmp_path, records, tiny_config, repo_copy, merge_config
):
    root = _repo(tmp_path / "repo", tiny_config, repo_copy, merge_config, True, gpus=2)
    _run([str(BIN / "sswp"), "prepare"], root, records)
    _run([str(BIN / "sswp"), "search", "--seed", "0"], root, records)
    runs = _torch_imports(records, "search")
    workers = [r for r in runs if r["argv"][0].endswith("cli.py")]  # `python -m sswp.cli`
    # torchrun (the `sswp` process, which execs it: one pid, one record) and its 2 workers.
    assert len(runs) == 3 and len(workers) == 2, runs
    assert all(r["env"] == PORTABLE_ENV for r in runs), runs
    record = root / "artifacts" / "search" / "seed-0" / "provenance.json"
    assert json.loads(record.read_text())["machine"]["torch_cpu_capability"] == "AVX2"


def test_snakemake_jobs_pin_the_kernels(tmp_path, records, tiny_config, repo_copy, merge_config):
    root = _repo(tmp_path / "repo", tiny_config, repo_copy, merge_config, True)
    _run([str(BIN / "snakemake"), "--cores", "1", "data/prepared"], root, records)
    (job,) = _torch_imports(records, "prepare")
    assert job["env"] == PORTABLE_ENV


def test_the_cli_module_loads_neither_torch_nor_numpy():
    """`main` pins the kernels first: the module's own imports must not load them."""
    code = "import sys, sswp.cli; print(sorted({'torch', 'numpy'} & set(sys.modules)))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert ast.literal_eval(run.stdout.strip()) == []
    assert cli.main  # the entry point the `sswp` script calls


def test_params_file_of_a_command_line():
    assert params_file_of(["search", "--seed", "0"]) == Path("params.yaml")
    assert params_file_of(["search", "--params", "p.yaml"]) == Path("p.yaml")
    assert params_file_of(["train", "--params=q.yaml"]) == Path("q.yaml")


def test_a_process_that_loaded_torch_keeps_its_environment(tmp_path, tiny_config):
    import yaml

    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(tiny_config))
    before = dict(os.environ)
    assert "torch" in sys.modules and tiny_config["runtime"]["portable_numerics"]
    assert not pin_for_command(["prepare", "--params", str(params)])
    assert dict(os.environ) == before


def test_machine_json_names_the_cpu_its_vector_sets_and_the_setting():
    from importlib import metadata

    from sswp.pipeline.machine import machine_json

    info = json.loads(machine_json(portable_numerics=True))
    assert info["portable_numerics"] is True
    assert info["torch"] == metadata.version("torch")
    assert info["torch_cpu_capability"]  # this process has loaded torch
    if Path("/proc/cpuinfo").is_file():
        flags = Path("/proc/cpuinfo").read_text().split("flags", 1)[1].splitlines()[0].split()
        assert info["isa_flags"] and set(info["isa_flags"]) <= set(flags)
        assert ("avx512f" in info["isa_flags"]) == ("avx512f" in flags)
