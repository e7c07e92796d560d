"""Indexing (`x[idx]`, take, take_along_axis, diagonals) against numpy, with traced
arrays and traced indices, their derivatives (gather / scatter-add), and the errors."""
from __future__ import annotations

import numpy as np
import pytest

import fxgrad as fx
import fxgrad.numpy as fnp
from fxgrad.numpy.indexing import FxIndexError
from fxgrad.test_util import check_grads

X = np.random.default_rng(0).standard_normal((3, 4, 5))
MASK0 = X[:, 0, 0] > 0
MASK1 = X[0, :, 0] > 0

INDICES = [
    0, -1, (1, 2), (1, 2, 3), (slice(None), 1), slice(1, 3), slice(None, None, -1),
    slice(-100, 100), (slice(None, None, 3), slice(None, None, -3)), (slice(None), slice(4, 0, -2)),
    (slice(2, 2),), (Ellipsis, 2), (1, Ellipsis), (None, 0), (0, None, slice(1, 3)),
    (1, Ellipsis, None), np.array(1), (np.int64(2), slice(None), -2),
    [0, 2], [[0, 2], [1, 1]], ([0, 2],), (slice(None), [1, -1]), (Ellipsis, [0, 4, 4]),
    ([0, 1], [2, 3]), ([[0, 1]], [[2], [3]]), ([0, 1], slice(None), [1, 2]),
    (slice(None), [0, 1], [1, 2]), (0, slice(None), [1, 2]), (0, [1, 2]),
    ([0, 1], None, [1, 2]), (None, [0, 1], None, [1, 2]), ([2, 0], [1, 3], [4, 0]),
    (slice(None, None, -1), [0, 3]), (MASK0,), (slice(None), MASK1), (X[..., 0] > 0,),
    (X > 0,), (MASK0, 1), (np.array([], np.int64),),
]
IDS = [f"idx{i}" for i in range(len(INDICES))]


@pytest.mark.parametrize("idx", INDICES, ids=IDS)
def test_concrete_matches_numpy(idx, matches_numpy):
    matches_numpy(_getitem(X, idx), X[idx])


def _getitem(x, idx):
    from fxgrad.numpy.indexing import getitem
    return getitem(x, idx)


@pytest.mark.parametrize("idx", INDICES, ids=IDS)
def test_traced_matches_numpy_and_grads(idx, matches_numpy):
    out, _ = fx.jvp(lambda x: x[idx], (X,), (np.ones_like(X),))
    matches_numpy(out, X[idx])
    check_grads(lambda x: x[idx], (X,), order=2)


def test_repeated_indices_accumulate_in_the_gradient():
    g = fx.grad(lambda x: fnp.sum(x[[0, 0, 2, -1]]))(np.ones(3))
    np.testing.assert_array_equal(g, [2.0, 0.0, 2.0])


@pytest.mark.parametrize("idx", [np.array([0, 2, -1]), np.array([[1], [0]])])
def test_traced_integer_array_index(idx, matches_numpy):
    program = fx.make_jaxpr(lambda x, i: x[:, i])(X, idx)
    assert "gather" in [e.prim.name for e in program.eqns]
    matches_numpy(program(X, idx)[0], X[:, idx])
    out = fx.jvp(lambda x: _traced_index(x, idx), (X,), (np.ones_like(X),))[0]
    matches_numpy(out, X[:, idx])
    check_grads(lambda x: _traced_take(x, idx), (X,), order=2)


def _traced_index(x, idx):
    """x[:, idx] with idx an abstract traced value inside a scan body (x must be traced:
    a numpy array cannot be indexed by a tracer)."""
    def body(carry, i):
        return carry, x[:, i]
    return fx.scan(body, 0.0, idx[None])[1][0]


def _traced_take(x, idx):
    """`_traced_index` for any x, concrete ones included, via fnp.take."""
    def body(carry, i):
        return carry, fnp.take(x, i, 1)
    return fx.scan(body, 0.0, idx[None])[1][0]


def _scan_rows(w, take):
    def body(carry, i):
        row, mirrored = take(w, i), take(w, -i - 1)
        return carry + fnp.sum(row ** 2) + row[-1, 0] * mirrored[0, 0], row
    return fx.scan(body, 0.0, np.arange(3))


def test_traced_scalar_index_in_scan_body(matches_numpy):
    total, rows = fx.jvp(lambda w: _scan_rows(w, lambda v, i: v[i]), (X,), (np.ones_like(X),))[0]
    expected = sum(np.sum(X[i] ** 2) + X[i, -1, 0] * X[-i - 1, 0, 0] for i in range(3))
    np.testing.assert_allclose(total, expected)
    matches_numpy(rows, X)
    check_grads(lambda w: _scan_rows(w, lambda v, i: fnp.take(v, i, 0))[0], (X,), order=2)
    grads = [fx.grad(lambda w: _scan_rows(w, take)[0])(X)
             for take in (lambda v, i: v[i], lambda v, i: fnp.take(v, i, 0))]
    np.testing.assert_allclose(grads[0], grads[1])


