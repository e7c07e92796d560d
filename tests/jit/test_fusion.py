"""Fused loops (fxgrad/jit/fusion.py): reductions over many elements run in blocks —
a vectorizable loop per block, partial results folded in block order — and must give
numpy's values (NaN included), the same bits with one thread or many, and float32 sums
as accurate as numpy's."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fxgrad as fx
import fxgrad.numpy as fnp
from fxgrad.jit import fusion

BLOCK = fusion.BLOCK
SIZES = [2 * BLOCK, 2 * BLOCK + 3, 10 * BLOCK - 1, 100_003]   # computed values in blocks
STANDALONE = fusion.STANDALONE_MIN   # operands from this size


def _data(n, dtype=np.float64, seed=0):
    return np.random.default_rng(seed).standard_normal(n).astype(dtype)


REDUCTIONS = {   # name: (fxgrad function, numpy function)
    "sum of an operand": (fnp.sum, np.sum),
    "max of an operand": (fnp.max, np.max),
    "min of an operand": (fnp.min, np.min),
    "sum of exp": (lambda x: fnp.sum(fnp.exp(x)), lambda x: np.sum(np.exp(x))),
    "max of sin": (lambda x: fnp.max(fnp.sin(x) * x), lambda x: np.max(np.sin(x) * x)),
    "two reductions and a stored value": (
        lambda x: (fnp.sum(fnp.tanh(x)), fnp.min(x), fnp.tanh(x) * 2.0),
        lambda x: (np.sum(np.tanh(x)), np.min(x), np.tanh(x) * 2.0)),
}


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("name", REDUCTIONS)
def test_blocked_reductions_give_numpys_values(name, size):
    f, ref = REDUCTIONS[name]
    x = _data(size if "operand" not in name else size + STANDALONE)
    source = fx.jit(f).lower(x).as_text()
    assert "part" in source and "min(1024" in source   # the blocked form
    got, want = fx.tree_util.tree_leaves(fx.jit(f)(x)), fx.tree_util.tree_leaves(ref(x))
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-12)


@pytest.mark.parametrize("where", [0, BLOCK - 1, BLOCK, 3 * BLOCK + 2, -1])
@pytest.mark.parametrize("name", ["max", "min", "sum"])
def test_a_nan_anywhere_wins(name, where):
    x = _data(STANDALONE + 3 * BLOCK + 3)
    x[where] = np.nan
    assert np.isnan(fx.jit(getattr(fnp, name))(x))
    assert np.isnan(fx.jit(lambda x: getattr(fnp, name)(x * 2.0))(x))


def test_integer_and_boolean_sums_are_exact():
    n = np.arange(STANDALONE + 5 * BLOCK + 7, dtype=np.int64)
    assert fx.jit(fnp.sum)(n) == n.sum() and fx.jit(fnp.max)(n) == n.max()
    assert fx.jit(lambda n: fnp.sum(n * n))(n) == (n * n).sum()


def test_float32_sums_accumulate_in_float64():
    x = np.full(1_000_000, 0.1, np.float32)   # a float32 accumulator would drift by 1%
    got = fx.jit(fnp.sum)(x)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, np.sum(x.astype(np.float64)), rtol=1e-7)
    got = fx.jit(lambda x: fnp.sum(x * 2.0))(x)
    np.testing.assert_allclose(got, 2 * np.sum(x.astype(np.float64)), rtol=1e-7)


def test_the_same_bits_with_one_thread_or_many(monkeypatch):
    x = _data(fusion.PARALLEL_MIN * 2 + 5)
    f = lambda x: (fnp.sum(fnp.exp(-x * x)), fnp.max(x), fnp.sum(x))   # noqa: E731
    many = fx.jit(f)(x)
    assert "prange" in fx.jit(f).lower(x).as_text()
    monkeypatch.setattr(fx.config, "jit_parallel", False)
    assert "prange" not in fx.jit(f).lower(x).as_text()
    one = fx.jit(f)(x)
    assert [a.tobytes() for a in many] == [a.tobytes() for a in one]


def test_loss_values_use_vector_math_inside_the_blocks():
    from fxgrad.jit import vecmath
    loss = lambda x: fnp.sum(fnp.tanh(x) * fnp.sin(x) ** 2 + fnp.exp(-x * x))   # noqa: E731
    x = _data(10 * BLOCK)
    source = fx.jit(fx.value_and_grad(loss)).lower(x).as_text()
    assert ("vm_tanh" in source) == vecmath.AVAILABLE and "part" in source
    value, grad = fx.jit(fx.value_and_grad(loss))(x)
    np.testing.assert_allclose(value, loss(x), rtol=1e-13)
    np.testing.assert_allclose(grad, fx.grad(loss)(x), rtol=1e-12, atol=1e-15)


def test_small_reductions_keep_one_loop():
    x = _data(2 * BLOCK - 1)
    source = fx.jit(lambda x: fnp.sum(fnp.exp(x))).lower(x).as_text()
    assert "part" not in source
    assert "part" not in fx.jit(fnp.max).lower(_data(STANDALONE - 1)).as_text()
    np.testing.assert_allclose(fx.jit(lambda x: fnp.sum(fnp.exp(x)))(x), np.sum(np.exp(x)),
                               rtol=1e-12)


ELEMENTWISE = {"exp": fnp.exp, "sin": fnp.sin, "tanh": fnp.tanh, "square": lambda v: v * v,
               "shift": lambda v: v - 0.5, "relu": lambda v: fnp.where(v > 0, v, 0.0)}
FOLDS = {"sum": fnp.sum, "max": fnp.max, "min": fnp.min}


@settings(max_examples=12, deadline=None)
@given(st.integers(2 * BLOCK, 3 * BLOCK + 50),
       st.lists(st.sampled_from(sorted(ELEMENTWISE)), min_size=1, max_size=4),
       st.lists(st.sampled_from(sorted(FOLDS)), min_size=1, max_size=3),
       st.booleans(), st.booleans())
def test_random_blocked_loops_match_eager(size, chain, folds, keep_array, float32):
    def f(x):
        values = [x]
        for name in chain:
            values.append(ELEMENTWISE[name](values[-1]))
        out = [FOLDS[name](values[1 + k % (len(values) - 1)]) for k, name in enumerate(folds)]
        return (*out, values[-1] * 2.0) if keep_array else tuple(out)
    x = _data(size, np.float32 if float32 else np.float64, seed=size)
    got, want = fx.jit(f)(x), f(x)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype
        np.testing.assert_allclose(g, w, rtol=2e-5 if float32 else 1e-12,
                                   atol=1e-4 if float32 else 1e-12)


def test_statements_on_a_reduction_wait_for_its_loop():
    def f(x):
        total = fnp.sum(fnp.exp(x))
        scale = total * 2.0 + 1.0        # a scalar statement on the reduction: waits
        y = fnp.sin(x)                   # reads nothing of it: joins the first loop
        largest = fnp.max(y)
        return y * scale, total, largest  # reads it: a second loop
    x = _data(3 * BLOCK)
    body = fx.jit(f).lower(x).as_text()
    assert body.count("for b") == 1 and body.count("prange") == 0   # one blocked loop
    for got, want in zip(fx.jit(f)(x), f(x)):
        np.testing.assert_allclose(got, want, rtol=1e-12)
