"""The compile cache: generated kernel sources become numba functions, once.

A kernel's source is written to `<cache dir>/kernels/fx_<hash>.py`, where the hash
covers the source (which is structural: literal values are parameters), numba's,
Python's and fxgrad's versions. numba's `cache=True` then keeps the machine code
beside it, so a second process compiles nothing. Sources are written atomically
(temporary file + rename), so processes sharing the cache never see half a file.
An unwritable or corrupted cache is reported with a warning and the kernel is
compiled in memory instead. In memory, compiled kernels are shared by hash in a
least-recently-used table of at most `config.kernel_cache_size` entries; the table
is filled under a lock, so threads asking for one kernel share one dispatcher (numba
serializes compilation itself with its global compiler lock).
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import tempfile
import threading
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable

import numba

from fxgrad.config import config

FXGRAD_CODEGEN_VERSION = "3"
_compiled: OrderedDict[str, Callable[..., Any]] = OrderedDict()   # oldest use first
_lock = threading.RLock()


def default_cache_dir() -> Path:
    if config.cache_dir:
        return Path(config.cache_dir)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "fxgrad"


def source_hash(source: str) -> str:
    from fxgrad import __version__
    salt = f"{numba.__version__}|{sys.version}|{__version__}|{FXGRAD_CODEGEN_VERSION}|"
    return hashlib.sha256((salt + source).encode()).hexdigest()[:40]


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".py")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _load_from_file(path: Path, key: str) -> Callable[..., Any]:
    spec = importlib.util.spec_from_file_location(_module_name(key), path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module   # numba's cache locates functions through it
    spec.loader.exec_module(module)
    return module.kernel


def _compile_in_memory(source: str) -> Callable[..., Any]:
    namespace: dict[str, Any] = {}
    exec(compile(source.replace("cache=True", "cache=False"), "<fxgrad kernel>", "exec"),
         namespace)
    return namespace["kernel"]


def kernel_path(key: str) -> Path:
    return default_cache_dir() / "kernels" / f"fx_{key}.py"


def load_kernel(source: str) -> Callable[..., Any]:
    """A (lazily compiling) numba dispatcher for `source`, through the disk cache."""
    key = source_hash(source)
    with _lock:
        fn = _compiled.get(key)
        if fn is None:
            fn = _load(source, key)
        _remember(key, fn)
    return fn


def _remember(key: str, fn: Callable[..., Any]) -> None:
    """Mark `key` most recently used; forget the least recently used beyond the bound.

    A forgotten kernel's module leaves `sys.modules` too, so its machine code is freed
    once no jitted function holds it (numba needs the module only to load a kernel from
    the disk cache, which `load_kernel` redoes when asked again)."""
    _compiled[key] = fn
    _compiled.move_to_end(key)
    while len(_compiled) > max(int(config.kernel_cache_size), 1):
        old, _ = _compiled.popitem(last=False)
        sys.modules.pop(_module_name(old), None)


def _module_name(key: str) -> str:
    return f"fxgrad_kernel_{key}"


def _load(source: str, key: str) -> Callable[..., Any]:
    path = kernel_path(key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text() != source:
            _write_atomic(path, source)
        return _load_from_file(path, key)
    except Exception as err:  # unwritable directory, corrupted file, ...
        warnings.warn(f"fxgrad: compile cache at {path.parent} unusable ({err!r}); "
                      "compiling in memory", RuntimeWarning, stacklevel=3)
        return _compile_in_memory(source)


def recompile_in_memory(source: str) -> Callable[..., Any]:
    """Replace a kernel whose cached machine code failed to load."""
    fn = _compile_in_memory(source)
    with _lock:
        _remember(source_hash(source), fn)
    return fn


def clear_memory_cache() -> None:
    """Forget every compiled kernel held in memory (the disk cache stays)."""
    with _lock:
        for key in _compiled:
            sys.modules.pop(_module_name(key), None)
        _compiled.clear()


def memory_cache_size() -> int:
    """How many compiled kernels are held in memory."""
    return len(_compiled)