def test_traced_scalar_index_program_is_small():
    def body(carry, i):
        return carry, carry[i]
    program = fx.make_jaxpr(lambda c: fx.scan(body, c, np.arange(3))[1])(np.ones(3))
    inner = program.eqns[0].params["program"]
    assert [e.prim.name for e in inner.eqns] == ["lt", "add", "select", "gather"]


def test_traced_boolean_mask_raises_pointing_to_where():
    with pytest.raises(fx.FxTypeError, match="fnp.where"):
        fx.grad(lambda x: fnp.sum(x[x > 0]))(np.ones(3))


@pytest.mark.parametrize("idx,error,message", [
    (3, FxIndexError, "out of bounds for axis 0 with size 3"),
    ((0, [5]), FxIndexError, "out of bounds for axis 1 with size 4"),
    ((0, 0, 0, 0), FxIndexError, "too many indices"),
    ((Ellipsis, Ellipsis), FxIndexError, "single ellipsis"),
    (1.5, FxIndexError, "valid indices"),
    (np.array([0.5]), FxIndexError, "valid indices"),
    (([0, 1], [0, 1, 2]), fx.FxTypeError, "broadcast"),
])
def test_index_errors(idx, error, message):
    with pytest.raises(error, match=message):
        _getitem(X, idx)
    assert issubclass(error, fx.FxgradError)


# ---------------------------------------------------------------- take and friends

@pytest.mark.parametrize("indices,axis,mode", [
    ([0, -1, 2], 1, None), ([[0, 5], [7, 1]], None, None), (2, 0, None),
    ([0, 9, -7], 2, "clip"), ([0, 9, -7], 2, "wrap"),
])
def test_take(indices, axis, mode, matches_numpy):
    matches_numpy(fnp.take(X, indices, axis, mode=mode), np.take(X, indices, axis, mode=mode))
    check_grads(lambda x: fnp.take(x, indices, axis, mode=mode), (X,), order=2)


def test_take_with_traced_indices_clamps_and_wraps(matches_numpy):
    idx = np.array([-1, 0, 3])
    out = fx.jvp(lambda x: fx.scan(lambda c, i: (c, fnp.take(x, i, 1)), 0.0, idx[None])[1][0],
                 (X,), (np.ones_like(X),))[0]
    matches_numpy(out, np.take(X, idx, 1))


def test_take_out_of_bounds_raises():
    with pytest.raises(FxIndexError, match="out of bounds"):
        fnp.take(X, [4], 1)


@pytest.mark.parametrize("shape,axis", [((3, 2, 5), 1), ((3, 6, 1), 1), ((1, 4, 5), 0),
                                        ((3, 4, 2), -1)])
def test_take_along_axis(shape, axis, matches_numpy):
    bound = X.shape[axis]
    idx = np.random.default_rng(1).integers(-bound, bound, shape)
    matches_numpy(fnp.take_along_axis(X, idx, axis), np.take_along_axis(X, idx, axis))
    check_grads(lambda x: fnp.take_along_axis(x, idx, axis), (X,), order=2)


@pytest.mark.parametrize("offset", [0, 1, -1, 3, -2, 7])
def test_diagonals_and_triangles(offset, matches_numpy):
    m = X[0]
    for name in ("diagonal", "trace", "tril", "triu"):
        matches_numpy(getattr(fnp, name)(m, offset), getattr(np, name)(m, offset))
        check_grads(lambda v: getattr(fnp, name)(v, offset), (m,), order=2)
    matches_numpy(fnp.diag(m, offset), np.diag(m, offset))
    matches_numpy(fnp.diag(m[0], offset), np.diag(m[0], offset))
    check_grads(lambda v: fnp.diag(v, offset), (m[0],), order=2)


def test_diagonal_of_stacked_matrices(matches_numpy):
    matches_numpy(fnp.diagonal(X, 1, 0, 2), np.diagonal(X, 1, 0, 2))
    matches_numpy(fnp.trace(X, 0, 2, 1), np.trace(X, 0, 2, 1))
    matches_numpy(fnp.tril(X), np.tril(X))
    check_grads(lambda v: fnp.diagonal(v, -1, 2, 0), (X,), order=2)


def test_take_along_axis_clamps_out_of_range_traced_indices_per_axis():
    a = np.arange(4.0).reshape(2, 2)
    picked = fx.jit(lambda i: fnp.take_along_axis(a, i, axis=1))(np.array([[5], [-7]]))
    np.testing.assert_array_equal(picked, [[1.0], [2.0]])   # a[0, 1] and a[1, 0]
