"""Special-function primitives: values against scipy, derivatives to order 2 in both modes
and nested derivatives against closed forms, dtype preservation and errors; the numba
kernels (digamma, polygamma) against eager evaluation over edges and wide ranges, jit of
derivative programs; vmap against a loop over examples."""
import numpy as np
import pytest
import scipy.special as sp

import fxgrad as fx
from fxgrad.core.errors import FxTypeError, FxValueError
from fxgrad.primitives import special
from fxgrad.test_util import check_grads, check_jit, check_vmap
from .helpers import case_ids


def _any(rng, shape):
    return rng.uniform(-2.0, 2.0, shape)


def _positive(rng, shape):
    return rng.uniform(0.3, 4.0, shape)


def _off_poles(rng, shape):
    """Negative and positive values at least 0.2 away from the poles 0, -1, -2, ..."""
    return rng.integers(-3, 3, shape) + rng.uniform(0.2, 0.8, shape)


def _polygamma(n):
    fn = lambda x: special.polygamma(n, x)
    fn.__name__ = f"polygamma{n}"
    return fn


# name, wrapper, scipy reference, input domain
UNARY = [
    ("erf", special.erf, sp.erf, _any),
    ("erfc", special.erfc, sp.erfc, _any),
    ("lgamma", special.lgamma, sp.gammaln, _off_poles),
    ("digamma", special.digamma, sp.psi, _off_poles),
    ("polygamma1", _polygamma(1), lambda x: sp.polygamma(1, x), _positive),
    ("polygamma2", _polygamma(2), lambda x: sp.polygamma(2, x), _off_poles),
    ("polygamma3", _polygamma(3), lambda x: sp.polygamma(3, x), _positive),
]
BINARY = [
    ("xlogy", special.xlogy, sp.xlogy, _positive),
    ("xlog1py", special.xlog1py, sp.xlog1py, _positive),
]
SHAPES = [(), (3, 4)]


def _args(name, domain, rng, shape):
    if name.startswith("xlog"):
        return _any(rng, shape), domain(rng, shape)
    return (domain(rng, shape),)


ALL = UNARY + BINARY


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name, fn, ref, domain", ALL, ids=case_ids(ALL))
def test_values_match_scipy(name, fn, ref, domain, shape):
    args = _args(name, domain, np.random.default_rng(0), shape)
    out = fn(*args)
    assert np.shape(out) == shape
    np.testing.assert_allclose(out, ref(*args), rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name, fn, ref, domain", ALL, ids=case_ids(ALL))
def test_check_grads_order_2(name, fn, ref, domain, shape):
    args = _args(name, domain, np.random.default_rng(1), shape)
    check_grads(fn, args, order=2, modes=("fwd", "rev"))


@pytest.mark.parametrize("name, fn, ref, domain", ALL, ids=case_ids(ALL))
def test_float32_preserved(name, fn, ref, domain):
    args = tuple(a.astype(np.float32) for a in _args(name, domain, np.random.default_rng(2), (5,)))
    out = fn(*args)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, ref(*(a.astype(np.float64) for a in args)), rtol=1e-5, atol=1e-6)
    _, t = fx.jvp(fn, args, tuple(np.ones(5, np.float32) for _ in args))
    assert t.dtype == np.float32
    assert fx.grad(fn)(*(a[0] for a in args)).dtype == np.float32


def _closed_form_lgamma(n, x):
    return sp.psi(x) if n == 1 else sp.polygamma(n - 1, x)


def _closed_form_erf(n, x):
    # d^n/dx^n erf = (-1)^(n-1) 2/sqrt(pi) H_(n-1)(x) exp(-x^2), physicists' Hermite H
    hermite = np.polynomial.hermite.Hermite.basis(n - 1)(x)
    return (-1) ** (n - 1) * 2 / np.sqrt(np.pi) * hermite * np.exp(-x * x)


CLOSED_FORMS = [
    ("lgamma", special.lgamma, _closed_form_lgamma),
    ("erf", special.erf, _closed_form_erf),
    ("erfc", special.erfc, lambda n, x: -_closed_form_erf(n, x)),
]


@pytest.mark.parametrize("name, fn, closed_form", CLOSED_FORMS, ids=case_ids(CLOSED_FORMS))
def test_nested_grad_to_order_4_matches_closed_form(name, fn, closed_form):
    f = fn
    for n in range(1, 5):
        f = fx.grad(f)
        for x in (-1.3, 0.4, 2.6):
            np.testing.assert_allclose(f(x), closed_form(n, x), rtol=1e-12, atol=1e-13)


def test_xlogy_is_zero_at_x_zero_with_jax_derivatives():
    x, y = np.zeros(4), np.array([0.0, 2.0, -1.0, np.nan])
    np.testing.assert_array_equal(special.xlogy(x, y), [0.0, 0.0, 0.0, np.nan])
    np.testing.assert_array_equal(special.xlog1py(x, y - 1.0), [0.0, 0.0, 0.0, np.nan])
    dx, dy = fx.grad(special.xlogy, argnums=(0, 1))(0.0, 2.0)
    assert dx == np.log(2.0) and dy == 0.0
    dx, dy = fx.grad(special.xlog1py, argnums=(0, 1))(0.0, 2.0)
    assert dx == np.log(3.0) and dy == 0.0
    assert fx.grad(special.xlogy, argnums=1)(3.0, 2.0) == 1.5


