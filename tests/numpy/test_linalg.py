"""fxgrad.numpy.linalg against numpy.linalg: values (shapes and dtypes included, stacks
of matrices, integer and float32 input), derivatives to order 2 in both modes, vmap
against a loop, jit against eager, and the errors for bad shapes and options."""
import numpy as np
import pytest

import fxgrad as fx
import fxgrad.numpy as fnp
from fxgrad.core.errors import FxgradError, FxTypeError, FxValueError
from fxgrad.test_util import check_grads, check_jit, check_vmap

la = fnp.linalg


def general(shape, seed=0):
    x = np.random.default_rng(seed).standard_normal(shape)
    return x + 3 * np.eye(shape[-1]) if shape[-1] == shape[-2] else x


def spd(shape, seed=0):
    x = np.random.default_rng(seed).standard_normal(shape)
    return x @ np.swapaxes(x, -1, -2) + np.diag(np.arange(1.0, shape[-1] + 1))


def vec(shape, seed=1):
    return np.random.default_rng(seed).standard_normal(shape)


A, S, B = general((3, 3)), spd((3, 3)), vec((3, 2))
AS, SS = general((2, 3, 3)), spd((2, 3, 3))
TALL, WIDE = general((4, 3)), general((2, 4))

# name, fxgrad function, numpy function, arguments
VALUE_CASES = [
    ("solve vector", la.solve, np.linalg.solve, (A, vec(3))),
    ("solve matrix", la.solve, np.linalg.solve, (A, B)),
    ("solve stacked", la.solve, np.linalg.solve, (AS, vec((2, 3, 2)))),
    ("solve broadcast", la.solve, np.linalg.solve, (A, vec((4, 3, 2)))),
    ("solve float32", la.solve, np.linalg.solve, (A.astype(np.float32), B.astype(np.float32))),
    ("solve ints", la.solve, np.linalg.solve, (np.array([[2, 1], [1, 3]]), np.array([1, 2]))),
    ("inv", la.inv, np.linalg.inv, (A,)),
    ("inv stacked", la.inv, np.linalg.inv, (AS,)),
    ("det", la.det, np.linalg.det, (A,)),
    ("det stacked", la.det, np.linalg.det, (AS,)),
    ("det permuted", la.det, np.linalg.det, (np.array([[0.0, 1, 0], [0, 0, 2], [3, 0, 0]]),)),
    ("det singular", la.det, np.linalg.det, (np.ones((3, 3)),)),
    ("det ints", la.det, np.linalg.det, (np.array([[1, 2], [3, 4]]),)),
    ("slogdet", la.slogdet, np.linalg.slogdet, (-A,)),
    ("slogdet stacked", la.slogdet, np.linalg.slogdet, (AS,)),
    ("cholesky", la.cholesky, np.linalg.cholesky, (S,)),
    ("cholesky upper", lambda a: la.cholesky(a, upper=True),
     lambda a: np.linalg.cholesky(a, upper=True), (S + np.triu(np.ones((3, 3)), 1),)),
    ("cholesky stacked", la.cholesky, np.linalg.cholesky, (SS,)),
    ("eigh", la.eigh, np.linalg.eigh, (S,)),
    ("eigh upper", lambda a: la.eigh(a, "U"), lambda a: np.linalg.eigh(a, "U"),
     (S + np.tril(np.ones((3, 3)), -1),)),
    ("eigvalsh stacked", la.eigvalsh, np.linalg.eigvalsh, (SS,)),
    ("svd square", la.svd, np.linalg.svd, (A,)),
    ("svd reduced", lambda a: la.svd(a, full_matrices=False),
     lambda a: np.linalg.svd(a, full_matrices=False), (TALL,)),
    ("svd values", lambda a: la.svd(a, compute_uv=False),
     lambda a: np.linalg.svd(a, compute_uv=False), (WIDE,)),
    ("svdvals stacked", la.svdvals, np.linalg.svdvals, (AS,)),
    ("qr", la.qr, np.linalg.qr, (TALL,)),
    ("qr r", lambda a: la.qr(a, "r"), lambda a: np.linalg.qr(a, "r"), (WIDE,)),
    ("qr complete wide", lambda a: la.qr(a, "complete"),
     lambda a: np.linalg.qr(a, "complete"), (WIDE,)),
    ("matrix_power 0", lambda a: la.matrix_power(a, 0), lambda a: np.linalg.matrix_power(a, 0),
     (A,)),
    ("matrix_power 5", lambda a: la.matrix_power(a, 5), lambda a: np.linalg.matrix_power(a, 5),
     (A,)),
    ("matrix_power -2", lambda a: la.matrix_power(a, -2),
     lambda a: np.linalg.matrix_power(a, -2), (AS,)),
    ("matrix_power ints", lambda a: la.matrix_power(a, 3),
     lambda a: np.linalg.matrix_power(a, 3), (np.array([[1, 1], [0, 1]]),)),
    ("multi_dot", lambda *xs: la.multi_dot(xs), lambda *xs: np.linalg.multi_dot(xs),
     (vec(4), TALL, A, vec(3))),
    ("matrix_transpose", la.matrix_transpose, np.linalg.matrix_transpose, (AS,)),
    ("vecdot", la.vecdot, np.linalg.vecdot, (B, vec(2))),
    ("trace", la.trace, np.linalg.trace, (AS,)),
    ("trace offset", lambda a: la.trace(a, offset=1), lambda a: np.linalg.trace(a, offset=1),
     (AS,)),
    ("diagonal", la.diagonal, np.linalg.diagonal, (AS,)),
    ("outer", la.outer, np.linalg.outer, (vec(3), vec(2))),
    ("tensordot", la.tensordot, np.linalg.tensordot, (AS, A)),
]


