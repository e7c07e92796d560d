"""Elementwise numpy functions (ufuncs) over fxgrad primitives.

Each function casts its operands to the dtypes numpy's ufunc of the same name would
compute in (`apply_ufunc`), broadcasts them and binds primitives; on concrete inputs
the result is a numpy array, on tracers a tracer. Functions without a primitive of
their own are exact compositions: `ceil(x) = -floor(-x)`, `sinh` from `expm1` (no
cancellation near 0), `logaddexp` shifted by the maximum. `x ** n` with an integer
scalar `n` binds `integer_pow`; any other exponent binds `pow` (`x ** 0.5` stays a
`pow`, it does not become `sqrt`). The ufuncs here are plain functions: numpy's ufunc
keywords (`out`, `where`, `dtype`, ...) and methods (`.reduce`, ...) do not exist;
`_example` adds that note and a doctest to each one's docstring.
"""
from __future__ import annotations

import math
from typing import Any, Callable, TypeVar

import numpy as np

from fxgrad.core.errors import FxTypeError, FxValueError, at_user_line
from fxgrad.numpy._promote import (apply_ufunc, broadcast_operands, cast, dtype_of, operand,
                                   operands, out, result_type, shape_of, ufunc_dtypes)
from fxgrad.primitives import arith, logic, unary
from fxgrad.primitives.shape import convert_element_type

_LN2 = math.log(2.0)
_F = TypeVar("_F", bound=Callable[..., Any])


def _example(call: str, result: str) -> Callable[[_F], _F]:
    """Complete a ufunc's docstring: how it differs from numpy's, and a doctest in which
    `call` prints `result` (pytest runs it with the module's other doctests)."""
    def document(fn: _F) -> _F:
        assert fn.__doc__ is not None, fn
        fn.__doc__ = (f"{fn.__doc__.rstrip()}\n\n"
                      "    A plain function, not a ufunc: it takes none of numpy's ufunc keywords\n"
                      "    (`out`, `where`, `dtype`, ...) and has no methods (`.reduce`, `.outer`, ...).\n\n"
                      "    >>> import fxgrad as fx, fxgrad.numpy as fnp, numpy as np\n"
                      f"    >>> {call}\n    {result}\n    ")
        return fn
    return document


# ---------------------------------------------------------------- arithmetic

@_example("fx.grad(fnp.add, argnums=(0, 1))(1.0, 2.0)", "(array(1.), array(1.))")
def add(x1: Any, x2: Any) -> Any:
    """Elementwise `x1 + x2`, broadcast."""
    return apply_ufunc(np.add, arith.add, x1, x2)


@_example("fx.grad(fnp.subtract, argnums=1)(3.0, 1.0)", "array(-1.)")
def subtract(x1: Any, x2: Any) -> Any:
    """Elementwise `x1 - x2`, broadcast."""
    return apply_ufunc(np.subtract, arith.sub, x1, x2)


@_example("fx.grad(fnp.multiply)(3.0, 4.0)", "array(4.)")
def multiply(x1: Any, x2: Any) -> Any:
    """Elementwise `x1 * x2`, broadcast."""
    return apply_ufunc(np.multiply, arith.mul, x1, x2)


@_example("fnp.divide(np.array([1, 2]), 4)", "array([0.25, 0.5 ])")
def divide(x1: Any, x2: Any) -> Any:
    """Elementwise true division `x1 / x2` (integers divide as float64)."""
    return apply_ufunc(np.true_divide, arith.div, x1, x2)


true_divide = divide


def _floor_div(x: Any, y: Any) -> Any:
    q = arith.div(x, y)   # integer div floors already
    return q if dtype_of(q).kind in "iub" else unary.floor(q)


@_example("fnp.floor_divide(np.array([7, -7]), 2)", "array([ 3, -4])")
def floor_divide(x1: Any, x2: Any) -> Any:
    """Elementwise `x1 // x2`, rounding toward minus infinity (zero derivative)."""
    return apply_ufunc(np.floor_divide, _floor_div, x1, x2)


