"""fxgrad.scipy.special against scipy.special: values over wide ranges (extremes, edges),
dtypes, derivatives (order 2, closed forms, the conventions at x = 0 and -inf), logsumexp's
axis/b/keepdims/return_sign, and each function under jit and vmap."""
import numpy as np
import pytest
import scipy.special as sp

import fxgrad as fx
import fxgrad.numpy as fnp
import fxgrad.scipy.special as fsp
from fxgrad.core.errors import FxTypeError, FxValueError
from fxgrad.test_util import check_grads, check_jit, check_vmap

WIDE = np.concatenate([np.linspace(-30.0, 30.0, 601) + 0.05, [-1e300, -700.0, -1e-300, 0.0,
                                                             1e-300, 700.0, 1e300]])
POSITIVE = np.concatenate([np.geomspace(1e-300, 1e300, 121), np.linspace(0.05, 30.0, 300)])
UNIT = np.concatenate([np.linspace(0.0, 1.0, 1001), [1e-300, 1e-17, 0.5 + 1e-12, 1 - 1e-16]])
EDGES = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0])

# name, fxgrad function, scipy reference, inputs
UNARY = [
    ("erf", fsp.erf, sp.erf, WIDE),
    ("erfc", fsp.erfc, sp.erfc, WIDE[np.abs(WIDE) < 26.0]),   # scipy's erfc flushes to 0 there
    ("gammaln", fsp.gammaln, sp.gammaln, np.concatenate([POSITIVE, WIDE[WIDE < 0]])),
    ("digamma", fsp.digamma, sp.psi, POSITIVE),
    ("polygamma1", lambda x: fsp.polygamma(1, x), lambda x: sp.polygamma(1, x), POSITIVE[60:]),
    ("polygamma4", lambda x: fsp.polygamma(4, x), lambda x: sp.polygamma(4, x), POSITIVE[60:]),
    ("expit", fsp.expit, sp.expit, WIDE),
    ("logit", fsp.logit, sp.logit, UNIT),
    ("softplus", fsp.softplus, lambda x: np.logaddexp(0.0, x), WIDE),
]
BINARY = [
    ("xlogy", fsp.xlogy, sp.xlogy),
    ("xlog1py", fsp.xlog1py, sp.xlog1py),
]


def _ids(cases):
    return [c[0] for c in cases]


@pytest.mark.parametrize("name, fn, ref, xs", UNARY, ids=_ids(UNARY))
def test_values_match_scipy(name, fn, ref, xs):
    edges = np.delete(EDGES, 2) if name in ("gammaln", "polygamma1", "polygamma4") else EDGES
    with np.errstate(all="ignore"):
        np.testing.assert_allclose(fn(xs), ref(xs), rtol=1e-13, atol=0)
        np.testing.assert_allclose(fn(edges), ref(edges), rtol=1e-13, atol=0)


def test_deliberate_differences_from_scipy_at_minus_infinity():
    assert fsp.gammaln(-np.inf) == np.inf            # C99's lgamma; scipy says -inf
    assert np.isnan(fsp.polygamma(1, -np.inf))       # no limit; scipy says inf
    assert fsp.polygamma(1, np.float32(2.0)).dtype == np.float32   # scipy: float64


def test_digamma_and_polygamma_for_negative_arguments():
    x = np.array([-0.3, -0.7, -1.2, -2.5, -5.9, -12.3])
    np.testing.assert_allclose(fsp.digamma(x), sp.psi(x), rtol=1e-13)
    for n in (1, 2, 3):
        np.testing.assert_allclose(fsp.polygamma(n, x), sp.polygamma(n, x), rtol=1e-12)
    # reflection, not a sum of ~|x| terms: trigamma(-k - 1/2) = pi^2 - trigamma(k + 3/2)
    np.testing.assert_allclose(fsp.polygamma(1, -1e7 - 0.5), np.pi ** 2 - sp.polygamma(1, 1e7 + 1.5),
                               rtol=1e-15)


