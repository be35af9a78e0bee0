"""Keep freed host memory in the process, so that CPU steps stop page-faulting.

A CPU search step allocates and frees thousands of tensors of a few MiB. glibc's malloc
serves large blocks with fresh mmaps and hands free memory at the top of its heap back to
the kernel, so such tensors are zero-filled again by page faults on first touch. Raising
both thresholds keeps freed blocks for reuse: the process holds on to its peak, as
PyTorch's CUDA caching allocator does on a GPU. Measured at the default search size on 2
cores: an arch step went from about 12,000 page faults and 24 ms of system time to none,
about 10 % of the step."""

from __future__ import annotations

import ctypes
import sys

# mallopt parameters (malloc.h) and the values set: glibc caps the mmap threshold at 32 MiB
# on 64-bit systems; the trim threshold is an int.
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 2**20
TRIM_THRESHOLD = 2**30


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds; False where the C library is not glibc."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # musl and other C libraries
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
