"""Array creation. Shapes are static, so creation from shapes returns numpy arrays.

`zeros`, `ones`, `eye`, `arange`, `*_like` and friends return plain numpy arrays even
for traced arguments (only the shape and dtype of an argument are used), so they
enter programs as constants. Creation that depends on traced *values* is traced:
`array`/`asarray` of nested lists holding tracers stack them (Python scalars among
them are weakly typed, as everywhere in fxgrad.numpy), `full` with a traced fill
value broadcasts it, and `linspace` with traced endpoints interpolates between them.
"""
from __future__ import annotations

import operator
from typing import Any

import numpy as np

from fxgrad.core.errors import FxValueError, at_user_line
from fxgrad.core.trace import Tracer
from fxgrad.numpy._promote import (any_traced, broadcast_shapes, broadcast_to_shape, cast,
                                   contains_tracer, dtype_of, is_traced, operand, out,
                                   result_type, shape_of)
from fxgrad.primitives.shape import broadcast_in_dim, concatenate, convert_element_type, \
    expand_dims, reshape


def _leaves(obj: Any) -> list[Any]:
    if isinstance(obj, (list, tuple)):
        return [leaf for e in obj for leaf in _leaves(e)]
    return [obj]


def _stack_nested(obj: Any, dtype: np.dtype) -> Any:
    """A nested list of arrays, tracers and scalars as one array of `dtype`."""
    if not isinstance(obj, (list, tuple)):
        return cast(operand(obj, "array"), dtype)
    items = [_stack_nested(e, dtype) for e in obj]
    shapes = {shape_of(i) for i in items}
    if len(shapes) != 1:
        raise FxValueError(at_user_line(
            f"array: the nested sequence is ragged (element shapes {sorted(shapes)}); all "
            "elements at one level must have the same shape"))
    return concatenate([expand_dims(i, (0,)) for i in items], 0)


def _traced_array(obj: Any, dtype: Any) -> Any:
    """A tracer, or a nested list holding tracers, as one traced array."""
    if isinstance(obj, Tracer):
        return obj if dtype is None else convert_element_type(obj, np.dtype(dtype))
    if dtype is None:
        dtype = result_type(*(operand(leaf, "array") for leaf in _leaves(obj)))
    return _stack_nested(obj, np.dtype(dtype))


def array(object: Any, dtype: Any = None, copy: bool = True, ndmin: int = 0) -> Any:   # noqa: A002
    """An array from `object`; nested lists holding tracers are stacked into a tracer.

    numpy's `order`, `subok` and `like` are not taken. Python scalars beside tracers are
    weakly typed, as everywhere in fxgrad.numpy.

    >>> import fxgrad as fx, fxgrad.numpy as fnp, numpy as np
    >>> fx.jacfwd(lambda x: fnp.array([x, 2.0 * x]))(1.0)
    array([1., 2.])
    """
    if not contains_tracer(object):
        return np.array(object, dtype=dtype, copy=copy, ndmin=ndmin)
    x = _traced_array(object, dtype)
    ndim = len(shape_of(x))
    return reshape(x, (1,) * (ndmin - ndim) + shape_of(x)) if ndmin > ndim else x


def asarray(a: Any, dtype: Any = None) -> Any:
    """`a` as an array without copying; tracers stay tracers (converted to `dtype`).

    numpy's `order`, `copy` and `like` are not taken.

    >>> import fxgrad as fx, fxgrad.numpy as fnp, numpy as np
    >>> fnp.asarray([1, 2], dtype=np.float32)
    array([1., 2.], dtype=float32)
    """
    if contains_tracer(a):
        return array(a, dtype)
    return np.asarray(a, dtype=dtype)


def copy(a: Any) -> Any:
    """A copy of `a` (tracers are immutable: returned as they are).

    numpy's `order` and `subok` are not taken.

    >>> import fxgrad as fx, fxgrad.numpy as fnp, numpy as np
    >>> fx.grad(lambda x: fnp.copy(x) * 3.0)(1.0)
    array(3.)
    """
    return a if isinstance(a, Tracer) else np.array(a, copy=True)


# ---------------------------------------------------------------- from shapes

def zeros(shape: Any, dtype: Any = float) -> np.ndarray:
    """A new numpy array of `shape` filled with zeros (numpy's `order`, `like` not taken).

    >>> import fxgrad.numpy as fnp, numpy as np
    >>> fnp.zeros(2, dtype=np.int32)
    array([0, 0], dtype=int32)
    """
    return np.zeros(shape, dtype)


def ones(shape: Any, dtype: Any = float) -> np.ndarray:
    """A new numpy array of `shape` filled with ones (numpy's `order`, `like` not taken).

    >>> import fxgrad.numpy as fnp, numpy as np
    >>> fnp.ones(3)
    array([1., 1., 1.])
    """
    return np.ones(shape, dtype)