def _remainder(x: Any, y: Any) -> Any:
    return arith.sub(x, arith.mul(_floor_div(x, y), y))


@_example("fnp.remainder(np.array([7., -7.]), 3.0)", "array([1., 2.])")
def remainder(x1: Any, x2: Any) -> Any:
    """Elementwise `x1 % x2` with the sign of `x2`: `x1 - floor(x1 / x2) * x2`."""
    return apply_ufunc(np.remainder, _remainder, x1, x2)


mod = remainder


@_example("fx.grad(fnp.negative)(1.0)", "array(-1.)")
def negative(x: Any) -> Any:
    """Elementwise `-x`."""
    return apply_ufunc(np.negative, arith.neg, x)


@_example("fnp.positive(np.array([-1, 2]))", "array([-1,  2])")
def positive(x: Any) -> Any:
    """Elementwise `+x`: `x` itself, as an array."""
    return apply_ufunc(np.positive, lambda v: v, x)


@_example("fx.grad(fnp.maximum)(1.0, 1.0)", "array(0.5)")
def maximum(x1: Any, x2: Any) -> Any:
    """Elementwise maximum; NaN propagates and ties split the derivative evenly."""
    return apply_ufunc(np.maximum, arith.max, x1, x2)


@_example("fx.grad(fnp.minimum)(1.0, 2.0)", "array(1.)")
def minimum(x1: Any, x2: Any) -> Any:
    """Elementwise minimum; NaN propagates and ties split the derivative evenly."""
    return apply_ufunc(np.minimum, arith.min, x1, x2)


def _is_static_int(x: Any) -> bool:
    """A Python or numpy integer scalar (not a bool, not an array)."""
    return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))


@_example("fx.grad(lambda x: fnp.power(x, 3))(2.0)", "array(12.)")
def power(x1: Any, x2: Any) -> Any:
    """Elementwise `x1 ** x2`: `integer_pow` for an integer scalar exponent, else `pow`.

    Integers to negative integer powers raise FxValueError, as in numpy.
    """
    if not _is_static_int(x2):
        return apply_ufunc(np.power, arith.pow, x1, x2)
    x1 = operand(x1, "power")
    (dtype, _), _ = ufunc_dtypes(np.power, x1, x2)
    if dtype.kind in "iu" and x2 < 0:
        raise FxValueError(at_user_line(
            "power: integers to negative integer powers are not allowed (as in numpy); "
            "use a float base"))
    return out(arith.integer_pow(cast(x1, dtype), int(x2)))


@_example("fnp.float_power(np.array([2], np.int32), 3)", "array([8.])")
def float_power(x1: Any, x2: Any) -> Any:
    """Elementwise `x1 ** x2` computed in float64 (or complex128)."""
    return apply_ufunc(np.float_power, arith.pow, x1, x2)


@_example("fx.grad(fnp.square)(3.0)", "array(6.)")
def square(x: Any) -> Any:
    """Elementwise `x ** 2`."""
    return apply_ufunc(np.square, lambda v: arith.integer_pow(v, 2), x)


@_example("fx.grad(fnp.sqrt)(4.0)", "array(0.25)")
def sqrt(x: Any) -> Any:
    """Elementwise non-negative square root."""
    return apply_ufunc(np.sqrt, unary.sqrt, x)


@_example("fnp.cbrt(np.array([-8., 8.]))", "array([-2.,  2.])")
def cbrt(x: Any) -> Any:
    """Elementwise real cube root, `sign(x) * |x| ** (1/3)`.

    Computed through `pow`, so it may differ from numpy's in the last bit.
    """
    return apply_ufunc(np.cbrt, lambda v: arith.mul(unary.sign(v),
                                                   arith.pow(unary.abs(v), 1.0 / 3.0)), x)


def _reciprocal(x: Any) -> Any:
    if dtype_of(x).kind in "fc":
        return arith.div(1, x)
    # C integer division truncates: 1/x is 0 unless |x| == 1.
    return arith.mul(unary.sign(x), arith.div(1, unary.abs(x)))


