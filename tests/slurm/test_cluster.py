"""The shipped Slurm profile on a real single-node Slurm cluster with accounting.

One pipeline run through a profile derived from profiles/slurm/config.yaml (site
values replaced, containers dropped) is checked against a local `snakemake --cores 2` run of
the same params. While its search job runs, Slurm requeues it (what a preemption does) and,
once the requeued job has resumed, the stage is stopped so that the job fails and Snakemake
retries it: the search survives both and ends with the uninterrupted run's genotype.

`make slurm-test` installs and starts the cluster (tests/slurm/cluster.sh, as root) and
sets SSWP_SLURM_TEST=1; without it these tests skip.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CLUSTER = Path(__file__).with_name("cluster.sh")
SHIPPED_PROFILE = REPO / "profiles/slurm/config.yaml"
# The site values of cluster.sh's test cluster.
ACCOUNT, PARTITION = "sswp-test", "debug"
# Wall-clock fields differ between any two runs.
TIMING_KEYS = {"search_hours", "train_hours", "pretrain_hours"}
SEARCH_LOG = "logs/snakemake/search-seed-0.log"
RESUMED = "resuming from"

pytestmark = pytest.mark.skipif(
    os.environ.get("SSWP_SLURM_TEST") != "1",
    reason="needs a Slurm cluster: `make slurm-test` installs and starts one (as root)",
)


def _env() -> dict[str, str]:
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}


def _slurm(*args: str) -> str:
    proc = subprocess.run(args, capture_output=True, text=True, env=_env())
    assert proc.returncode == 0, f"{' '.join(args)}: {proc.stderr}"
    return proc.stdout


@pytest.fixture(scope="session")
def cluster():
    """The running test cluster; started (and stopped afterwards) only if it is not up yet."""
    if subprocess.run([CLUSTER, "status"], capture_output=True).returncode == 0:
        yield
        return
    try:
        started = subprocess.run([CLUSTER, "start"], capture_output=True, text=True)
        assert started.returncode == 0, started.stdout + started.stderr
        yield
    finally:
        subprocess.run([CLUSTER, "stop"], check=False)


def _node_memory_mb() -> int:
    return int(_slurm("sinfo", "--noheader", "--format=%m", f"--partition={PARTITION}").split()[0])


def derive_profile(dest: Path) -> dict:
    """The shipped profile with this cluster's site values, without containers.

    Account and partitions become the test cluster's; a rule's memory is capped at half the
    node's, so that two jobs fit side by side; a faster first status check suits seconds-long
    jobs. Everything else (requeue, retries, status command, time limits) is as shipped.
    """
    profile = yaml.safe_load(SHIPPED_PROFILE.read_text())
    for key in ("software-deployment-method", "apptainer-args"):
        profile.pop(key, None)
    profile["default-resources"].update(slurm_account=ACCOUNT, slurm_partition=PARTITION)
    cap = _node_memory_mb() // 2
    for resources in profile["set-resources"].values():
        if "slurm_partition" in resources:
            resources["slurm_partition"] = PARTITION
        if "mem_mb" in resources:
            resources["mem_mb"] = min(resources["mem_mb"], cap)
    profile["slurm-init-seconds-before-status-checks"] = 5
    dest.mkdir(parents=True)
    (dest / "config.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    return profile


def _git_repo(root: Path) -> Path:
    for cmd in (
        ["git", "init", "-q"],
        ["git", "add", "-A"],
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "run"],
    ):
        subprocess.run(cmd, cwd=root, check=True)
    return root


def _results(root: Path) -> dict[str, object]:
    """The genotypes and every number in metrics/, timing fields removed."""
    out: dict[str, object] = {}
    for path in sorted((root / "artifacts/search").glob("*/*/genotype.json")):
        out[str(path.relative_to(root))] = json.loads(path.read_text())
    for path in sorted((root / "metrics").rglob("*.json")):
        data = json.loads(path.read_text())
        out[str(path.relative_to(root))] = {k: v for k, v in data.items() if k not in TIMING_KEYS}
    return out


def _wait(condition, what: str, proc: subprocess.Popen, log: Path, timeout: float = 300):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert proc.poll() is None, f"snakemake ended while waiting for {what}:\n{log.read_text()}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}:\n{log.read_text()}"
        time.sleep(0.2)
    return value


def _search_job(log: Path) -> str | None:
    match = re.search(r"submitted with SLURM jobid (\d+) \(log: \S*/rule_search/", log.read_text())
    return match and match[1]


def _job_state(job: str) -> str:
    return _slurm("squeue", "--noheader", f"--jobs={job}", "--format=%T").strip()


def _stage_pid(root: Path) -> int | None:
    """The running `sswp search` process of the pipeline in `root` (not its shell wrapper)."""
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            cwd = os.readlink(proc / "cwd")
        except (OSError, ValueError):
            continue
        names = [arg.decode(errors="replace") for arg in argv]
        if cwd == str(root) and "search" in names and any(n.endswith("sswp") for n in names):
            return int(proc.name)
    return None


def _interrupt_search(root: Path, proc: subprocess.Popen, log: Path) -> dict:
    """Requeue the running search job, then stop its resumed stage so that the job fails."""
    job = _wait(lambda: _search_job(log), "the search job", proc, log)
    _wait(
        lambda: list(root.glob(".checkpoints/search/**/checkpoint.pt")),
        "the search's first checkpoint",
        proc,
        log,
    )
    assert _job_state(job) == "RUNNING"
    _slurm("scontrol", "requeue", job)
    stage_log = root / SEARCH_LOG
    _wait(
        lambda: stage_log.is_file() and RESUMED in stage_log.read_text(),
        "the requeued search to resume",
        proc,
        log,
    )
    resumed_log = stage_log.read_text()
    # The stage saves a checkpoint and exits non-zero, so the Slurm job fails.
    os.kill(_wait(lambda: _stage_pid(root), "the resumed stage", proc, log), signal.SIGTERM)
    return {"job": job, "resumed_log": resumed_log}


@pytest.fixture(scope="module")
def runs(cluster, tmp_path_factory, repo_copy, tiny_config, merge_config):
    # One label ratio and no reference genotype: every rule of the default DAG, fewer jobs.
    config = merge_config(
        tiny_config,
        {"runtime": {"gpus": 0}, "train": {"references": []}, "finetune": {"label_ratios": [1.0]}},
    )
    local_root = _git_repo(repo_copy(tmp_path_factory.mktemp("local"), config))
    slurm_root = _git_repo(repo_copy(tmp_path_factory.mktemp("slurm"), config))
    profile_dir = tmp_path_factory.mktemp("profile") / "slurm"
    profile = derive_profile(profile_dir)
    slurm_log = slurm_root / "snakemake.log"
    started = time.monotonic()
    # Each in its own process group, so that a failed test stops them and their jobs.
    with open(slurm_log, "w") as out:
        slurm = subprocess.Popen(
            ["snakemake", "--workflow-profile", str(profile_dir)],
            cwd=slurm_root,
            env=_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    # The local run shares the 2 cores with the cluster's jobs, mostly while they wait.
    with open(local_root / "snakemake.log", "w") as out:
        local = subprocess.Popen(
            ["snakemake", "--cores", "2"],
            cwd=local_root,
            env=_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        interrupted = _interrupt_search(slurm_root, slurm, slurm_log)
        assert slurm.wait(timeout=900) == 0, slurm_log.read_text()
        assert local.wait(timeout=900) == 0, (local_root / "snakemake.log").read_text()
    finally:
        for running in (slurm, local):
            _stop(running)
    print(f"Slurm run: {time.monotonic() - started:.0f} s")
    jobs = dict(
        re.findall(r"Job (\d+) has been submitted with SLURM jobid (\d+)", slurm_log.read_text())
    )
    return {
        "local": _results(local_root),
        "slurm": _results(slurm_root),
        "slurm_root": slurm_root,
        "log": slurm_log.read_text(),
        "profile": profile,
        "jobs": jobs,
        **interrupted,
    }


def _stop(proc: subprocess.Popen) -> None:
    """Interrupt a Snakemake run (which then cancels its Slurm jobs), killing it if it lingers."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _planned(log: str) -> dict[str, tuple[str, dict[str, str]]]:
    """Snakemake's job id -> (rule, resources) as the run's log prints each job."""
    planned: dict[str, tuple[str, dict[str, str]]] = {}
    rule = jobid = None
    for line in log.splitlines():
        if match := re.match(r"rule (\w+):$", line):
            rule = match[1]
        elif match := re.match(r"\s+jobid: (\d+)$", line):
            jobid = match[1]
        elif (match := re.match(r"\s+resources: (.*)$", line)) and rule and jobid:
            planned[jobid] = (rule, dict(item.split("=", 1) for item in match[1].split(", ")))
    return planned


