import json
import re
import os
import subprocess
import sys
from pathlib import Path

import yaml
from snakemake.utils import update_config, validate

# The checkout's stage contract and provenance module (plain Python): each stage's params,
# code and runs, and the params digests its records hold.
sys.path.insert(0, str(Path(workflow.basedir) / "src"))
from sswp import __version__  # noqa: E402
from sswp.pipeline import contract  # noqa: E402
from sswp.config import yaml12  # noqa: E402
from sswp.pipeline.provenance import RECORD_FILE, params_digest  # noqa: E402


def _typed(value):
    """A --config value as params.yaml would hold it: Snakemake leaves nested values strings."""
    if isinstance(value, dict):
        return {key: _typed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_typed(item) for item in value]
    if not isinstance(value, str) or not value:
        return value
    return yaml12.load(value)


# Snakemake reads config files as YAML 1.1, where `off` is false and 1e-05 a string, but
# `dvc exp run -S` writes params.yaml as YAML 1.2. So the config is read again, as YAML 1.2,
# in Snakemake's order: the workflow's params.yaml, each --configfile, then --config.
_settings = workflow.config_settings
_files = [*_settings.configfiles]
if not _settings.replace_workflow_config and Path("params.yaml").exists():
    _files.insert(0, Path("params.yaml"))
config.clear()
for _file in _files:
    update_config(config, yaml12.load_file(_file))
update_config(config, _typed(dict(_settings.config)))
validate(config, "../schemas/params.schema.yaml")