def _assert_same(actual, expected):
    if isinstance(expected, tuple):
        assert type(actual).__name__ == type(expected).__name__
        assert actual._fields == expected._fields
        for a, e in zip(actual, expected):
            _assert_same(a, e)
        return
    expected = np.asarray(expected)
    assert isinstance(actual, np.ndarray)
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    rtol = 1e-4 if expected.dtype == np.float32 else 1e-10
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol)


@pytest.mark.parametrize("name, fn, np_fn, args", VALUE_CASES, ids=[c[0] for c in VALUE_CASES])
def test_values_match_numpy(name, fn, np_fn, args):
    _assert_same(fn(*args), np_fn(*args))


def test_slogdet_of_a_singular_matrix():
    sign, logdet = la.slogdet(np.ones((2, 2)))
    assert sign == 0.0 and logdet == -np.inf


# name, function, numpy function, arguments: norms and their derivatives
NORM_CASES = [
    ("flat", la.norm, np.linalg.norm, (AS,)),
    ("flat keepdims", lambda x: la.norm(x, keepdims=True),
     lambda x: np.linalg.norm(x, keepdims=True), (AS,)),
    ("vector 2", lambda x: la.norm(x, 2), lambda x: np.linalg.norm(x, 2), (vec(4),)),
    ("vector 1", lambda x: la.norm(x, 1), lambda x: np.linalg.norm(x, 1), (vec(4),)),
    ("vector inf", lambda x: la.norm(x, np.inf), lambda x: np.linalg.norm(x, np.inf), (vec(4),)),
    ("vector -inf", lambda x: la.norm(x, -np.inf), lambda x: np.linalg.norm(x, -np.inf),
     (vec(4),)),
    ("vector 3 axis", lambda x: la.norm(x, 3, axis=1), lambda x: np.linalg.norm(x, 3, axis=1),
     (TALL,)),
    ("vector 0.5 keepdims", lambda x: la.norm(x, 0.5, axis=-1, keepdims=True),
     lambda x: np.linalg.norm(x, 0.5, axis=-1, keepdims=True), (AS,)),
    ("fro", lambda x: la.norm(x, "fro"), lambda x: np.linalg.norm(x, "fro"), (TALL,)),
    ("nuc", lambda x: la.norm(x, "nuc"), lambda x: np.linalg.norm(x, "nuc"), (TALL,)),
    ("matrix 2", lambda x: la.norm(x, 2), lambda x: np.linalg.norm(x, 2), (WIDE,)),
    ("matrix -2 axes", lambda x: la.norm(x, -2, axis=(2, 0)),
     lambda x: np.linalg.norm(x, -2, axis=(2, 0)), (AS,)),
    ("matrix 1", lambda x: la.norm(x, 1), lambda x: np.linalg.norm(x, 1), (TALL,)),
    ("matrix -1", lambda x: la.norm(x, -1), lambda x: np.linalg.norm(x, -1), (TALL,)),
    ("matrix inf keepdims", lambda x: la.norm(x, np.inf, axis=(1, 2), keepdims=True),
     lambda x: np.linalg.norm(x, np.inf, axis=(1, 2), keepdims=True), (AS,)),
    ("matrix -inf", lambda x: la.norm(x, -np.inf), lambda x: np.linalg.norm(x, -np.inf),
     (TALL,)),
    ("vector_norm", lambda x: la.vector_norm(x, axis=(0, 2)),
     lambda x: np.linalg.vector_norm(x, axis=(0, 2)), (AS,)),
    ("matrix_norm nuc", lambda x: la.matrix_norm(x, ord="nuc"),
     lambda x: np.linalg.matrix_norm(x, ord="nuc"), (AS,)),
]