@_example("fx.grad(fnp.reciprocal)(2.0)", "array(-0.25)")
def reciprocal(x: Any) -> Any:
    """Elementwise `1 / x`; for integers C division, as numpy (0 unless |x| is 1)."""
    return apply_ufunc(np.reciprocal, _reciprocal, x)


# ---------------------------------------------------------------- exponentials and logs

@_example("fx.grad(fnp.exp)(0.0)", "array(1.)")
def exp(x: Any) -> Any:
    """Elementwise exponential `e ** x`."""
    return apply_ufunc(np.exp, unary.exp, x)


@_example("fnp.exp2(np.array([0., 1., 3.]))", "array([1., 2., 8.])")
def exp2(x: Any) -> Any:
    """Elementwise `2 ** x`, as `exp(x * ln 2)` (may differ from numpy in the last bit)."""
    return apply_ufunc(np.exp2, lambda v: unary.exp(arith.mul(v, _LN2)), x)


@_example("fx.grad(fnp.expm1)(0.0)", "array(1.)")
def expm1(x: Any) -> Any:
    """Elementwise `exp(x) - 1`, accurate near 0."""
    return apply_ufunc(np.expm1, unary.expm1, x)


@_example("fx.grad(fnp.log)(2.0)", "array(0.5)")
def log(x: Any) -> Any:
    """Elementwise natural logarithm."""
    return apply_ufunc(np.log, unary.log, x)


@_example("fnp.log2(np.array([1., 8.]))", "array([0., 3.])")
def log2(x: Any) -> Any:
    """Elementwise base-2 logarithm, `log(x) / ln 2` (may differ from numpy in the last bit)."""
    return apply_ufunc(np.log2, lambda v: arith.mul(unary.log(v), 1.0 / _LN2), x)


@_example("fnp.log10(np.array([1., 100.]))", "array([0., 2.])")
def log10(x: Any) -> Any:
    """Elementwise base-10 logarithm, `log(x) / ln 10` (may differ from numpy in the last bit)."""
    return apply_ufunc(np.log10, lambda v: arith.mul(unary.log(v), 1.0 / math.log(10.0)), x)


@_example("fx.grad(fnp.log1p)(1.0)", "array(0.5)")
def log1p(x: Any) -> Any:
    """Elementwise `log(1 + x)`, accurate near 0."""
    return apply_ufunc(np.log1p, unary.log1p, x)


def _logaddexp(x: Any, y: Any) -> Any:
    # log(e^x + e^y) = x + log1p(e^(y - x)) if x >= y else y + log1p(e^(x - y)): each
    # branch is exact, so every derivative is right even at x == y (a max/abs form gets
    # the second derivative wrong there). Equal infinities give nan; x + y is right.
    with np.errstate(invalid="ignore"):
        delta = arith.sub(x, y)
    x_big = logic.ge(x, y)
    shifted = arith.add(_select(x_big, x, y),
                        unary.log1p(unary.exp(_select(x_big, arith.neg(delta), delta))))
    return _select(logic.ne(delta, delta), arith.add(x, y), shifted)


@_example("fx.grad(fnp.logaddexp)(0.0, 0.0)", "array(0.5)")
def logaddexp(x1: Any, x2: Any) -> Any:
    """Elementwise `log(exp(x1) + exp(x2))` without overflow."""
    return apply_ufunc(np.logaddexp, _logaddexp, x1, x2)


@_example("fnp.logaddexp2(1.0, 1.0)", "array(2.)")
def logaddexp2(x1: Any, x2: Any) -> Any:
    """Elementwise `log2(2**x1 + 2**x2)` without overflow."""
    return apply_ufunc(np.logaddexp2, lambda x, y: arith.mul(
        _logaddexp(arith.mul(x, _LN2), arith.mul(y, _LN2)), 1.0 / _LN2), x1, x2)


# ---------------------------------------------------------------- trigonometric and hyperbolic

@_example("fx.grad(fnp.sin)(0.0)", "array(1.)")
def sin(x: Any) -> Any:
    """Elementwise sine."""
    return apply_ufunc(np.sin, unary.sin, x)