def test_polygamma_zero_is_digamma_and_the_order_is_static():
    np.testing.assert_array_equal(fsp.polygamma(0, POSITIVE), fsp.digamma(POSITIVE))
    assert fsp.polygamma(np.int64(2), 1.0) == fsp.polygamma(2, 1.0)
    with pytest.raises(FxTypeError, match="polygamma: the order n must be a static Python integer"):
        fsp.polygamma(1.0, 1.0)
    with pytest.raises(FxValueError, match="polygamma: the order n must be >= 0, got -1"):
        fsp.polygamma(-1, 1.0)


def _binary_grid():
    x = np.array([0.0, -0.0, 1e-300, 0.5, -2.0, 3e5, np.nan, np.inf])
    y = np.array([0.0, 1e-300, 0.3, 1.0, 2.0, 1e300, -1.0, -0.5, np.nan, np.inf])
    return np.meshgrid(x, y)


@pytest.mark.parametrize("name, fn, ref", BINARY, ids=_ids(BINARY))
def test_binary_values_match_scipy(name, fn, ref):
    x, y = _binary_grid()
    with np.errstate(all="ignore"):
        np.testing.assert_allclose(fn(x, y), ref(x, y), rtol=1e-15, atol=0)
    np.testing.assert_allclose(fn(2.0, np.array([1e-20, 3.0])), ref(2.0, np.array([1e-20, 3.0])),
                               rtol=1e-15)


ALL = [c[:3] for c in UNARY] + BINARY


@pytest.mark.parametrize("name, fn, ref", ALL, ids=_ids(ALL))
@pytest.mark.parametrize("dtype", [np.float32, np.int64], ids=["f32", "i64"])
def test_dtypes_follow_scipy(name, fn, ref, dtype):
    args = [np.array([1, 2], dtype)] * (2 if name.startswith("xlog") else 1)
    if name == "logit":
        args = [np.array([0.25, 0.5]).astype(dtype)]
    with np.errstate(divide="ignore"):   # logit(0) = -inf
        out, expected = fn(*args), ref(*args)
    if name.startswith("polygamma") and dtype == np.float32:
        expected = expected.astype(np.float32)   # scipy's polygamma is no ufunc: float64
    assert isinstance(out, np.ndarray) and out.dtype == expected.dtype
    np.testing.assert_allclose(out, expected, rtol=1e-6 if dtype == np.float32 else 1e-14)


# ----------------------------------------------------------------------------- gradients

def _inputs(name, rng):
    x = rng.uniform(0.2, 0.8, (4,)) if name == "logit" else rng.uniform(0.3, 3.0, (4,))
    return (x, rng.uniform(0.3, 3.0, (4,))) if name.startswith("xlog") else (x,)


@pytest.mark.parametrize("name, fn, ref", ALL, ids=_ids(ALL))
def test_check_grads_order_2(name, fn, ref):
    check_grads(fn, _inputs(name, np.random.default_rng(0)), order=2, modes=("fwd", "rev"))


DERIVATIVES = [
    ("expit", fsp.expit, lambda x: sp.expit(x) * sp.expit(-x)),
    ("logit", fsp.logit, lambda p: 1 / (p * (1 - p))),
    ("softplus", fsp.softplus, sp.expit),
    ("gammaln", fsp.gammaln, sp.psi),
    ("erfc", fsp.erfc, lambda x: -2 / np.sqrt(np.pi) * np.exp(-x * x)),
]


@pytest.mark.parametrize("name, fn, derivative", DERIVATIVES, ids=_ids(DERIVATIVES))
def test_derivatives_match_closed_forms(name, fn, derivative):
    x = np.array([0.01, 0.3, 0.5, 0.52, 0.99]) if name == "logit" else np.array(
        [-40.0, -3.0, -0.5, 0.0, 0.5, 3.0, 4.0])
    if name == "gammaln":
        x = x + 40.5
    np.testing.assert_allclose(fx.vmap(fx.grad(fn))(x), derivative(x), rtol=1e-13, atol=1e-300)


