"""Keeping kernel temporaries off the page-fault path: glibc's malloc thresholds.

Kernels allocate their arrays with malloc. glibc serves a request above its mmap
threshold (128 KB at first) with fresh pages from the operating system, and hands free
memory at the top of the heap back beyond its trim threshold, so a kernel whose
temporaries are a few hundred KB page-faults on every call: P4's 10,000-step RNN
gradient keeps 1.9 MB of residuals between its loops, and faulting them in cost 0.35 ms
of its 1.1 ms. glibc raises both thresholds by itself once a large block is freed (to
at most 32 MB and 64 MB), so a jitted function's speed depended on what the process
had happened to free before. On the first compile fxgrad sets the thresholds to those
final values with `mallopt` — where glibc would settle in any process that frees one
large array. `config.tune_malloc = False` (FXGRAD_TUNE_MALLOC=0) leaves malloc alone.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import sys
import threading

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3            # <malloc.h>
MMAP_THRESHOLD, TRIM_THRESHOLD = 32 << 20, 64 << 20    # glibc's dynamic maxima, 64-bit

_lock = threading.Lock()
_done = False


def tune_malloc() -> bool:
    """Pin glibc's mmap and trim thresholds (once per process); True where it did."""
    global _done
    from fxgrad.config import config
    with _lock:
        if _done or not config.tune_malloc or not sys.platform.startswith("linux"):
            return False
        _done = True
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            mallopt = libc.mallopt
        except (OSError, AttributeError):   # not glibc (musl has no mallopt)
            return False
        return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
                    and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