def empty(shape: Any, dtype: Any = float) -> np.ndarray:
    """Like numpy's `empty`, but filled with zeros (fxgrad never exposes garbage).

    >>> import fxgrad.numpy as fnp, numpy as np
    >>> fnp.empty(2)
    array([0., 0.])
    """
    return np.zeros(shape, dtype)


def full(shape: Any, fill_value: Any, dtype: Any = None) -> Any:
    """An array of `shape` filled with `fill_value` (broadcast; traced fills are traced).

    numpy's `order` and `like` are not taken.

    >>> import fxgrad as fx, fxgrad.numpy as fnp, numpy as np
    >>> fx.grad(lambda x: fnp.sum(fnp.full(3, x)))(1.0)
    array(3.)
    """
    if not is_traced(fill_value):
        return np.full(shape, fill_value, dtype)
    target = tuple(shape) if isinstance(shape, (tuple, list)) else (operator.index(shape),)
    value = fill_value if dtype is None else cast(fill_value, dtype)
    return broadcast_to_shape(value, broadcast_shapes("full", shape_of(value), target))


def _like(a: Any, dtype: Any, shape: Any) -> tuple[Any, np.dtype]:
    shape = shape_of(a) if shape is None else shape
    return shape, np.dtype(dtype) if dtype is not None else dtype_of(a)


def zeros_like(a: Any, dtype: Any = None, shape: Any = None) -> np.ndarray:
    """A numpy array of zeros with the shape and dtype of `a` (a constant even when `a` is traced).

    numpy's `order` and `subok` are not taken.

    >>> import fxgrad as fx, fxgrad.numpy as fnp, numpy as np
    >>> fx.vmap(lambda x: x + fnp.zeros_like(x))(np.ones((3, 2))).shape
    (3, 2)
    """
    return np.zeros(*_like(a, dtype, shape))


def ones_like(a: Any, dtype: Any = None, shape: Any = None) -> np.ndarray:
    """A numpy array of ones with the shape and dtype of `a` (a constant even when `a` is traced).

    numpy's `order` and `subok` are not taken.

    >>> import fxgrad.numpy as fnp, numpy as np
    >>> fnp.ones_like(np.array([1., 2.]), dtype=int)
    array([1, 1])
    """
    return np.ones(*_like(a, dtype, shape))


def empty_like(a: Any, dtype: Any = None, shape: Any = None) -> np.ndarray:
    """Like numpy's `empty_like`, but filled with zeros (`order`, `subok` not taken).

    >>> import fxgrad.numpy as fnp, numpy as np
    >>> fnp.empty_like(np.array([1., 2.]))
    array([0., 0.])
    """
    return np.zeros(*_like(a, dtype, shape))


def full_like(a: Any, fill_value: Any, dtype: Any = None, shape: Any = None) -> Any:
    """An array with the shape and dtype of `a` filled with `fill_value` (traced if it is).

    numpy's `order` and `subok` are not taken.

    >>> import fxgrad as fx, fxgrad.numpy as fnp, numpy as np
    >>> fx.grad(lambda x: fnp.sum(fnp.full_like(np.zeros(3), x)))(2.0)
    array(3.)
    """
    shape, dtype = _like(a, dtype, shape)
    return full(shape, fill_value, dtype)


def eye(N: int, M: int | None = None, k: int = 0, dtype: Any = float) -> np.ndarray:
    """A 2-d numpy array with ones on the `k` diagonal, zeros elsewhere (`order`, `like` not taken).

    >>> import fxgrad.numpy as fnp, numpy as np
    >>> fnp.eye(2, 3, k=1)
    array([[0., 1., 0.],
           [0., 0., 1.]])
    """
    return np.eye(N, M, k, dtype)


def identity(n: int, dtype: Any = float) -> np.ndarray:
    """The `n` by `n` identity matrix, a numpy array (`like` not taken).

    >>> import fxgrad.numpy as fnp, numpy as np
    >>> fnp.identity(2)
    array([[1., 0.],
           [0., 1.]])
    """
    return np.identity(n, dtype)


def tri(N: int, M: int | None = None, k: int = 0, dtype: Any = float) -> np.ndarray:
    """A numpy array with ones at and below the `k` diagonal, zeros elsewhere (`like` not taken).

    >>> import fxgrad.numpy as fnp, numpy as np
    >>> fnp.tri(3, dtype=int)
    array([[1, 0, 0],
           [1, 1, 0],
           [1, 1, 1]])
    """
    return np.tri(N, M, k, dtype)


# ---------------------------------------------------------------- ranges and grids

