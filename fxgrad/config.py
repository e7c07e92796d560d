"""Global switches, read from the environment at import and changeable at run time.

>>> from fxgrad import config
>>> config.update("disable_jit", True); config.disable_jit
True
>>> config.update("disable_jit", False)
"""
from __future__ import annotations

import os
from typing import Any, Callable

# option name -> functions called after it changes (fxgrad.jit drops its inline caches
# when `disable_jit` is turned on)
_watchers: dict[str, list[Callable[[], None]]] = {}


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


class Config:
    """`disable_jit` (FXGRAD_DISABLE_JIT): run jitted functions as plain Python.
    `jit_simplify` (FXGRAD_JIT_SIMPLIFY, default on): simplify programs before lowering.
    `log_compiles` (FXGRAD_LOG_COMPILES): log each compilation with its cause and time.
    `cache_dir` (FXGRAD_CACHE_DIR): the on-disk compile cache; None for the default.
    `simplify_assume_finite` (FXGRAD_SIMPLIFY_ASSUME_FINITE): let the simplifier use
    x*0 = 0 and x-x = 0, which are wrong for inf and nan.
    `jit_parallel` (FXGRAD_JIT_PARALLEL, default on): run fused loops over at least
    2**17 elements on all cores (numba prange).
    `jit_cache_size` (FXGRAD_JIT_CACHE_SIZE, default 1024): signatures each jitted
    function keeps; beyond it the least recently used is dropped (and retraced if
    called again).
    `kernel_cache_size` (FXGRAD_KERNEL_CACHE_SIZE, default 1024): compiled kernels kept
    in memory across all jitted functions, least recently used dropped first.
    `tune_malloc` (FXGRAD_TUNE_MALLOC, default on): on the first compile, set glibc's
    mmap/trim thresholds to the values glibc itself settles at after freeing a large
    array, so kernel temporaries of 128 KB - 32 MB do not page-fault on every call
    (see fxgrad.jit.runtime).
    `flush_denormals` (FXGRAD_FLUSH_DENORMALS, default on): kernels compiled from then
    on flush subnormal floats to zero (FTZ/DAZ on x86-64), as JAX/XLA do on CPU; eager
    evaluation keeps IEEE gradual underflow (see fxgrad.jit.runtime).

    Options are process-wide: every thread sees the same values."""

    def __init__(self) -> None:
        self.disable_jit = _env_flag("FXGRAD_DISABLE_JIT")
        self.jit_simplify = os.environ.get("FXGRAD_JIT_SIMPLIFY", "1") != "0"
        self.log_compiles = _env_flag("FXGRAD_LOG_COMPILES")
        self.cache_dir: str | None = os.environ.get("FXGRAD_CACHE_DIR") or None
        self.simplify_assume_finite = _env_flag("FXGRAD_SIMPLIFY_ASSUME_FINITE")
        self.jit_parallel = os.environ.get("FXGRAD_JIT_PARALLEL", "1") != "0"
        self.jit_cache_size = int(os.environ.get("FXGRAD_JIT_CACHE_SIZE", "1024"))
        self.kernel_cache_size = int(os.environ.get("FXGRAD_KERNEL_CACHE_SIZE", "1024"))
        self.tune_malloc = os.environ.get("FXGRAD_TUNE_MALLOC", "1") != "0"
        self.flush_denormals = os.environ.get("FXGRAD_FLUSH_DENORMALS", "1") != "0"

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)
        for callback in _watchers.get(name, ()):
            callback()

    def watch(self, name: str, callback: Callable[[], None]) -> None:
        """Call `callback()` whenever option `name` is set.

        >>> from fxgrad import config
        >>> config.watch("log_compiles", lambda: print("log_compiles is now", config.log_compiles))
        >>> config.update("log_compiles", False)
        log_compiles is now False
        >>> _watchers["log_compiles"].pop() and None
        """
        _watchers.setdefault(name, []).append(callback)

    def update(self, name: str, value: Any) -> None:
        if not hasattr(self, name):
            raise AttributeError(f"unknown fxgrad config option {name!r}; "
                                 f"known: {', '.join(vars(self))}")
        setattr(self, name, value)


config = Config()
