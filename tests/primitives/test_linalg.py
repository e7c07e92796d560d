"""Linear-algebra primitives (triangular_solve, cholesky, lu, eigh, svd, qr): values
against numpy/SciPy, derivatives to order 2 in both modes (eigh and svd through
functions invariant to the sign of their vectors), vmap against a loop, the numba
lowerings against eager evaluation (single and stacked matrices, float32, derivative
programs), and the shape-error messages."""
import numpy as np
import pytest
import scipy.linalg

import fxgrad as fx
import fxgrad.numpy as fnp
from fxgrad.core.errors import FxTypeError
from fxgrad.primitives.decompositions import eigh, qr, svd
from fxgrad.primitives.linalg import cholesky, lu, triangular_solve
from fxgrad.test_util import check_grads, check_jit, check_vmap

from .helpers import case_ids


def general(shape, seed=0):
    """A well-conditioned matrix (or stack): Gaussian plus a multiple of the identity."""
    x = np.random.default_rng(seed).standard_normal(shape)
    return x + 3 * np.eye(shape[-1]) if shape[-1] == shape[-2] else x


def spd(shape, seed=0):
    """A symmetric positive-definite matrix with well-separated eigenvalues."""
    x = np.random.default_rng(seed).standard_normal(shape)
    return x @ np.swapaxes(x, -1, -2) + np.diag(np.arange(1.0, shape[-1] + 1))


def rhs(shape, seed=1):
    return np.random.default_rng(seed).standard_normal(shape)


def sign_free_eigh(a):
    w, v = eigh(a)
    return fnp.matmul(v * fnp.sin(w)[..., None, :], fnp.swapaxes(v, -1, -2)), w


def sign_free_svd(a):
    """Functions of the SVD that do not depend on the signs of the singular vectors."""
    u, s, vt = svd(a)
    return (fnp.matmul(u * (s ** 2)[..., None, :], vt), s,
            fnp.matmul(u, fnp.swapaxes(u, -1, -2)), fnp.matmul(fnp.swapaxes(vt, -1, -2), vt))


# name, function, arguments
GRAD_CASES = [
    ("trisolve lower", lambda a, b: triangular_solve(a, b, True), (general((3, 3)), rhs((3, 2)))),
    ("trisolve upper", lambda a, b: triangular_solve(a, b, False), (general((3, 3)), rhs((3, 2)))),
    ("trisolve lower transposed", lambda a, b: triangular_solve(a, b, True, True),
     (general((3, 3)), rhs((3, 2)))),
    ("trisolve upper transposed", lambda a, b: triangular_solve(a, b, False, True),
     (general((3, 3)), rhs((3, 1)))),
    ("trisolve stacked", lambda a, b: triangular_solve(a, b, True),
     (general((2, 3, 3)), rhs((2, 3, 2)))),
    ("cholesky", cholesky, (spd((3, 3)),)),
    ("cholesky stacked", cholesky, (spd((2, 3, 3)),)),
    ("lu", lambda a: lu(a)[0], (general((3, 3)),)),
    ("lu pivoting", lambda a: lu(a)[0], (np.array([[0.5, 2.0, 1.0], [3.0, 1.0, 0.0],
                                                    [1.0, 0.0, 4.0]]),)),
    ("eigh", sign_free_eigh, (spd((3, 3)),)),
    ("eigh stacked", sign_free_eigh, (spd((2, 3, 3)),)),
    ("svd square", sign_free_svd, (general((3, 3)),)),
    ("svd tall", sign_free_svd, (general((4, 2)),)),
    ("svd wide", sign_free_svd, (general((2, 4)),)),
    ("qr square", qr, (general((3, 3)),)),
    ("qr tall", qr, (general((4, 2)),)),
    ("qr wide", qr, (general((2, 4)),)),
]


@pytest.mark.parametrize("name, fn, args", GRAD_CASES, ids=case_ids(GRAD_CASES))
def test_grads(name, fn, args):
    check_grads(fn, args, order=2, modes=("fwd", "rev"))


def _lu_reference(a):
    packed, piv = scipy.linalg.lu_factor(a)
    return packed, piv


def test_values_match_numpy_and_scipy():
    a, s, b = general((4, 4)), spd((4, 4)), rhs((4, 2))
    for lower in (True, False):
        for trans in (False, True):
            np.testing.assert_allclose(
                triangular_solve(a, b, lower, trans),
                scipy.linalg.solve_triangular(a, b, trans=int(trans), lower=lower), rtol=1e-12)
    np.testing.assert_allclose(cholesky(s), np.linalg.cholesky(s), rtol=1e-12)
    packed, pivots, perm = lu(a)
    ref_packed, ref_piv = _lu_reference(a)
    np.testing.assert_allclose(packed, ref_packed, rtol=1e-12)
    np.testing.assert_array_equal(pivots, ref_piv)
    np.testing.assert_allclose(a[perm], (np.tril(packed, -1) + np.eye(4)) @ np.triu(packed),
                               rtol=1e-12)
    for got, expected in [(eigh(s), np.linalg.eigh(s)), (qr(a), np.linalg.qr(a)),
                          (svd(a[:, :3]), np.linalg.svd(a[:, :3], full_matrices=False))]:
        for g, e in zip(got, expected):
            np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-12)


def test_only_the_lower_triangle_is_read():
    s = spd((3, 3))
    upper_changed = s + np.triu(np.ones((3, 3)), 1)
    np.testing.assert_array_equal(cholesky(upper_changed), cholesky(s))
    np.testing.assert_array_equal(eigh(upper_changed)[0], eigh(s)[0])
    a = general((3, 3))
    np.testing.assert_array_equal(triangular_solve(a, rhs((3, 1)), True),
                                  triangular_solve(np.tril(a), rhs((3, 1)), True))


