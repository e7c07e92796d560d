"""Reductions: reduce_sum, reduce_max, reduce_min, argmax, argmin, cumsum.

Reductions take `axes`, a sorted tuple of distinct non-negative axes (the empty tuple
is the identity) and drop those axes from the shape. `reduce_sum` and `cumsum` are
linear: the transpose of a sum broadcasts the cotangent back over the summed axes, and
the transpose of a cumulative sum is the cumulative sum running the other way. The
tangent of a max or min is the tangent averaged over every position attaining the
extremum, so ties split the derivative evenly. argmax and argmin have integer outputs
and zero tangents.
"""
from __future__ import annotations

import operator
from typing import Any, Iterable

import numpy as np

from fxgrad.core.errors import FxTypeError
from fxgrad.core.ir import ShapedArray, aval_of
from fxgrad.core.trace import Primitive, shape_rules
from fxgrad.interpreters.evaluation import impl_rules
from fxgrad.interpreters.jvp import def_jvp
from fxgrad.interpreters.transpose import def_transpose
from fxgrad.primitives.logic import def_zero_jvp, eq


def _axes_param(axes: Iterable[int]) -> tuple[int, ...]:
    """Axes as the canonical param: a sorted tuple of Python ints."""
    return tuple(sorted(operator.index(a) for a in axes))


