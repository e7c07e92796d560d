"""Reductions with numpy's `axis`/`keepdims`/`dtype` conventions.

Sums, extrema and arg-extrema bind the reduce primitives over canonical axes, then
re-insert the reduced axes with `expand_dims` for `keepdims`. Accumulating dtypes follow
numpy (bools and small integers sum as the default integer). `mean`, `var` and `std`
are sums divided by static counts. `prod` has no primitive of its own: it multiplies
the two halves of the reduced elements, halving again until one is left, which is exact
and differentiable everywhere (zeros included). `any`/`all` are max/min over bools.
"""
from __future__ import annotations

import builtins
import functools
from typing import Any

import numpy as np

from fxgrad.core.errors import FxTypeError, at_user_line
from fxgrad.numpy._promote import (broadcast_to_shape, canonical_axes, canonical_axis, cast,
                                   dtype_of, operand, operands, out, result_type, shape_of)
from fxgrad.numpy.elementwise import isclose, subtract
from fxgrad.primitives import arith, reduce, unary
from fxgrad.primitives.indexing import static_slice
from fxgrad.primitives.shape import concatenate, expand_dims, reshape, transpose


@functools.lru_cache(maxsize=None)
def _accumulator_dtype(np_reduction: Any, dtype: np.dtype) -> np.dtype:
    """The dtype numpy's reduction gives for an input dtype (bool and small ints widen)."""
    return np_reduction(np.ones(1, dtype)).dtype


def _prepare(a: Any, axis: Any, name: str) -> tuple[Any, tuple[int, ...]]:
    a = operand(a, name)
    return a, canonical_axes(axis, len(shape_of(a)), name)


def _keep(y: Any, axes: tuple[int, ...], keepdims: bool) -> Any:
    return out(expand_dims(y, axes) if keepdims and axes else y)


def _reduce(prim_fn: Any, a: Any, axes: tuple[int, ...]) -> Any:
    """`prim_fn(a, axes)`, or `a` itself when there is nothing to reduce."""
    return prim_fn(a, axes) if axes else a


def _count(a: Any, axes: tuple[int, ...]) -> int:
    shape = shape_of(a)
    return int(np.prod([shape[i] for i in axes], dtype=np.int64))


def sum(a: Any, axis: Any = None, dtype: Any = None, keepdims: bool = False) -> Any:   # noqa: A001
    """Sum of the elements over `axis` (all axes by default).

    numpy's `out`, `initial` and `where` are not taken.

    >>> import fxgrad as fx, fxgrad.numpy as fnp, numpy as np
    >>> fx.jit(lambda x: fnp.sum(x ** 2, axis=1))(np.array([[1., 2.], [3., 4.]]))
    array([ 5., 25.])
    """
    a, axes = _prepare(a, axis, "sum")
    dtype = np.dtype(dtype) if dtype is not None else _accumulator_dtype(np.sum, dtype_of(a))
    return _keep(_reduce(reduce.reduce_sum, cast(a, dtype), axes), axes, keepdims)


def mean(a: Any, axis: Any = None, dtype: Any = None, keepdims: bool = False) -> Any:
    """Arithmetic mean over `axis`; integers average as float64.

    numpy's `out` and `where` are not taken.

    >>> import fxgrad as fx, fxgrad.numpy as fnp, numpy as np
    >>> fx.grad(fnp.mean)(np.ones(4))
    array([0.25, 0.25, 0.25, 0.25])
    """
    a, axes = _prepare(a, axis, "mean")
    dtype = np.dtype(dtype) if dtype is not None else _accumulator_dtype(np.mean, dtype_of(a))
    total = _reduce(reduce.reduce_sum, cast(a, dtype), axes)
    return _keep(arith.div(total, float(_count(a, axes))), axes, keepdims)


