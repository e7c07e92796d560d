"""The compile cache: generated kernel sources become numba functions, once.

A kernel's source is written to `<cache dir>/kernels/fx_<hash>.py`, where the hash
covers the source (which is structural: literal values are parameters), numba's,
Python's and fxgrad's versions. numba's `cache=True` then keeps the machine code
beside it, so a second process compiles nothing. Sources are written atomically
(temporary file + rename), so processes sharing the cache never see half a file.
An unwritable or corrupted cache is reported with a warning and the kernel is
compiled in memory instead. In memory, compiled kernels are shared by hash.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable

import numba

from fxgrad.config import config

FXGRAD_CODEGEN_VERSION = "3"
_compiled: dict[str, Callable[..., Any]] = {}


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
    spec = importlib.util.spec_from_file_location(f"fxgrad_kernel_{key}", path)
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
    fn = _compiled.get(key)
    if fn is None:
        fn = _compiled[key] = _load(source, key)
    return fn


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
    _compiled[source_hash(source)] = fn
    return fn


def clear_memory_cache() -> None:
    _compiled.clear()
