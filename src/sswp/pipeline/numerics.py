"""Portable numerics: the CPU kernels every x86-64 machine with AVX2 runs, on every machine.

torch, oneDNN, MKL and OpenBLAS pick their kernels by the CPU's instruction set, and an
AVX-512 kernel sums in another order than an AVX2 one: the last bits differ, and a search
amplifies them into another architecture. With `runtime.portable_numerics`, `sswp` pins
each library to its AVX2 kernels through the environment, before torch or numpy load (they
read it once, when they load) and before it launches DDP workers, which inherit it.

No torch or numpy import here: this module runs first in every stage process.
"""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping, Sequence
from pathlib import Path

import yaml

from sswp.config import yaml12

# Each library's switch and its AVX2 value.
PORTABLE_ENV: dict[str, str] = {
    "ATEN_CPU_CAPABILITY": "avx2",  # torch's own vectorised kernels (elementwise, BN, pools)
    "ONEDNN_MAX_CPU_ISA": "AVX2",  # oneDNN: convolutions, and what torch hands it
    "MKL_CBWR": "AVX2",  # MKL (torch's BLAS): conditional numerical reproducibility
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",  # MKL's highest instruction set
    "OPENBLAS_CORETYPE": "Haswell",  # numpy's and scikit-learn's OpenBLAS (prepare)
}
# Modules that read the environment when they load: once one is in, pinning is too late.
EARLY_READERS = ("torch", "numpy")


def pin_portable_numerics(environ: MutableMapping[str, str] = os.environ) -> None:
    """Set every library's switch to its AVX2 kernels (over any value already set)."""
    environ.update(PORTABLE_ENV)


def portable_numerics_requested(params_file: Path) -> bool:
    """runtime.portable_numerics of a params file; False when the file cannot be read (the
    stage's own loading then reports what is wrong with it)."""
    try:
        raw = yaml12.load(params_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeError, yaml.YAMLError):
        return False
    runtime = raw.get("runtime") if isinstance(raw, dict) else None
    return isinstance(runtime, dict) and runtime.get("portable_numerics") is True


def params_file_of(argv: Sequence[str]) -> Path:
    """The `--params` file of an `sswp <stage>` command line (default params.yaml)."""
    for i, arg in enumerate(argv):
        if arg == "--params" and i + 1 < len(argv):
            return Path(argv[i + 1])
        if arg.startswith("--params="):
            return Path(arg.split("=", 1)[1])
    return Path("params.yaml")


def pin_for_command(argv: Sequence[str]) -> bool:
    """Pin the kernels if the command's params ask for it; True if pinned.

    A process that has already loaded torch or numpy (a stage called in-process) keeps its
    kernels and its environment: the pins would reach only part of the libraries.
    """
    if any(name in sys.modules for name in EARLY_READERS):
        return False
    if not portable_numerics_requested(params_file_of(argv)):
        return False
    pin_portable_numerics()
    return True
