"""Reductions against numpy (axis, keepdims, dtype), under tracing, and their derivatives."""
from __future__ import annotations

import numpy as np
import pytest

import fxgrad as fx
import fxgrad.numpy as fnp
from fxgrad.test_util import check_grads

AXES = [None, 0, 1, -1, (0, 2), (0, 1, 2)]

# name, differentiable
REDUCTIONS = [("sum", True), ("mean", True), ("var", True), ("std", True), ("prod", True),
              ("max", True), ("min", True), ("amax", True), ("amin", True), ("ptp", True),
              ("any", False), ("all", False), ("count_nonzero", False)]
NAMES = [n for n, _ in REDUCTIONS]


def data(shape=(2, 3, 4), dtype=np.float64, seed=0) -> np.ndarray:
    x = np.random.default_rng(seed).uniform(0.5, 1.5, shape)
    return (x * np.where(np.arange(x.size).reshape(shape) % 3 == 0, -1, 1)).astype(dtype)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("axis", AXES, ids=str)
@pytest.mark.parametrize("keepdims", [False, True])
def test_matches_numpy(name, axis, keepdims, matches_numpy):
    x = data()
    matches_numpy(getattr(fnp, name)(x, axis=axis, keepdims=keepdims),
                  getattr(np, name)(x, axis=axis, keepdims=keepdims))


DTYPE_CASES = [(n, d) for n in NAMES for d in (np.float32, np.int32, np.int8, np.uint8, bool)
               if not (n == "ptp" and d == bool)]   # numpy has no boolean subtraction


@pytest.mark.parametrize("name,dtype", DTYPE_CASES, ids=str)
def test_dtypes_match_numpy(name, dtype, matches_numpy):
    x = (data() * 3).astype(dtype) if dtype != bool else data() > 0
    matches_numpy(getattr(fnp, name)(x, axis=1), getattr(np, name)(x, axis=1), rtol=1e-5)


def test_ptp_of_bools_raises_like_numpy():
    with pytest.raises(TypeError):
        np.ptp(np.ones(3, bool))
    with pytest.raises(fx.FxTypeError, match="subtract"):
        fnp.ptp(np.ones(3, bool))


@pytest.mark.parametrize("name", NAMES)
def test_traced_value(name, matches_numpy):
    x = data()
    out, _ = fx.jvp(lambda v: getattr(fnp, name)(v, axis=(0, 2)), (x,), (np.ones_like(x),))
    matches_numpy(out, getattr(np, name)(x, axis=(0, 2)))


@pytest.mark.parametrize("name", [n for n, diff in REDUCTIONS if diff])
@pytest.mark.parametrize("axis", [None, 1, (0, 2)], ids=str)
def test_grads(name, axis):
    check_grads(lambda v: getattr(fnp, name)(v, axis=axis), (data(),), order=2)


@pytest.mark.parametrize("kwargs", [{"ddof": 1}, {"dtype": np.float32}])
@pytest.mark.parametrize("name", ["var", "std"])
def test_var_std_options(name, kwargs, matches_numpy):
    x = data()
    matches_numpy(getattr(fnp, name)(x, 1, **kwargs), getattr(np, name)(x, 1, **kwargs),
                  rtol=1e-5)


def test_sum_and_prod_dtype_argument(matches_numpy):
    x = data()
    matches_numpy(fnp.sum(x, 0, dtype=np.float32), np.sum(x, 0, dtype=np.float32), rtol=1e-5)
    matches_numpy(fnp.prod(np.arange(1, 7), dtype=np.int32), np.prod(np.arange(1, 7),
                                                                    dtype=np.int32))


def test_prod_is_exact_and_differentiable_at_zero(matches_numpy):
    x = np.array([[2.0, 0.0, 3.0], [1.0, 4.0, 5.0]])
    matches_numpy(fnp.prod(x, 1), np.prod(x, 1))
    np.testing.assert_allclose(fx.grad(lambda v: fnp.prod(v))(np.array([2.0, 0.0, 3.0])),
                               [0.0, 6.0, 0.0])
    for n in range(1, 9):   # every parity on the way down
        v = np.arange(1.0, n + 1)
        matches_numpy(fnp.prod(v), np.prod(v))
    check_grads(fnp.prod, (x,), order=2)


def test_empty_reductions(matches_numpy):
    e = np.ones((0, 3))
    for name in ("sum", "prod", "any", "all", "count_nonzero"):
        matches_numpy(getattr(fnp, name)(e, axis=0), getattr(np, name)(e, axis=0))
    with pytest.raises(fx.FxTypeError, match="zero-size array"):
        fnp.max(e, axis=0)


@pytest.mark.parametrize("name", ["argmax", "argmin"])
@pytest.mark.parametrize("axis", [None, 0, -1])
@pytest.mark.parametrize("keepdims", [False, True])
def test_arg_extrema(name, axis, keepdims, matches_numpy):
    x = data()
    expected = getattr(np, name)(x, axis=axis, keepdims=keepdims)
    matches_numpy(getattr(fnp, name)(x, axis=axis, keepdims=keepdims), expected)
    out, t = fx.jvp(lambda v: getattr(fnp, name)(v, axis=axis, keepdims=keepdims), (x,),
                    (np.ones_like(x),))
    matches_numpy(out, expected)


@pytest.mark.parametrize("axis", [None, 0, 2])
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int32, bool])
def test_cumsum(axis, dtype, matches_numpy):
    x = data(dtype=dtype) if dtype != bool else data() > 0
    matches_numpy(fnp.cumsum(x, axis), np.cumsum(x, axis), rtol=1e-5)


def test_cumsum_grads():
    check_grads(lambda v: fnp.cumsum(v, 1), (data(),), order=2)
    check_grads(lambda v: fnp.cumsum(v), (data(),), order=2)


def test_average(matches_numpy):
    x, w = data(), np.arange(1.0, 4.0)
    matches_numpy(fnp.average(x, 1, weights=w), np.average(x, 1, weights=w))
    matches_numpy(fnp.average(x, None, weights=x ** 2), np.average(x, None, weights=x ** 2))
    matches_numpy(fnp.average(x, 0), np.average(x, 0))
    for got, want in zip(fnp.average(x, 1, weights=w, returned=True),
                         np.average(x, 1, weights=w, returned=True)):
        matches_numpy(got, want)
    check_grads(lambda v, ws: fnp.average(v, 1, weights=ws), (x, w), order=2)
    with pytest.raises(fx.FxTypeError, match="weights"):
        fnp.average(x, 1, weights=np.ones(4))


def test_allclose():
    x = data()
    assert bool(fnp.allclose(x, x + 1e-10))
    assert not bool(fnp.allclose(x, x + 1e-3))


def test_max_ties_share_the_gradient():
    np.testing.assert_allclose(fx.grad(fnp.max)(np.array([1.0, 3.0, 3.0])), [0.0, 0.5, 0.5])


def test_mean_keeps_float32_under_grad():
    g = fx.grad(lambda v: fnp.mean(v ** 2) + fnp.var(v))(data(dtype=np.float32))
    assert g.dtype == np.float32
