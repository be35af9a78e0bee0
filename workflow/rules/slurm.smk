# On a Slurm cluster, a job that asks for GPUs in a partition without GPU GRES is refused by
# sbatch ("Invalid generic resource (gres) specification"); the Slurm executor reports that
# as a job error, and `retries` would submit it again. So before any job is submitted, each
# GPU job's partition is checked once, and the run stops with one line saying what to change.


def _partition_gres(partition: str) -> str | None:
    """The GRES of the partition's nodes as sinfo lists them, or None when sinfo cannot say."""
    command = ["sinfo", "--noheader", "--format=%G"]
    if partition:
        command.append(f"--partition={partition}")
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout if proc.returncode == 0 else None


def gpu_jobs_without_gres(jobs) -> list[str]:
    """One line per partition whose nodes have no GPU GRES, naming the rules that ask for GPUs."""
    rules: dict[str, set[str]] = {}
    for job in jobs:
        gpus = job.resources.get("gpu", 0)
        if isinstance(gpus, int) and gpus > 0:
            partition = str(job.resources.get("slurm_partition", "") or "")
            rules.setdefault(partition, set()).add(job.rule.name)
    lines = []
    for partition, names in sorted(rules.items()):
        gres = _partition_gres(partition)
        if gres is not None and "gpu" not in gres:
            where = f"partition '{partition}'" if partition else "the default partition"
            lines.append(
                f"rules {', '.join(sorted(names))} ask for GPUs (runtime.gpus) but Slurm {where}"
                f" has no GPU GRES (sinfo: {' '.join(sorted(set(gres.split()))) or 'none'}):"
                " set runtime.gpus: 0 to run on CPUs, or a partition with GPUs as their"
                " slurm_partition in the profile"
            )
    return lines


def stop_if_gpu_jobs_lack_gres() -> None:
    """On the Slurm executor, exit with one line per partition that cannot run its GPU jobs.

    Called from the Snakefile's onstart: Snakemake keeps only the last onstart handler, so
    there is one, which calls each check.
    """
    plugin = workflow.executor_plugin
    if plugin is not None and plugin.name == "slurm":
        problems = gpu_jobs_without_gres(workflow.dag.needrun_jobs())
        if problems:
            print("\n".join(problems), file=sys.stderr)
            sys.exit(1)
