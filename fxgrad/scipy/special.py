"""scipy.special's functions that models need, differentiable and jittable.

`erf`, `erfc`, `gammaln`, `digamma`, `polygamma`, `xlogy` and `xlog1py` bind the
primitives of `fxgrad.primitives.special`; `expit` is the `logistic` primitive. The
rest are compositions written so that their derivatives stay finite where the value
is: `logsumexp` shifts by the maximum (a `stop_gradient`, as it cancels out
mathematically), `softplus` and `logit` choose between two formulas with `where` and
feed each formula only inputs where it is used (the "double where"), so the unused
branch never produces NaN or infinite derivatives. Dtypes follow scipy's ufuncs
(`apply_ufunc` resolves them): float32 stays float32, integers compute in float64.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import scipy.special as sp

import fxgrad.numpy as fnp
from fxgrad.core.errors import FxTypeError, FxValueError, at_user_line
from fxgrad.numpy._promote import apply_ufunc, canonical_axes, cast, operand, result_type, shape_of
from fxgrad.primitives import special, unary

__all__ = ["digamma", "erf", "erfc", "expit", "gammaln", "logit", "logsumexp", "polygamma",
           "psi", "softplus", "xlog1py", "xlogy"]


def erf(x: Any) -> Any:
    """The error function, 2/sqrt(pi) times the integral of exp(-t**2) from 0 to x.

    >>> import fxgrad as fx
    >>> float(erf(0.5)), float(fx.grad(erf)(0.0))   # erf'(0) = 2 / sqrt(pi)
    (0.5204998778130465, 1.1283791670955126)
    """
    return apply_ufunc(sp.erf, special.erf, x)


def erfc(x: Any) -> Any:
    """The complementary error function 1 - erf(x), accurate where erf(x) is near 1.

    >>> float(erfc(10.0))
    2.088487583762545e-45
    """
    return apply_ufunc(sp.erfc, special.erfc, x)


def gammaln(x: Any) -> Any:
    """log |Gamma(x)|; its derivative is `digamma`.

    >>> import fxgrad as fx
    >>> float(gammaln(5.0)), float(fx.grad(gammaln)(1.0))   # log 4!, -euler_gamma
    (3.1780538303479458, -0.5772156649015329)
    """
    return apply_ufunc(sp.gammaln, special.lgamma, x)


def digamma(x: Any) -> Any:
    """psi(x), the derivative of log Gamma(x); its derivative is `polygamma(1, x)`.

    >>> import fxgrad as fx
    >>> float(digamma(1.0)), float(fx.grad(digamma)(1.0))   # -euler_gamma, pi**2 / 6
    (-0.577215664901, 1.644934066848)
    """
    return apply_ufunc(sp.psi, special.digamma, x)


psi = digamma


def polygamma(n: Any, x: Any) -> Any:
    """The n-th derivative of `digamma`, for a static (not traced) integer n >= 0.

    >>> float(polygamma(1, 1.0)), float(polygamma(3, 0.5))   # pi**2 / 6, pi**4
    (1.644934066848, 97.409091034)
    """
    n = _static_order(n)
    if n == 0:
        return digamma(x)
    return apply_ufunc(sp.psi, lambda v: special.polygamma(n, v), x)


def _static_order(n: Any) -> int:
    if isinstance(n, np.ndarray) and n.ndim == 0:
        n = n.item()
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool):
        raise FxTypeError(at_user_line(
            f"polygamma: the order n must be a static Python integer, got {type(n).__name__}; "
            "call polygamma separately for each order"))
    if n < 0:
        raise FxValueError(at_user_line(f"polygamma: the order n must be >= 0, got {n}"))
    return int(n)


def expit(x: Any) -> Any:
    """The logistic sigmoid 1 / (1 + exp(-x)), without overflow.

    >>> float(expit(0.0)), float(expit(-800.0))
    (0.5, 0.0)
    """
    return apply_ufunc(sp.expit, unary.logistic, x)


def _logit(p: Any) -> Any:
    # log(p) - log1p(-p) cancels near p = 1/2, where it is log1p(2 (p - 1/2) / (1 - p)).
    middle = fnp.logical_and(p > 0.3, p < 0.65)
    p_mid, p_far = fnp.where(middle, p, 0.5), fnp.where(middle, 0.1, p)
    near_half = fnp.log1p((p_mid - 0.5) * 2.0 / (1.0 - p_mid))
    return fnp.where(middle, near_half, fnp.log(p_far) - fnp.log1p(-p_far))


def logit(p: Any) -> Any:
    """The inverse of `expit`, log(p / (1 - p)), accurate near p = 1/2.

    >>> import fxgrad as fx
    >>> float(logit(0.75)), float(fx.grad(logit)(0.5))   # log 3, 1 / (p (1 - p))
    (1.09861228866..., 4.0)
    """
    return apply_ufunc(sp.logit, _logit, p)


def _softplus(x: Any) -> Any:
    # x + log1p(exp(-x)) for x > 0 and log1p(exp(x)) otherwise: neither exp overflows.
    positive = x > 0
    x_pos, x_neg = fnp.where(positive, x, 0.0), fnp.where(positive, 0.0, x)
    return fnp.where(positive, x_pos + fnp.log1p(fnp.exp(-x_pos)), fnp.log1p(fnp.exp(x_neg)))


def softplus(x: Any) -> Any:
    """log(1 + exp(x)) without overflow; its derivative is `expit`. (Not in scipy.)

    >>> import fxgrad as fx
    >>> float(softplus(0.0)), float(softplus(1000.0)), float(fx.grad(softplus)(0.0))
    (0.6931471805599453, 1000.0, 0.5)
    """
    return apply_ufunc(sp.expit, _softplus, x)


def xlogy(x: Any, y: Any) -> Any:
    """x * log(y), with xlogy(0, y) = 0 (also at y = 0) unless y is NaN.

    The derivative follows JAX: d/dx = log(y) and d/dy = x / y everywhere, so at
    x = 0, y > 0 the gradient is (log y, 0).

    >>> import fxgrad as fx
    >>> float(xlogy(0.0, 0.0)), fx.grad(xlogy, argnums=(0, 1))(0.0, 2.0)
    (0.0, (array(0.69314718), array(0.)))
    """
    return apply_ufunc(sp.xlogy, special.xlogy, x, y)


def xlog1py(x: Any, y: Any) -> Any:
    """x * log1p(y), with xlog1py(0, y) = 0 (also at y = -1) unless y is NaN.

    >>> float(xlog1py(0.0, -1.0)), float(xlog1py(2.0, 1e-20))
    (0.0, 2e-20)
    """
    return apply_ufunc(sp.xlog1py, special.xlog1py, x, y)


def _weights(a: Any, b: Any) -> tuple[Any, Any]:
    """a and b (None: all ones) in one floating dtype, broadcast to one shape."""
    if b is None:
        a = operand(a, "logsumexp")
        return cast(a, result_type(a, 1.0)), None
    a, b = operand(a, "logsumexp"), operand(b, "logsumexp")
    dtype = result_type(a, b, 1.0)
    return fnp.broadcast_arrays(cast(a, dtype), cast(b, dtype))


def logsumexp(a: Any, axis: Any = None, b: Any = None, keepdims: bool = False,
              return_sign: bool = False) -> Any:
    """log(sum(b * exp(a))) over `axis`, as scipy.special.logsumexp.

    The largest element is factored out (exp never overflows) and the sum is taken as
    1 + (the rest), through log1p, so a dominant term loses no digits. Elements equal
    to -inf contribute 0 to the value and to the gradient. With `return_sign`, returns
    log|s| and sign(s) of the (possibly negative, weighted) sum s.

    >>> import fxgrad as fx, numpy as np
    >>> x = np.array([0.0, np.log(3.0), -np.inf])
    >>> float(logsumexp(x)), fx.grad(logsumexp)(x)
    (1.386294361119, array([0.25, 0.75, 0.  ]))
    """
    a, b = _weights(a, b)
    axes = canonical_axes(axis, len(shape_of(a)), "logsumexp")
    peak = fnp.max(a, axis=axes, keepdims=True) if axes else a
    peak = unary.stop_gradient(fnp.where(fnp.isfinite(peak), peak, 0.0))
    terms = fnp.exp(a - peak) if b is None else b * fnp.exp(a - peak)
    is_peak = a == peak
    # the peak's own terms are exactly 1 (times b): subtracting 1 there is exact
    rest = (fnp.sum(fnp.where(is_peak, terms, 0.0), axis=axes, keepdims=True) - 1.0
            + fnp.sum(fnp.where(is_peak, 0.0, terms), axis=axes, keepdims=True))
    if return_sign:
        total = rest + 1.0
        out = peak + fnp.where(total > 0, fnp.log1p(fnp.where(total > 0, rest, 0.0)),
                               fnp.log(fnp.abs(total)))
        return _drop(out, axes, keepdims), _drop(fnp.sign(total), axes, keepdims)
    return _drop(peak + fnp.log1p(rest), axes, keepdims)


def _drop(x: Any, axes: tuple[int, ...], keepdims: bool) -> Any:
    return x if keepdims or not axes else fnp.squeeze(x, axes)