@_example("fx.vmap(fnp.cos)(np.array([0., np.pi]))", "array([ 1., -1.])")
def cos(x: Any) -> Any:
    """Elementwise cosine."""
    return apply_ufunc(np.cos, unary.cos, x)


@_example("fx.grad(fnp.tan)(0.0)", "array(1.)")
def tan(x: Any) -> Any:
    """Elementwise tangent."""
    return apply_ufunc(np.tan, unary.tan, x)


def _sinh(x: Any) -> Any:
    # (e^x - e^-x) / 2 = (expm1(x) - expm1(-x)) / 2, exact near 0.
    return arith.mul(arith.sub(unary.expm1(x), unary.expm1(arith.neg(x))), 0.5)


@_example("fx.grad(fnp.sinh)(0.0)", "array(1.)")
def sinh(x: Any) -> Any:
    """Elementwise hyperbolic sine, from `expm1` (exact near 0)."""
    return apply_ufunc(np.sinh, _sinh, x)


@_example("fx.grad(fnp.cosh)(0.0)", "array(0.)")
def cosh(x: Any) -> Any:
    """Elementwise hyperbolic cosine, `(exp(x) + exp(-x)) / 2`."""
    return apply_ufunc(np.cosh, lambda v: arith.mul(
        arith.add(unary.exp(v), unary.exp(arith.neg(v))), 0.5), x)


@_example("fx.grad(fnp.tanh)(0.0)", "array(1.)")
def tanh(x: Any) -> Any:
    """Elementwise hyperbolic tangent."""
    return apply_ufunc(np.tanh, unary.tanh, x)


@_example("fnp.deg2rad(180.0)", "array(3.14159265)")
def deg2rad(x: Any) -> Any:
    """Elementwise conversion of angles from degrees to radians."""
    return apply_ufunc(np.deg2rad, lambda v: arith.mul(v, math.pi / 180.0), x)


@_example("fnp.rad2deg(np.pi)", "array(180.)")
def rad2deg(x: Any) -> Any:
    """Elementwise conversion of angles from radians to degrees."""
    return apply_ufunc(np.rad2deg, lambda v: arith.mul(v, 180.0 / math.pi), x)


radians, degrees = deg2rad, rad2deg


# ---------------------------------------------------------------- sign, rounding

@_example("fx.grad(fnp.abs)(-2.0)", "array(-1.)")
def absolute(x: Any) -> Any:
    """Elementwise absolute value `|x|`."""
    return apply_ufunc(np.absolute, unary.abs, x)


abs = absolute   # noqa: A001  (numpy's name)


@_example("fnp.fabs(np.array([-1.5, 2]))", "array([1.5, 2. ])")
def fabs(x: Any) -> Any:
    """Elementwise absolute value as a float (complex input raises FxTypeError, as in numpy)."""
    return apply_ufunc(np.fabs, unary.abs, x)


@_example("fnp.sign(np.array([-2., 0., 3.]))", "array([-1.,  0.,  1.])")
def sign(x: Any) -> Any:
    """Elementwise sign: -1, 0 or 1 (zero derivative)."""
    return apply_ufunc(np.sign, unary.sign, x)


def _integral_or(fn: Any) -> Any:
    """A rounding function that is the identity on integers."""
    return lambda v: v if dtype_of(v).kind in "iub" else fn(v)


@_example("fx.vmap(fnp.floor)(np.array([-1.5, 1.5]))", "array([-2.,  1.])")
def floor(x: Any) -> Any:
    """Elementwise floor, the largest integer `<= x` (zero derivative)."""
    return apply_ufunc(np.floor, _integral_or(unary.floor), x)


@_example("fnp.ceil(np.array([-1.5, 1.5]))", "array([-1.,  2.])")
def ceil(x: Any) -> Any:
    """Elementwise ceiling, the smallest integer `>= x`: `-floor(-x)` (zero derivative)."""
    return apply_ufunc(np.ceil, _integral_or(lambda v: arith.neg(unary.floor(arith.neg(v)))), x)