# Every run that the params ask for (the report's last): its wildcards, folders and files.
RUNS = contract.runs(config)
STAGES = contract.STAGES
# Built from docker/Dockerfile; used when Snakemake runs with `--sdm apptainer`.
# SSWP_IMAGE=/path/to/sswp.sif (built from docker/apptainer.def) runs a local image instead.
# Images are tagged <version>-<git revision>; jobs run the checkout's src/ (SSWP below), so
# the code a container runs is the code both drivers hash.
def _revision() -> str:
    proc = subprocess.run(
        ["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, check=False
    )
    return proc.stdout.strip() or "unknown"


SSWP_IMAGE = os.environ.get(
    "SSWP_IMAGE", f"docker://ghcr.io/sswp-pipeline/sswp:{__version__}-{_revision()}"
)
# Shell templates: Snakemake turns {{ }} into braces.
CHECKOUT_CODE = "PYTHONPATH=src${{PYTHONPATH:+:$PYTHONPATH}}"
SSWP = f"{CHECKOUT_CODE} sswp"

# GPU stages (search, train, pretrain, finetune) run one process per GPU: with several GPUs torchrun
# starts them on this node and sswp picks up its rank from LOCAL_RANK/WORLD_SIZE. Their shell
# commands start with it through an f-string (runtime.gpus is already a tracked param).
GPUS = config["runtime"]["gpus"]
SSWP_GPU = (
    f"{CHECKOUT_CODE} torchrun --standalone --nproc_per_node={GPUS} -m sswp.cli"
    if GPUS > 1
    else SSWP
)
# Each stage process uses runtime.threads cores in all: its loader's data.workers (processes
# or DALI threads) come out of them (sswp.engine.runtime.compute_threads), so a job's threads
# are runtime.threads per process and `--cores N` runs N // runtime.threads stages at once.
STAGE_CPUS = config["runtime"]["threads"]
GPU_STAGE_CPUS = max(GPUS, 1) * STAGE_CPUS

# Per-rule defaults, small enough for the CPU smoke run on a laptop. A profile raises them
# with `set-resources` (profiles/slurm/config.yaml). `gpu` (the SLURM plugin's name)
# comes from runtime.gpus, which the stages read too, so profiles leave it alone.
# runtime is in minutes.
RESOURCES = {
    "prepare": {"gpu": 0, "cpus_per_task": 1, "mem_mb": 2000, "runtime": 30},
    "search": {"gpu": GPUS, "cpus_per_task": GPU_STAGE_CPUS, "mem_mb": 4000, "runtime": 120},
    "train": {"gpu": GPUS, "cpus_per_task": GPU_STAGE_CPUS, "mem_mb": 4000, "runtime": 120},
    "pretrain": {"gpu": GPUS, "cpus_per_task": GPU_STAGE_CPUS, "mem_mb": 4000, "runtime": 120},
    "finetune": {"gpu": GPUS, "cpus_per_task": GPU_STAGE_CPUS, "mem_mb": 4000, "runtime": 120},
    # One process: features of a frozen backbone, then a linear classifier (minutes on a GPU).
    "linear_eval": {"gpu": min(GPUS, 1), "cpus_per_task": STAGE_CPUS, "mem_mb": 4000, "runtime": 60},
    "report": {"gpu": 0, "cpus_per_task": 1, "mem_mb": 2000, "runtime": 15},
}
# A long stage that fails is run again, twice at most; each rerun resumes from its checkpoint.
# Only the Snakemake that submits jobs counts them: inside a cluster job (remote mode) the
# rule's retries would rerun the stage in the same allocation, so there a failed stage fails
# its job and is resubmitted as a new one (tests/slurm).
STAGE_RETRIES = 0 if workflow.remote_exec else 2
# On Slurm, GPU jobs are checked against their partition's GRES before anything is submitted.
include: "slurm.smk"


REPORT_OUTPUTS = [*contract.REPORT_FILES, contract.HEADLINE]


def _values(wildcard: str) -> str:
    """The values that the planned runs give a wildcard, as a regex alternation."""
    found = {dict(run.values)[wildcard] for run in RUNS if wildcard in dict(run.values)}
    return "|".join(re.escape(value) for value in sorted(found)) or "(?!)"


wildcard_constraints:
    seed=_values("seed"),
    init=_values("init"),
    architecture=_values("architecture"),
    ratio=_values("ratio"),


def _resolved_params() -> str:
    """Where sswp reads the validated config (configfile plus any --config overrides).

    Without overrides that is params.yaml itself. Otherwise .snakemake/sswp/params.yaml,
    which `onstart` writes (rewritten only when it changes): never in a dry run, which only
    prints the commands that would read it.
    """
    if Path("params.yaml").is_file() and _settings_unchanged():
        return "params.yaml"
    return ".snakemake/sswp/params.yaml"


def _settings_unchanged() -> bool:
    """Whether the config is params.yaml's: no --configfile, no --config."""
    return not _settings.configfiles and not _settings.config


def write_resolved_params() -> None:
    if PARAMS_FILE == "params.yaml":
        return
    text = yaml.safe_dump(dict(config), sort_keys=True)
    path = Path(PARAMS_FILE)
    if not path.is_file() or path.read_text() != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


PARAMS_FILE = _resolved_params()


def code_deps(stage: str) -> list[str]:
    """The library files a stage runs, as the contract lists them (folders expanded to files)."""
    root = Path(workflow.basedir)
    return [str(path.relative_to(root)) for path in contract.code_paths(stage)]


def stage_params(stage: str) -> dict:
    """Exactly the params keys the contract declares for the stage, as rerun triggers."""
    return contract.tracked_params(config, stage)


def _made_with(output: Path, stage: str) -> bool:
    """Whether `output`'s record says that the current params of `stage` made it. results/
    holds no record: its params.yaml, every param, says what made it."""
    tracked = stage_params(stage)
    try:
        if stage == "report":
            made = yaml12.load((output / "params.yaml").read_text())
            return made == json.loads(json.dumps(tracked))
        record = json.loads((output / RECORD_FILE).read_text())
    except (OSError, ValueError):
        return False
    return record.get("stage") == stage and record.get("params") == params_digest(tracked)


# The current params digest of each digest file that params_digest_input named, for the rule
# params_digest, which writes a missing one for a job that runs for another reason.
DIGESTS: dict[str, str] = {}


def params_digest_input(stage, output: str):
    """Input function: the file `.sswp/params/<output>.sha256`, which holds the current params
    digest of `stage` (a name, or a function of the wildcards) for the output folder `output`
    (a pattern of the wildcards), and is newer than the output exactly when it must rerun.

    Snakemake sees params through its own records only, which outputs made by DVC (or before
    .snakemake/ was deleted) lack: each output's provenance record decides instead. Snakemake
    reruns a job for an input newer than its outputs, never for a missing input that some
    other job could make, and reruns one whose set of inputs changed: so every job always
    names its file, and the file is written while the DAG is built, when the output is
    missing or its record names other params. Otherwise nothing is written, so a dry run of
    an up-to-date checkout writes nothing; a file left newer by params changed and changed
    back is dated back to the epoch.
    """

    def digest_file(wildcards) -> str:
        name = stage(wildcards) if callable(stage) else stage
        folder = Path(output.format(**dict(wildcards.items())))
        path = Path(".sswp/params") / f"{folder}.sha256"
        digest = DIGESTS[str(path)] = params_digest(stage_params(name))
        if not folder.exists() or not _made_with(folder, name):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(digest)
        elif path.is_file() and path.stat().st_mtime > 0:
            os.utime(path, (0, 0))
        return str(path)

    return digest_file


def _run(group: str, wildcards):
    """The planned run of a stage group at these wildcards."""
    values = dict(wildcards.items())
    for run in RUNS:
        if run.group == group and dict(run.values) == values:
            return run
    raise ValueError(f"no {group} run of the params has {values}")


def run_stage(group: str):
    """Input function: the contract stage of the run (e.g. `train_reference` for a reference)."""
    return lambda wildcards: _run(group, wildcards).stage


def run_inputs(group: str):
    """Input function: the folders that the run reads, other stages' outputs."""
    return lambda wildcards: [str(folder) for folder in _run(group, wildcards).inputs]

