"""Errors that name the user's mistake, and the machinery to point at the user's code.

Every error raised for bad input is an `FxgradError`. Messages name the operation,
the shapes or dtypes involved and the user's source line (found by walking the stack
past fxgrad's own frames), and say how to fix the mistake. Public entry points are
wrapped in `api_boundary`, which removes fxgrad's internal frames from the traceback
(set FXGRAD_TRACEBACK_FILTERING=off to keep them).
"""
from __future__ import annotations

import functools
import linecache
import os
import sys
import types
from typing import Any, Callable, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


class FxgradError(Exception):
    """Base class of every error fxgrad raises for bad input.

    >>> import fxgrad as fx
    >>> try:
    ...     fx.grad(lambda x: x ** 2)(3)      # an integer input
    ... except fx.FxgradError as e:
    ...     print(type(e).__name__)
    FxTypeError
    """


class FxTypeError(FxgradError, TypeError):
    """An operation was given operands of the wrong shape or dtype.

    >>> import fxgrad as fx
    >>> fx.grad(lambda x: x ** 2)(3)
    Traceback (most recent call last):
    ...
    fxgrad.core.errors.FxTypeError: grad differentiates with respect to real or complex floating-point inputs, but input leaf 0 has dtype int64. ...
    """


class FxValueError(FxgradError, ValueError):
    """A transformation was given a bad argument (argnums, tangents, cotangents, ...).

    >>> import fxgrad as fx
    >>> fx.grad(lambda x: x ** 2, argnums=1)(3.0)
    Traceback (most recent call last):
    ...
    fxgrad.core.errors.FxValueError: grad: argnums=1 is out of range for a call with 1 positional argument; ...
    """


class ConcretizationError(FxgradError, TypeError):
    """A traced value was used where a concrete Python value is needed.

    >>> import fxgrad as fx
    >>> fx.make_jaxpr(lambda x: x if x > 0 else -x)(1.0)
    Traceback (most recent call last):
    ...
    fxgrad.core.errors.ConcretizationError: a Python `if`/`while`/`and`/`or`/bool() on a traced value needs a concrete value, ...
    """


class TracerArrayConversionError(FxgradError, TypeError):
    """A traced value was handed to plain numpy.

    >>> import fxgrad as fx, numpy as np
    >>> fx.grad(lambda x: np.asarray(x).sum())(np.ones(2))
    Traceback (most recent call last):
    ...
    fxgrad.core.errors.TracerArrayConversionError: a traced value f64[2] was passed to plain numpy ...
    """


class LeakedTracerError(FxgradError, RuntimeError):
    """A traced value was used after the transformation that made it had finished.

    >>> import fxgrad as fx, fxgrad.numpy as fnp
    >>> leaked = []
    >>> _ = fx.grad(lambda x: leaked.append(x) or x * 2.0)(1.0)
    >>> fnp.sin(leaked[0])
    Traceback (most recent call last):
    ...
    fxgrad.core.errors.LeakedTracerError: a traced value f64[] was used after the transformation that created it finished ...
    """


def _internal_dirs() -> tuple[str, ...]:
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    dirs = [here]
    prims = sys.modules.get("fxgrad.primitives")
    path = getattr(prims, "__file__", None) if prims is not None else None
    if path:
        dirs.append(os.path.dirname(os.path.abspath(path)))
    return tuple(d + os.sep for d in dirs)


def _is_internal(filename: str) -> bool:
    if filename.startswith("<") or "contextlib" in filename:
        return True
    return os.path.abspath(filename).startswith(_internal_dirs())


def user_frame() -> str:
    """'file:line: source' of the innermost frame outside fxgrad, or '' if none."""
    frame: types.FrameType | None = sys._getframe(1)
    while frame is not None and _is_internal(frame.f_code.co_filename):
        frame = frame.f_back
    if frame is None:
        return ""
    name, line = frame.f_code.co_filename, frame.f_lineno
    source = linecache.getline(name, line).strip()
    where = f"{os.path.basename(name)}:{line}"
    return f"{where}: {source}" if source else where


def at_user_line(message: str) -> str:
    where = user_frame()
    return f"{message}\n  at {where}" if where else message


def _filter_traceback(tb: types.TracebackType | None) -> types.TracebackType | None:
    kept = []
    while tb is not None:
        if not _is_internal(tb.tb_frame.f_code.co_filename):
            kept.append((tb.tb_frame, tb.tb_lasti, tb.tb_lineno))
        tb = tb.tb_next
    new_tb = None
    for frame, lasti, lineno in reversed(kept):
        new_tb = types.TracebackType(new_tb, frame, lasti, lineno)
    return new_tb


def api_boundary(fn: F) -> F:
    """Re-raise fxgrad errors from a public function without fxgrad's internal frames."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except FxgradError as err:
            if os.environ.get("FXGRAD_TRACEBACK_FILTERING", "on") == "off":
                raise
            raise err.with_traceback(_filter_traceback(err.__traceback__)) from None

    return wrapper  # type: ignore[return-value]
