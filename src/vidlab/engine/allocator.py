"""Keep freed CPU memory for reuse, so large activations do not page-fault on every forward.

Video networks allocate activations of tens to hundreds of MB (I3D's first stage at 32x224 is 100 MB). glibc's
``malloc`` serves blocks that large with ``mmap`` and returns them to the kernel with ``munmap`` when freed, and it
trims the top of the heap when more than a threshold is free there; the next forward then gets fresh pages, and
touching them costs page faults, which on 2 cores can be 10-30% of a forward (measured in BENCHMARKS.md "Inference
speed"). PyTorch's CUDA caching allocator keeps freed blocks for reuse; on CPU it uses ``malloc``, and PyTorch's
performance tuning guide recommends preloading jemalloc or TCMalloc for that reason. :func:`reuse_freed_memory`
gets the effect from glibc itself: no ``mmap`` for large blocks (``M_MMAP_MAX`` 0) and no trimming below
2 GiB free (``M_TRIM_THRESHOLD``), so freed activation memory stays in the heap and the next forward reuses it.

The cost: the process keeps its peak heap (RSS does not fall after a large forward). The ``vidlab`` commands that
run models (train, test, predict, extract, bench) call it; ``VIDLAB_MALLOC=system`` turns it off, and it does
nothing where glibc's ``mallopt`` is absent or when the user set glibc's own ``MALLOC_*`` / ``GLIBC_TUNABLES``
variables (their settings win).
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys

logger = logging.getLogger("vidlab")

# glibc <malloc.h>
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
TRIM_THRESHOLD = 2**31 - 1  # the largest value mallopt takes (an int): trim only past ~2 GiB free at the top

_USER_SETTINGS = ("GLIBC_TUNABLES", "MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_")
_applied = False


def reuse_freed_memory() -> bool:
    """Tell glibc's ``malloc`` to keep freed large blocks in the heap for reuse (see the module docstring). Returns
    whether the setting is in effect; idempotent, process-wide, and inherited by forked loader workers."""
    global _applied
    if _applied:
        return True
    if os.environ.get("VIDLAB_MALLOC", "").lower() in ("system", "default", "off", "0"):
        return False
    if not sys.platform.startswith("linux") or any(k in os.environ for k in _USER_SETTINGS):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # glibc only (musl has no mallopt)
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    _applied = bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    if _applied:
        logger.debug("malloc: large blocks from the heap, trimmed past %d bytes free", TRIM_THRESHOLD)
    return _applied