@_example("fnp.trunc(np.array([-1.5, 1.5]))", "array([-1.,  1.])")
def trunc(x: Any) -> Any:
    """Elementwise rounding toward zero, `sign(x) * floor(|x|)` (zero derivative)."""
    return apply_ufunc(np.trunc, _integral_or(
        lambda v: arith.mul(unary.sign(v), unary.floor(unary.abs(v)))), x)


fix = trunc


@_example("fnp.rint(np.array([0.5, 1.5, 2.5]))", "array([0., 2., 2.])")
def rint(x: Any) -> Any:
    """Elementwise rounding to the nearest integer, halves to even (zero derivative)."""
    return apply_ufunc(np.rint, _integral_or(unary.round), x)


def round(a: Any, decimals: int = 0) -> Any:   # noqa: A001  (numpy's name)
    """Round to `decimals` decimal places, halves to even, by numpy's own scaling.

    Integers stay integers (negative `decimals` round them to tens, hundreds, ...); the
    derivative is zero. numpy's `out` argument is not taken.

    >>> import fxgrad as fx, fxgrad.numpy as fnp, numpy as np
    >>> fnp.round(np.array([1.25, 2.5]), 1)
    array([1.2, 2.5])
    """
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

@_example("fnp.equal(np.array([1, 2]), 2)", "array([False,  True])")
def equal(x1: Any, x2: Any) -> Any:
    """Elementwise `x1 == x2` (a bool array, not differentiable)."""
    return apply_ufunc(np.equal, logic.eq, x1, x2)


@_example("fnp.not_equal(np.array([1, 2]), 2)", "array([ True, False])")
def not_equal(x1: Any, x2: Any) -> Any:
    """Elementwise `x1 != x2` (a bool array)."""
    return apply_ufunc(np.not_equal, logic.ne, x1, x2)


@_example("fnp.less(np.array([1, 2]), 2)", "array([ True, False])")
def less(x1: Any, x2: Any) -> Any:
    """Elementwise `x1 < x2` (a bool array)."""
    return apply_ufunc(np.less, logic.lt, x1, x2)


@_example("fnp.less_equal(np.array([1, 2, 3]), 2)", "array([ True,  True, False])")
def less_equal(x1: Any, x2: Any) -> Any:
    """Elementwise `x1 <= x2` (a bool array)."""
    return apply_ufunc(np.less_equal, logic.le, x1, x2)


@_example("fnp.greater(np.array([1, 2]), 1)", "array([False,  True])")
def greater(x1: Any, x2: Any) -> Any:
    """Elementwise `x1 > x2` (a bool array)."""
    return apply_ufunc(np.greater, logic.gt, x1, x2)


@_example("fnp.greater_equal(np.array([1, 2]), 2)", "array([False,  True])")
def greater_equal(x1: Any, x2: Any) -> Any:
    """Elementwise `x1 >= x2` (a bool array)."""
    return apply_ufunc(np.greater_equal, logic.ge, x1, x2)


def _on_bools(fn: Any) -> Any:
    """A logical primitive on operands converted to bool (nonzero is true)."""
    return lambda *vs: fn(*(cast(v, bool) for v in vs))


@_example("fnp.logical_and(np.array([1, 1, 0]), np.array([2, 0, 0]))", "array([ True, False, False])")
def logical_and(x1: Any, x2: Any) -> Any:
    """Elementwise truth of `x1 and x2` (nonzero is true)."""
    return apply_ufunc(np.logical_and, _on_bools(logic.logical_and), x1, x2)


@_example("fnp.logical_or(np.array([True, False]), False)", "array([ True, False])")
def logical_or(x1: Any, x2: Any) -> Any:
    """Elementwise truth of `x1 or x2` (nonzero is true)."""
    return apply_ufunc(np.logical_or, _on_bools(logic.logical_or), x1, x2)


