"""Array creation: numpy results from static shapes, traced results from traced values
(`array` of lists holding tracers, `full` with a traced fill, `linspace` with traced ends)."""
from __future__ import annotations

import numpy as np
import pytest

import fxgrad as fx
import fxgrad.numpy as fnp
from fxgrad.test_util import check_grads

X = np.arange(6.0).reshape(2, 3)

STATIC = [
    ("zeros", lambda m: m.zeros((2, 3))), ("zeros_int", lambda m: m.zeros(3, np.int32)),
    ("ones", lambda m: m.ones((2,), np.float32)), ("full", lambda m: m.full((2, 2), 1.5)),
    ("full_int", lambda m: m.full(3, 7)), ("zeros_like", lambda m: m.zeros_like(X)),
    ("ones_like", lambda m: m.ones_like(X, dtype=np.int8)),
    ("full_like", lambda m: m.full_like(X, 2)), ("empty_like", lambda m: m.zeros_like(X)),
    ("eye", lambda m: m.eye(3)), ("eye_rect", lambda m: m.eye(2, 4, k=1, dtype=np.float32)),
    ("identity", lambda m: m.identity(3)), ("tri", lambda m: m.tri(3, 4, -1)),
    ("arange", lambda m: m.arange(5)), ("arange_float", lambda m: m.arange(0.5, 3.0, 0.5)),
    ("arange_dtype", lambda m: m.arange(1, 10, 3, dtype=np.float32)),
    ("linspace", lambda m: m.linspace(0.0, 1.0, 7)),
    ("linspace_open", lambda m: m.linspace(-1.0, 1.0, 4, endpoint=False)),
    ("logspace", lambda m: m.logspace(0.0, 2.0, 3)),
    ("array", lambda m: m.array([[1, 2], [3, 4]])),
    ("array_ndmin", lambda m: m.array(2.0, ndmin=2)),
    ("asarray", lambda m: m.asarray([1.0, 2.0], np.float32)), ("copy", lambda m: m.copy(X)),
]


@pytest.mark.parametrize("label,fn", STATIC, ids=[s[0] for s in STATIC])
def test_static_creation_matches_numpy(label, fn, matches_numpy):
    matches_numpy(fn(fnp), fn(np))


def test_empty_is_zero_filled(matches_numpy):
    matches_numpy(fnp.empty((2, 2)), np.zeros((2, 2)))
    matches_numpy(fnp.empty_like(X), np.zeros_like(X))


def test_like_functions_on_tracers_return_numpy():
    def f(x):
        for fn in (fnp.zeros_like, fnp.ones_like, fnp.empty_like):
            assert isinstance(fn(x), np.ndarray) and fn(x).dtype == np.float32
        assert isinstance(fnp.arange(x.shape[0]), np.ndarray)
        return x
    fx.make_jaxpr(f)(np.ones(3, np.float32))


def test_array_of_list_with_tracers_stacks_them(matches_numpy):
    def f(a, b):
        return fnp.array([[a, 1.0], [b, a * b]])
    program = fx.make_jaxpr(f)(np.float32(2.0), np.float32(3.0))
    assert program.out_avals[0].dtype == np.float32   # the Python scalar is weakly typed
    out = fx.jvp(f, (2.0, 3.0), (1.0, 0.0))
    matches_numpy(out[0], np.array([[2.0, 1.0], [3.0, 6.0]]))
    matches_numpy(out[1], np.array([[1.0, 0.0], [0.0, 3.0]]))
    check_grads(f, (2.0, 3.0), order=2)


def test_array_of_list_with_traced_vectors():
    v = np.arange(3.0)
    check_grads(lambda x: fnp.array([x, 2 * x, v]), (v,), order=2)
    check_grads(lambda x: fnp.asarray((x[0], x[2]), dtype=np.float32), (v,), order=1,
                eps=1e-2, tol=1e-3)   # float32 output: a float32-sized step


def test_array_of_a_ragged_list_with_tracers_raises():
    with pytest.raises(fx.FxValueError, match="ragged"):
        fx.make_jaxpr(lambda x: fnp.array([x, 1.0]))(np.ones(2))


def test_array_and_asarray_of_a_tracer(matches_numpy):
    def f(x):
        assert fnp.asarray(x) is x
        y = fnp.array(x, dtype=np.float32, ndmin=3)
        assert y.shape == (1, 2, 3) and y.dtype == np.float32
        return y
    matches_numpy(fx.jvp(f, (X,), (X,))[0], X.astype(np.float32)[None])


def test_full_with_traced_fill(matches_numpy):
    out = fx.jvp(lambda v: fnp.full((2, 3), v), (1.5,), (1.0,))
    matches_numpy(out[0], np.full((2, 3), 1.5))
    matches_numpy(out[1], np.ones((2, 3)))
    check_grads(lambda v: fnp.full_like(X, v), (1.5,), order=2)
    # a float32 output of float64 inputs: finite differences need a float32-sized step
    check_grads(lambda v: fnp.full((2, 3), v, np.float32), (np.arange(3.0),), order=1,
                eps=1e-2, tol=1e-3)


@pytest.mark.parametrize("kwargs", [{}, {"endpoint": False}, {"num": 1}, {"axis": 1},
                                    {"dtype": np.float32}])
def test_linspace_with_traced_endpoints(kwargs, matches_numpy):
    start, stop = np.array([0.0, 1.0]), np.array([2.0, -3.0])
    kwargs = {"num": 5, **kwargs}
    out = fx.jvp(lambda a, b: fnp.linspace(a, b, **kwargs), (start, stop), (start, stop))[0]
    matches_numpy(out, np.linspace(start, stop, **kwargs), rtol=1e-6)
    steps = {"eps": 1e-2, "tol": 1e-3} if "dtype" in kwargs else {}   # float32 output
    check_grads(lambda a, b: fnp.linspace(a, b, **kwargs), (start, stop), order=1, **steps)


def test_linspace_retstep_with_traced_endpoints(matches_numpy):
    out, step = fx.jvp(lambda a: fnp.linspace(a, 3.0, 4, retstep=True)[1], (0.0,), (1.0,))
    matches_numpy(out, np.asarray(np.linspace(0.0, 3.0, 4, retstep=True)[1]))
    matches_numpy(step, np.asarray(-1.0 / 3))


@pytest.mark.parametrize("indexing", ["xy", "ij"])
@pytest.mark.parametrize("sparse", [False, True])
def test_meshgrid(indexing, sparse, matches_numpy):
    xs = (np.arange(3.0), np.arange(4.0) + 10, np.arange(2.0))
    expected = np.meshgrid(*xs, indexing=indexing, sparse=sparse)
    for got, want in zip(fnp.meshgrid(*xs, indexing=indexing, sparse=sparse), expected):
        matches_numpy(got, want)
    traced = fx.jvp(lambda *v: fnp.meshgrid(*v, indexing=indexing, sparse=sparse), xs, xs)[0]
    for got, want in zip(traced, expected):
        matches_numpy(got, want)


def test_arange_with_abstract_bound_raises():
    with pytest.raises(fx.ConcretizationError, match="arange"):
        fx.make_jaxpr(lambda n: fnp.arange(n))(np.array(3))


def test_arange_with_concrete_traced_bound():
    g = fx.grad(lambda x: fnp.sum(x * fnp.arange(x.shape[0])))(np.ones(3))
    np.testing.assert_array_equal(g, [0.0, 1.0, 2.0])
