"""Special functions: erf erfc lgamma digamma polygamma xlogy xlog1py.

Each is a real elementwise primitive: eager evaluation calls scipy.special, the JVP
rules are written with primitives, so derivatives of any order come from re-applying
them (erf' is a Gaussian, lgamma' = digamma, digamma' = polygamma(1, .), and
polygamma(n, .)' = polygamma(n + 1, .)). `xlogy(x, y) = x log y` and `xlog1py` are 0
where x == 0 (unless y is NaN), with JAX's derivative convention: the tangent is
`x_dot log(y) + y_dot x / y` everywhere, so d/dx at x == 0 is log(y), not 0.

numba lowers erf, erfc and lgamma to `math`; digamma and polygamma to scalar kernels
added to `HELPERS` on first use: digamma shifts x up by the recurrence psi(x) = psi(x+1) - 1/x
to x >= 10 and sums the asymptotic (Bernoulli) series, with a Taylor series about its
positive root x0 = 1.4616... (where the recurrence would cancel) and the reflection
psi(x) = psi(1-x) - pi cot(pi x) for x < 0. polygamma(n, x) = (-1)^(n+1) n! zeta(n+1, x)
with the Hurwitz zeta summed directly up to x + k >= 10 + n + 1 and Euler-Maclaurin
beyond; for x < 0 it reflects through the n-th derivative of pi cot(pi x), a polynomial
in cot(pi x). Both agree with mpmath to a few ulps away from the zeros of the functions.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from fxgrad.core.errors import FxTypeError, FxValueError
from fxgrad.core.ir import ShapedArray, aval_of
from fxgrad.core.trace import Primitive, shape_rules
from fxgrad.interpreters.batching import def_elementwise_batch
from fxgrad.interpreters.evaluation import impl_rules
from fxgrad.interpreters.jvp import Zero, def_jvp, is_zero
from fxgrad.jit.lowering import HELPERS, def_elementwise_lowering
from fxgrad.primitives.arith import add, div, mul, neg, typed
from fxgrad.primitives.common import broadcast_shapes, coerce, same_dtype
from fxgrad.primitives.unary import exp, log, log1p

_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


def _check_real(prim: Primitive, *avals: ShapedArray) -> None:
    for a in avals:
        if a.dtype.kind != "f":
            raise FxTypeError(f"{prim.name} requires real floating-point operands, got "
                              f"{a.dtype.name}; convert with .astype(float)")


def _scipy(name: str) -> Any:
    """scipy.special.<name>, imported on first use (scipy.special takes ~0.2 s to import)."""
    def call(*args: Any) -> Any:
        import scipy.special
        return getattr(scipy.special, name)(*args)
    return call


def _in_dtype(fn: Any) -> Any:
    """A scipy function whose result keeps the dtype of its (first) operand."""
    return lambda x, *rest, **params: fn(x, *rest, **params).astype(x.dtype, copy=False)


def _real_unary(name: str, np_fn: Any) -> Primitive:
    prim = Primitive(name)
    impl_rules[prim] = _in_dtype(np_fn)

    def rule(x: ShapedArray, **params: Any) -> ShapedArray:
        _check_real(prim, x)
        return x
    shape_rules[prim] = rule
    def_elementwise_batch(prim)
    return prim


def _real_binary(name: str, np_fn: Any) -> Primitive:
    prim = Primitive(name)
    impl_rules[prim] = _in_dtype(np_fn)

    def rule(x: ShapedArray, y: ShapedArray) -> ShapedArray:
        dtype = same_dtype(prim, x, y)
        _check_real(prim, x, y)
        return ShapedArray(broadcast_shapes(prim, x, y), dtype)
    shape_rules[prim] = rule
    def_elementwise_batch(prim)
    return prim


def _math_lowering(prim: Primitive, fn: str) -> None:
    def_elementwise_lowering(prim)(lambda ctx, x: typed(ctx, ctx.math_call(fn, x, "math")))


def _helper_call(ctx: Any, helper: str, x: str, *static: Any) -> str:
    """A call of scalar kernel `helper` (computing in float64), cast to the output dtype."""
    if helper not in HELPERS:   # generated on first use: the coefficients come from scipy
        HELPERS[helper] = _KERNEL_SOURCES[helper]()
    if ctx.out_aval.dtype != np.float64:
        x = ctx.cast(x, np.float64)
    return typed(ctx, f"{ctx.helper(helper)}({', '.join([*map(str, static), x])})")


erf_p = _real_unary("erf", _scipy("erf"))


def erf(x: Any) -> Any:
    """The error function 2/sqrt(pi) * integral of exp(-t^2) from 0 to x."""
    return erf_p.bind(x)


@def_jvp(erf_p)
def _erf_jvp(primals: Any, tangents: Any) -> Any:
    (x,), (x_dot,) = primals, tangents
    return erf(x), mul(x_dot, mul(exp(neg(mul(x, x))), _TWO_OVER_SQRT_PI))


_math_lowering(erf_p, "erf")


erfc_p = _real_unary("erfc", _scipy("erfc"))


def erfc(x: Any) -> Any:
    """1 - erf(x), accurate where erf(x) is close to 1."""
    return erfc_p.bind(x)


@def_jvp(erfc_p)
def _erfc_jvp(primals: Any, tangents: Any) -> Any:
    (x,), (x_dot,) = primals, tangents
    return erfc(x), mul(x_dot, mul(exp(neg(mul(x, x))), -_TWO_OVER_SQRT_PI))


_math_lowering(erfc_p, "erfc")


def _lgamma_impl(x: np.ndarray) -> np.ndarray:
    """scipy's gammaln with C99's lgamma at the edges it disagrees on (the numba lowering
    calls libm): lgamma(-inf) = inf, and -log|x| for subnormal x, where scipy gives inf."""
    import scipy.special as sp
    x64 = np.asarray(x, np.float64)
    with np.errstate(all="ignore"):
        tiny = (x64 != 0) & (np.abs(x64) < np.finfo(np.float64).tiny)
        out = np.where(tiny, -np.log(np.abs(x64)), sp.gammaln(x64))
    return np.where(x64 == -np.inf, np.inf, out).astype(x.dtype)


lgamma_p = _real_unary("lgamma", _lgamma_impl)


def lgamma(x: Any) -> Any:
    """log |Gamma(x)|."""
    return lgamma_p.bind(x)


@def_jvp(lgamma_p)
def _lgamma_jvp(primals: Any, tangents: Any) -> Any:
    (x,), (x_dot,) = primals, tangents
    return lgamma(x), mul(x_dot, digamma(x))


_math_lowering(lgamma_p, "lgamma")


def _series_source() -> dict[str, str]:
    """Coefficients of the digamma kernel: B_2k / 2k, and the Taylor coefficients
    psi^(k)(x0) / k! = (-1)^(k+1) zeta(k+1, x0) about the positive root x0."""
    import scipy.special as sp
    b = sp.bernoulli(60)
    root = 1.4616321449683623
    return {"asymptotic": repr(tuple(float(b[2 * j]) / (2 * j) for j in range(1, 11))),
            "root": repr(root), "root_value": repr(-9.2412655217294275e-17),
            "taylor": repr(tuple((-1.0) ** (k + 1) * float(sp.zeta(k + 1, root))
                                 for k in range(1, 40)))}


_DIGAMMA_SOURCE = """
@njit(cache=True, nogil=True)
def fx_digamma(x):
    if x != x or x == -math.inf:
        return math.nan
    if x == math.inf:
        return math.inf
    if x == 0.0:
        return -math.copysign(math.inf, x)
    result = 0.0
    if x < 0.0:
        r = x - np.floor(x)
        if r == 0.0:
            return math.nan
        result = -math.pi / math.tan(math.pi * r)
        x = 1.0 - x
    h = x - {root}
    if abs(h) < 0.45:
        s = 0.0
        p = 1.0
        for c in {taylor}:
            p *= h
            s += c * p
            if abs(c * p) < 1e-17 * abs(s):
                break
        return result + (s + {root_value})
    while x < 10.0:
        result -= 1.0 / x
        x += 1.0
    x2 = 1.0 / (x * x)
    tail = 0.0
    p = 1.0
    for b in {asymptotic}:
        p *= x2
        tail += b * p
    return result + (math.log(x) - 0.5 / x - tail)
