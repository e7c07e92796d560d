"""Elementwise numpy functions (ufuncs) over fxgrad primitives.

Each function casts its operands to the dtypes numpy's ufunc of the same name would
compute in (`apply_ufunc`), broadcasts them and binds primitives; on concrete inputs
the result is a numpy array, on tracers a tracer. Functions without a primitive of
their own are exact compositions: `ceil(x) = -floor(-x)`, `sinh` from `expm1` (no
cancellation near 0), `logaddexp` shifted by the maximum. `x ** n` with an integer
scalar `n` binds `integer_pow`; any other exponent binds `pow` (`x ** 0.5` stays a
`pow`, it does not become `sqrt`).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from fxgrad.core.errors import FxTypeError, FxValueError, at_user_line
from fxgrad.numpy._promote import (apply_ufunc, broadcast_operands, cast, dtype_of, operand,
                                   operands, out, result_type, shape_of, ufunc_dtypes)
from fxgrad.primitives import arith, logic, unary
from fxgrad.primitives.shape import convert_element_type

_LN2 = math.log(2.0)


# ---------------------------------------------------------------- arithmetic

def add(x1: Any, x2: Any) -> Any:
    """Elementwise `x1 + x2`."""
    return apply_ufunc(np.add, arith.add, x1, x2)


def subtract(x1: Any, x2: Any) -> Any:
    """Elementwise `x1 - x2`."""
    return apply_ufunc(np.subtract, arith.sub, x1, x2)


def multiply(x1: Any, x2: Any) -> Any:
    """Elementwise `x1 * x2`."""
    return apply_ufunc(np.multiply, arith.mul, x1, x2)


def divide(x1: Any, x2: Any) -> Any:
    """Elementwise true division `x1 / x2` (integers divide as float64)."""
    return apply_ufunc(np.true_divide, arith.div, x1, x2)


true_divide = divide


def _floor_div(x: Any, y: Any) -> Any:
    q = arith.div(x, y)   # integer div floors already
    return q if dtype_of(q).kind in "iub" else unary.floor(q)


def floor_divide(x1: Any, x2: Any) -> Any:
    """Elementwise `x1 // x2`, rounding toward minus infinity."""
    return apply_ufunc(np.floor_divide, _floor_div, x1, x2)


def _remainder(x: Any, y: Any) -> Any:
    return arith.sub(x, arith.mul(_floor_div(x, y), y))


def remainder(x1: Any, x2: Any) -> Any:
    """Elementwise `x1 % x2` with the sign of `x2`: `x1 - floor(x1 / x2) * x2`."""
    return apply_ufunc(np.remainder, _remainder, x1, x2)


mod = remainder


def negative(x: Any) -> Any:
    return apply_ufunc(np.negative, arith.neg, x)


def positive(x: Any) -> Any:
    return apply_ufunc(np.positive, lambda v: v, x)


def maximum(x1: Any, x2: Any) -> Any:
    """Elementwise maximum (ties split the derivative evenly)."""
    return apply_ufunc(np.maximum, arith.max, x1, x2)


def minimum(x1: Any, x2: Any) -> Any:
    """Elementwise minimum (ties split the derivative evenly)."""
    return apply_ufunc(np.minimum, arith.min, x1, x2)


def _is_static_int(x: Any) -> bool:
    """A Python or numpy integer scalar (not a bool, not an array)."""
    return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))


def power(x1: Any, x2: Any) -> Any:
    """Elementwise `x1 ** x2`: `integer_pow` for an integer scalar exponent, else `pow`."""
    if not _is_static_int(x2):
        return apply_ufunc(np.power, arith.pow, x1, x2)
    x1 = operand(x1, "power")
    (dtype, _), _ = ufunc_dtypes(np.power, x1, x2)
    if dtype.kind in "iu" and x2 < 0:
        raise FxValueError(at_user_line(
            "power: integers to negative integer powers are not allowed (as in numpy); "
            "use a float base"))
    return out(arith.integer_pow(cast(x1, dtype), int(x2)))


def float_power(x1: Any, x2: Any) -> Any:
    """`x1 ** x2` computed in float64 (or complex128), as numpy's float_power."""
    return apply_ufunc(np.float_power, arith.pow, x1, x2)