def var(a: Any, axis: Any = None, dtype: Any = None, ddof: int = 0,
        keepdims: bool = False) -> Any:
    """Variance `sum((a - mean)**2) / (n - ddof)` over `axis`.

    numpy's `out`, `where`, `mean` and `correction` are not taken.

    >>> import fxgrad as fx, fxgrad.numpy as fnp, numpy as np
    >>> fx.grad(fnp.var)(np.array([1., 3.]))
    array([-1.,  1.])
    """
    a, axes = _prepare(a, axis, "var")
    dtype = np.dtype(dtype) if dtype is not None else _accumulator_dtype(np.var, dtype_of(a))
    a = cast(a, dtype)
    centered = arith.sub(a, broadcast_to_shape(mean(a, axes, keepdims=True), shape_of(a)))
    squares = _reduce(reduce.reduce_sum, arith.integer_pow(centered, 2), axes)
    return _keep(arith.div(squares, float(builtins.max(_count(a, axes) - ddof, 0))),
                 axes, keepdims)


def std(a: Any, axis: Any = None, dtype: Any = None, ddof: int = 0,
        keepdims: bool = False) -> Any:
    """Standard deviation over `axis`, the square root of `var`.

    numpy's `out`, `where`, `mean` and `correction` are not taken.

    >>> import fxgrad as fx, fxgrad.numpy as fnp, numpy as np
    >>> fx.grad(fnp.std)(np.array([1., 3.]))
    array([-0.5,  0.5])
    """
    return out(unary.sqrt(var(a, axis, dtype, ddof, keepdims)))


def average(a: Any, axis: Any = None, weights: Any = None, returned: bool = False,
            keepdims: bool = False) -> Any:
    """Weighted mean `sum(a * w) / sum(w)`; `weights` may be 1-d along a single axis.

    Weights of another shape raise FxTypeError.

    >>> import fxgrad as fx, fxgrad.numpy as fnp, numpy as np
    >>> fnp.average(np.array([1., 3.]), weights=np.array([3., 1.]))
    array(1.5)
    """
    if weights is None:
        avg = mean(a, axis, keepdims=keepdims)
        count = _count(*_prepare(a, axis, "average"))
        return (avg, np.full(shape_of(avg), count, dtype_of(avg))) if returned else avg
    a, w = operands("average", a, weights)
    dtype = result_type(a, w, 1.0)
    a, w = cast(a, dtype), cast(w, dtype)
    w = _align_weights(w, shape_of(a), axis)
    axes = canonical_axes(axis, len(shape_of(a)), "average")
    total_w = _reduce(reduce.reduce_sum, w, axes)
    avg = arith.div(_reduce(reduce.reduce_sum, arith.mul(a, w), axes), total_w)
    avg, total_w = _keep(avg, axes, keepdims), _keep(total_w, axes, keepdims)
    return (avg, total_w) if returned else avg


def _align_weights(w: Any, shape: tuple[int, ...], axis: Any) -> Any:
    """Weights of the shape of `a`, or 1-d weights along `axis`, broadcast to `shape`."""
    w_shape = shape_of(w)
    if w_shape == shape:
        return w
    if len(w_shape) != 1 or not isinstance(axis, int):
        raise FxTypeError(at_user_line(
            f"average: weights of shape {w_shape} must have the shape {shape} of a, or be "
            "1-d along a single integer axis"))
    ax = canonical_axis(axis, len(shape), "average")
    if w_shape[0] != shape[ax]:
        raise FxTypeError(at_user_line(
            f"average: 1-d weights of length {w_shape[0]} do not match axis {axis} of "
            f"shape {shape}"))
    from fxgrad.primitives.shape import broadcast_in_dim
    return broadcast_in_dim(w, shape, (ax,))


# ---------------------------------------------------------------- extrema

def _extremum(prim_fn: Any, name: str, a: Any, axis: Any, keepdims: bool) -> Any:
    a, axes = _prepare(a, axis, name)
    if builtins.any(shape_of(a)[i] == 0 for i in axes):
        raise FxTypeError(at_user_line(
            f"{name}: zero-size array to reduction operation which has no identity "
            f"(shape {shape_of(a)}, axis {axis})"))
    return _keep(_reduce(prim_fn, a, axes), axes, keepdims)