def _static(v: Any, what: str) -> Any:
    """A concrete Python number for a bound that decides a shape."""
    if isinstance(v, Tracer):
        return v.concrete(f"{what} (it decides the shape of the result)").item()
    return v


def arange(start: Any, stop: Any = None, step: Any = None, dtype: Any = None) -> np.ndarray:
    """Evenly spaced values in `[start, stop)` by `step`, a numpy array.

    The bounds decide the shape, so they must be concrete: traced bounds raise a
    ConcretizationError under `jit` or `vmap` (numpy's `like` is not taken).

    >>> import fxgrad.numpy as fnp, numpy as np
    >>> fnp.arange(1.0, 2.0, 0.25)
    array([1.  , 1.25, 1.5 , 1.75])
    """
    start, stop, step = (_static(v, "arange bounds") for v in (start, stop, step))
    if stop is None:
        start, stop = 0, start
    return np.arange(start, stop, 1 if step is None else step, dtype=dtype)


def linspace(start: Any, stop: Any, num: int = 50, endpoint: bool = True,
             retstep: bool = False, dtype: Any = None, axis: int = 0) -> Any:
    """`num` evenly spaced samples from start to stop; traced endpoints are interpolated.

    numpy's `device` is not taken.

    >>> import fxgrad as fx, fxgrad.numpy as fnp, numpy as np
    >>> fx.grad(lambda b: fnp.sum(fnp.linspace(0.0, b, 3)))(2.0)
    array(1.5)
    """
    if not any_traced(start, stop):
        return np.linspace(start, stop, num, endpoint, retstep, dtype, axis)  # type: ignore[call-overload]
    from fxgrad.numpy.elementwise import add, multiply, subtract
    from fxgrad.numpy.shaping import moveaxis
    start, stop = (cast(v, result_type(start, stop, 1.0)) for v in (start, stop))
    bshape = broadcast_shapes("linspace", shape_of(start), shape_of(stop))
    div = (num - 1) if endpoint else num
    fractions = (np.arange(num, dtype=np.float64) / div if div > 0 else np.zeros(num))
    fractions = fractions.reshape((num,) + (1,) * len(bshape)).astype(dtype_of(start))
    delta = subtract(stop, start)
    samples = add(start, multiply(delta, fractions))
    samples = moveaxis(samples, 0, axis) if axis != 0 else samples
    samples = samples if dtype is None else cast(samples, dtype)
    return (samples, multiply(delta, 1.0 / div) if div > 0 else np.nan) if retstep else samples


def logspace(start: Any, stop: Any, num: int = 50, endpoint: bool = True, base: float = 10.0,
             dtype: Any = None, axis: int = 0) -> Any:
    """`base ** linspace(start, stop)`: samples evenly spaced on a log scale.

    >>> import fxgrad as fx, fxgrad.numpy as fnp, numpy as np
    >>> fnp.logspace(0.0, 2.0, 3)
    array([  1.,  10., 100.])
    """
    from fxgrad.numpy.elementwise import power
    samples = power(base, linspace(start, stop, num, endpoint, axis=axis))
    return samples if dtype is None else cast(samples, dtype)


def meshgrid(*xi: Any, indexing: str = "xy", sparse: bool = False,
             copy: bool = True) -> tuple[Any, ...]:   # noqa: A002
    """Coordinate arrays from 1-d coordinate vectors ('xy' swaps the first two axes).

    `copy` is ignored (results are always new arrays or immutable tracers).

    >>> import fxgrad as fx, fxgrad.numpy as fnp, numpy as np
    >>> fnp.meshgrid(np.array([1, 2, 3]), np.array([4, 5]))
    (array([[1, 2, 3],
           [1, 2, 3]]), array([[4, 4, 4],
           [5, 5, 5]]))
    """
    del copy
    if indexing not in ("xy", "ij"):
        raise FxValueError(at_user_line("meshgrid: indexing must be 'xy' or 'ij'"))
    if not any_traced(*xi):
        return tuple(np.meshgrid(*xi, indexing=indexing, sparse=sparse))  # type: ignore[call-overload]
    vecs = [reshape(x, (-1,)) if is_traced(x) else np.ravel(x) for x in xi]
    dims = list(range(len(vecs)))
    if indexing == "xy" and len(vecs) > 1:
        dims[0], dims[1] = 1, 0
    shape = [0] * len(vecs)
    for v, d in zip(vecs, dims):
        shape[d] = shape_of(v)[0]
    grids = []
    for v, d in zip(vecs, dims):
        target = tuple(shape) if not sparse else tuple(n if i == d else 1
                                                       for i, n in enumerate(shape))
        grids.append(out(broadcast_in_dim(v, target, (d,))))
    return tuple(grids)