def square(x: Any) -> Any:
    return apply_ufunc(np.square, lambda v: arith.integer_pow(v, 2), x)


def sqrt(x: Any) -> Any:
    return apply_ufunc(np.sqrt, unary.sqrt, x)


def cbrt(x: Any) -> Any:
    """Real cube root, `sign(x) * |x| ** (1/3)` (agrees with numpy to rounding)."""
    return apply_ufunc(np.cbrt, lambda v: arith.mul(unary.sign(v),
                                                   arith.pow(unary.abs(v), 1.0 / 3.0)), x)


def _reciprocal(x: Any) -> Any:
    if dtype_of(x).kind in "fc":
        return arith.div(1, x)
    # C integer division truncates: 1/x is 0 unless |x| == 1.
    return arith.mul(unary.sign(x), arith.div(1, unary.abs(x)))


def reciprocal(x: Any) -> Any:
    return apply_ufunc(np.reciprocal, _reciprocal, x)


# ---------------------------------------------------------------- exponentials and logs

def exp(x: Any) -> Any:
    return apply_ufunc(np.exp, unary.exp, x)


def exp2(x: Any) -> Any:
    """`2 ** x` as `exp(x * ln 2)`."""
    return apply_ufunc(np.exp2, lambda v: unary.exp(arith.mul(v, _LN2)), x)


def expm1(x: Any) -> Any:
    return apply_ufunc(np.expm1, unary.expm1, x)


def log(x: Any) -> Any:
    return apply_ufunc(np.log, unary.log, x)


def log2(x: Any) -> Any:
    return apply_ufunc(np.log2, lambda v: arith.mul(unary.log(v), 1.0 / _LN2), x)


def log10(x: Any) -> Any:
    return apply_ufunc(np.log10, lambda v: arith.mul(unary.log(v), 1.0 / math.log(10.0)), x)


def log1p(x: Any) -> Any:
    return apply_ufunc(np.log1p, unary.log1p, x)


def _logaddexp(x: Any, y: Any) -> Any:
    # log(e^x + e^y) = max + log1p(e^-|x - y|); equal infinities give nan there, x + y is right.
    with np.errstate(invalid="ignore"):
        delta = arith.sub(x, y)
    shifted = arith.add(arith.max(x, y), unary.log1p(unary.exp(arith.neg(unary.abs(delta)))))
    return _select(logic.ne(delta, delta), arith.add(x, y), shifted)


def logaddexp(x1: Any, x2: Any) -> Any:
    """`log(exp(x1) + exp(x2))` without overflow."""
    return apply_ufunc(np.logaddexp, _logaddexp, x1, x2)


def logaddexp2(x1: Any, x2: Any) -> Any:
    """`log2(2**x1 + 2**x2)` without overflow."""
    return apply_ufunc(np.logaddexp2, lambda x, y: arith.mul(
        _logaddexp(arith.mul(x, _LN2), arith.mul(y, _LN2)), 1.0 / _LN2), x1, x2)


# ---------------------------------------------------------------- trigonometric and hyperbolic

def sin(x: Any) -> Any:
    return apply_ufunc(np.sin, unary.sin, x)


def cos(x: Any) -> Any:
    return apply_ufunc(np.cos, unary.cos, x)


def tan(x: Any) -> Any:
    return apply_ufunc(np.tan, unary.tan, x)


def _sinh(x: Any) -> Any:
    # (e^x - e^-x) / 2 = (expm1(x) - expm1(-x)) / 2, exact near 0.
    return arith.mul(arith.sub(unary.expm1(x), unary.expm1(arith.neg(x))), 0.5)


def sinh(x: Any) -> Any:
    return apply_ufunc(np.sinh, _sinh, x)


def cosh(x: Any) -> Any:
    return apply_ufunc(np.cosh, lambda v: arith.mul(
        arith.add(unary.exp(v), unary.exp(arith.neg(v))), 0.5), x)