@pytest.mark.parametrize("name, fn, np_fn, args", NORM_CASES, ids=[c[0] for c in NORM_CASES])
def test_norms(name, fn, np_fn, args):
    _assert_same(fn(*args), np_fn(*args))
    check_grads(fn, args, order=2, modes=("fwd", "rev"))


def test_norm_of_count_nonzero():
    _assert_same(la.norm(np.array([0.0, 2.0, 0.0, -1.0]), 0), 2.0)


def _sign_free_eigh(a):
    w, v = la.eigh(a)
    return fnp.matmul(v * w[..., None, :] ** 3, la.matrix_transpose(v))


def _sign_free_svd(a):
    u, s, vh = la.svd(a, full_matrices=False)
    return fnp.matmul(u * fnp.exp(s)[..., None, :], vh)


# name, function, arguments
GRAD_CASES = [
    ("solve", la.solve, (A, B)),
    ("solve vector stacked", la.solve, (AS, vec(3))),
    ("inv", la.inv, (A,)),
    ("det", la.det, (A,)),
    ("det stacked", la.det, (AS,)),
    ("slogdet", lambda a: la.slogdet(a).logabsdet, (-A,)),
    ("cholesky upper", lambda a: la.cholesky(a, upper=True), (S,)),
    ("eigh", _sign_free_eigh, (S,)),
    ("eigvalsh", la.eigvalsh, (SS,)),
    ("svd", _sign_free_svd, (TALL,)),
    ("svdvals", la.svdvals, (WIDE,)),
    ("qr", la.qr, (TALL,)),
    ("matrix_power 3", lambda a: la.matrix_power(a, 3), (A,)),
    ("matrix_power -2", lambda a: la.matrix_power(a, -2), (A,)),
]


@pytest.mark.parametrize("name, fn, args", GRAD_CASES, ids=[c[0] for c in GRAD_CASES])
def test_grads(name, fn, args):
    check_grads(fn, args, order=2, modes=("fwd", "rev"))


def test_closed_form_derivatives():
    np.testing.assert_allclose(fx.grad(lambda a: la.slogdet(a)[1])(A), np.linalg.inv(A).T,
                               rtol=1e-10)
    np.testing.assert_allclose(fx.grad(la.det)(A), np.linalg.det(A) * np.linalg.inv(A).T,
                               rtol=1e-10)
    x = np.linalg.solve(A, vec(3))
    np.testing.assert_allclose(fx.grad(lambda b: fnp.sum(la.solve(A, b)))(vec(3)),
                               np.linalg.solve(A.T, np.ones(3)), rtol=1e-10)
    np.testing.assert_allclose(fx.grad(lambda a: fnp.sum(la.solve(a, vec(3))))(A),
                               -np.outer(np.linalg.solve(A.T, np.ones(3)), x), rtol=1e-10)


