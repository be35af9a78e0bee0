"""`sswp <stage>`: the one entry point both drivers (DVC and Snakemake) call.

Every problem the user can fix becomes one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from sswp import __version__
from sswp.config import load_params
from sswp.engine.distributed import launched_by_torchrun, shutdown
from sswp.engine.interrupt import StageInterrupted
from sswp.engine.runtime import setup_logging
from sswp.errors import SswpError
from sswp.paths import finetune_tag

STAGES = {
    "prepare": "validate the dataset and write data/prepared (splits included)",
    "search": "self-supervised architecture search (labels unused)",
    "train": "train the searched architecture from scratch",
    "finetune": "finetune at a label ratio from preserved or random weights",
    "report": "tables and plots in results/",
}


def build_parser() -> argparse.ArgumentParser:
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
        importlib.import_module(f"sswp.stages.{name}").add_arguments(stage_parser)
    return parser


def log_name(args: argparse.Namespace) -> str:
    if args.stage == "finetune":
        return f"finetune-{finetune_tag(args.init, args.ratio)}"
    return args.stage


DISTRIBUTED_STAGES = ("search", "train", "finetune")


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
    args = build_parser().parse_args(argv)
    try:
        params = load_params(args.params)
        if (
            args.stage in DISTRIBUTED_STAGES
            and params.runtime.gpus > 1
            and not launched_by_torchrun()
        ):
            command = torchrun_command(params.runtime.gpus, argv)
            os.execv(command[0], command)
        setup_logging(log_name(args), main_process=os.environ.get("RANK", "0") == "0")
        importlib.import_module(f"sswp.stages.{args.stage}").run(params, args)
    except StageInterrupted as exc:
        print(f"sswp {args.stage}: {exc}", file=sys.stderr)
        return 128 + exc.signum
    except SswpError as exc:
        print(f"sswp {args.stage}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"sswp {args.stage}: interrupted", file=sys.stderr)
        return 130
    finally:
        shutdown()
    logging.getLogger("sswp").info("%s done", args.stage)
    return 0


if __name__ == "__main__":
    sys.exit(main())