def tanh(x: Any) -> Any:
    return apply_ufunc(np.tanh, unary.tanh, x)


def deg2rad(x: Any) -> Any:
    return apply_ufunc(np.deg2rad, lambda v: arith.mul(v, math.pi / 180.0), x)


def rad2deg(x: Any) -> Any:
    return apply_ufunc(np.rad2deg, lambda v: arith.mul(v, 180.0 / math.pi), x)


radians, degrees = deg2rad, rad2deg


# ---------------------------------------------------------------- sign, rounding

def absolute(x: Any) -> Any:
    return apply_ufunc(np.absolute, unary.abs, x)


abs = absolute   # noqa: A001  (numpy's name)


def fabs(x: Any) -> Any:
    return apply_ufunc(np.fabs, unary.abs, x)


def sign(x: Any) -> Any:
    return apply_ufunc(np.sign, unary.sign, x)


def _integral_or(fn: Any) -> Any:
    """A rounding function that is the identity on integers."""
    return lambda v: v if dtype_of(v).kind in "iub" else fn(v)


def floor(x: Any) -> Any:
    return apply_ufunc(np.floor, _integral_or(unary.floor), x)


def ceil(x: Any) -> Any:
    """`ceil(x) = -floor(-x)`."""
    return apply_ufunc(np.ceil, _integral_or(lambda v: arith.neg(unary.floor(arith.neg(v)))), x)


def trunc(x: Any) -> Any:
    """Round toward zero: `sign(x) * floor(|x|)`."""
    return apply_ufunc(np.trunc, _integral_or(
        lambda v: arith.mul(unary.sign(v), unary.floor(unary.abs(v)))), x)


fix = trunc


def rint(x: Any) -> Any:
    """Round to the nearest integer, halves to even."""
    return apply_ufunc(np.rint, _integral_or(unary.round), x)


def round(a: Any, decimals: int = 0) -> Any:   # noqa: A001  (numpy's name)
    """Round to `decimals` decimal places, halves to even, by numpy's own scaling."""
    a = operand(a, "round")
    dtype = dtype_of(a)
    if dtype.kind in "iub" and decimals >= 0:
        return out(a)
    x = cast(a, np.float64) if dtype.kind in "iub" else a
    if decimals > 0:
        y = arith.div(unary.round(arith.mul(x, 10.0 ** decimals)), 10.0 ** decimals)
    elif decimals < 0:
        y = arith.mul(unary.round(arith.div(x, 10.0 ** -decimals)), 10.0 ** -decimals)
    else:
        y = unary.round(x)
    return out(cast(y, dtype))


around = round


# ---------------------------------------------------------------- comparisons and logic

def equal(x1: Any, x2: Any) -> Any:
    return apply_ufunc(np.equal, logic.eq, x1, x2)


def not_equal(x1: Any, x2: Any) -> Any:
    return apply_ufunc(np.not_equal, logic.ne, x1, x2)


def less(x1: Any, x2: Any) -> Any:
    return apply_ufunc(np.less, logic.lt, x1, x2)


def less_equal(x1: Any, x2: Any) -> Any:
    return apply_ufunc(np.less_equal, logic.le, x1, x2)


def greater(x1: Any, x2: Any) -> Any:
    return apply_ufunc(np.greater, logic.gt, x1, x2)


def greater_equal(x1: Any, x2: Any) -> Any:
    return apply_ufunc(np.greater_equal, logic.ge, x1, x2)


def _on_bools(fn: Any) -> Any:
    """A logical primitive on operands converted to bool (nonzero is true)."""
    return lambda *vs: fn(*(cast(v, bool) for v in vs))


def logical_and(x1: Any, x2: Any) -> Any:
    return apply_ufunc(np.logical_and, _on_bools(logic.logical_and), x1, x2)


def logical_or(x1: Any, x2: Any) -> Any:
    return apply_ufunc(np.logical_or, _on_bools(logic.logical_or), x1, x2)


