"""Size and values of simplified higher-order derivative programs.

The k-th derivative program of sin*exp, tanh, logistic, x**5 and exp(sin x) as traced grows
exponentially in k; simplified (rewrites, then the polynomial normal form) it grows at
most linearly. Simplified and traced programs compute the same values up to rounding,
keep float32, and stay non-finite where the traced ones are.
"""
import functools
import warnings

import numpy as np
import pytest

import fxgrad as fx
import fxgrad.numpy as fnp
from fxgrad.config import config
from fxgrad.primitives.unary import logistic

FUNCTIONS = {
    "sin*exp": lambda x: fnp.sin(x) * fnp.exp(x),
    "tanh": fnp.tanh,
    "logistic": lambda x: 1 / (1 + fnp.exp(-x)),
    "x**5": lambda x: x ** 5,
    "exp(sin)": lambda x: fnp.exp(fnp.sin(x)),
}
ORDERS = range(1, 9)

# the bound a + b*k on the simplified size of the k-th derivative (what the pass achieves)
SIZE_BOUND = {"sin*exp": (7, 0), "tanh": (3, 1), "logistic": (2, 4), "x**5": (2, 0),
              "exp(sin)": (4, 2)}


@functools.lru_cache(maxsize=None)
def programs(name, dtype=np.float64):
    """[(traced, simplified)] for the derivatives of order 1..8 of FUNCTIONS[name]."""
    f, out = FUNCTIONS[name], []
    for _ in ORDERS:
        f = fx.grad(f)
        traced = fx.make_jaxpr(f)(dtype(0.7))
        out.append((traced, fx.simplify(traced)))
    return out


@pytest.mark.parametrize("name", FUNCTIONS)
def test_simplified_size_grows_at_most_linearly(name):
    a, b = SIZE_BOUND[name]
    sizes = [len(simplified.eqns) for _, simplified in programs(name)]
    assert all(n <= a + b * k for k, n in zip(ORDERS, sizes)), sizes


def test_sixth_derivative_of_sin_exp_has_at_most_forty_equations():
    traced, simplified = programs("sin*exp")[5]
    assert len(traced.eqns) > 500 and len(simplified.eqns) <= 40


@pytest.mark.parametrize("name", ["sin*exp", "tanh", "logistic", "exp(sin)"])
def test_traced_size_grows_exponentially(name):
    sizes = [len(traced.eqns) for traced, _ in programs(name)]
    assert sizes[7] > 2 ** 7 * sizes[0]


@pytest.mark.parametrize("name", FUNCTIONS)
def test_simplified_and_traced_programs_agree(name):
    points = np.random.default_rng(0).uniform(-4.0, 4.0, 4)
    for traced, simplified in programs(name):
        for x in points:
            expected, got = float(traced(x)[0]), float(simplified(x)[0])
            assert abs(got - expected) <= 1e-9 * max(1.0, abs(expected)), (x, expected, got)


def test_derivatives_of_sin_exp_match_the_closed_form():
    # (d/dx)^k e^x sin x = 2^(k/2) e^x sin(x + k pi/4)
    for k, (_, simplified) in zip(ORDERS, programs("sin*exp")):
        for x in (-1.3, 0.4, 2.2):
            exact = 2 ** (k / 2) * np.exp(x) * np.sin(x + k * np.pi / 4)
            np.testing.assert_allclose(simplified(x)[0], exact, rtol=1e-13, atol=1e-13)


def test_tanh_derivatives_stay_accurate_where_tanh_saturates():
    # written in u = 1 - tanh**2, the derivatives keep their relative accuracy as u -> 0
    for traced, simplified in programs("tanh"):
        for x in (-9.0, 6.5, 12.0):
            expected, got = float(traced(x)[0]), float(simplified(x)[0])
            assert abs(got - expected) <= 1e-9 * abs(expected), (x, expected, got)


def test_float32_programs_stay_float32():
    for traced, simplified in programs("exp(sin)", np.float32)[:4]:
        got = simplified(np.float32(0.3))[0]
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, traced(np.float32(0.3))[0], rtol=1e-5)


