"""Dtype promotion, broadcasting and axis handling shared by every fxgrad.numpy function.

numpy itself decides dtypes: a ufunc's loop dtypes come from `ufunc.resolve_dtypes`,
other functions use `np.result_type`. Python scalars are weakly typed (NEP 50): they
take the dtype of the array operands (`x_f32 * 2.0` stays float32) and become 0-d
constants, which traced programs write inline as literals. Array operands are cast
with `convert_element_type` before binding, then broadcast to the common shape with
`broadcast_in_dim` -- except 0-d operands, which elementwise primitives accept as they
are, so `x * 2.0` records a single `mul a 2.0`. Scalars are weak in every function,
including the few where numpy itself makes them strong (`np.dot(x_f32, 2.0)` is float64
in numpy, float32 here).
"""
from __future__ import annotations

import functools
import operator
from typing import Any, Callable

import numpy as np

from fxgrad.core.errors import FxTypeError, at_user_line
from fxgrad.core.ir import aval_of
from fxgrad.core.trace import Tracer
from fxgrad.primitives.shape import broadcast_in_dim, convert_element_type

_PY_SCALARS = (bool, int, float, complex)


def is_traced(x: Any) -> bool:
    return isinstance(x, Tracer)


def any_traced(*xs: Any) -> bool:
    return any(isinstance(x, Tracer) for x in xs)


def is_python_scalar(x: Any) -> bool:
    return isinstance(x, _PY_SCALARS) and not isinstance(x, np.generic)


def contains_tracer(x: Any) -> bool:
    """Whether `x` is a tracer or a (nested) list or tuple holding one."""
    if isinstance(x, (list, tuple)):
        return any(contains_tracer(e) for e in x)
    return isinstance(x, Tracer)


def operand(x: Any, name: str) -> Any:
    """`x` as something primitives accept: a tracer, a numpy array or a (weak) Python scalar."""
    if isinstance(x, Tracer) or is_python_scalar(x) or isinstance(x, np.ndarray):
        return x
    if isinstance(x, (list, tuple)) and contains_tracer(x):
        from fxgrad.numpy.creation import array
        return array(x)
    arr = np.asarray(x)
    if arr.dtype == object or arr.dtype.kind in "USVMm":
        raise FxTypeError(at_user_line(
            f"{name}: expected an array or number, got {type(x).__name__}"))
    return arr


def operands(name: str, *xs: Any) -> list[Any]:
    return [operand(x, name) for x in xs]


def shape_of(x: Any) -> tuple[int, ...]:
    return aval_of(x).shape


def dtype_of(x: Any) -> np.dtype:
    """The dtype of an operand; a Python scalar's is numpy's default for its type."""
    return aval_of(x).dtype


def out(x: Any) -> Any:
    """A result as returned to users: tracers as they are, everything else as an ndarray."""
    return x if isinstance(x, Tracer) else np.asarray(x)


# ---------------------------------------------------------------- dtypes

def _weak_dtype_key(x: Any) -> Any:
    """What numpy's dtype resolution sees: Python int/float/complex stay weak types."""
    if is_python_scalar(x):
        return np.dtype(bool) if isinstance(x, bool) else type(x)
    return dtype_of(x)


def result_type(*args: Any) -> np.dtype:
    """numpy's result dtype of the operands, Python scalars weakly typed.

    >>> import fxgrad.numpy as fnp, numpy as np
    >>> fnp.result_type(np.ones(2, np.float32), 2.0)
    dtype('float32')
    """
    return np.result_type(*(_result_type_key(a) for a in args))


def _result_type_key(x: Any) -> Any:
    """Python scalars (weak) and dtype specifiers as they are; arrays by their dtype."""
    if is_python_scalar(x) or isinstance(x, (np.dtype, type, str)):
        return x
    return dtype_of(x)


@functools.lru_cache(maxsize=None)
def _resolve(ufunc: np.ufunc, keys: tuple[Any, ...]) -> tuple[np.dtype, ...]:
    return ufunc.resolve_dtypes((*keys, *([None] * ufunc.nout)))


