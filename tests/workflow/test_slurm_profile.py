"""The SLURM profile, dry-run: every rule asks for what a cluster job needs, GPU stages get
runtime.gpus GPUs (through torchrun when there are several), and jobs run in the sswp image.

`snakemake -n` plans the jobs but submits nothing, so neither SLURM (sbatch, sinfo) nor
apptainer has to be installed: only `apptainer --version` is called, answered by a stub.
"""

from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

submit_string = pytest.importorskip(
    "snakemake_executor_plugin_slurm.submit_string", reason="needs the SLURM executor plugin"
)
slurm_utils = pytest.importorskip("snakemake_executor_plugin_slurm.utils")
get_submit_command = submit_string.get_submit_command
set_gres_string = slurm_utils.set_gres_string

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PROFILE = "profiles/slurm"
VERSION = re.search(r'^version = "([^"]+)"', (REPO / "pyproject.toml").read_text(), re.M)[1]
IMAGE = f"docker://ghcr.io/sswp-pipeline/sswp:{VERSION}"  # then -<git revision>
# Jobs run the checkout's src/, not the image's copy of the package.
CHECKOUT_CODE = "PYTHONPATH=src${PYTHONPATH:+:$PYTHONPATH} "
GPU_RULES = ("search", "train", "pretrain", "finetune")
ONE_GPU_RULES = ("linear_eval",)  # a single process, on a GPU when there is one
CPU_RULES = ("prepare", "report")


def _dry_run(root: Path) -> str:
    stubs = root / "stub-bin"
    stubs.mkdir()
    apptainer = stubs / "apptainer"
    apptainer.write_text('#!/bin/sh\necho "apptainer version 1.4.0"\n')
    apptainer.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "SSWP_IMAGE"}
    env["PATH"] = os.pathsep.join([str(stubs), str(BIN), os.environ["PATH"]])
    proc = subprocess.run(
        ["snakemake", "-n", "--printshellcmds", "--workflow-profile", PROFILE],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


def _value(text: str):
    return int(text) if text.isdigit() else text


def _jobs(log: str) -> dict[str, list[dict]]:
    """Each planned job's resources and shell command, by rule."""
    jobs: dict[str, list[dict]] = {}
    for block in re.split(r"\n(?=\[[^\]]+\]\nrule )", log):
        rule = re.search(r"^rule (\w+):", block, re.M)
        if rule is None or rule[1] == "all":
            continue
        resources = re.search(r"^\s+resources: (.*)$", block, re.M)[1]
        jobs.setdefault(rule[1], []).append(
            {
                "resources": {
                    key: _value(value)
                    for key, _, value in (item.partition("=") for item in resources.split(", "))
                },
                "shell": re.search(r"^Shell command: (.*)$", block, re.M)[1],
            }
        )
    return jobs


@pytest.fixture(scope="module", params=[1, 2], ids=["1gpu", "2gpus"])
def plan(request, tmp_path_factory, repo_copy, default_config):
    gpus = request.param
    config = copy.deepcopy(default_config)
    config["runtime"]["gpus"] = gpus
    log = _dry_run(repo_copy(tmp_path_factory.mktemp(f"slurm{gpus}"), config))
    return gpus, log, _jobs(log)


def test_every_stage_is_planned_with_cluster_resources(plan):
    _, _, jobs = plan
    assert set(jobs) == set(GPU_RULES + ONE_GPU_RULES + CPU_RULES)
    for rule, planned in jobs.items():
        for job in planned:
            resources = job["resources"]
            for key in ("gpu", "cpus_per_task", "mem_mb", "runtime"):
                assert isinstance(resources[key], int), f"{rule}: {key} = {resources.get(key)}"
            assert resources["slurm_account"] == "<your-account>"


def test_gpu_stages_get_runtime_gpus_and_cpu_stages_none(plan):
    gpus, _, jobs = plan
    for rule in GPU_RULES:
        for job in jobs[rule]:
            assert job["resources"]["gpu"] == gpus
            assert job["resources"]["slurm_partition"] == "<your-gpu-partition>"
    for rule in ONE_GPU_RULES:
        for job in jobs[rule]:
            assert job["resources"]["gpu"] == 1
            assert job["resources"]["slurm_partition"] == "<your-gpu-partition>"
    for rule in CPU_RULES:
        assert [job["resources"]["gpu"] for job in jobs[rule]] == [0]
        assert jobs[rule][0]["resources"]["slurm_partition"] == "<your-partition>"


def test_several_gpus_launch_torchrun(plan):
    gpus, _, jobs = plan
    for rule in GPU_RULES:
        for job in jobs[rule]:
            if gpus > 1:
                torchrun = f"torchrun --standalone --nproc_per_node={gpus}"
                launcher = f"{CHECKOUT_CODE}{torchrun} -m sswp.cli {rule} "
                assert job["shell"].startswith(launcher)
            else:
                assert job["shell"].startswith(f"{CHECKOUT_CODE}sswp {rule} ")
    for rule in CPU_RULES:
        assert jobs[rule][0]["shell"].startswith(f"{CHECKOUT_CODE}sswp {rule} ")
    for job in jobs["linear_eval"]:
        assert job["shell"].startswith(f"{CHECKOUT_CODE}sswp linear_eval ")


def test_jobs_run_in_the_sswp_image(plan):
    _, log, _ = plan
    assert re.search(rf"Singularity image {re.escape(IMAGE)}-\S+ will be pulled", log), log


def test_the_plugin_turns_the_resources_into_sbatch_options(plan):
    # The resource names must be the ones this version of the SLURM plugin reads; build the
    # sbatch line for the planned search job with the plugin's own functions.
    gpus, _, jobs = plan
    resources = jobs["search"][0]["resources"]
    job = SimpleNamespace(resources=SimpleNamespace(**resources), threads=1)
    job.resources.get = resources.get
    profile = yaml.safe_load((REPO / PROFILE / "config.yaml").read_text())
    settings = SimpleNamespace(
        requeue=profile["slurm-requeue"], no_requeue=False, qos=None, reservation=None
    )
    params = {
        "run_uuid": "test",
        "slurm_logfile": "slurm.log",
        "comment_str": "rule_search",
        "account": "",
        "partition": "",
        "workdir": "",
    }
    sbatch = get_submit_command(job, params, settings) + set_gres_string(job)
    assert f"--gpus={gpus}" in sbatch.split()
    assert "--nodes=1" in sbatch.split()
    assert f"--cpus-per-task={resources['cpus_per_task']}" in sbatch.split()
    assert f"--mem {resources['mem_mb']}" in sbatch
    assert f"-t {resources['runtime']}" in sbatch
    assert "--requeue" in sbatch.split()
    assert "--signal=TERM@300" in sbatch.split()


def test_every_rule_declares_container_log_benchmark_threads_and_resources():
    rules = set()
    for path in sorted((REPO / "workflow" / "rules").glob("*.smk")):
        for rule, body in re.findall(r"^rule (\w+):\n((?:[ \t]+.*\n|\n)+)", path.read_text(), re.M):
            rules.add(rule)
            for directive in ("threads", "resources", "container", "log", "benchmark"):
                assert re.search(rf"^    {directive}:", body, re.M), f"{rule}: no {directive}"
            assert re.search(r'^        "logs/benchmarks/', body, re.M), rule
            if rule in GPU_RULES:
                assert re.search(r"^    retries: STAGE_RETRIES$", body, re.M), rule
    assert rules == set(GPU_RULES + ONE_GPU_RULES + CPU_RULES)