def max(a: Any, axis: Any = None, keepdims: bool = False) -> Any:   # noqa: A001
    """Maximum over `axis` (ties share the derivative evenly).

    numpy's `out`, `initial` and `where` are not taken; an empty reduction raises
    FxTypeError.

    >>> import fxgrad as fx, fxgrad.numpy as fnp, numpy as np
    >>> fx.grad(fnp.max)(np.array([1., 3., 3.]))
    array([0. , 0.5, 0.5])
    """
    return _extremum(reduce.reduce_max, "max", a, axis, keepdims)


def min(a: Any, axis: Any = None, keepdims: bool = False) -> Any:   # noqa: A001
    """Minimum over `axis` (ties share the derivative evenly).

    numpy's `out`, `initial` and `where` are not taken; an empty reduction raises
    FxTypeError.

    >>> import fxgrad as fx, fxgrad.numpy as fnp, numpy as np
    >>> fx.grad(fnp.min)(np.array([2., 1., 3.]))
    array([0., 1., 0.])
    """
    return _extremum(reduce.reduce_min, "min", a, axis, keepdims)


amax, amin = max, min


def ptp(a: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """Peak to peak: `max - min` over `axis` (numpy's `out` is not taken).

    >>> import fxgrad as fx, fxgrad.numpy as fnp, numpy as np
    >>> fx.grad(fnp.ptp)(np.array([2., 7., 3.]))
    array([-1.,  1.,  0.])
    """
    return subtract(max(a, axis, keepdims), min(a, axis, keepdims))


def _arg_extremum(prim_fn: Any, name: str, a: Any, axis: Any, keepdims: bool) -> Any:
    a = operand(a, name)
    if axis is None:
        flat = reshape(a, (-1,))
        result = prim_fn(flat, 0, np.int64)
        return out(reshape(result, (1,) * len(shape_of(a))) if keepdims else result)
    ax = canonical_axis(axis, len(shape_of(a)), name)
    return _keep(prim_fn(a, ax, np.int64), (ax,), keepdims)


def argmax(a: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """Index of the (first) maximum along `axis`, of the flattened array if None.

    numpy's `out` is not taken.

    >>> import fxgrad as fx, fxgrad.numpy as fnp, numpy as np
    >>> fx.vmap(fnp.argmax)(np.array([[1., 5.], [4., 2.]]))
    array([1, 0])
    """
    return _arg_extremum(reduce.argmax, "argmax", a, axis, keepdims)


def argmin(a: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """Index of the (first) minimum along `axis`, of the flattened array if None.

    numpy's `out` is not taken.

    >>> import fxgrad as fx, fxgrad.numpy as fnp, numpy as np
    >>> fnp.argmin(np.array([3, 1, 1]))
    array(1)
    """
    return _arg_extremum(reduce.argmin, "argmin", a, axis, keepdims)


# ---------------------------------------------------------------- boolean reductions

def _bool_reduction(prim_fn: Any, empty: bool, name: str, a: Any, axis: Any,
                    keepdims: bool) -> Any:
    a, axes = _prepare(a, axis, name)
    a = cast(a, bool)
    if _count(a, axes) == 0:
        kept = [n for i, n in enumerate(shape_of(a)) if i not in axes]
        return _keep(np.full(kept, empty), axes, keepdims)
    return _keep(_reduce(prim_fn, a, axes), axes, keepdims)


def any(a: Any, axis: Any = None, keepdims: bool = False) -> Any:   # noqa: A001
    """Whether any element along `axis` is nonzero (numpy's `out`, `where` not taken).

    >>> import fxgrad as fx, fxgrad.numpy as fnp, numpy as np
    >>> fnp.any(np.array([[0, 1], [0, 0]]), axis=1)
    array([ True, False])
    """
    return _bool_reduction(reduce.reduce_max, False, "any", a, axis, keepdims)


def all(a: Any, axis: Any = None, keepdims: bool = False) -> Any:   # noqa: A001
    """Whether every element along `axis` is nonzero (numpy's `out`, `where` not taken).

    >>> import fxgrad as fx, fxgrad.numpy as fnp, numpy as np
    >>> fnp.all(np.array([[1, 1], [0, 1]]), axis=1)
    array([ True, False])
    """
    return _bool_reduction(reduce.reduce_min, True, "all", a, axis, keepdims)


def count_nonzero(a: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """The number of nonzero elements along `axis` (all axes by default).

    Always an array (numpy gives a Python int when `axis` is None).

    >>> import fxgrad as fx, fxgrad.numpy as fnp, numpy as np
    >>> fnp.count_nonzero(np.array([[0, 1], [2, 3]]), axis=0)
    array([1, 2])
    """
    a, axes = _prepare(a, axis, "count_nonzero")
    return _keep(_reduce(reduce.reduce_sum, cast(cast(a, bool), np.int64), axes), axes,
                 keepdims)


def allclose(a: Any, b: Any, rtol: float = 1e-05, atol: float = 1e-08,
             equal_nan: bool = False) -> Any:
    """Whether every element of `a` is close to `b` (see `isclose`).

    Unlike numpy's, the answer is a 0-d bool array, or a tracer when an input is traced
    (so a Python `if` on it needs concrete values).

    >>> import fxgrad as fx, fxgrad.numpy as fnp, numpy as np
    >>> fnp.allclose(np.array([1.0, 2.0]), np.array([1.0, 2.0 + 1e-9]))
    array(True)
    """
    return all(isclose(a, b, rtol, atol, equal_nan))


# ---------------------------------------------------------------- cumulative and product

def cumsum(a: Any, axis: Any = None, dtype: Any = None) -> Any:
    """Cumulative sum along `axis` (of the flattened array if None); `out` not taken.

    >>> import fxgrad as fx, fxgrad.numpy as fnp, numpy as np
    >>> fx.grad(lambda x: fnp.sum(fnp.cumsum(x)))(np.ones(3))
    array([3., 2., 1.])
    """
    a = operand(a, "cumsum")
    if axis is None:
        a, axis = reshape(a, (-1,)), 0
    ax = canonical_axis(axis, len(shape_of(a)), "cumsum")
    dtype = np.dtype(dtype) if dtype is not None else _accumulator_dtype(np.cumsum, dtype_of(a))
    return out(reduce.cumsum(cast(a, dtype), ax))


def _halving_product(x: Any) -> Any:
    """The product over axis 0, multiplying the halves of the axis until one row is left."""
    while shape_of(x)[0] > 1:
        n, rest = shape_of(x)[0], shape_of(x)[1:]
        if n % 2:
            x = concatenate([x, np.ones((1,) + rest, dtype_of(x))], 0)
            n += 1
        zeros, full = (0,) * len(rest), tuple(rest)
        x = arith.mul(static_slice(x, (0,) + zeros, (n // 2,) + full),
                      static_slice(x, (n // 2,) + zeros, (n,) + full))
    return reshape(x, shape_of(x)[1:])


def prod(a: Any, axis: Any = None, dtype: Any = None, keepdims: bool = False) -> Any:
    """Product over `axis`, by repeated halving (exact; derivatives correct at zeros).

    numpy's `out`, `initial` and `where` are not taken.

    >>> import fxgrad as fx, fxgrad.numpy as fnp, numpy as np
    >>> fx.grad(fnp.prod)(np.array([2., 0., 3.]))
    array([0., 6., 0.])
    """
    a, axes = _prepare(a, axis, "prod")
    dtype = np.dtype(dtype) if dtype is not None else _accumulator_dtype(np.prod, dtype_of(a))
    a = cast(a, dtype)
    shape = shape_of(a)
    kept = tuple(i for i in range(len(shape)) if i not in axes)
    if _count(a, axes) == 0:
        return _keep(np.ones([shape[i] for i in kept], dtype), axes, keepdims)
    moved = transpose(a, axes + kept) if axes + kept != tuple(range(len(shape))) else a
    rows = reshape(moved, (_count(a, axes),) + tuple(shape[i] for i in kept))
    return _keep(_halving_product(rows), axes, keepdims)
