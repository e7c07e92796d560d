"""Arithmetic: add, sub, mul, div, neg, max, min, pow, integer_pow.

Binary primitives take operands of one dtype with equal shapes, or a scalar operand
that broadcasts (see `common`); rules un-broadcast cotangents of scalar operands.
Python scalars are coerced to the other operand's dtype by the wrapper functions.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from fxgrad.core.ir import ShapedArray, aval_of
from fxgrad.core.trace import Primitive, shape_rules
from fxgrad.interpreters.evaluation import impl_rules
from fxgrad.interpreters.jvp import Zero, def_jvp, is_zero
from fxgrad.interpreters.transpose import def_transpose, is_undefined
from fxgrad.primitives.common import (binary_shape, check_float, coerce, elementwise,
                                      unbroadcast)


def _to_shape(t: Any, shape: tuple[int, ...]) -> Any:
    """A tangent of a scalar operand, broadcast to the output shape."""
    if aval_of(t).shape == shape:
        return t
    from fxgrad.primitives.shape import broadcast_in_dim
    return broadcast_in_dim(t, shape, ())


def _shape(x: Any) -> tuple[int, ...]:
    return aval_of(x).shape


add_p = elementwise("add", np.add, 2, floats_only=False)


def add(x: Any, y: Any) -> Any:
    return add_p.bind(*coerce(x, y))


@def_jvp(add_p)
def _add_jvp(primals: Any, tangents: Any) -> Any:
    (x, y), (x_dot, y_dot) = primals, tangents
    out = add(x, y)
    if is_zero(x_dot):
        return out, _to_shape(y_dot, _shape(out))
    if is_zero(y_dot):
        return out, _to_shape(x_dot, _shape(out))
    return out, add(x_dot, y_dot)


@def_transpose(add_p)
def _add_transpose(ct: Any, x: Any, y: Any) -> Any:
    return [unbroadcast(ct, x.aval) if is_undefined(x) else None,
            unbroadcast(ct, y.aval) if is_undefined(y) else None]


sub_p = elementwise("sub", np.subtract, 2, floats_only=False)


def sub(x: Any, y: Any) -> Any:
    return sub_p.bind(*coerce(x, y))


@def_jvp(sub_p)
def _sub_jvp(primals: Any, tangents: Any) -> Any:
    (x, y), (x_dot, y_dot) = primals, tangents
    out = sub(x, y)
    if is_zero(x_dot):
        return out, _to_shape(neg(y_dot), _shape(out))
    if is_zero(y_dot):
        return out, _to_shape(x_dot, _shape(out))
    return out, sub(x_dot, y_dot)


@def_transpose(sub_p)
def _sub_transpose(ct: Any, x: Any, y: Any) -> Any:
    return [unbroadcast(ct, x.aval) if is_undefined(x) else None,
            unbroadcast(neg(ct), y.aval) if is_undefined(y) else None]


mul_p = elementwise("mul", np.multiply, 2, floats_only=False)


def mul(x: Any, y: Any) -> Any:
    return mul_p.bind(*coerce(x, y))


@def_jvp(mul_p)
def _mul_jvp(primals: Any, tangents: Any) -> Any:
    (x, y), (x_dot, y_dot) = primals, tangents
    out = mul(x, y)
    terms = []
    if not is_zero(x_dot):
        terms.append(mul(x_dot, y))
    if not is_zero(y_dot):
        terms.append(mul(x, y_dot))
    t = terms[0] if len(terms) == 1 else add(*terms)
    return out, _to_shape(t, _shape(out))


@def_transpose(mul_p)
def _mul_transpose(ct: Any, x: Any, y: Any) -> Any:
    if is_undefined(x) and is_undefined(y):
        raise TypeError("mul is not linear in both operands at once")
    if is_undefined(x):
        return [unbroadcast(mul(ct, y), x.aval), None]
    return [None, unbroadcast(mul(x, ct), y.aval)]


div_p = elementwise("div", np.true_divide, 2, floats_only=False)
impl_rules[div_p] = lambda x, y: (np.floor_divide(x, y) if x.dtype.kind in "iub"
                                  else np.true_divide(x, y))


def div(x: Any, y: Any) -> Any:
    return div_p.bind(*coerce(x, y))


@def_jvp(div_p)
def _div_jvp(primals: Any, tangents: Any) -> Any:
    (x, y), (x_dot, y_dot) = primals, tangents
    out = div(x, y)
    t = Zero(aval_of(out))
    if not is_zero(x_dot):
        t = _to_shape(div(x_dot, y), _shape(out))
    if not is_zero(y_dot):   # d(x/y)/dy = -(x/y)/y
        dy = neg(mul(div(out, y), y_dot))
        t = dy if is_zero(t) else add(t, dy)
    return out, _to_shape(t, _shape(out))


@def_transpose(div_p)
def _div_transpose(ct: Any, x: Any, y: Any) -> Any:
    if is_undefined(y):
        raise TypeError("div is not linear in its denominator")
    return [unbroadcast(div(ct, y), x.aval), None]


neg_p = elementwise("neg", np.negative, 1, floats_only=False)


def neg(x: Any) -> Any:
    return neg_p.bind(x)


@def_jvp(neg_p)
def _neg_jvp(primals: Any, tangents: Any) -> Any:
    return neg(primals[0]), neg(tangents[0])


@def_transpose(neg_p)
def _neg_transpose(ct: Any, x: Any) -> Any:
    return [neg(ct)]