@_example("fnp.logical_xor(np.array([True, False]), True)", "array([False,  True])")
def logical_xor(x1: Any, x2: Any) -> Any:
    """Elementwise truth of `x1 xor x2` (nonzero is true)."""
    return apply_ufunc(np.logical_xor, _on_bools(logic.ne), x1, x2)


@_example("fnp.logical_not(np.array([0., 2.]))", "array([ True, False])")
def logical_not(x: Any) -> Any:
    """Elementwise truth of `not x` (nonzero is true)."""
    return apply_ufunc(np.logical_not, _on_bools(logic.logical_not), x)


@_example("fx.vmap(fnp.isnan)(np.array([1., np.nan]))", "array([False,  True])")
def isnan(x: Any) -> Any:
    """Elementwise test for NaN, the only value unequal to itself."""
    return apply_ufunc(np.isnan, _if_inexact(lambda v: logic.ne(v, v), False), x)


@_example("fnp.isfinite(np.array([1., np.nan, np.inf]))", "array([ True, False, False])")
def isfinite(x: Any) -> Any:
    """Elementwise test for finiteness: `|x| < inf` fails exactly for infinities and NaN."""
    return apply_ufunc(np.isfinite, _if_inexact(lambda v: logic.lt(unary.abs(v), np.inf), True), x)


@_example("fnp.isinf(np.array([1., np.nan, -np.inf]))", "array([False, False,  True])")
def isinf(x: Any) -> Any:
    """Elementwise test for positive or negative infinity."""
    return apply_ufunc(np.isinf, _if_inexact(
        lambda v: logic.eq(unary.abs(v), np.inf), False), x)


def _if_inexact(fn: Any, integer_answer: bool) -> Any:
    """A float predicate; integers and bools are never NaN or infinite."""
    return lambda v: (fn(v) if dtype_of(v).kind in "fc"
                      else np.full(shape_of(v), integer_answer))


def isclose(a: Any, b: Any, rtol: float = 1e-05, atol: float = 1e-08,
            equal_nan: bool = False) -> Any:
    """Elementwise `|a - b| <= atol + rtol * |b|`, as numpy's, with equal infinities close.

    >>> import fxgrad as fx, fxgrad.numpy as fnp, numpy as np
    >>> fnp.isclose(np.array([1.0, 1.1]), 1.0)
    array([ True, False])
    """
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
    """Elementwise `x if condition else y`; with only a condition, its nonzero indices.

    The derivative flows to the selected branch only. The one-argument form needs a concrete
    condition (its shape depends on the values): on a traced condition it raises FxTypeError.

    >>> import fxgrad as fx, fxgrad.numpy as fnp, numpy as np
    >>> fx.grad(lambda x: fnp.sum(fnp.where(x > 0, x, 0.0)))(np.array([-1., 2.]))
    array([0., 1.])
    """
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
    """`a` limited to `[a_min, a_max]`: `minimum(maximum(a, a_min), a_max)`.

    Either bound may be None (not both: that raises FxValueError); numpy 2's `min`/`max`
    keywords are accepted, `out` is not. Clipped elements get a zero derivative.

    >>> import fxgrad as fx, fxgrad.numpy as fnp, numpy as np
    >>> fx.vmap(lambda x: fnp.clip(x, 0.0, 1.0))(np.array([-1., .5, 2.]))
    array([0. , 0.5, 1. ])
    """
    a_min, a_max = (a_min if a_min is not None else min), (a_max if a_max is not None else max)
    if a_min is None and a_max is None:
        raise FxValueError(at_user_line("clip: at least one of a_min and a_max must be given"))
    result = a if a_min is None else maximum(a, a_min)
    return out(result if a_max is None else minimum(result, a_max))


def astype(x: Any, dtype: Any) -> Any:
    """`x` converted to `dtype` (`convert_element_type`); numpy's `copy` is not taken.

    >>> import fxgrad as fx, fxgrad.numpy as fnp, numpy as np
    >>> fnp.astype(np.array([1.7, -1.7]), np.int32)
    array([ 1, -1], dtype=int32)
    """
    x = operand(x, "astype")
    return out(convert_element_type(x, np.dtype(dtype)))