def logical_xor(x1: Any, x2: Any) -> Any:
    return apply_ufunc(np.logical_xor, _on_bools(logic.ne), x1, x2)


def logical_not(x: Any) -> Any:
    return apply_ufunc(np.logical_not, _on_bools(logic.logical_not), x)


def isnan(x: Any) -> Any:
    """NaN is the only value unequal to itself."""
    return apply_ufunc(np.isnan, _if_inexact(lambda v: logic.ne(v, v), False), x)


def isfinite(x: Any) -> Any:
    """`|x| < inf` fails exactly for infinities and NaN."""
    return apply_ufunc(np.isfinite, _if_inexact(lambda v: logic.lt(unary.abs(v), np.inf), True), x)


def isinf(x: Any) -> Any:
    return apply_ufunc(np.isinf, _if_inexact(
        lambda v: logic.eq(unary.abs(v), np.inf), False), x)


def _if_inexact(fn: Any, integer_answer: bool) -> Any:
    """A float predicate; integers and bools are never NaN or infinite."""
    return lambda v: (fn(v) if dtype_of(v).kind in "fc"
                      else np.full(shape_of(v), integer_answer))


def isclose(a: Any, b: Any, rtol: float = 1e-05, atol: float = 1e-08,
            equal_nan: bool = False) -> Any:
    """numpy's `|a - b| <= atol + rtol * |b|`, with equal infinities close."""
    a, b = operands("isclose", a, b)
    dtype = result_type(a, b, 1.0)
    a, b = broadcast_operands("isclose", cast(a, dtype), cast(b, dtype))
    with np.errstate(invalid="ignore"):   # inf - inf is nan, and not close: as intended
        distance = unary.abs(arith.sub(a, b))
    close = logic.le(distance, arith.add(atol, arith.mul(rtol, unary.abs(b))))
    close = logic.logical_or(close, logic.eq(a, b))
    if equal_nan:
        close = logic.logical_or(close, logic.logical_and(logic.ne(a, a), logic.ne(b, b)))
    return out(close)


# ---------------------------------------------------------------- selection

def _select(pred: Any, on_true: Any, on_false: Any) -> Any:
    pred, on_true, on_false = broadcast_operands("where", pred, on_true, on_false,
                                                 keep_scalars=False)
    return logic.select(pred, on_true, on_false)


def where(condition: Any, x: Any = None, y: Any = None) -> Any:
    """Elementwise `x if condition else y`; with only a condition, its nonzero indices."""
    if x is None and y is None:
        return _nonzero(condition)
    if x is None or y is None:
        raise FxTypeError(at_user_line("where: either both or neither of x and y must be given"))
    condition, x, y = operands("where", condition, x, y)
    x, y = (cast(v, result_type(x, y)) for v in (x, y))
    return out(_select(cast(condition, bool), x, y))


def _nonzero(condition: Any) -> tuple[np.ndarray, ...]:
    from fxgrad.core.trace import Tracer
    if isinstance(condition, Tracer):
        raise FxTypeError(at_user_line(
            "where(condition) with a traced condition has a data-dependent shape; use "
            "the three-argument fnp.where(condition, x, y) instead"))
    return np.nonzero(condition)


def clip(a: Any, a_min: Any = None, a_max: Any = None, *, min: Any = None,   # noqa: A002
         max: Any = None) -> Any:   # noqa: A002  (numpy's keyword names)
    """`minimum(maximum(a, a_min), a_max)`; either bound may be None."""
    a_min, a_max = (a_min if a_min is not None else min), (a_max if a_max is not None else max)
    if a_min is None and a_max is None:
        raise FxValueError(at_user_line("clip: at least one of a_min and a_max must be given"))
    result = a if a_min is None else maximum(a, a_min)
    return out(result if a_max is None else minimum(result, a_max))


def astype(x: Any, dtype: Any) -> Any:
    """`x` converted to `dtype` (`convert_element_type`)."""
    x = operand(x, "astype")
    return out(convert_element_type(x, np.dtype(dtype)))