"""


digamma_p = _real_unary("digamma", _scipy("psi"))


def digamma(x: Any) -> Any:
    """psi(x) = d/dx log Gamma(x)."""
    return digamma_p.bind(x)


@def_jvp(digamma_p)
def _digamma_jvp(primals: Any, tangents: Any) -> Any:
    (x,), (x_dot,) = primals, tangents
    return digamma(x), mul(x_dot, polygamma(1, x))


@def_elementwise_lowering(digamma_p)
def _digamma_lowering(ctx: Any, x: str) -> str:
    return _helper_call(ctx, "fx_digamma", x)


def _cot_derivative(n: int, c: np.ndarray) -> np.ndarray:
    """P_n(c) with d^n/dx^n cot(pi x) = pi^n P_n(cot(pi x)): P_0 = c, P_k+1 = -(1 + c^2) P_k'."""
    p = np.polynomial.Polynomial([0.0, 1.0])
    for _ in range(n):
        p = -np.polynomial.Polynomial([1.0, 0.0, 1.0]) * p.deriv()
    return p(c)


def _cot_pi(r: np.ndarray) -> np.ndarray:
    """cot(pi r) for |r| <= 1/2, as tan(pi (1/2 - |r|)) near |r| = 1/2 (exactly 0 there)."""
    far = np.abs(r) > 0.25
    return np.where(far, np.copysign(np.tan(np.pi * (0.5 - np.abs(r))), r),
                    1.0 / np.tan(np.pi * np.where(far, 0.25, r)))