def test_softplus_second_derivative_at_zero_and_stable_tails():
    assert fx.grad(fx.grad(fsp.softplus))(0.0) == 0.25
    x = np.array([-1e4, -800.0, 800.0, 1e4, -np.inf, np.inf])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        np.testing.assert_array_equal(fsp.softplus(x), [0.0, 0.0, 800.0, 1e4, 0.0, np.inf])
        np.testing.assert_array_equal(fx.vmap(fx.grad(fsp.softplus))(x[:4]), [0.0, 0.0, 1.0, 1.0])


def test_logit_is_accurate_near_one_half_and_finite_gradients_at_the_ends():
    p = 0.5 + 1e-12
    np.testing.assert_allclose(fsp.logit(p), np.log1p(2 * (p - 0.5) / (1 - p)), rtol=1e-15)
    with np.errstate(divide="ignore"):
        np.testing.assert_array_equal(fsp.logit(np.array([0.0, 1.0])), [-np.inf, np.inf])
    np.testing.assert_allclose(fx.grad(fsp.logit)(0.5), 4.0, rtol=1e-15)
    np.testing.assert_allclose(fx.grad(fsp.logit)(1e-300), 1e300, rtol=1e-15)   # not NaN
    with np.errstate(divide="ignore"):
        assert fx.grad(fsp.logit)(0.0) == np.inf


def test_xlogy_derivative_conventions():
    assert fx.grad(fsp.xlogy)(0.0, 3.0) == np.log(3.0)
    assert fx.grad(fsp.xlogy, argnums=1)(0.0, 3.0) == 0.0
    assert fx.grad(fsp.xlog1py)(0.0, 2.0) == np.log(3.0)
    check_grads(lambda y: fsp.xlogy(2.0, y), (np.array([0.5, 2.0]),), order=2)


# ----------------------------------------------------------------------------- logsumexp

LSE_CASES = [   # name, shape, kwargs (b is drawn with the shape named there)
    ("all", (3, 4), {}),
    ("axis 0", (3, 4), {"axis": 0}),
    ("axis -1 keepdims", (3, 4), {"axis": -1, "keepdims": True}),
    ("axes (0, 2)", (2, 3, 4), {"axis": (0, 2)}),
    ("keepdims all", (2, 3), {"keepdims": True}),
    ("b", (3, 4), {"axis": 1, "b": (3, 4)}),
    ("b broadcast", (3, 4), {"axis": 0, "b": (4,)}),
    ("vector", (5,), {}),
    ("scalar", (), {}),
]


def _lse_args(shape, kwargs, rng):
    a = rng.normal(0.0, 3.0, shape)
    kw = dict(kwargs)
    if "b" in kw:
        kw["b"] = rng.uniform(0.5, 2.0, kw["b"])
    return a, kw


@pytest.mark.parametrize("name, shape, kwargs", LSE_CASES, ids=_ids(LSE_CASES))
def test_logsumexp_matches_scipy_and_differentiates(name, shape, kwargs):
    a, kw = _lse_args(shape, kwargs, np.random.default_rng(1))
    out = fsp.logsumexp(a, **kw)
    expected = sp.logsumexp(a, **kw)
    assert np.shape(out) == np.shape(expected)
    np.testing.assert_allclose(out, expected, rtol=1e-14)
    check_grads(lambda x: fsp.logsumexp(x, **kw), (a,), order=2)
    if "b" in kw:
        check_grads(lambda b: fsp.logsumexp(a, **{**kw, "b": b}), (kw["b"],), order=2)