def test_xlogy_broadcasts_a_scalar_operand():
    y = np.array([0.5, 1.5, 3.0])
    np.testing.assert_allclose(special.xlogy(2.0, y), 2.0 * np.log(y), rtol=1e-15)
    check_grads(lambda a, b: special.xlogy(a, b), (np.array(0.7), y), order=2)
    check_grads(lambda a, b: special.xlog1py(a, b), (y, np.array(0.7)), order=2)


@pytest.mark.parametrize("name, fn, ref, domain", ALL, ids=case_ids(ALL))
def test_integer_operand_is_rejected_with_the_fix(name, fn, ref, domain):
    base = name.rstrip("0123456789")
    with pytest.raises(FxTypeError, match=rf"{base} requires real floating-point operands, "
                                          r"got int64; convert with \.astype\(float\)"):
        fn(*(np.arange(3) for _ in _args(name, domain, np.random.default_rng(0), ())))


def test_complex_operand_is_rejected():
    with pytest.raises(FxTypeError, match="erf requires real floating-point operands, got complex128"):
        special.erf(np.ones(2, complex))


def test_binary_shape_and_dtype_errors():
    with pytest.raises(FxTypeError, match=r"xlogy: incompatible operand shapes \(2,\), \(3,\)"):
        special.xlogy(np.ones(2), np.ones(3))
    with pytest.raises(FxTypeError, match="xlogy: operand dtypes differ"):
        special.xlogy(np.ones(2), np.ones(2, np.float32))


@pytest.mark.parametrize("n", [0, -1, 1.0, True])
def test_polygamma_order_must_be_a_positive_int(n):
    with pytest.raises(FxValueError, match=r"polygamma: the order n must be a static integer >= 1"):
        special.polygamma(n, 1.0)


def test_programs_print_primitive_names():
    text = str(fx.make_jaxpr(fx.grad(special.digamma))(1.0))
    assert "polygamma[n=1] a" in text


# ----------------------------------------------------------------------------- jit
# One jitted function per table: a numba compilation costs about a second.

EDGES = [0.0, -0.0, -1.0, -2.0, -7.0, np.nan, np.inf, -np.inf, 1e-300, 1e-310, 5e-324, 1e300,
         -1e300, 30.0, -30.0, 0.5, -0.5, -2.5, -170.5, -170.2, 1.4616321449683623, 1.2, 1.9,
         170.0, 200.0, 2e-8, -3.7]
WIDE = np.concatenate([np.linspace(-40.0, 40.0, 801) + 0.05, np.geomspace(1e-8, 1e8, 161),
                       np.linspace(1.0, 2.0, 101)])   # 1 to 2: the digamma root's window
ORDERS = (1, 2, 3, 6, 15)


def _kernel_table(x, edges, wide, y):
    out = {name: fn(x) for name, fn, *_ in UNARY}
    out.update({name: fn(x, y) for name, fn, *_ in BINARY})
    for name in ("erf", "erfc", "lgamma", "digamma"):
        fn = getattr(special, name)
        out[f"{name} edges"], out[f"{name} wide"] = fn(edges), fn(wide)
    for n in ORDERS:
        out[f"polygamma{n} edges"] = special.polygamma(n, edges)
        out[f"polygamma{n} wide"] = special.polygamma(n, wide)
    zeros = np.zeros(edges.shape, edges.dtype)
    out["xlogy edges"], out["xlog1py edges"] = special.xlogy(zeros, edges), special.xlog1py(
        zeros, edges)
    out["xlogy x edges"] = special.xlogy(edges, np.full(edges.shape, 2.0, edges.dtype))
    out["digamma ()"], out["xlogy ()"] = special.digamma(x[0, 0]), special.xlogy(x[0, 0], y[0, 0])
    return out


def _kernel_args(dtype):
    x = _off_poles(np.random.default_rng(20), (3, 4))
    y = _positive(np.random.default_rng(21), (3, 4))
    return tuple(np.asarray(a, dtype) for a in (x, EDGES, WIDE, y))


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 1e-6)],
                         ids=["f64", "f32"])
def test_jit_matches_eager(unsimplified, ieee_subnormals, dtype, rtol):
    # EDGES has subnormal inputs; kernels flush them by default (see docs/jit.md)
    with np.errstate(all="ignore"):
        # atol: libm's erfc has subnormal results where scipy's flushes to 0
        check_jit(_kernel_table, _kernel_args(dtype), rtol=rtol, atol=np.finfo(dtype).tiny)


def _derivative_table(s, x):
    out = {f"{name} grad2": fx.grad(fx.grad(fn))(s) for name, fn, *_ in UNARY}
    out.update({f"{name} hessian": fx.hessian(fn, argnums=(0, 1))(s, s + 1.0)
                for name, fn, *_ in BINARY})
    out["digamma vjp"] = fx.vjp(special.digamma, x)[1](x)
    return out


def test_jit_of_derivative_programs():
    x = _positive(np.random.default_rng(22), (5,))
    check_jit(_derivative_table, (np.float64(0.8), x), rtol=1e-12)


# ----------------------------------------------------------------------------- vmap

@pytest.mark.parametrize("name, fn, ref, domain", ALL, ids=case_ids(ALL))
def test_vmap_matches_loop(name, fn, ref, domain):
    check_vmap(fn, lambda seed: _args(name, domain, np.random.default_rng(seed), (3,)), 1e-14)


def test_vmap_of_grad():
    xs = _positive(np.random.default_rng(23), 5)
    f = lambda x: special.lgamma(x) * special.erf(x) + special.xlogy(x, x + 1.0)
    np.testing.assert_allclose(fx.vmap(fx.grad(f))(xs), [fx.grad(f)(x) for x in xs], rtol=1e-13)
