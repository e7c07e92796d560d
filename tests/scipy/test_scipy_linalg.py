"""fxgrad.scipy.linalg against scipy.linalg: solve_triangular (every trans/lower/unit
combination, vector and matrix right-hand sides, stacks), cholesky, cho_factor and
cho_solve; derivatives to order 2 in both modes, vmap, jit, and errors. (The file name
differs from tests/numpy/test_linalg.py because these test directories are not
packages.)"""
import numpy as np
import pytest
import scipy.linalg

import fxgrad as fx
import fxgrad.scipy.linalg as fsl
from fxgrad.core.errors import FxTypeError, FxValueError
from fxgrad.test_util import check_grads, check_jit, check_vmap

rng = np.random.default_rng(0)
A = rng.standard_normal((3, 3)) + 3 * np.eye(3)
X = rng.standard_normal((3, 3))
S = X @ X.T + np.eye(3)
B, V = rng.standard_normal((3, 2)), rng.standard_normal(3)

# name, fxgrad function, scipy function, arguments
CASES = [
    (f"trisolve trans={t} lower={lo} unit={u} {'vector' if b.ndim == 1 else 'matrix'}",
     lambda a, b, t=t, lo=lo, u=u: fsl.solve_triangular(a, b, trans=t, lower=lo, unit_diagonal=u),
     lambda a, b, t=t, lo=lo, u=u: scipy.linalg.solve_triangular(a, b, trans=t, lower=lo,
                                                                 unit_diagonal=u),
     (A, b))
    for t in (0, "T", 2) for lo in (True, False) for u in (False, True) for b in (B, V)
] + [
    ("cholesky upper", fsl.cholesky, scipy.linalg.cholesky, (S,)),
    ("cholesky lower", lambda a: fsl.cholesky(a, lower=True),
     lambda a: scipy.linalg.cholesky(a, lower=True), (S,)),
    ("cho_solve upper", lambda a, b: fsl.cho_solve(fsl.cho_factor(a), b),
     lambda a, b: scipy.linalg.cho_solve(scipy.linalg.cho_factor(a), b), (S, B)),
    ("cho_solve lower vector", lambda a, b: fsl.cho_solve(fsl.cho_factor(a, lower=True), b),
     lambda a, b: scipy.linalg.cho_solve(scipy.linalg.cho_factor(a, lower=True), b), (S, V)),
]


@pytest.mark.parametrize("name, fn, sp_fn, args", CASES, ids=[c[0] for c in CASES])
def test_values_match_scipy(name, fn, sp_fn, args):
    np.testing.assert_allclose(fn(*args), sp_fn(*args), rtol=1e-10, atol=1e-12)


GRAD_CASES = [c for c in CASES if "unit=True" not in c[0] and "vector" not in c[0]] + [
    ("trisolve unit vector", lambda a, b: fsl.solve_triangular(a, b, lower=True,
                                                               unit_diagonal=True), None, (A, V))]


@pytest.mark.parametrize("name, fn, sp_fn, args", GRAD_CASES, ids=[c[0] for c in GRAD_CASES])
def test_grads(name, fn, sp_fn, args):
    check_grads(fn, args, order=2, modes=("fwd", "rev"))


def test_stacks_and_vmap():
    stack = np.stack([A, A.T + np.eye(3)])
    np.testing.assert_allclose(fsl.solve_triangular(stack, np.stack([B, B]), lower=True),
                               [scipy.linalg.solve_triangular(m, B, lower=True) for m in stack],
                               rtol=1e-12)
    check_vmap(lambda a, b: fsl.cho_solve(fsl.cho_factor(a), b),
               lambda seed: (S + seed * np.eye(3), V + seed))


def test_gp_style_gradient_under_jit():
    def nll(k, y):
        c = fsl.cho_factor(k, lower=True)
        return 0.5 * (y @ fsl.cho_solve(c, y)) + fx.numpy.sum(fx.numpy.log(
            fx.numpy.diagonal(c[0])))
    check_jit(fx.grad(nll, argnums=(0, 1)), (S, V), rtol=1e-9, atol=1e-12)


# name, function, arguments, exception, message
ERROR_CASES = [
    ("trans", lambda: fsl.solve_triangular(A, V, trans=3), FxValueError, r"trans must be"),
    ("rows", lambda: fsl.solve_triangular(A, np.ones(2)), FxTypeError,
     r"solve_triangular: b of shape \(2,\) does not match a of shape \(3, 3\)"),
    ("not square", lambda: fsl.cholesky(np.ones((2, 3))), FxTypeError, r"cholesky: .*square"),
    ("cho_solve pair", lambda: fsl.cho_solve(S, V), FxTypeError, r"cho_solve: the first"),
]


@pytest.mark.parametrize("name, fn, error, message", ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_errors(name, fn, error, message):
    with pytest.raises(error, match=message):
        fn()