def test_logsumexp_return_sign_with_negative_weights():
    a = np.array([[1.0, 2.0, 0.5], [0.3, -1.0, 2.0]])
    b = np.array([[1.0, -2.0, 1.0], [1.0, 1.0, 0.5]])
    out, sign = fsp.logsumexp(a, axis=1, b=b, return_sign=True)
    expected, expected_sign = sp.logsumexp(a, axis=1, b=b, return_sign=True)
    np.testing.assert_allclose(out, expected, rtol=1e-14)
    np.testing.assert_array_equal(sign, expected_sign)
    check_grads(lambda x: fsp.logsumexp(x, axis=1, b=b, return_sign=True)[0], (a,), order=2)
    with np.errstate(invalid="ignore"):
        assert np.isnan(fsp.logsumexp(a[0], b=b[0]))   # a negative sum without return_sign


def test_logsumexp_with_infinities():
    a = np.array([[0.0, -np.inf, np.log(3.0)], [-np.inf] * 3, [np.inf, 1.0, 0.0]])
    with np.errstate(all="ignore"):
        np.testing.assert_allclose(fsp.logsumexp(a, axis=1), sp.logsumexp(a, axis=1), rtol=1e-15)
    np.testing.assert_array_equal(fx.grad(fsp.logsumexp)(a[0]), [0.25, 0.0, 0.75])
    hessian = fx.hessian(fsp.logsumexp)(a[0])
    assert np.all(np.isfinite(hessian)) and np.all(hessian[1] == 0) and np.all(hessian[:, 1] == 0)


def test_logsumexp_keeps_digits_when_one_term_dominates():
    a = np.array([0.0, -40.0, -50.0])
    np.testing.assert_allclose(fsp.logsumexp(a), np.log1p(np.exp(-40.0) + np.exp(-50.0)),
                               rtol=1e-15)
    assert fsp.logsumexp(np.array([1e300, 1e300])) == 1e300 + np.log(2.0)


def test_logsumexp_dtypes_and_large_values():
    a32 = np.array([1000.0, 1000.0], np.float32)
    out = fsp.logsumexp(a32)
    assert out.dtype == np.float32 and np.isclose(out, 1000.0 + np.log(2.0))
    assert fsp.logsumexp(np.arange(3)).dtype == np.float64
    assert fsp.logsumexp(fnp.ones(2), axis=()).shape == (2,)


# ----------------------------------------------------------------------------- jit, vmap

def _public_table(x, p, a, b):
    out = {name: fn(x) for name, fn, *_ in UNARY if name != "logit"}
    out["logit"] = fsp.logit(p)
    out.update({name: fn(x, p) for name, fn, _ in BINARY})
    out["logsumexp"] = fsp.logsumexp(a, axis=1, b=b)
    out["logsumexp sign"] = fsp.logsumexp(a, axis=0, b=b - 1.0, keepdims=True, return_sign=True)
    out["logsumexp all"] = fsp.logsumexp(a)
    out["grad logsumexp"] = fx.grad(lambda v: fsp.logsumexp(v))(a)
    out["grad softplus + logit"] = fx.grad(lambda v: fnp.sum(fsp.softplus(v) * fsp.logit(p)))(x)
    return out


def test_jit_matches_eager():
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.uniform(0.1, 5.0, 6), [0.0, 800.0, -800.0, 1e-300]])
    p = np.concatenate([rng.uniform(0.0, 1.0, 6), [0.0, 1.0, 0.5, 1e-300]])
    a = np.array([[0.0, -np.inf, 2.0], [1.0, 3.0, -1.0]])
    with np.errstate(all="ignore"):
        check_jit(_public_table, (x, p, a, rng.uniform(0.5, 2.0, (2, 3))), rtol=1e-13,
                  atol=1e-300)


VMAPPED = ALL + [("logsumexp", lambda x: fsp.logsumexp(x, axis=-1), None)]


@pytest.mark.parametrize("name, fn, ref", VMAPPED, ids=_ids(VMAPPED))
def test_vmap_matches_loop(name, fn, ref):
    check_vmap(fn, lambda seed: tuple(v.reshape(2, 2) for v in _inputs(name, np.random.default_rng(seed))),
               rtol=1e-14)
