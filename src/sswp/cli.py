"""`sswp <stage>`: the one entry point both drivers (DVC and Snakemake) call.

Every problem the user can fix becomes one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from sswp import __version__
from sswp.config.load import load_params
from sswp.config.schema import SCHEMA_FILE, schema_text
from sswp.errors import SswpError
from sswp.pipeline.numerics import pin_for_command
from sswp.pipeline.seeds import check_ratio, params_for_seed

# No torch or numpy at this module's top (a test checks it): `main` pins their CPU kernels
# first (runtime.portable_numerics), and they choose them when they load.

STAGES = {
    "prepare": "validate the dataset and write data/prepared (splits included)",
    "search": "architecture search of one seed (labels unused unless the objective is supervised)",
    "train": "train a searched or reference architecture from scratch",
    "pretrain": "two-stage baseline: SimCLR pre-training of the derived network",
    "finetune": "finetune at a label ratio from preserved, random or two-stage weights",
    "linear_eval": "linear classifiers on the frozen preserved and two-stage backbones",
    "report": "tables and plots in results/",
}
COMPARE_HELP = "print the params and metrics that differ between two runs' results"
DVC_YAML_HELP = "write dvc.yaml from the stage contract and params.yaml's runs"
SCHEMA_HELP = "write params.yaml's JSON schema (for Snakemake) from the params dataclasses"
SWEEP_HELP = (
    "gather DVC experiments of several search budgets (default: every `sweep-...` one) into "
    "results/sweep/: a table, a figure and each one's params"
)
VERIFY_HELP = (
    "rerun the committed default (or some of its stages or runs) in a scratch folder and "
    "print every metric and genotype that differs from the committed ones"
)


def build_parser(stages_with_arguments: Iterable[str] = STAGES) -> argparse.ArgumentParser:
    """The whole command line; only the named stages' own arguments are added, since adding
    them imports the stage's module (and with it torch, torchvision or scipy)."""
    parser = argparse.ArgumentParser(
        prog="sswp",
        description="Stages of the SSWP-NAS pipeline (self-supervised, weight-preserving NAS). "
        "Each reads params.yaml; `dvc repro` or `snakemake` runs them in order.",
    )
    parser.add_argument("--version", action="version", version=f"sswp {__version__}")
    sub = parser.add_subparsers(dest="stage", required=True, metavar="STAGE")
    for name, help_text in STAGES.items():
        stage_parser = sub.add_parser(name, help=help_text, description=help_text)
        stage_parser.add_argument(
            "--params", default="params.yaml", help="params file (default: params.yaml)"
        )
        if name in stages_with_arguments:
            stage_module(name).add_arguments(stage_parser)
    compare = sub.add_parser("compare", help=COMPARE_HELP, description=COMPARE_HELP)
    compare.add_argument(
        "run_a",
        metavar="RUN_A",
        help="a results/ folder or a run folder, or a git revision or DVC experiment name",
    )
    compare.add_argument("run_b", metavar="RUN_B", help="the run to compare it with, alike")
    dvc_yaml = sub.add_parser("dvc-yaml", help=DVC_YAML_HELP, description=DVC_YAML_HELP)
    dvc_yaml.add_argument(
        "--params", default="params.yaml", help="params file (default: params.yaml)"
    )
    dvc_yaml.add_argument("--output", default="dvc.yaml", help="where (default: dvc.yaml)")
    params_schema = sub.add_parser("params-schema", help=SCHEMA_HELP, description=SCHEMA_HELP)
    params_schema.add_argument(
        "--output", default=SCHEMA_FILE, help=f"where (default: {SCHEMA_FILE})"
    )
    sweep = sub.add_parser("sweep", help=SWEEP_HELP, description=SWEEP_HELP)
    sweep.add_argument("experiments", nargs="*", metavar="EXPERIMENT", help="experiment names")
    checker = sub.add_parser("verify", help=VERIFY_HELP, description=VERIFY_HELP)
    checker.add_argument(
        "--params", default="params.yaml", help="params file (default: params.yaml)"
    )
    checker.add_argument(
        "--stages",
        nargs="+",
        metavar="STAGE",
        help="stages (search, finetune, ...) or runs (finetune:preserved-0.02-seed-0) to rerun, "
        "with what they need (default: all)",
    )
    checker.add_argument("--scratch", help="folder to rerun in (default: a new temporary one)")
    checker.add_argument(
        "--keep", action="store_true", help="keep the temporary scratch folder afterwards"
    )
    return parser


def stage_module(stage: str):
    return importlib.import_module(f"sswp.stages.{stage}")


DISTRIBUTED_STAGES = ("search", "train", "pretrain", "finetune")
# Errors of the machine, not of the code: a full disk, a read-only or missing folder.
ENVIRONMENT_ERRNOS = {
    errno.ENOSPC,
    errno.EDQUOT,
    errno.EROFS,
    errno.EACCES,
    errno.EPERM,
    errno.EISDIR,
    errno.ENOTDIR,
    errno.EIO,
}


def environment_error(exc: OSError) -> str:
    """One line for an OSError of the machine: the file, the reason, what to do."""
    where = f" {exc.filename}" if exc.filename else ""
    fix = "free some space" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else "fix it"
    return f"cannot write or read{where}: {exc.strerror or exc}; {fix}, then rerun"