def _kept_dims(ndim: int, axes: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(d for d in range(ndim) if d not in axes)


def _check_axes(prim: Primitive, x: ShapedArray, axes: tuple[int, ...]) -> None:
    if not all(isinstance(a, int) and 0 <= a < x.ndim for a in axes):
        raise FxTypeError(f"{prim.name}: axes {axes} are out of range for an operand of "
                          f"shape {x.shape} (valid axes are 0..{x.ndim - 1})")
    if list(axes) != sorted(set(axes)):
        raise FxTypeError(f"{prim.name}: axes {axes} must be sorted and distinct "
                          f"(operand shape {x.shape})")


def _check_not_bool(prim: Primitive, x: ShapedArray) -> None:
    if x.dtype.kind == "b":
        raise FxTypeError(f"{prim.name}: cannot sum a bool operand of shape {x.shape}; "
                          "convert it with .astype(int) first")


def _check_nonempty(prim: Primitive, x: ShapedArray, axes: tuple[int, ...]) -> None:
    if any(x.shape[a] == 0 for a in axes):
        raise FxTypeError(f"{prim.name}: cannot reduce over an axis of size 0 (operand "
                          f"shape {x.shape}, axes {axes}); the result has no identity")


def _reduced_aval(x: ShapedArray, axes: tuple[int, ...], dtype: Any = None) -> ShapedArray:
    shape = tuple(x.shape[d] for d in _kept_dims(x.ndim, axes))
    return ShapedArray(shape, x.dtype if dtype is None else dtype)


def _broadcast_back(y: Any, shape: tuple[int, ...], axes: tuple[int, ...]) -> Any:
    """`y`, reduced over `axes`, broadcast back to the operand shape."""
    if not axes:
        return y
    from fxgrad.primitives.shape import broadcast_in_dim
    return broadcast_in_dim(y, shape, _kept_dims(len(shape), axes))


reduce_sum_p = Primitive("reduce_sum")
impl_rules[reduce_sum_p] = lambda x, axes: np.sum(x, axis=axes)


def reduce_sum(x: Any, axes: Iterable[int]) -> Any:
    return reduce_sum_p.bind(x, axes=_axes_param(axes))


def _reduce_sum_shape(x: ShapedArray, axes: tuple[int, ...]) -> ShapedArray:
    _check_axes(reduce_sum_p, x, axes)
    _check_not_bool(reduce_sum_p, x)
    return _reduced_aval(x, axes)


shape_rules[reduce_sum_p] = _reduce_sum_shape


@def_jvp(reduce_sum_p)
def _reduce_sum_jvp(primals: Any, tangents: Any, axes: tuple[int, ...]) -> Any:
    return reduce_sum(primals[0], axes), reduce_sum(tangents[0], axes)


@def_transpose(reduce_sum_p)
def _reduce_sum_transpose(ct: Any, x: Any, axes: tuple[int, ...]) -> Any:
    return [_broadcast_back(ct, x.aval.shape, axes)]


def _extremum(name: str, np_fn: Any) -> Primitive:
    """reduce_max or reduce_min: primitive, numpy implementation and shape rule."""
    prim = Primitive(name)
    impl_rules[prim] = lambda x, axes: np_fn(x, axis=axes)

    def shape_rule(x: ShapedArray, axes: tuple[int, ...]) -> ShapedArray:
        _check_axes(prim, x, axes)
        _check_nonempty(prim, x, axes)
        return _reduced_aval(x, axes)

    shape_rules[prim] = shape_rule
    return prim


def _extremum_jvp(reduce_fn: Any) -> Any:
    """JVP of a max/min: the tangent averaged over the positions equal to the result."""
    def rule(primals: Any, tangents: Any, axes: tuple[int, ...]) -> Any:
        from fxgrad.primitives.arith import div, mul
        from fxgrad.primitives.shape import convert_element_type
        (x,), (x_dot,) = primals, tangents
        out = reduce_fn(x, axes)
        hits = eq(x, _broadcast_back(out, aval_of(x).shape, axes))
        mask = convert_element_type(hits, aval_of(x_dot).dtype)
        return out, div(reduce_sum(mul(x_dot, mask), axes), reduce_sum(mask, axes))
    return rule


reduce_max_p = _extremum("reduce_max", np.max)


def reduce_max(x: Any, axes: Iterable[int]) -> Any:
    return reduce_max_p.bind(x, axes=_axes_param(axes))


def_jvp(reduce_max_p)(_extremum_jvp(reduce_max))

reduce_min_p = _extremum("reduce_min", np.min)


def reduce_min(x: Any, axes: Iterable[int]) -> Any:
    return reduce_min_p.bind(x, axes=_axes_param(axes))


def_jvp(reduce_min_p)(_extremum_jvp(reduce_min))


def _check_axis(prim: Primitive, x: ShapedArray, axis: int) -> None:
    if not (isinstance(axis, int) and 0 <= axis < x.ndim):
        raise FxTypeError(f"{prim.name}: axis {axis!r} is out of range for an operand of "
                          f"shape {x.shape} (valid axes are 0..{x.ndim - 1})")


def _arg_extremum(name: str, np_fn: Any) -> Primitive:
    """argmax or argmin: primitive, numpy implementation, shape rule and zero JVP."""
    prim = Primitive(name)
    impl_rules[prim] = lambda x, axis, index_dtype: np_fn(x, axis=axis).astype(index_dtype)

    def shape_rule(x: ShapedArray, axis: int, index_dtype: np.dtype) -> ShapedArray:
        _check_axis(prim, x, axis)
        _check_nonempty(prim, x, (axis,))
        if np.dtype(index_dtype).kind not in "iu":
            raise FxTypeError(f"{prim.name}: index_dtype must be an integer dtype, got "
                              f"{np.dtype(index_dtype).name} (operand shape {x.shape})")
        return _reduced_aval(x, (axis,), index_dtype)

    shape_rules[prim] = shape_rule
    def_zero_jvp(prim)
    return prim


argmax_p = _arg_extremum("argmax", np.argmax)


def argmax(x: Any, axis: int, index_dtype: Any = np.int64) -> Any:
    return argmax_p.bind(x, axis=operator.index(axis), index_dtype=np.dtype(index_dtype))


argmin_p = _arg_extremum("argmin", np.argmin)


def argmin(x: Any, axis: int, index_dtype: Any = np.int64) -> Any:
    return argmin_p.bind(x, axis=operator.index(axis), index_dtype=np.dtype(index_dtype))


def _cumsum_impl(x: np.ndarray, axis: int, reverse: bool) -> np.ndarray:
    if not reverse:
        return np.cumsum(x, axis=axis)
    return np.flip(np.cumsum(np.flip(x, axis), axis=axis), axis)


cumsum_p = Primitive("cumsum")
impl_rules[cumsum_p] = _cumsum_impl


def cumsum(x: Any, axis: int, reverse: bool = False) -> Any:
    return cumsum_p.bind(x, axis=operator.index(axis), reverse=bool(reverse))


def _cumsum_shape(x: ShapedArray, axis: int, reverse: bool) -> ShapedArray:
    _check_axis(cumsum_p, x, axis)
    _check_not_bool(cumsum_p, x)
    return x


shape_rules[cumsum_p] = _cumsum_shape


@def_jvp(cumsum_p)
def _cumsum_jvp(primals: Any, tangents: Any, axis: int, reverse: bool) -> Any:
    return cumsum(primals[0], axis, reverse), cumsum(tangents[0], axis, reverse)


@def_transpose(cumsum_p)
def _cumsum_transpose(ct: Any, x: Any, axis: int, reverse: bool) -> Any:
    # out[i] = sum_{j<=i} x[j], so ct_x[j] = sum_{i>=j} ct[i]: the reversed cumsum.
    return [cumsum(ct, axis, not reverse)]
