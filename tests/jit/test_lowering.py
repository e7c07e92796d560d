"""Lowering choices that exist for compile time or call overhead (fxgrad/jit/lowering.py,
fxgrad/jit/scalarize.py): tiny arrays as scalars outside scans, the output parameter,
no reshape of flat arrays, integer powers as products, no additions of a zero padding.
Each must keep the values."""
import re

import numpy as np
import pytest

import fxgrad as fx
import fxgrad.numpy as fnp
from fxgrad.jit.lowering import TOP_SCALAR_LIMIT


def _source(fun, *args, **kw):
    return fx.jit(fun, **kw).lower(*args).as_text()


def _body(source):
    return source[source.index("def kernel"):]


def _gathered_gradient(p):
    """A gradient gathered from scalars: pads of 1-element slices, added up."""
    a, b, c = p[0], p[1], p[2]
    return a * b + fnp.sin(c) * a + b * c * c


def test_tiny_arrays_outside_scans_are_scalars_not_loops():
    p = np.array([0.5, -1.5, 2.0])
    g = fx.grad(_gathered_gradient)
    body = _body(_source(g, p))
    assert "for " not in body and "np.full" not in body and "np.empty" not in body
    np.testing.assert_allclose(fx.jit(g)(p), g(p), rtol=1e-15)


def test_arrays_above_the_limit_keep_fused_loops():
    n = TOP_SCALAR_LIMIT + 1
    body = _body(_source(lambda x: fnp.sin(x) * 2.0, np.ones(n)))
    assert "for i" in body and f"range({n})" in body


@pytest.mark.parametrize("shape", [(1,), (4,), (2, 2), (1, 3, 1)])
def test_scalarized_output_written_into_out(shape):
    x = np.arange(1.0, 1.0 + np.prod(shape)).reshape(shape)
    f = lambda x: fnp.exp(x) * x                      # noqa: E731
    body = _body(_source(f, x))
    assert ", out):" in body and "np.empty" not in body
    for _ in range(2):                                # the general path, then the hot call
        got = fx.jit(f)(x)
        assert got.shape == shape
        np.testing.assert_allclose(got, f(x), rtol=1e-14)


def test_tiny_output_that_is_an_input_view_is_copied():
    x = np.arange(4.0)
    y = fx.jit(lambda x: fnp.reshape(x, (2, 2)))(x)
    assert not np.shares_memory(x, y)
    np.testing.assert_array_equal(y, x.reshape(2, 2))


def test_zero_size_arrays_are_not_scalarized():
    x = np.ones((0, 3))
    f = fx.jit(fx.grad(lambda x: fnp.sum(x * 2.0) + 1.0))
    assert f(x).shape == (0, 3)


def test_flat_arrays_are_not_reshaped():
    body = _body(_source(lambda x, y: fnp.sin(x) + y, np.ones(10), np.ones(10)))
    assert ".reshape(" not in body
    body = _body(_source(lambda x: fnp.sin(x) * 2.0, np.ones((2, 5))))
    assert ".reshape(10)" in body


@pytest.mark.parametrize("n", [2, 3, 5, 8, -2, -3, 9, 12])
def test_integer_powers_as_numba_multiplies_them(n):
    # numba's own `x ** n` (int_power, exponentiation by squaring) is the reference:
    # products in the same order give the same bits.
    from numba import njit
    x = np.linspace(-3.0, 3.0, 50)
    x = x[x != 0]
    ref = njit(lambda x: x ** n if n > 0 else 1.0 / x ** -n)
    expected = np.array([ref(v) for v in x])
    got = fx.jit(lambda x: x ** n)(x)
    np.testing.assert_array_equal(got, expected)
    body = _body(_source(lambda x: x ** n, x))
    assert (" ** " in body) == (abs(n) > 8)


def test_zero_padding_added_to_values_adds_nothing(monkeypatch):
    g = fx.grad(_gathered_gradient)   # pads of each partial derivative, added up
    p = np.array([0.5, -1.5, 2.0])
    assert _zero_additions(g, p) == []
    np.testing.assert_allclose(fx.jit(g)(p), g(p), rtol=1e-15)
    monkeypatch.setattr(fx.config, "jit_simplify", False)   # no identities without it
    assert _zero_additions(g, p)
    np.testing.assert_allclose(fx.jit(g)(p), g(p), rtol=1e-15)


def _zero_additions(fun, *args):
    """The kernel's lines that add or subtract a hoisted literal zero."""
    lowered = fx.jit(fun).lower(*args)
    source = lowered.as_text()
    zeros = "|".join(f"lit{k}" for k, v in enumerate(lowered.entry.after) if v == 0)
    pattern = re.compile(rf"[+-] ({zeros})\b|\b({zeros}) \+")
    return [line for line in source.splitlines() if zeros and pattern.search(line)]


def test_broadcast_scalars_are_read_as_scalars_in_fused_loops():
    x = np.linspace(-1, 1, 1000)
    relu = lambda x: fnp.where(x > 0, x, 0.0) * fnp.exp(x)   # noqa: E731
    body = _body(_source(relu, x))
    assert "np.full" not in body and body.count("for ") == 1
    np.testing.assert_allclose(fx.jit(relu)(x), np.where(x > 0, x, 0.0) * np.exp(x),
                               rtol=1e-15)
    from fxgrad.scipy.special import logsumexp
    body = _body(_source(logsumexp, x))
    # the peak is a scalar, never filled; both sums after it share one loop
    assert "np.full" not in body and "np.empty" not in body and body.count("for ") == 2
    np.testing.assert_allclose(fx.jit(logsumexp)(x), logsumexp(x), rtol=1e-14)


def test_a_fill_a_statement_needs_is_filled_once():
    A = np.linspace(0, 1, 40 * 30).reshape(40, 30)
    f = lambda x: (fnp.full((30, 40), x[0]) @ A) + x[1]   # noqa: E731
    x = np.array([2.0, 3.0])
    body = _body(_source(f, x))
    assert body.count("np.full") == 1
    np.testing.assert_allclose(fx.jit(f)(x), np.full((30, 40), 2.0) @ A + 3.0, rtol=1e-14)
