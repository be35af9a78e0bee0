"""No stride-2 1x1 conv on channels_last input reaches oneDNN: its AVX2 backward corrupts
the heap (docs/known-issues.md). The project's FactorizedReduce, written in DARTS' form, ran
that conv; it now trains under glibc's heap checks in a fresh process, on the even sizes
where the corruption shows (8 and up) and on odd ones, with the CPU fast paths on and off."""

import os
import subprocess
import sys

REPRODUCTION = """
import torch
from sswp.nas.cpu_fast_paths import use_fast_paths
from sswp.nas.ops import FactorizedReduce

torch.set_num_threads(1)
torch.manual_seed(0)
reduce = FactorizedReduce(6, 8, affine=True).to(memory_format=torch.channels_last)
for fast in (True, False):
    with use_fast_paths(fast):
        for size in (8, 9, 16, 7, 10) * 10:
            x = torch.randn(3, 6, size, size).contiguous(memory_format=torch.channels_last)
            out = reduce(x.requires_grad_(True))
            out.backward(torch.randn_like(out))
print("ok")
"""


def test_factorized_reduce_on_odd_channels_last_sizes_keeps_the_heap_intact():
    # oneDNN pinned to AVX2: the kernel that corrupts the heap runs on AVX-512 CPUs too.
    env = {**os.environ, "MALLOC_CHECK_": "3", "ONEDNN_MAX_CPU_ISA": "AVX2"}
    run = subprocess.run(
        [sys.executable, "-c", REPRODUCTION], env=env, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, f"exit {run.returncode}: {run.stderr[-2000:]}"
    assert run.stdout.strip() == "ok"
