"""Algebraic properties of the derivatives, checked with hypothesis on functions composed
from a small table of elementwise operations, over random shapes and points:
jvp is linear in the tangent, ⟨u, J v⟩ = ⟨uᵀJ, v⟩, grad = jacrev for scalar functions,
jacfwd = jacrev, and jvp agrees with finite differences."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import fxgrad as fx
import fxgrad.numpy as fnp

SETTINGS = settings(max_examples=25, deadline=None, database=None)

# Each entry is (fxgrad function, numpy function); all are smooth on the whole real line.
ELEMENTWISE = {
    "sin": (fnp.sin, np.sin),
    "cos": (fnp.cos, np.cos),
    "tanh": (fnp.tanh, np.tanh),
    "exp_half": (lambda x: fnp.exp(0.5 * x), lambda x: np.exp(0.5 * x)),
    "square": (lambda x: x ** 2, lambda x: x ** 2),
    "cube": (lambda x: x * x * x, lambda x: x ** 3),
    "logistic": (lambda x: 1.0 / (1.0 + fnp.exp(-x)), lambda x: 1.0 / (1.0 + np.exp(-x))),
    "softplus_ish": (lambda x: fnp.sqrt(1.0 + x ** 2), lambda x: np.sqrt(1.0 + x ** 2)),
    "affine": (lambda x: 3.0 * x - 1.0, lambda x: 3.0 * x - 1.0),
}
SHAPES = [(), (1,), (3,), (2, 3)]


def compose(names, couple):
    """fxgrad and numpy versions of the composition; `couple` mixes elements via a sum."""
    def build(which):
        def f(x):
            for name in names:
                x = ELEMENTWISE[name][which](x)
                if couple:
                    x = x + 0.25 * (fnp.sum(x) if which == 0 else np.sum(x))
            return x
        return f
    return build(0), build(1)


def values(shape):
    return hnp.arrays(np.float64, shape, elements=st.floats(-1.5, 1.5, allow_nan=False))


@st.composite
def problems(draw, n_vectors=0):
    names = draw(st.lists(st.sampled_from(sorted(ELEMENTWISE)), min_size=1, max_size=3))
    couple = draw(st.booleans())
    shape = draw(st.sampled_from(SHAPES))
    x = draw(values(shape))
    vecs = [draw(values(shape)) for _ in range(n_vectors)]
    return (names, couple, x, *vecs)


def close(a, b, tol=1e-9):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=tol, atol=tol)


@SETTINGS
@given(problems(n_vectors=2), st.floats(-2, 2), st.floats(-2, 2))
def test_jvp_is_linear_in_the_tangent(problem, a, b):
    names, couple, x, u, v = problem
    f, _ = compose(names, couple)
    t_u = fx.jvp(f, (x,), (u,))[1]
    t_v = fx.jvp(f, (x,), (v,))[1]
    t_mix = fx.jvp(f, (x,), (a * u + b * v,))[1]
    close(t_mix, a * t_u + b * t_v)


@SETTINGS
@given(problems(n_vectors=2))
def test_vjp_is_the_transpose_of_jvp(problem):
    names, couple, x, v, u = problem      # u lives in the output space (same shape here)
    f, _ = compose(names, couple)
    out, jv = fx.jvp(f, (x,), (v,))
    _, pullback = fx.vjp(f, x)
    (ujt,) = pullback(u)
    assert np.shape(out) == np.shape(u)
    close(np.vdot(u, jv), np.vdot(ujt, v))


@SETTINGS
@given(problems())
def test_grad_equals_jacrev_for_a_scalar_function(problem):
    names, couple, x = problem
    f, _ = compose(names, couple)
    scalar = lambda x: fnp.sum(f(x) * f(x))   # noqa: E731
    g = fx.grad(scalar)(x)
    assert np.shape(g) == np.shape(x)
    close(g, fx.jacrev(scalar)(x))
    close(g, fx.jacfwd(scalar)(x))


@SETTINGS
@given(problems())
def test_jacfwd_equals_jacrev(problem):
    names, couple, x = problem
    f, _ = compose(names, couple)
    j_fwd, j_rev = fx.jacfwd(f)(x), fx.jacrev(f)(x)
    assert np.shape(j_fwd) == np.shape(x) * 2 == np.shape(j_rev)
    close(j_fwd, j_rev)


@SETTINGS
@given(problems(n_vectors=1))
def test_jvp_matches_finite_differences_and_numpy_values(problem):
    names, couple, x, v = problem
    f, f_np = compose(names, couple)
    out, jv = fx.jvp(f, (x,), (v,))
    close(out, f_np(x), 1e-12)
    eps = 1e-6
    numerical = (f_np(x + eps * v) - f_np(x - eps * v)) / (2 * eps)
    close(jv, numerical, 1e-5)


@settings(max_examples=15, deadline=None, database=None)
@given(problems(n_vectors=1))
def test_hessian_is_symmetric_and_matches_hvp(problem):
    names, couple, x, v = problem
    f, _ = compose(names, couple)
    scalar = lambda x: fnp.sum(f(x))   # noqa: E731
    H = fx.hessian(scalar)(x)
    n = np.size(x)
    H2 = np.reshape(H, (n, n))
    close(H2, H2.T, 1e-8)
    close(np.reshape(fx.hvp(scalar, (x,), (v,)), -1), H2 @ np.reshape(v, -1), 1e-8)
