"""Elementwise unary functions: exp log log1p expm1 sin cos tan tanh logistic sqrt abs
sign floor round stop_gradient.

Transcendental functions accept floating-point operands only; abs, sign and
stop_gradient also work on integers. JVP rules are written with wrapper functions, so
each derivative is itself differentiable and higher-order derivatives come from
re-applying the rules; where the derivative is a function of the output (exp, tanh,
logistic, sqrt, ...) the output is reused instead of recomputing from the input.
Piecewise-constant functions (sign, floor, round) and stop_gradient have symbolic zero
tangents. Lowerings to numba call numpy's scalar ufuncs, which keep float32 and follow
numpy's conventions at domain edges (log(0) == -inf, sqrt(-1) == nan) without raising.
Under vmap each applies to the whole batch, which keeps its axis.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from fxgrad.core.trace import Primitive
from fxgrad.core.ir import aval_of
from fxgrad.interpreters.jvp import Zero, def_jvp
from fxgrad.interpreters.taylor import (add_terms, cauchy, def_jet, fit, full, integrate,
                                        linear_jet, mul_terms, next_coefficient, ode_series,
                                        scale)
from fxgrad.jit import vecmath
from fxgrad.jit.lowering import def_elementwise_lowering
from fxgrad.primitives.arith import add, div, mul, neg, sub, typed
from fxgrad.primitives.common import elementwise
from fxgrad.interpreters.batching import def_elementwise_batch
from fxgrad.primitives.logic import def_zero_jvp


def def_ufunc_lowering(prim: Primitive, ufunc: str) -> None:
    """Lower `prim` to numba's scalar version of the numpy ufunc `np.<ufunc>` (its
    SIMD version from fxgrad.jit.vecmath where there is one)."""
    def_elementwise_lowering(prim)(lambda ctx, x: typed(ctx, ctx.math_call(ufunc, x)))

exp_p = elementwise("exp", np.exp, 1)


def exp(x: Any) -> Any:
    return exp_p.bind(x)


@def_jvp(exp_p)
def _exp_jvp(primals: Any, tangents: Any) -> Any:
    out = exp(primals[0])
    return out, mul(tangents[0], out)


def_ufunc_lowering(exp_p, "exp")
def_elementwise_batch(exp_p)

@def_jet(exp_p)
def _exp_jet(primals: Any, series: Any) -> Any:
    out = exp(primals[0])   # y' = y x'
    return out, ode_series(out, full(out, series[0]), lambda y, m: y[m], len(series[0]))


log_p = elementwise("log", np.log, 1)


def log(x: Any) -> Any:
    return log_p.bind(x)


@def_jvp(log_p)
def _log_jvp(primals: Any, tangents: Any) -> Any:
    (x,), (x_dot,) = primals, tangents
    return log(x), div(x_dot, x)


def_ufunc_lowering(log_p, "log")
def_elementwise_batch(log_p)

@def_jet(log_p)
def _log_jet(primals: Any, series: Any) -> Any:
    return log(primals[0]), log_series(primals[0], series[0])


def log_series(x: Any, xs: Any) -> list[Any]:
    """Series of log(x): x y' = x', so y_k = (x_k - (1/k) sum_{j<k} j y_j x_{k-j}) / x_0."""
    aval, a, y = aval_of(x), full(x, xs), [None]
    for k in range(1, len(xs) + 1):
        known = add_terms(*(scale(mul_terms(y[j], a[k - j], aval), j / k) for j in range(1, k)),
                          Zero(aval))
        y.append(next_coefficient(a[k], known, x, aval))
    return y[1:]


log1p_p = elementwise("log1p", np.log1p, 1)


def log1p(x: Any) -> Any:
    """log(1 + x), accurate for small x."""
    return log1p_p.bind(x)


@def_jvp(log1p_p)
def _log1p_jvp(primals: Any, tangents: Any) -> Any:
    (x,), (x_dot,) = primals, tangents
    return log1p(x), div(x_dot, add(x, 1.0))


def_ufunc_lowering(log1p_p, "log1p")
def_elementwise_batch(log1p_p)

@def_jet(log1p_p)
def _log1p_jet(primals: Any, series: Any) -> Any:
    return log1p(primals[0]), log_series(add(primals[0], 1.0), series[0])


expm1_p = elementwise("expm1", np.expm1, 1)


def expm1(x: Any) -> Any:
    """exp(x) - 1, accurate for small x."""
    return expm1_p.bind(x)


@def_jvp(expm1_p)
def _expm1_jvp(primals: Any, tangents: Any) -> Any:
    out = expm1(primals[0])
    return out, mul(tangents[0], add(out, 1.0))


def_ufunc_lowering(expm1_p, "expm1")
def_elementwise_batch(expm1_p)

@def_jet(expm1_p)
def _expm1_jet(primals: Any, series: Any) -> Any:
    out = expm1(primals[0])   # y' = (y + 1) x'
    g = lambda y, m: add(y[0], 1.0) if m == 0 else y[m]  # noqa: E731
    return out, ode_series(out, full(out, series[0]), g, len(series[0]))


sin_p = elementwise("sin", np.sin, 1)


def sin(x: Any) -> Any:
    return sin_p.bind(x)


@def_jvp(sin_p)
def _sin_jvp(primals: Any, tangents: Any) -> Any:
    (x,), (x_dot,) = primals, tangents
    return sin(x), mul(x_dot, cos(x))


def_ufunc_lowering(sin_p, "sin")
def_elementwise_batch(sin_p)


cos_p = elementwise("cos", np.cos, 1)


def cos(x: Any) -> Any:
    return cos_p.bind(x)


@def_jvp(cos_p)
def _cos_jvp(primals: Any, tangents: Any) -> Any:
    (x,), (x_dot,) = primals, tangents
    return cos(x), neg(mul(x_dot, sin(x)))


def_ufunc_lowering(cos_p, "cos")
def_elementwise_batch(cos_p)

def sin_cos_series(x: Any, xs: Any) -> tuple[Any, Any, list[Any], list[Any]]:
    """sin and cos of a series together: s' = c x', c' = -s x'."""
    aval, a = aval_of(x), full(x, xs)
    s, c = [sin(x)], [cos(x)]
    for k in range(1, len(xs) + 1):
        s.append(fit(integrate(a, c, k, aval), aval))
        c.append(fit(scale(integrate(a, s, k, aval), -1.0), aval))
    return s[0], c[0], s[1:], c[1:]


@def_jet(sin_p)
def _sin_jet(primals: Any, series: Any) -> Any:
    s, _, s_series, _ = sin_cos_series(primals[0], series[0])
    return s, s_series


@def_jet(cos_p)
def _cos_jet(primals: Any, series: Any) -> Any:
    _, c, _, c_series = sin_cos_series(primals[0], series[0])
    return c, c_series


tan_p = elementwise("tan", np.tan, 1)


def tan(x: Any) -> Any:
    return tan_p.bind(x)


@def_jvp(tan_p)
def _tan_jvp(primals: Any, tangents: Any) -> Any:
    out = tan(primals[0])   # tan' = 1 / cos² = 1 + tan²
    return out, mul(tangents[0], add(1.0, mul(out, out)))


def_ufunc_lowering(tan_p, "tan")
def_elementwise_batch(tan_p)

@def_jet(tan_p)
def _tan_jet(primals: Any, series: Any) -> Any:
    out = tan(primals[0])   # y' = (1 + y^2) x'
    aval = aval_of(out)
    g = lambda y, m: add(1.0, mul(y[0], y[0])) if m == 0 else cauchy(y, y, m, aval)  # noqa: E731
    return out, ode_series(out, full(out, series[0]), g, len(series[0]))


tanh_p = elementwise("tanh", np.tanh, 1)


def tanh(x: Any) -> Any:
    return tanh_p.bind(x)


@def_jvp(tanh_p)
def _tanh_jvp(primals: Any, tangents: Any) -> Any:
    out = tanh(primals[0])
    return out, mul(tangents[0], sub(1.0, mul(out, out)))


@def_elementwise_lowering(tanh_p)
def _tanh_lowering(ctx: Any, x: str) -> str:
    # libm's tanh is the bottleneck of RNN and MLP kernels: SIMD tanh where available,
    # else fx_tanh (expm1/exp, twice as fast as libm's).
    if vecmath.lowering_name("tanh", ctx.in_avals[0].dtype):
        return ctx.math_call("tanh", x)
    return ctx.cast(f"{ctx.helper('fx_tanh')}({x})")


def_elementwise_batch(tanh_p)

@def_jet(tanh_p)
def _tanh_jet(primals: Any, series: Any) -> Any:
    out = tanh(primals[0])   # y' = (1 - y^2) x'
    aval = aval_of(out)
    g = lambda y, m: (sub(1.0, mul(y[0], y[0])) if m == 0  # noqa: E731
                      else scale(cauchy(y, y, m, aval), -1.0))
    return out, ode_series(out, full(out, series[0]), g, len(series[0]))


def _logistic_impl(x: np.ndarray) -> np.ndarray:
    # exp(-|x|) never overflows: 1/(1+e) for x >= 0 and e/(1+e) = 1/(1+exp(-x)) for x < 0.
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


logistic_p = elementwise("logistic", _logistic_impl, 1)


def logistic(x: Any) -> Any:
    """The logistic sigmoid 1 / (1 + exp(-x))."""
    return logistic_p.bind(x)


@def_jvp(logistic_p)
def _logistic_jvp(primals: Any, tangents: Any) -> Any:
    # σ' = σ(x) σ(-x): accurate where 1 - σ(x) would cancel (large x)
    out = logistic(primals[0])
    return out, mul(tangents[0], mul(out, logistic(neg(primals[0]))))


@def_elementwise_lowering(logistic_p)
def _logistic_lowering(ctx: Any, x: str) -> str:
    # exp(-|x|) both ways, never overflowing (see _logistic_impl)
    one = ctx.const(1.0, ctx.out_aval.dtype)   # typed, so float32 stays float32
    e = ctx.math_call("exp", f"-abs({x})")
    return f"({one} / ({one} + {e}) if {x} >= 0 else {e} / ({one} + {e}))"


def_elementwise_batch(logistic_p)

@def_jet(logistic_p)
def _logistic_jet(primals: Any, series: Any) -> Any:
    out = logistic(primals[0])   # y' = (y - y^2) x'
    aval = aval_of(out)
    g = lambda y, m: add_terms(y[m], scale(cauchy(y, y, m, aval), -1.0))  # noqa: E731
    return out, ode_series(out, full(out, series[0]), g, len(series[0]))


sqrt_p = elementwise("sqrt", np.sqrt, 1)


def sqrt(x: Any) -> Any:
    return sqrt_p.bind(x)


@def_jvp(sqrt_p)
def _sqrt_jvp(primals: Any, tangents: Any) -> Any:
    out = sqrt(primals[0])
    return out, div(tangents[0], mul(out, 2.0))


def_ufunc_lowering(sqrt_p, "sqrt")
def_elementwise_batch(sqrt_p)

@def_jet(sqrt_p)
def _sqrt_jet(primals: Any, series: Any) -> Any:
    # y^2 = x: y_k = (x_k - sum_{0<j<k} y_j y_{k-j}) / (2 y_0)
    (x,), (xs,) = primals, series
    y = [sqrt(x)]
    aval, twice = aval_of(y[0]), mul(y[0], 2.0)
    for k in range(1, len(xs) + 1):
        y.append(next_coefficient(xs[k - 1], cauchy(y, y, k, aval, lo=1), twice, aval))
    return y[0], y[1:]


abs_p = elementwise("abs", np.abs, 1, floats_only=False)


def abs(x: Any) -> Any:   # noqa: A001  (the catalogue name; shadows the builtin here only)
    return abs_p.bind(x)


@def_jvp(abs_p)
def _abs_jvp(primals: Any, tangents: Any) -> Any:
    from fxgrad.primitives.logic import ge, select
    (x,), (x_dot,) = primals, tangents   # derivative 1 at x == 0 (the x >= 0 side), as JAX
    return abs(x), select(ge(x, 0.0), x_dot, neg(x_dot))


@def_elementwise_lowering(abs_p)
def _abs_lowering(ctx: Any, x: str) -> str:
    return typed(ctx, f"abs({x})")


def_elementwise_batch(abs_p)
linear_jet(abs_p)


sign_p = elementwise("sign", np.sign, 1, floats_only=False)
def_zero_jvp(sign_p)


def sign(x: Any) -> Any:
    """-1, 0 or 1 by the sign of x."""
    return sign_p.bind(x)


@def_elementwise_lowering(sign_p)
def _sign_lowering(ctx: Any, x: str) -> str:
    dtype = ctx.out_aval.dtype
    one, zero = ctx.const(1, dtype), ctx.const(0, dtype)
    if dtype.kind == "u":
        return f"{one} if {x} > 0 else {zero}"
    rest = f"{zero} if {x} == 0 else {x}" if dtype.kind == "f" else zero   # NaN stays NaN
    return f"{one} if {x} > 0 else ({ctx.const(-1, dtype)} if {x} < 0 else {rest})"


def_elementwise_batch(sign_p)


floor_p = elementwise("floor", np.floor, 1)
def_zero_jvp(floor_p)


def floor(x: Any) -> Any:
    return floor_p.bind(x)


def_ufunc_lowering(floor_p, "floor")   # math.floor would return an int
def_elementwise_batch(floor_p)


round_p = elementwise("round", np.round, 1)
def_zero_jvp(round_p)


def round(x: Any) -> Any:   # noqa: A001  (the catalogue name; shadows the builtin here only)
    """Round to the nearest integer, halves to even (numpy's rule)."""
    return round_p.bind(x)


def_ufunc_lowering(round_p, "rint")    # half to even, as np.round
def_elementwise_batch(round_p)


stop_gradient_p = elementwise("stop_gradient", lambda x: x, 1, floats_only=False)
# The JVP rule binds stop_gradient on the primal, so outer differentiation stops too.
def_zero_jvp(stop_gradient_p)


def stop_gradient(x: Any) -> Any:
    """x itself, treated as a constant by every differentiation.

    >>> import fxgrad as fx
    >>> fx.grad(lambda x: x * fx.stop_gradient(x))(3.0)   # d/dx of x * c, c = 3
    array(3.)
    """
    return stop_gradient_p.bind(x)


@def_elementwise_lowering(stop_gradient_p)
def _stop_gradient_lowering(ctx: Any, x: str) -> str:
    return x


def_elementwise_batch(stop_gradient_p)
