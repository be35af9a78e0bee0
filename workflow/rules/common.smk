import os
from pathlib import Path

import yaml
from snakemake.utils import validate

validate(config, "../schemas/params.schema.yaml")

DVC_STAGES = yaml.safe_load(Path("dvc.yaml").read_text())["stages"]
SEEDS = list(config["seeds"])
ARCHITECTURES = [*config["train"]["architectures"], *config["train"]["references"]]
RATIOS = [str(float(r)) for r in config["finetune"]["label_ratios"]]
INITS = list(config["finetune"]["inits"])
LINEAR_EVAL_ARMS = ["preserved", "two_stage", "random"]
# Built from docker/Dockerfile; used when Snakemake runs with `--sdm apptainer`.
# SSWP_IMAGE=/path/to/sswp.sif (built from docker/apptainer.def) runs a local image instead.
SSWP_IMAGE = os.environ.get("SSWP_IMAGE", "docker://ghcr.io/sswp-pipeline/sswp:0.1.0")

# GPU stages (search, train, pretrain, finetune) run one process per GPU: with several GPUs torchrun
# starts them on this node and sswp picks up its rank from LOCAL_RANK/WORLD_SIZE. Their shell
# commands start with it through an f-string (runtime.gpus is already a tracked param).
GPUS = config["runtime"]["gpus"]
SSWP_GPU = f"torchrun --standalone --nproc_per_node={GPUS} -m sswp.cli" if GPUS > 1 else "sswp"
# Each process uses runtime.threads threads plus data.workers loader processes.
GPU_STAGE_CPUS = max(GPUS, 1) * (config["runtime"]["threads"] + config["data"]["workers"])

# Per-rule defaults, small enough for the CPU smoke run on a laptop. A profile raises them
# with `set-resources` (workflow/profiles/slurm/config.yaml). `gpu` (the SLURM plugin's name)
# comes from runtime.gpus, which the stages read too, so profiles leave it alone.
# runtime is in minutes.
RESOURCES = {
    "prepare": {"gpu": 0, "cpus_per_task": 1, "mem_mb": 2000, "runtime": 30},
    "search": {"gpu": GPUS, "cpus_per_task": GPU_STAGE_CPUS, "mem_mb": 4000, "runtime": 120},
    "train": {"gpu": GPUS, "cpus_per_task": GPU_STAGE_CPUS, "mem_mb": 4000, "runtime": 120},
    "pretrain": {"gpu": GPUS, "cpus_per_task": GPU_STAGE_CPUS, "mem_mb": 4000, "runtime": 120},
    "finetune": {"gpu": GPUS, "cpus_per_task": GPU_STAGE_CPUS, "mem_mb": 4000, "runtime": 120},
    # One process: features of a frozen backbone, then a linear classifier (minutes on a GPU).
    "linear_eval": {"gpu": min(GPUS, 1), "cpus_per_task": 2, "mem_mb": 4000, "runtime": 60},
    "report": {"gpu": 0, "cpus_per_task": 1, "mem_mb": 2000, "runtime": 15},
}
REPORT_OUTPUTS = [
    "results/main_table.csv",
    "results/main_table.md",
    "results/label_ratio.csv",
    "results/label_ratio.md",
    "results/summary.md",
    "results/params.yaml",
    "results/label_ratio.png",
    "results/training_curves.png",
    "results/alpha_heatmap.png",
    "results/metrics.json",
]


wildcard_constraints:
    seed=r"[0-9]+",
    init="preserved|random|two_stage",
    architecture="final|highest_acc|lowest_loss|darts_v2|pdarts",
    ratio=r"[0-9]*\.?[0-9]+(e-?[0-9]+)?",


def _resolved_params() -> str:
    """The validated config (configfile plus any --config overrides) as the file sswp reads.

    Rewritten only when it changes, so `sswp` always sees what Snakemake validated.
    """
    text = yaml.safe_dump(dict(config), sort_keys=True)
    path = Path(".snakemake/sswp/params.yaml")
    if not path.is_file() or path.read_text() != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return str(path)


PARAMS_FILE = _resolved_params()


def code_deps(stage: str) -> list[str]:
    """The library files a stage runs, from its dvc.yaml deps (folders expanded to files)."""
    files: list[str] = []
    for dep in DVC_STAGES[stage]["deps"]:
        path = Path(dep)
        if not dep.startswith("src/"):
            continue
        if path.is_dir():
            files.extend(sorted(str(p) for p in path.rglob("*.py")))
        else:
            files.append(dep)
    return files


def _lookup(key: str):
    value = config
    for part in key.split("."):
        value = value[part]
    return value


def stage_params(stage: str) -> dict:
    """Exactly the params keys dvc.yaml declares for the stage, as Snakemake rerun triggers."""
    return {key: _lookup(key) for key in DVC_STAGES[stage]["params"]}


def finetune_weights(wildcards) -> list[str]:
    """The search's snapshot, plus the pre-trained backbone for the two-stage arm."""
    weights = [f"artifacts/search/seed-{wildcards.seed}"]
    if wildcards.init == "two_stage":
        weights.append(f"artifacts/pretrain/seed-{wildcards.seed}")
    return weights


def train_search_input(wildcards) -> list[str]:
    """A search snapshot's folder; reference genotypes (train.references) need none."""
    if wildcards.architecture in config["train"]["references"]:
        return []
    return [f"artifacts/search/seed-{wildcards.seed}"]
