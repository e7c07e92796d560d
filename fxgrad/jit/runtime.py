"""What kernels need from the process they run in: the floating-point mode and malloc.

**Subnormals flushed to zero, as XLA does.** A value below 2.2e-308 in magnitude
(subnormal) costs about a hundred cycles per operation on x86 CPUs. Gradients through
long recurrences decay through that range: P4's RNN gradient spends a fifth of its time
there. XLA, and so JAX, runs CPU code with flush-to-zero and denormals-are-zero set;
fxgrad's kernels do the same, setting the two MXCSR bits on entry and restoring the
caller's register before returning. Eager evaluation (numpy) keeps IEEE gradual
underflow, so results below 2.2e-308 can differ between `f` and `jit(f)`.
`config.flush_denormals = False` (FXGRAD_FLUSH_DENORMALS=0) keeps IEEE behaviour in
kernels compiled afterwards. x86-64 only; elsewhere a no-op.

A kernel that raises (a singular matrix in `solve`) skips its restore; the caller's
exception handler calls `reset()`, which clears the two bits on the calling thread.
Kernels with a parallel loop (`prange`, over 2**17 elements or more) keep IEEE
behaviour: the mode is per thread, numba's worker threads would run their share with
whatever mode they were started in, and threads started inside a flushed kernel would
keep it afterwards.

**glibc's malloc thresholds.** Kernels allocate their arrays with malloc. glibc serves a
request above its mmap threshold (128 KB at first) with fresh pages from the operating
system, and hands free memory at the top of the heap back beyond its trim threshold, so
a kernel whose temporaries are a few hundred KB page-faults on every call: P4's
10,000-step RNN gradient keeps 1.9 MB of residuals between its loops, and faulting them
in cost 0.35 ms of its 1.1 ms. glibc raises both thresholds by itself once a large block
is freed (to at most 32 MB and 64 MB), so a jitted function's speed depended on what the
process had happened to free before. On the first compile fxgrad sets the thresholds to
those final values with `mallopt` — where glibc would settle in any process that frees
one large array. `config.tune_malloc = False` (FXGRAD_TUNE_MALLOC=0) leaves malloc
alone.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import platform
import sys
import threading
from typing import Any

from llvmlite import ir
from numba import njit
from numba.core import cgutils, types
from numba.extending import intrinsic

FLUSH_BITS = 0x8040          # MXCSR: FTZ (bit 15) | DAZ (bit 6)


def opaque_pointers() -> bool:
    """Whether llvmlite emits LLVM's opaque `ptr` (numba >= 0.61's llvmlite): the IR
    built here and in vecmath is written for it."""
    try:
        ir.PointerType()
    except TypeError:
        return False
    return True


SUPPORTED = platform.machine() in ("x86_64", "AMD64") and opaque_pointers()


def _mxcsr_call(builder: Any, name: str, slot: Any) -> None:
    fn = cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(ir.VoidType(), [slot.type]), f"llvm.x86.sse.{name}")
    builder.call(fn, [slot])


def _load_mxcsr(builder: Any, value: Any) -> None:
    slot = cgutils.alloca_once(builder, ir.IntType(32))
    builder.store(builder.trunc(value, ir.IntType(32)), slot)
    _mxcsr_call(builder, "ldmxcsr", slot)


def _read_mxcsr(builder: Any) -> Any:
    slot = cgutils.alloca_once(builder, ir.IntType(32))
    _mxcsr_call(builder, "stmxcsr", slot)
    return builder.zext(builder.load(slot), ir.IntType(64))


# Intrinsics, not functions: inlined into the kernel, nothing more for numba to compile.
@intrinsic
def flush_enter(typingctx: Any) -> Any:
    """Set FTZ and DAZ; the previous MXCSR value, for `flush_exit`."""
    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        saved = _read_mxcsr(builder)
        _load_mxcsr(builder, builder.or_(saved, ir.Constant(ir.IntType(64), FLUSH_BITS)))
        return saved
    return types.int64(), codegen


@intrinsic
def flush_exit(typingctx: Any, saved: Any) -> Any:
    """Restore the MXCSR value `flush_enter` returned."""
    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        _load_mxcsr(builder, args[0])
        return context.get_dummy_value()
    return types.none(saved), codegen


@intrinsic
def _clear_flush_bits(typingctx: Any) -> Any:
    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        mask = ir.Constant(ir.IntType(64), ~FLUSH_BITS & 0xFFFFFFFF)
        _load_mxcsr(builder, builder.and_(_read_mxcsr(builder), mask))
        return context.get_dummy_value()
    return types.none(), codegen


@njit(nogil=True)
def _clear() -> None:
    _clear_flush_bits()  # type: ignore[call-arg]  # numba supplies typingctx


@njit(nogil=True)
def set_flush_bits() -> int:
    """What a kernel does first, callable from Python (for tests)."""
    return flush_enter()  # type: ignore[call-arg]


def reset() -> None:
    """Clear FTZ/DAZ on this thread, after a kernel that set them raised."""
    if SUPPORTED:
        _clear()


def enabled() -> bool:
    """Whether kernels lowered now flush subnormals."""
    from fxgrad.config import config
    return SUPPORTED and bool(config.flush_denormals)


# ---------------------------------------------------------------- malloc

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3            # <malloc.h>
MMAP_THRESHOLD, TRIM_THRESHOLD = 32 << 20, 64 << 20    # glibc's dynamic maxima, 64-bit

_malloc_lock = threading.Lock()
_malloc_tuned = False


def tune_malloc() -> bool:
    """Pin glibc's mmap and trim thresholds (once per process); True where it did."""
    global _malloc_tuned
    from fxgrad.config import config
    with _malloc_lock:
        if _malloc_tuned or not config.tune_malloc or not sys.platform.startswith("linux"):
            return False
        _malloc_tuned = True
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            mallopt = libc.mallopt
        except (OSError, AttributeError):   # not glibc (musl has no mallopt)
            return False
        return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
                    and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