def ufunc_dtypes(ufunc: np.ufunc, *args: Any) -> tuple[tuple[np.dtype, ...], np.dtype]:
    """The dtypes numpy's `ufunc` computes in for these operands, and its output dtype."""
    keys = tuple(_weak_dtype_key(a) for a in args)
    try:
        dtypes = _resolve(ufunc, keys)
    except (TypeError, ValueError):
        names = ", ".join(getattr(k, "__name__", None) or np.dtype(k).name for k in keys)
        raise FxTypeError(at_user_line(
            f"{ufunc.__name__}: not supported for operand dtypes ({names}), as in numpy"
        )) from None
    return dtypes[:ufunc.nin], dtypes[ufunc.nin]


def cast(x: Any, dtype: Any) -> Any:
    """`x` converted to `dtype`; a Python scalar becomes a 0-d constant of that dtype."""
    dtype = np.dtype(dtype)
    if is_python_scalar(x):
        return np.asarray(x, dtype)
    return convert_element_type(x, dtype)


def promote(name: str, *xs: Any, dtype: Any = None) -> list[Any]:
    """Operands converted to one dtype (numpy's result type unless given), not broadcast."""
    vals = operands(name, *xs)
    dtype = dtype if dtype is not None else result_type(*vals)
    return [cast(x, dtype) for x in vals]


# ---------------------------------------------------------------- shapes

def broadcast_shapes(name: str, *shapes: tuple[int, ...]) -> tuple[int, ...]:
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        detail = " ".join(str(s) for s in shapes)
        raise FxTypeError(at_user_line(
            f"{name}: operands could not be broadcast together with shapes {detail}")) from None


def broadcast_to_shape(x: Any, shape: tuple[int, ...]) -> Any:
    """`x` broadcast to `shape` by numpy's rules (trailing axes aligned)."""
    x_shape = shape_of(x)
    if x_shape == tuple(shape) and not is_python_scalar(x):
        return x
    lead = len(shape) - len(x_shape)
    return broadcast_in_dim(x, shape, tuple(range(lead, len(shape))))


def broadcast_operands(name: str, *xs: Any, keep_scalars: bool = True) -> list[Any]:
    """Operands broadcast to their common shape; 0-d ones stay 0-d if `keep_scalars`."""
    shape = broadcast_shapes(name, *(shape_of(x) for x in xs))
    return [x if keep_scalars and shape_of(x) == () else broadcast_to_shape(x, shape)
            for x in xs]


def apply_ufunc(ufunc: np.ufunc, fn: Callable[..., Any], *xs: Any) -> Any:
    """`fn` on the operands cast to `ufunc`'s loop dtypes and broadcast, as numpy would."""
    vals = operands(ufunc.__name__, *xs)
    in_dtypes, _ = ufunc_dtypes(ufunc, *vals)
    vals = [cast(x, d) for x, d in zip(vals, in_dtypes)]
    return out(fn(*broadcast_operands(ufunc.__name__, *vals)))


# ---------------------------------------------------------------- axes

def canonical_axis(axis: Any, ndim: int, name: str) -> int:
    """A non-negative axis; numpy's out-of-bounds message otherwise."""
    try:
        axis = operator.index(axis)
    except TypeError:
        raise FxTypeError(at_user_line(
            f"{name}: axis must be an integer, got {axis!r}")) from None
    if not -ndim <= axis < ndim:
        raise FxTypeError(at_user_line(
            f"{name}: axis {axis} is out of bounds for an array of dimension {ndim}"))
    return axis % ndim


def canonical_axes(axis: Any, ndim: int, name: str) -> tuple[int, ...]:
    """`axis` (None: all axes; an int; a tuple) as a sorted tuple of distinct axes."""
    if axis is None:
        return tuple(range(ndim))
    seq = axis if isinstance(axis, (tuple, list)) else (axis,)
    axes = [canonical_axis(a, ndim, name) for a in seq]
    if len(set(axes)) != len(axes):
        raise FxTypeError(at_user_line(f"{name}: repeated axis in {axis!r}"))
    return tuple(sorted(axes))