def test_reverse_mode_gives_the_expected_cotangents():
    a, b = general((3, 3)), rhs((3, 2))
    ct = rhs((3, 2), seed=5)
    _, pullback = fx.vjp(lambda b: triangular_solve(a, b, True), b)
    np.testing.assert_allclose(pullback(ct)[0], np.linalg.solve(np.tril(a).T, ct), rtol=1e-12)
    s = spd((3, 3))
    grad = fx.grad(lambda s: fnp.sum(fnp.log(fnp.diagonal(cholesky(s)))))(s)
    np.testing.assert_allclose(grad, np.tril(np.linalg.inv(s)) - np.diag(np.diag(np.linalg.inv(s))) / 2,
                               rtol=1e-10, atol=1e-12)


# name, function, maker of one example's arguments
VMAP_CASES = [
    ("trisolve", lambda a, b: triangular_solve(a, b, True, True),
     lambda seed: (general((3, 3), seed), rhs((3, 2), seed + 7))),
    ("cholesky", cholesky, lambda seed: (spd((3, 3), seed),)),
    ("lu", lambda a: lu(a)[0], lambda seed: (general((3, 3), seed),)),
    ("lu permutation", lambda a: lu(a)[2], lambda seed: (general((3, 3), seed),)),
    ("eigh", lambda a: eigh(a)[1], lambda seed: (spd((3, 3), seed),)),
    ("svd", lambda a: svd(a)[2], lambda seed: (general((4, 3), seed),)),
    ("qr", lambda a: qr(a)[1], lambda seed: (general((3, 4), seed),)),
]


@pytest.mark.parametrize("name, fn, make_args", VMAP_CASES, ids=case_ids(VMAP_CASES))
def test_vmap_matches_loop(name, fn, make_args):
    check_vmap(fn, make_args)


def _table(a, s, b, wide):
    return {"trisolve": triangular_solve(a, b, True), "trisolve_t": triangular_solve(a, b, False, True),
            "cholesky": cholesky(s), "lu": lu(a), "eigh": eigh(s), "svd": svd(wide), "qr": qr(wide),
            "svd_tall": svd(fnp.swapaxes(wide, -1, -2))}


@pytest.mark.parametrize("batch", [(), (2,), pytest.param((2, 1), marks=pytest.mark.slow)],
                         ids=["single", "stack", "stack2"])
def test_jit_matches_eager(unsimplified, batch):
    args = (general(batch + (4, 4)), spd(batch + (4, 4)), rhs(batch + (4, 2)),
            general(batch + (3, 5)))
    check_jit(_table, args, rtol=1e-10, atol=1e-12)


@pytest.mark.slow
def test_jit_matches_eager_float32(unsimplified):
    args = [x.astype(np.float32) for x in (general((4, 4)), spd((4, 4)), rhs((4, 2)),
                                          general((3, 5)))]
    check_jit(_table, args, rtol=1e-4, atol=1e-5)


# name, function of (a, s, b) whose gradient is compiled; only the first two run by default
DERIVATIVE_CASES = [
    ("trisolve", lambda a, s, b: fnp.sum(triangular_solve(a, b, True) ** 2)),
    ("lu", lambda a, s, b: fnp.sum(lu(a)[0] ** 2)),
    ("cholesky", lambda a, s, b: fnp.sum(cholesky(s) ** 2)),
    ("eigh", lambda a, s, b: fnp.sum(sign_free_eigh(s)[0] ** 2)),
    ("svd", lambda a, s, b: fnp.sum(sign_free_svd(a)[0] ** 2)),
    ("qr", lambda a, s, b: fnp.sum(qr(a)[0] ** 3)),
]


@pytest.mark.parametrize("name, fn", [c if i < 2 else pytest.param(*c, marks=pytest.mark.slow)
                                      for i, c in enumerate(DERIVATIVE_CASES)],
                         ids=case_ids(DERIVATIVE_CASES))
def test_jit_of_derivatives(name, fn):
    check_jit(fx.grad(fn, argnums=(0, 1, 2)), (general((3, 3)), spd((3, 3)), rhs((3, 2))),
              rtol=1e-9, atol=1e-12)


def test_lu_under_jit_pivots_like_lapack():
    a = np.array([[1e-3, 2.0, 1.0], [3.0, 1.0, 0.0], [-3.0, 0.0, 4.0]])
    packed, pivots, perm = fx.jit(lu)(a)
    np.testing.assert_array_equal(pivots, scipy.linalg.lu_factor(a)[1])
    np.testing.assert_allclose(packed, scipy.linalg.lu_factor(a)[0], rtol=1e-12)


# name, function, arguments, expected message
ERROR_CASES = [
    ("cholesky not square", cholesky, (np.ones((2, 3)),), r"cholesky: .*square.*\(2, 3\)"),
    ("lu vector", lu, (np.ones(3),), r"lu: .*square.*\(3,\)"),
    ("eigh integers", eigh, (np.eye(2, dtype=int),), r"eigh: .*floating.*int64"),
    ("svd vector", svd, (np.ones(3),), r"svd: expected a matrix"),
    ("qr scalar", qr, (np.float64(1.0),), r"qr: expected a matrix"),
    ("trisolve rows", lambda a, b: triangular_solve(a, b, True), (np.eye(3), np.ones((2, 1))),
     r"triangular_solve: .*same batch axes"),
    ("trisolve dtypes", lambda a, b: triangular_solve(a, b, True),
     (np.eye(2), np.ones((2, 1), np.float32)), r"triangular_solve: .*dtype"),
]


@pytest.mark.parametrize("name, fn, args, message", ERROR_CASES, ids=case_ids(ERROR_CASES))
def test_errors(name, fn, args, message):
    with pytest.raises(FxTypeError, match=message):
        fn(*args)