def _polygamma_impl(x: np.ndarray, *, n: int) -> np.ndarray:
    """scipy's polygamma for x > 0; the reflection formula for x < 0, where scipy sums
    ~|x| terms (slow and inaccurate for large |x|). Computed in float64, as the kernel."""
    import scipy.special as sp
    x = np.asarray(x, np.float64)
    with np.errstate(all="ignore"):
        neg = np.where(x < 0, x, -0.5)
        cot = _cot_pi(neg - np.floor(neg + 0.5))
        mirror = -math.gamma(n + 1.0) * sp.zeta(n + 1.0, 1.0 - neg)
        reflected = mirror - np.pi ** (n + 1) * _cot_derivative(n, cot)
        out = np.where(x > 0, sp.polygamma(n, np.where(x > 0, x, 1.0)), reflected)
        out = np.where((x <= 0) & (x == np.floor(x)), (-1.0) ** (n + 1) * np.inf, out)
    return np.where(np.isnan(x) | (x == -np.inf), np.nan, out)


polygamma_p = _real_unary("polygamma", _polygamma_impl)


def polygamma(n: int, x: Any) -> Any:
    """The n-th derivative of digamma, for a static integer n >= 1."""
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
        raise FxValueError(f"polygamma: the order n must be a static integer >= 1, got {n!r} "
                           "(use digamma for n == 0)")
    return polygamma_p.bind(x, n=int(n))


@def_jvp(polygamma_p)
def _polygamma_jvp(primals: Any, tangents: Any, *, n: int) -> Any:
    (x,), (x_dot,) = primals, tangents
    return polygamma(n, x), mul(x_dot, polygamma(n + 1, x))


@def_elementwise_lowering(polygamma_p)
def _polygamma_lowering(ctx: Any, x: str, *, n: int) -> str:
    return _helper_call(ctx, "fx_polygamma", x, n)


