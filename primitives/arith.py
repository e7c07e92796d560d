"""Arithmetic: add, sub, mul, div, neg, max, min, pow, integer_pow.

Binary primitives take operands of one dtype with equal shapes, or a scalar operand
that broadcasts (see `common`); rules un-broadcast cotangents of scalar operands.
Python scalars are coerced to the other operand's dtype by the wrapper functions.
Each primitive's numba lowering is a scalar expression with numpy's semantics: float
division goes through `np.divide` (numba's `/` raises on zero), integer division floors.
Under vmap each is batched by `batching.def_elementwise_batch` (the batch axis stays put).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from fxgrad.core.errors import FxTypeError
from fxgrad.core.ir import ShapedArray, aval_of
from fxgrad.core.trace import Primitive, shape_rules
from fxgrad.interpreters.evaluation import def_impl, impl_rules
from fxgrad.interpreters.jvp import Zero, def_jvp, is_zero
from fxgrad.interpreters.taylor import (add_terms, cauchy, def_jet, full, jvp_jet, linear_jet,
                                        mul_terms, next_coefficient, scale, series_product,
                                        series_reciprocal, tail_sum, zero_series)
from fxgrad.interpreters.transpose import def_transpose, is_undefined
from fxgrad.jit.lowering import def_elementwise_lowering
from fxgrad.primitives.common import check_float, coerce, elementwise, unbroadcast
from fxgrad.interpreters.batching import def_elementwise_batch
from fxgrad.primitives.logic import eq, gt, select


def _to_shape(t: Any, shape: tuple[int, ...]) -> Any:
    """A tangent of a scalar operand, broadcast to the output shape."""
    if aval_of(t).shape == shape:
        return t
    from fxgrad.primitives.shape import broadcast_in_dim
    return broadcast_in_dim(t, shape, ())


def _shape(x: Any) -> tuple[int, ...]:
    return aval_of(x).shape


_NUMBA_KEEPS = (np.dtype(np.float64), np.dtype(np.int64))


def typed(ctx: Any, expr: str) -> str:
    """`expr` cast to the output dtype, except where numba's arithmetic already keeps it
    (float64, int64); numba widens small integers and bools to int64."""
    return expr if ctx.out_aval.dtype in _NUMBA_KEEPS else ctx.cast(expr)


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


@def_elementwise_lowering(add_p)
def _add_lowering(ctx: Any, x: str, y: str) -> str:
    return typed(ctx, f"{x} + {y}")


def_elementwise_batch(add_p)

@def_jet(add_p)
def _add_jet(primals: Any, series: Any) -> Any:
    return add(*primals), [add_terms(a, b) for a, b in zip(*series)]


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


@def_elementwise_lowering(sub_p)
def _sub_lowering(ctx: Any, x: str, y: str) -> str:
    return typed(ctx, f"{x} - {y}")


def_elementwise_batch(sub_p)

@def_jet(sub_p)
def _sub_jet(primals: Any, series: Any) -> Any:
    return sub(*primals), [add_terms(a, scale(b, -1.0)) for a, b in zip(*series)]


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


@def_elementwise_lowering(mul_p)
def _mul_lowering(ctx: Any, x: str, y: str) -> str:
    return typed(ctx, f"{x} * {y}")


def_elementwise_batch(mul_p)

@def_jet(mul_p)
def _mul_jet(primals: Any, series: Any) -> Any:
    (x, y), (xs, ys) = primals, series
    out = mul(x, y)
    aval = aval_of(out)
    a, b = full(x, xs), full(y, ys)
    return out, [cauchy(a, b, k, aval, 0) for k in range(1, len(xs) + 1)]


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


@def_elementwise_lowering(div_p)
def _div_lowering(ctx: Any, x: str, y: str) -> str:
    dtype = ctx.out_aval.dtype
    if dtype.kind not in "iu":
        return typed(ctx, f"np.divide({x}, {y})")
    if dtype.kind == "u":
        return typed(ctx, f"np.floor_divide({x}, {y})")
    # numpy: x // 0 == 0 and MIN // -1 wraps to MIN (numba's floor_divide gives 0 there)
    zero = ctx.const(0, dtype)
    return typed(ctx, f"{zero} if {y} == 0 else (-{x} if {y} == -1 "
                      f"else np.floor_divide({x}, {y}))")


def_elementwise_batch(div_p)

@def_jet(div_p)
def _div_jet(primals: Any, series: Any) -> Any:
    # z y = x: z_k = (x_k - sum_{j=1}^{k} y_j z_{k-j}) / y_0
    (x, y), (xs, ys) = primals, series
    z = [div(x, y)]
    aval, b = aval_of(z[0]), full(y, ys)
    for k in range(1, len(xs) + 1):
        z.append(next_coefficient(xs[k - 1], tail_sum(b, z, k, aval), y, aval))
    return z[0], z[1:]


neg_p = elementwise("neg", np.negative, 1, floats_only=False)


def neg(x: Any) -> Any:
    return neg_p.bind(x)


@def_jvp(neg_p)
def _neg_jvp(primals: Any, tangents: Any) -> Any:
    return neg(primals[0]), neg(tangents[0])


@def_transpose(neg_p)
def _neg_transpose(ct: Any, x: Any) -> Any:
    return [neg(ct)]


@def_elementwise_lowering(neg_p)
def _neg_lowering(ctx: Any, x: str) -> str:
    return typed(ctx, f"-{x}")


def_elementwise_batch(neg_p)
linear_jet(neg_p)


def _max_weight(x: Any, y: Any, shape: tuple[int, ...], dtype: Any) -> Any:
    """1 where x wins a max, 0 where y wins, 0.5 at ties (both get half the tangent)."""
    ones, halves, zeros = (np.full(shape, v, dtype) for v in (1.0, 0.5, 0.0))
    return select(gt(x, y), ones, select(eq(x, y), halves, zeros))


def _weighted_jvp(x_dot: Any, y_dot: Any, x_weight: Any) -> Any:
    """x_dot * x_weight + y_dot * (1 - x_weight), skipping Zero tangents."""
    t = Zero(aval_of(x_weight))
    if not is_zero(x_dot):
        t = mul(x_dot, x_weight)
    if not is_zero(y_dot):
        dy = mul(y_dot, sub(1.0, x_weight))
        t = dy if is_zero(t) else add(t, dy)
    return t


max_p = elementwise("max", np.maximum, 2, floats_only=False)


def max(x: Any, y: Any) -> Any:   # noqa: A001  (the catalogue name; shadows the builtin here)
    """Elementwise maximum (NaN-propagating, as np.maximum)."""
    return max_p.bind(*coerce(x, y))


@def_jvp(max_p)
def _max_jvp(primals: Any, tangents: Any) -> Any:
    (x, y), (x_dot, y_dot) = primals, tangents
    out = max(x, y)
    weight = _max_weight(x, y, _shape(out), aval_of(out).dtype)
    return out, _weighted_jvp(x_dot, y_dot, weight)


def _pick(ctx: Any, x: str, y: str, op: str) -> str:
    """x if `x op y` (or x is NaN) else y: np.maximum/np.minimum, NaN-propagating, ties to y."""
    x_is_nan = f" or {x} != {x}" if ctx.out_aval.dtype.kind in "fc" else ""
    return f"{x} if {x} {op} {y}{x_is_nan} else {y}"


@def_elementwise_lowering(max_p)
def _max_lowering(ctx: Any, x: str, y: str) -> str:
    return _pick(ctx, x, y, ">")


def_elementwise_batch(max_p)
linear_jet(max_p)


min_p = elementwise("min", np.minimum, 2, floats_only=False)


def min(x: Any, y: Any) -> Any:   # noqa: A001  (the catalogue name; shadows the builtin here)
    """Elementwise minimum (NaN-propagating, as np.minimum)."""
    return min_p.bind(*coerce(x, y))


@def_jvp(min_p)
def _min_jvp(primals: Any, tangents: Any) -> Any:
    (x, y), (x_dot, y_dot) = primals, tangents
    out = min(x, y)
    weight = _max_weight(y, x, _shape(out), aval_of(out).dtype)   # x wins a min where y > x
    return out, _weighted_jvp(x_dot, y_dot, weight)


@def_elementwise_lowering(min_p)
def _min_lowering(ctx: Any, x: str, y: str) -> str:
    return _pick(ctx, x, y, "<")


def_elementwise_batch(min_p)
linear_jet(min_p)


pow_p = elementwise("pow", np.power, 2, floats_only=True)


def pow(x: Any, y: Any) -> Any:   # noqa: A001  (the catalogue name; shadows the builtin here)
    """x ** y elementwise, for floating-point x and y."""
    return pow_p.bind(*coerce(x, y))


def _log_or_zero_at_zero(x: Any) -> Any:
    """log(x), with x == 0 replaced by 1 so the y-derivative at x == 0 is 0, not NaN."""
    from fxgrad.primitives.unary import log
    return log(select(eq(x, 0.0), np.ones(_shape(x), aval_of(x).dtype), x))


@def_jvp(pow_p)
def _pow_jvp(primals: Any, tangents: Any) -> Any:
    (x, y), (x_dot, y_dot) = primals, tangents
    out = pow(x, y)
    t = Zero(aval_of(out))
    if not is_zero(x_dot):   # d(x^y)/dx = y x^(y-1)
        t = mul(mul(y, pow(x, sub(y, 1.0))), x_dot)
    if not is_zero(y_dot):   # d(x^y)/dy = log(x) x^y
        dy = mul(mul(_log_or_zero_at_zero(x), out), y_dot)
        t = dy if is_zero(t) else add(t, dy)
    return out, _to_shape(t, _shape(out))


@def_elementwise_lowering(pow_p)
def _pow_lowering(ctx: Any, x: str, y: str) -> str:
    return typed(ctx, f"np.power({x}, {y})")   # C pow semantics; `**` raises on 0 ** -1


def_elementwise_batch(pow_p)


@def_jet(pow_p)
def _pow_jet(primals: Any, series: Any) -> Any:
    # constant exponent p: x z' = p z x', so k x_0 z_k = sum_{j=1}^{k} (p j - k + j) x_j z_{k-j}
    (x, p), (xs, ps) = primals, series
    if not all(is_zero(t) for t in ps):
        return jvp_jet(pow_p, primals, series)
    z = [pow(x, p)]
    aval, a = aval_of(z[0]), full(x, xs)
    for k in range(1, len(xs) + 1):
        terms = [mul_terms(mul_terms(a[j], z[k - j], aval), add(mul(p, float(j)), float(j - k)),
                           aval) for j in range(1, k + 1)]
        z.append(next_coefficient(add_terms(*terms, Zero(aval)), Zero(aval), mul(x, float(k)), aval))
    return z[0], z[1:]


integer_pow_p = Primitive("integer_pow")


@def_impl(integer_pow_p)
def _integer_pow_impl(x: np.ndarray, *, y: int) -> np.ndarray:
    if y == 0:
        return np.ones(x.shape, x.dtype)
    return np.power(x, y)


def _integer_pow_shape(x: ShapedArray, *, y: int) -> ShapedArray:
    if not isinstance(y, int) or isinstance(y, bool):
        raise FxTypeError(f"integer_pow: the exponent must be a Python int, got {y!r}; "
                          "use pow for non-integer exponents")
    if y < 0:
        check_float(integer_pow_p, x)
    return x


shape_rules[integer_pow_p] = _integer_pow_shape


def integer_pow(x: Any, y: int) -> Any:
    """x ** y for a static integer exponent y (negative y needs floating-point x)."""
    return integer_pow_p.bind(x, y=int(y) if isinstance(y, np.integer) else y)


@def_jvp(integer_pow_p)
def _integer_pow_jvp(primals: Any, tangents: Any, *, y: int) -> Any:
    (x,), (x_dot,) = primals, tangents
    out = integer_pow(x, y)
    if y == 0:
        return out, Zero(aval_of(out))
    if y == 1:
        return out, x_dot
    return out, mul(mul(integer_pow(x, y - 1), float(y)), x_dot)


@def_elementwise_lowering(integer_pow_p)
def _integer_pow_lowering(ctx: Any, x: str, *, y: int) -> str:
    # exponentiation by squaring (multiplications only), as numba's `x ** n`;
    # 1 / x^|y| goes through np.divide, as numba's own inversion raises at x == 0.
    # float32 is multiplied out in float64 and rounded once (y roundings would cost y ulps).
    dtype = ctx.out_aval.dtype
    if y == 0:
        return ctx.const(1, dtype)
    if y == 1:
        return x
    work = np.dtype(np.float64) if dtype.kind == "f" else dtype
    power = _power_by_squaring(ctx.cast(x, work) if work != dtype else x, abs(y))
    return typed(ctx, power if y > 0 else f"np.divide({ctx.const(1, work)}, {power})")


def _power_by_squaring(x: str, n: int) -> str:
    """`x ** n` as numba's own int_power multiplies it out (the same roundings), written
    as products for n <= 8: numba compiles a helper for `**` the first time per process."""
    if n > 8:
        return f"{x} ** {n}"
    result, square = None, x
    while n:
        if n & 1:
            result = square if result is None else f"({result} * {square})"
        n >>= 1
        if n:
            square = f"({square} * {square})"
    assert result is not None
    return result


def_elementwise_batch(integer_pow_p)

@def_jet(integer_pow_p)
def _integer_pow_jet(primals: Any, series: Any, y: int) -> Any:
    """x^n by repeated squaring of series (exact at x = 0, unlike the pow recurrence)."""
    (x,), (xs,) = primals, series
    out = integer_pow(x, y)
    aval, order = aval_of(out), len(xs)
    if y == 0:
        return out, zero_series(out, order)
    result, base, n = None, full(x, xs), abs(y)
    while n:
        if n & 1:
            result = base if result is None else series_product(result, base, order, aval)
        n >>= 1
        if n:
            base = series_product(base, base, order, aval)
    if y < 0:
        result = series_reciprocal(result, order, aval)
    return out, result[1:]