# name, function, maker of one example's arguments
VMAP_CASES = [
    ("solve", la.solve, lambda seed: (general((3, 3), seed), vec(3, seed + 5))),
    ("det", la.det, lambda seed: (general((3, 3), seed),)),
    ("slogdet", lambda a: la.slogdet(a)[1], lambda seed: (general((3, 3), seed),)),
    ("norm nuc", lambda a: la.norm(a, "nuc"), lambda seed: (general((3, 2), seed),)),
]


@pytest.mark.parametrize("name, fn, make_args", VMAP_CASES, ids=[c[0] for c in VMAP_CASES])
def test_vmap_matches_loop(name, fn, make_args):
    check_vmap(fn, make_args)


def test_jit_matches_eager():
    def table(a, s, b, tall):
        # the decompositions' own lowerings are tested in tests/primitives/test_linalg.py
        return {"solve": la.solve(a, b), "inv": la.inv(a), "det": la.det(a),
                "slogdet": la.slogdet(a), "cholesky upper": la.cholesky(s, upper=True),
                "norms": (la.norm(tall), la.norm(tall, "nuc"), la.norm(b, 1, axis=0)),
                "matrix_power": la.matrix_power(a, -3)}
    check_jit(table, (AS, SS, vec((2, 3, 2)), TALL), rtol=1e-9, atol=1e-12)


def test_jit_of_gradient():
    def log_likelihood(a, b):
        return -0.5 * fnp.sum(b * la.solve(a, b)) - 0.5 * la.slogdet(a)[1]
    check_jit(fx.grad(log_likelihood, argnums=(0, 1)), (S, vec(3)), rtol=1e-9, atol=1e-12)


# name, function, arguments, exception, message
ERROR_CASES = [
    ("det not square", la.det, (np.ones((2, 3)),), FxTypeError, r"det: .*square.*\(2, 3\)"),
    ("inv vector", la.inv, (np.ones(3),), FxTypeError, r"inv: expected a matrix.*\(3,\)"),
    ("solve mismatch", la.solve, (np.eye(3), np.ones(2)), FxTypeError,
     r"solve: b of shape \(2,\) does not match a of shape \(3, 3\)"),
    ("solve batch mismatch", la.solve, (np.ones((2, 3, 3)), np.ones((4, 3, 1))), FxgradError,
     r"solve: .*\(2,\).*\(4,\)"),
    ("complex", la.cholesky, (np.eye(2) * 1j,), FxTypeError, r"cholesky: complex"),
    ("float16", la.det, (np.eye(2, dtype=np.float16),), FxTypeError, r"det: float16"),
    ("svd full", la.svd, (np.ones((3, 2)),), FxValueError, r"svd: full_matrices=True"),
    ("qr complete", lambda a: la.qr(a, "complete"), (np.ones((3, 2)),), FxValueError,
     r"qr: mode 'complete'"),
    ("eigh UPLO", lambda a: la.eigh(a, "X"), (np.eye(2),), FxValueError, r"eigh: UPLO"),
    ("norm order", lambda a: la.norm(a, "fro", axis=0), (np.eye(2),), FxValueError,
     r"norm: invalid norm order 'fro' for vectors"),
    ("norm 3-d ord", lambda a: la.norm(a, 2), (np.ones((2, 2, 2)),), FxTypeError,
     r"norm: ord=2 needs a 1-d or 2-d array"),
    ("matrix_power float n", lambda a: la.matrix_power(a, 1.5), (np.eye(2),), FxTypeError,
     r"matrix_power: the exponent must be an integer"),
]


@pytest.mark.parametrize("name, fn, args, error, message", ERROR_CASES,
                         ids=[c[0] for c in ERROR_CASES])
def test_errors(name, fn, args, error, message):
    with pytest.raises(error, match=message):
        fn(*args)