_POLYGAMMA_SOURCE = """
_FX_POLYGAMMA_B = {bernoulli}


@njit(cache=True, nogil=True)
def fx_hurwitz_zeta(s, x):
    total = 0.0
    k = 0
    w = x
    while w < 10.0 + s:
        total += w ** -s
        k += 1
        w = x + k
    total += w ** (1.0 - s) / (s - 1.0) + 0.5 * w ** -s
    p = s * w ** (-s - 1.0)
    for j in range(len(_FX_POLYGAMMA_B)):
        term = _FX_POLYGAMMA_B[j] * p
        total += term
        if abs(term) <= 1e-17 * abs(total):
            break
        p *= (s + 2 * j + 1) * (s + 2 * j + 2) / (w * w)
    return total


@njit(cache=True, nogil=True)
def fx_cot_derivative(n, c):
    coef = np.zeros(n + 2)
    coef[1] = 1.0
    d = np.zeros(n + 2)
    for k in range(n):
        for i in range(k + 1):
            d[i] = (i + 1) * coef[i + 1]
        for i in range(k + 3):
            coef[i] = -(d[i] + (d[i - 2] if i >= 2 else 0.0))
    value = 0.0
    for i in range(n + 1, -1, -1):
        value = value * c + coef[i]
    return value


@njit(cache=True, nogil=True)
def fx_polygamma(n, x):
    sign = 1.0 if n % 2 == 1 else -1.0
    if x != x or x == -math.inf:
        return math.nan
    if x <= 0.0 and x == np.floor(x):
        return sign * math.inf
    if x > 0.0:
        return sign * math.gamma(n + 1.0) * fx_hurwitz_zeta(n + 1.0, x)
    r = x - np.floor(x + 0.5)
    if abs(r) > 0.25:
        c = math.copysign(math.tan(math.pi * (0.5 - abs(r))), r)
    else:
        c = 1.0 / math.tan(math.pi * r)
    mirror = -math.gamma(n + 1.0) * fx_hurwitz_zeta(n + 1.0, 1.0 - x)
    return mirror - math.pi ** (n + 1) * fx_cot_derivative(n, c)
"""


def _polygamma_source() -> str:
    """The polygamma kernel with Euler-Maclaurin's coefficients B_2j / (2j)!."""
    import scipy.special as sp
    return _POLYGAMMA_SOURCE.format(bernoulli=repr(tuple(
        float(b) / math.factorial(2 * j) for j, b in enumerate(sp.bernoulli(60)[2::2], 1))))


_KERNEL_SOURCES = {"fx_digamma": lambda: _DIGAMMA_SOURCE.format(**_series_source()),
                   "fx_polygamma": _polygamma_source}


def _xlog_jvp(xlog: Any, log_fn: Any, shift: float) -> Any:
    """JVP of x * log_fn(y): x_dot log_fn(y) + y_dot x / (y + shift) (JAX's convention)."""
    def rule(primals: Any, tangents: Any) -> Any:
        (x, y), (x_dot, y_dot) = primals, tangents
        out = xlog(x, y)
        terms = []
        if not is_zero(x_dot):
            terms.append(mul(x_dot, log_fn(y)))
        if not is_zero(y_dot):
            terms.append(mul(y_dot, div(x, add(y, shift) if shift else y)))
        if not terms:
            return out, Zero(aval_of(out))
        return out, terms[0] if len(terms) == 1 else add(*terms)
    return rule


def _xlog_lowering(log_fn: str) -> Any:
    def rule(ctx: Any, x: str, y: str) -> str:
        zero = ctx.const(0, ctx.out_aval.dtype)
        return f"{zero} if {x} == 0 and {y} == {y} else {typed(ctx, f'{x} * np.{log_fn}({y})')}"
    return rule


xlogy_p = _real_binary("xlogy", _scipy("xlogy"))


def xlogy(x: Any, y: Any) -> Any:
    """x * log(y), 0 where x == 0 (unless y is NaN)."""
    return xlogy_p.bind(*coerce(x, y))


def_jvp(xlogy_p)(_xlog_jvp(xlogy, log, 0.0))
def_elementwise_lowering(xlogy_p)(_xlog_lowering("log"))


xlog1py_p = _real_binary("xlog1py", _scipy("xlog1py"))


def xlog1py(x: Any, y: Any) -> Any:
    """x * log1p(y), 0 where x == 0 (unless y is NaN)."""
    return xlog1py_p.bind(*coerce(x, y))


def_jvp(xlog1py_p)(_xlog_jvp(xlog1py, log1p, 1.0))
def_elementwise_lowering(xlog1py_p)(_xlog_lowering("log1p"))