def compare(args: argparse.Namespace) -> int:
    """Print the comparison; exit 0 if the runs match, 1 if they differ, 2 on bad input (as
    diff). A reader that stops early (`| head`) is no error."""
    from sswp.report.compare import compare as compare_results

    try:
        result = compare_results(args.run_a, args.run_b)
    except SswpError as exc:
        print(f"sswp compare: error: {exc}", file=sys.stderr)
        return 2
    try:
        print(result.text, flush=True)
    except BrokenPipeError:
        # Python's recipe: send the rest to /dev/null, so the flush at exit cannot fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 1 if result.differ else 0


def write_dvc_yaml(args: argparse.Namespace) -> int:
    """Write dvc.yaml for the validated params; exit 2 on bad params, writing nothing."""
    from sswp.pipeline import dvc_yaml

    try:
        text = dvc_yaml.render(load_params(args.params).to_dict())
    except SswpError as exc:
        print(f"sswp dvc-yaml: error: {exc}", file=sys.stderr)
        return 2
    write_text(args.output, text)
    return 0


def write_text(path: str, text: str) -> None:
    """Replace a generated file whole (imported here: sswp.pipeline.atomic loads torch)."""
    from sswp.pipeline import atomic

    atomic.write_text(path, text)


def verify(args: argparse.Namespace) -> int:
    """Exit 0 if the rerun is identical (or within tolerance, where it cannot be identical),
    1 if anything differs, 2 on bad input or a failed stage."""
    import shutil

    from sswp.report.verify import scratch_folder
    from sswp.report.verify import verify as rerun_and_compare

    try:
        params = load_params(args.params)
        scratch, made = scratch_folder(args.scratch)
    except SswpError as exc:
        print(f"sswp verify: error: {exc}", file=sys.stderr)
        return 2
    try:
        result = rerun_and_compare(params, Path(args.params), Path.cwd(), scratch, args.stages)
    except SswpError as exc:
        print(f"sswp verify: error: {exc}", file=sys.stderr)
        return 2
    finally:
        if made and not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
    for line in [*result.notes, *result.lines]:
        print(line)
    print("verify: differs" if result.differ else "verify: identical to the committed results")
    return 1 if result.differ else 0


def sweep(args: argparse.Namespace) -> int:
    """Gather the sweep's experiments into results/sweep/; exit 2 on a missing one."""
    from sswp.report.sweep import SWEEP_DIR, sweep_names, write_sweep

    try:
        points = write_sweep(args.experiments or sweep_names())
    except SswpError as exc:
        print(f"sswp sweep: error: {exc}", file=sys.stderr)
        return 2
    for point in points:
        print(f"{point.name}: search.epochs {point.epochs}, {point.steps:,.0f} SimCLR steps")
    print(f"sweep: {len(points)} experiments -> {SWEEP_DIR}")
    return 0


def torchrun_command(gpus: int, argv: Sequence[str]) -> list[str]:
    """Relaunch this very command as `gpus` DDP processes (one per GPU) under torchrun."""
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={gpus}",
        "-m",
        "sswp.cli",
        *argv,
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """Run one stage; return the exit status (0 ok, 2 bad input, 128 + signal if stopped)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    pin_for_command(argv)  # before the parser imports the stages, and with them torch
    from sswp.engine.distributed import launched_by_torchrun, shutdown
    from sswp.engine.interrupt import StageInterrupted, interrupt_on_sigterm
    from sswp.engine.logs import release_held_warnings, setup_logging
    from sswp.pipeline.guard import guarded
    from sswp.pipeline.plan import plan_for

    # A stage's process imports that stage's module only: the others cost seconds of start-up.
    args = build_parser(argv[:1]).parse_args(argv)
    if args.stage == "compare":
        return compare(args)
    if args.stage == "dvc-yaml":
        return write_dvc_yaml(args)
    if args.stage == "verify":
        return verify(args)
    if args.stage == "sweep":
        return sweep(args)
    if args.stage == "params-schema":
        write_text(args.output, schema_text())
        return 0
    try:
        params = params_for_seed(load_params(args.params), getattr(args, "seed", None))
        check_ratio(params, getattr(args, "ratio", None))
        if (
            args.stage in DISTRIBUTED_STAGES
            and params.runtime.gpus > 1
            and not launched_by_torchrun()
        ):
            command = torchrun_command(params.runtime.gpus, argv)
            os.execv(command[0], command)
        main_process = os.environ.get("RANK", "0") == "0"
        plan = plan_for(args.stage, params, args)
        setup_logging(plan.log_name, main_process=main_process)
        with interrupt_on_sigterm(), guarded(plan, params, main_process):
            stage_module(args.stage).run(params, args)
    except StageInterrupted as exc:
        print(f"sswp {args.stage}: {exc}", file=sys.stderr)
        return 128 + exc.signum
    except SswpError as exc:
        print(f"sswp {args.stage}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        if exc.errno not in ENVIRONMENT_ERRNOS:
            raise
        print(f"sswp {args.stage}: error: {environment_error(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"sswp {args.stage}: interrupted", file=sys.stderr)
        return 130
    finally:
        shutdown()
    release_held_warnings()
    logging.getLogger("sswp").info("%s done", args.stage)
    return 0


if __name__ == "__main__":
    sys.exit(main())