@pytest.mark.parametrize("name", FUNCTIONS)
def test_non_finite_results_stay_non_finite(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for traced, simplified in programs(name)[:5]:
            for x in (np.nan, np.inf, -np.inf, 800.0, -800.0):
                expected, got = float(traced(x)[0]), float(simplified(x)[0])
                assert np.isfinite(got) == np.isfinite(expected), (x, expected, got)
                if np.isfinite(expected):
                    assert abs(got - expected) <= 1e-9 * max(1.0, abs(expected))


def test_logistic_primitive_derivatives_are_polynomials_in_sigma_and_one_minus_sigma():
    f, sizes = logistic, []
    for k in range(1, 6):
        f = fx.grad(f)
        traced = fx.make_jaxpr(f)(0.7)
        simplified = fx.simplify(traced)
        sizes.append(len(simplified.eqns))
        for x in (-30.0, -2.0, 0.5, 30.0):
            expected, got = float(traced(x)[0]), float(simplified(x)[0])
            assert abs(got - expected) <= 1e-12 * abs(expected), (k, x, expected, got)
    assert all(n <= 4 * k for k, n in enumerate(sizes, 1)), sizes


# ---------------------------------------------------------------- seeds and small programs

def test_gradient_of_x_squared_is_one_multiplication():
    simplified = fx.simplify(fx.make_jaxpr(fx.grad(lambda x: x ** 2))(4.0))
    assert [str(e.prim.name) for e in simplified.eqns] == ["mul"]
    assert "mul 2.0 a" in str(simplified)
    assert float(simplified(4.0)[0]) == 8.0


def test_derivative_of_x_squared_plus_x_minus_two_is_two_x_plus_one():
    simplified = fx.simplify(fx.make_jaxpr(fx.grad(lambda x: x * x + x - 2))(4.0))
    assert len(simplified.eqns) == 2
    for x in (-1.5, 0.0, 3.0):
        assert float(simplified(x)[0]) == 2 * x + 1


def test_cancelled_terms_keep_nan_unless_assume_finite():
    f = lambda x: (x + 1.0) * (x + 1.0) - x * x - 2.0 * x   # noqa: E731  (== 1)
    closed = fx.make_jaxpr(f)(3.0)
    log = []
    simplified = fx.simplify(closed, log)
    assert float(simplified(3.0)[0]) == 1.0 and np.isnan(simplified(np.nan)[0])
    assert any(line.startswith("polynomial:") for line in log)
    config.update("simplify_assume_finite", True)
    try:
        assert fx.simplify(closed).eqns == [] and float(fx.simplify(closed)(np.nan)[0]) == 1.0
    finally:
        config.update("simplify_assume_finite", False)


def test_a_program_with_no_smaller_polynomial_form_is_kept():
    def f(x, y):
        z = x * y
        return z + fnp.sin(z - 1.0)
    closed = fx.make_jaxpr(f)(1.0, 2.0)
    log = []
    assert len(fx.simplify(closed, log).eqns) == len(closed.eqns) == 4
    assert not any(line.startswith("polynomial:") for line in log)


def _all_eqns(program):
    """Equations of a program including those of sub-programs (scan bodies)."""
    program = getattr(program, "program", program)
    return sum(1 + sum(_all_eqns(v) for v in e.params.values() if isinstance(v, fx.Program))
               for e in program.eqns)


def test_hessian_of_an_array_function_shrinks_and_agrees():
    def f(x):
        return fnp.sum(fnp.tanh(x) ** 3 * fnp.sin(x) + x * x)
    x = np.random.default_rng(1).normal(size=4)
    traced = fx.make_jaxpr(fx.hessian(f))(x)
    simplified = fx.simplify(traced)
    assert _all_eqns(simplified) <= _all_eqns(traced) * 3 // 4
    np.testing.assert_allclose(simplified(x)[0], traced(x)[0], rtol=1e-12, atol=1e-12)


def test_division_becomes_a_reciprocal_generator():
    f = lambda x: x / (x + 1.0) + 2.0 * x / (x + 1.0) - x / 3.0   # noqa: E731
    g = fx.grad(fx.grad(f))
    traced = fx.make_jaxpr(g)(0.5)
    simplified = fx.simplify(traced)
    assert len(simplified.eqns) < len(traced.eqns)
    for x in (-3.0, 0.5, 4.0):
        np.testing.assert_allclose(simplified(x)[0], traced(x)[0], rtol=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert not np.isfinite(simplified(-1.0)[0]) and not np.isfinite(traced(-1.0)[0])