def _sacct(jobs: list[str]) -> list[dict[str, str]]:
    """Every record of the jobs (a requeued job has one per start), as sacct lists them."""
    fields = [
        *("JobIDRaw", "JobName", "Comment", "State", "AllocCPUS", "ReqMem", "Timelimit"),
        *("Submit", "Eligible", "Start", "End"),
    ]
    text = _slurm(
        "sacct",
        "-X",
        "--parsable2",
        "--duplicates",
        f"--jobs={','.join(jobs)}",
        f"--format={','.join(fields)}",
    )
    print(text)
    header, *rows = text.splitlines()
    return [dict(zip(header.split("|"), row.split("|"), strict=True)) for row in rows]


def _rule_of(comment: str) -> str:
    """The plugin's job comment, rule_<name>[_wildcards_<values>], back to the rule's name."""
    match = re.fullmatch(r"rule_(\w+?)(?:_wildcards_.*)?", comment)
    assert match, comment
    return match[1]


def _time_limit(minutes: int) -> str:
    days, rest = divmod(minutes, 24 * 60)
    clock = f"{rest // 60:02d}:{rest % 60:02d}:00"
    return f"{days}-{clock}" if days else clock


def _submissions(log: str) -> list[tuple[str, str]]:
    return re.findall(r"Job (\d+) has been submitted with SLURM jobid (\d+)", log)


