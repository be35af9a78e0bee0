"""The host allocator keeps freed memory for reuse instead of returning it to the kernel."""

from __future__ import annotations

import json
import platform
import subprocess
import sys

import pytest

from sswp.engine.allocator import keep_freed_memory

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="needs glibc (mallopt)")

# Where a 24 MiB tensor lives (mmapped or on the heap) and what stays free after it goes,
# from glibc's mallinfo2, in a fresh process.
PROBE = """
import ctypes, json, sys, torch
from sswp.engine.allocator import keep_freed_memory
class Info(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
        "uordblks", "fordblks", "keepcost")]
mallinfo2 = ctypes.CDLL("libc.so.6").mallinfo2
mallinfo2.restype = Info
if sys.argv[1] == "keep":
    assert keep_freed_memory()
before = mallinfo2().hblkhd
x = torch.ones(6 * 2**20)
mapped = mallinfo2().hblkhd - before
del x
print(json.dumps({"mapped": mapped, "free_after": mallinfo2().fordblks}))
"""
TENSOR = 24 * 2**20


def _probe(mode: str) -> dict[str, int]:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_a_freed_tensor_stays_in_the_process():
    default, kept = _probe("default"), _probe("keep")
    assert default["mapped"] >= TENSOR  # its own mmap, unmapped when freed
    assert kept["mapped"] == 0 and kept["free_after"] >= TENSOR  # on the heap, kept


def test_setting_it_again_is_harmless():
    assert keep_freed_memory() and keep_freed_memory()
