"""What machine made a result: CPU model, its vector instruction sets, the kernels run.

Results that differ in their last bits between two machines differ because of these: each
stage's provenance record holds them, and the report writes them to results/machine.json
beside results/params.yaml. Only the standard library here (the Snakefile imports
provenance, which imports this); torch is asked only when the process has loaded it.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

from sswp.pipeline.numerics import PORTABLE_ENV
from sswp.pipeline.paths import RESULTS_DIR

# The /proc/cpuinfo flags that decide which kernels torch, oneDNN, MKL and OpenBLAS pick.
ISA_FLAGS = (
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "amx_tile",
    "amx_bf16",
)
CPUINFO = Path("/proc/cpuinfo")
MACHINE_JSON = RESULTS_DIR / "machine.json"


@cache
def _cpuinfo() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo ({} where there is none: not Linux)."""
    try:
        text = CPUINFO.read_text()
    except OSError:
        return {}
    fields: dict[str, str] = {}
    for line in text.split("\n\n", 1)[0].splitlines():
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    return fields


def cpu_model() -> str:
    return _cpuinfo().get("model name") or platform.processor() or platform.machine()


def isa_flags() -> list[str]:
    """The CPU's vector instruction sets among ISA_FLAGS (empty where unknown)."""
    flags = set(_cpuinfo().get("flags", "").split())
    return [flag for flag in ISA_FLAGS if flag in flags]


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def kernels() -> dict[str, Any]:
    """What this process runs: torch's CPU capability (once torch is loaded) and the
    kernel switches of PORTABLE_ENV as the environment has them (None: the library's choice)."""
    torch = sys.modules.get("torch")
    capability = torch.backends.cpu.get_cpu_capability() if torch is not None else None
    return {
        "torch_cpu_capability": capability,
        "environment": {key: os.environ.get(key) for key in PORTABLE_ENV},
    }


def describe() -> dict[str, Any]:
    """The machine and the kernels of this process, for a provenance record."""
    info = _cpuinfo()
    family = f"{info.get('vendor_id', '?')} family {info.get('cpu family', '?')} model " + (
        info.get("model", "?")
    )
    return {
        "cpu": cpu_model(),
        "cpu_family": family if info else None,
        "architecture": platform.machine(),
        "isa_flags": isa_flags(),
        "torch": _version("torch"),
        **kernels(),
    }


def machine_json(portable_numerics: bool) -> str:
    """results/machine.json: the machine that made the report, and the numerics setting."""
    return json.dumps({**describe(), "portable_numerics": portable_numerics}, indent=2) + "\n"