def test_every_stage_ran_as_a_slurm_job_with_the_profiles_resources(runs):
    planned = _planned(runs["log"])
    submissions = _submissions(runs["log"])
    records = _sacct([slurm_id for _, slurm_id in submissions])
    last = {row["JobIDRaw"]: row for row in records}  # a job's latest record
    assert {planned[job][0] for job, _ in submissions} == {
        "search",
        "train",
        "pretrain",
        "finetune",
        "linear_eval",
    }
    # The Snakefile's local rules run where Snakemake runs, never as cluster jobs.
    assert set(re.findall(r"^localrule (\w+):$", runs["log"], re.MULTILINE)) == {
        "prepare",
        "report",
        "all",
    }
    for job, slurm_id in submissions:
        rule, resources = planned[job]
        record = last[slurm_id]
        assert _rule_of(record["Comment"]) == rule, record
        assert record["AllocCPUS"] == resources["cpus_per_task"], record
        assert record["ReqMem"] == f"{resources['mem_mb']}M", record
        assert record["Timelimit"] == _time_limit(int(resources["runtime"])), record
        # What the profile sets for a rule is what Slurm was asked for.
        for key in ("mem_mb", "runtime"):
            if key in runs["profile"]["set-resources"].get(rule, {}):
                assert int(resources[key]) == runs["profile"]["set-resources"][rule][key], rule
    final = {job: slurm_id for job, slurm_id in submissions}  # the last attempt of each
    assert {last[slurm_id]["State"] for slurm_id in final.values()} == {"COMPLETED"}


def test_the_results_equal_a_local_run(runs):
    assert "artifacts/search/seed-0/final/genotype.json" in runs["local"]
    assert any(name.startswith("metrics/linear_eval/") for name in runs["local"])
    assert runs["slurm"] == runs["local"]


def test_a_requeued_search_job_comes_back_and_resumes_from_its_checkpoint(runs):
    records = _sacct([runs["job"]])
    assert [row["State"] for row in records][0] == "REQUEUED", records
    assert len(records) == 2, records  # then the resumed start, stopped by the test
    assert RESUMED in runs["resumed_log"], runs["resumed_log"]
    # cluster.sh lowers cred_expire (120 s by default), after which a requeued job may start.
    back = records[1]
    eligible_after = datetime.fromisoformat(back["Eligible"]) - datetime.fromisoformat(
        back["Submit"]
    )
    assert eligible_after.total_seconds() < 60, back


def test_a_failed_search_job_is_retried_and_resumes(runs):
    search = [
        slurm_id
        for job, slurm_id in _submissions(runs["log"])
        if _planned(runs["log"])[job][0] == "search"
    ]
    assert len(search) == 2, search  # the profile's retries, not a Slurm requeue
    first, retry = (_sacct([job])[-1]["State"] for job in search)
    assert (first, retry) == ("FAILED", "COMPLETED")
    assert RESUMED in (runs["slurm_root"] / SEARCH_LOG).read_text()


def test_gpu_jobs_on_a_cluster_without_gpu_gres_stop_before_submitting(
    cluster, tmp_path, repo_copy, tiny_config, merge_config
):
    config = merge_config(tiny_config, {"runtime": {"gpus": 1}})
    root = _git_repo(repo_copy(tmp_path / "repo", config))
    profile_dir = tmp_path / "profile"
    derive_profile(profile_dir)
    proc = subprocess.run(
        ["snakemake", "--workflow-profile", str(profile_dir)],
        cwd=root,
        env=_env(),
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0
    output = proc.stdout + proc.stderr
    assert "has been submitted" not in output
    lines = [line for line in output.splitlines() if "has no GPU GRES" in line]
    assert lines == [
        "rules finetune, linear_eval, pretrain, search, train ask for GPUs (runtime.gpus) but"
        f" Slurm partition '{PARTITION}' has no GPU GRES (sinfo: (null)): set runtime.gpus: 0"
        " to run on CPUs, or a partition with GPUs as their slurm_partition in the profile"
    ], output
