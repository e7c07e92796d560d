"""jacfwd, jacrev and hessian: values, result structure (outer = output pytree, inner =
input pytree, leaves of shape out.shape + in.shape), argnums, has_aux and nesting."""
import numpy as np
import pytest

import fxgrad as fx
import fxgrad.numpy as fnp
from fxgrad.tree_util import tree_leaves, tree_structure

allclose = np.testing.assert_allclose
JACOBIANS = [fx.jacfwd, fx.jacrev]
jac_ids = ["jacfwd", "jacrev"]

RNG = np.random.default_rng(0)
W = RNG.standard_normal((4, 3))
X = RNG.standard_normal(3)


def numerical_jacobian(f, x, eps=1e-6):
    """Central differences, output dims first."""
    x = np.asarray(x, np.float64)
    cols = []
    for j in range(x.size):
        e = np.zeros(x.size)
        e[j] = eps
        e = e.reshape(x.shape)
        cols.append((np.asarray(f(x + e)) - np.asarray(f(x - e))) / (2 * eps))
    out_shape = np.shape(cols[0])
    return np.stack(cols, axis=-1).reshape(out_shape + x.shape)


def mlp(x):
    return fnp.tanh(fnp.dot(W, x)) * 2.0


@pytest.mark.parametrize("jac", JACOBIANS, ids=jac_ids)
def test_jacobian_of_an_elementwise_square(jac):
    allclose(jac(lambda x: x ** 2)(np.array([4.0, 4.0])), [[8.0, 0.0], [0.0, 8.0]])


@pytest.mark.parametrize("jac", JACOBIANS, ids=jac_ids)
def test_jacobian_matches_finite_differences(jac):
    expected = numerical_jacobian(mlp, X)
    got = jac(mlp)(X)
    assert got.shape == (4, 3)
    allclose(got, expected, rtol=1e-6, atol=1e-8)
    allclose(got, np.diag(2 * (1 - np.tanh(W @ X) ** 2)) @ W, rtol=1e-12)


@pytest.mark.parametrize("jac", JACOBIANS, ids=jac_ids)
@pytest.mark.parametrize("in_shape, out_shape", [
    ((), ()), ((3,), ()), ((), (2,)), ((2, 3), (4,)), ((3,), (2, 2)), ((2, 1), (1, 3)),
])
def test_jacobian_shape_is_output_shape_then_input_shape(jac, in_shape, out_shape):
    size_out = int(np.prod(out_shape))
    weights = RNG.standard_normal((size_out, int(np.prod(in_shape))))

    def f(x):
        return fnp.reshape(fnp.dot(weights, fnp.reshape(fnp.sin(x), (-1,))), out_shape)
    x = RNG.standard_normal(in_shape)
    got = jac(f)(x)
    assert np.shape(got) == out_shape + in_shape
    allclose(got, numerical_jacobian(lambda x: np.reshape(weights @ np.sin(x).ravel(),
                                                          out_shape), x), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("jac", JACOBIANS, ids=jac_ids)
def test_jacobian_with_tuple_argnums(jac):
    f = lambda x, y, s: fnp.sin(x) * y * s   # noqa: E731
    x, y = np.array([0.1, 0.2]), np.array([1.0, 2.0])
    jx, jy = jac(f, argnums=(0, 1))(x, y, 3.0)
    allclose(jx, np.diag(np.cos(x) * y * 3.0))
    allclose(jy, np.diag(np.sin(x) * 3.0))
    (js,) = jac(f, argnums=(2,))(x, y, 3.0)
    assert js.shape == (2,)
    allclose(js, np.sin(x) * y)
    allclose(jac(f, argnums=-1)(x, y, 3.0), np.sin(x) * y)


@pytest.mark.parametrize("jac", JACOBIANS, ids=jac_ids)
def test_jacobian_of_pytree_input_and_output(jac):
    def f(p):
        return {"u": p["a"] * p["b"], "v": (fnp.sum(p["a"]), p["b"] * 2.0)}
    p = {"a": np.array([1.0, 2.0, 3.0]), "b": np.array(4.0)}
    J = jac(f)(p)
    assert tree_structure(J) == tree_structure(
        {"u": {"a": 0, "b": 0}, "v": ({"a": 0, "b": 0}, {"a": 0, "b": 0})})
    assert J["u"]["a"].shape == (3, 3) and J["u"]["b"].shape == (3,)
    assert J["v"][0]["a"].shape == (3,) and J["v"][0]["b"].shape == ()
    assert J["v"][1]["a"].shape == (3,) and J["v"][1]["b"].shape == ()
    allclose(J["u"]["a"], 4.0 * np.eye(3))
    allclose(J["u"]["b"], p["a"])
    allclose(J["v"][0]["a"], np.ones(3))
    allclose(J["v"][0]["b"], 0.0)
    allclose(J["v"][1]["b"], 2.0)
    allclose(J["v"][1]["a"], np.zeros(3))


@pytest.mark.parametrize("jac", JACOBIANS, ids=jac_ids)
def test_jacobian_of_tuple_output_with_tuple_argnums_nests_output_outside(jac):
    f = lambda x, y: (x * y, x + y ** 2)   # noqa: E731
    J = jac(f, argnums=(0, 1))(2.0, 3.0)
    assert isinstance(J, tuple) and all(isinstance(row, tuple) for row in J)
    allclose(np.array(J, dtype=float), [[3.0, 2.0], [1.0, 6.0]])


@pytest.mark.parametrize("jac", JACOBIANS, ids=jac_ids)
def test_jacobian_with_has_aux(jac):
    J, aux = jac(lambda x: (x ** 3, {"sq": x ** 2}), has_aux=True)(np.array([1.0, 2.0]))
    allclose(J, np.diag([3.0, 12.0]))
    allclose(aux["sq"], [1.0, 4.0])


@pytest.mark.parametrize("jac", JACOBIANS, ids=jac_ids)
def test_jacobian_of_a_constant_output_is_zero(jac):
    J = jac(lambda x: fnp.ones(2) * 3.0)(np.array([1.0, 2.0, 3.0]))
    assert J.shape == (2, 3) and not np.any(J)


@pytest.mark.parametrize("jac", JACOBIANS, ids=jac_ids)
def test_jacobian_of_an_empty_input(jac):
    J = jac(lambda x: fnp.sum(x) + fnp.ones(2))(np.zeros(0))
    assert J.shape == (2, 0)


@pytest.mark.parametrize("jac", JACOBIANS, ids=jac_ids)
def test_jacobian_keeps_float32(jac):
    J = jac(lambda x: fnp.sin(x) * 2.0)(np.ones(3, np.float32))
    assert J.dtype == np.float32
    allclose(J, np.diag(np.full(3, 2 * np.cos(1.0))), rtol=1e-6)


@pytest.mark.parametrize("jac", JACOBIANS, ids=jac_ids)
def test_jacobian_skips_integer_arguments_outside_argnums(jac):
    J = jac(lambda x, n: x ** n, argnums=0)(np.array([1.0, 2.0]), 3)
    allclose(J, np.diag([3.0, 12.0]))


# ---------------------------------------------------------------- Hessians

def quadratic_form(x):
    A = np.array([[1.0, 2.0, 0.0], [0.5, 3.0, 1.0], [0.0, -1.0, 2.0]])
    return fnp.dot(x, fnp.dot(A, x)), A


def test_hessian_of_a_quadratic_form():
    A = quadratic_form(X)[1]
    allclose(fx.hessian(lambda x: quadratic_form(x)[0])(X), A + A.T)


def test_hessian_of_a_sum_of_squares():
    allclose(fx.hessian(lambda x: fnp.sum(x ** 2))(np.array([4.0, 4.0])),
             [[2.0, 0.0], [0.0, 2.0]])


def cubic_mix(x):
    return fnp.sum(fnp.sin(x) * x[0] ** 2) + x[0] * x[1] * x[2]


def cubic_mix_hessian(x):
    """f = x0² Σ sin(xi) + x0 x1 x2, differentiated by hand."""
    s, c = np.sin(x), np.cos(x)
    H = np.diag(-x[0] ** 2 * s)
    H[0, 0] = 2 * s.sum() + 4 * x[0] * c[0] - x[0] ** 2 * s[0]
    H[0, 1] = H[1, 0] = 2 * x[0] * c[1] + x[2]
    H[0, 2] = H[2, 0] = 2 * x[0] * c[2] + x[1]
    H[1, 2] = H[2, 1] = x[0]
    return H


@pytest.mark.parametrize("second", [
    fx.hessian,
    lambda f: fx.jacfwd(fx.jacrev(f)),
    lambda f: fx.jacrev(fx.jacfwd(f)),
    lambda f: fx.jacrev(fx.jacrev(f)),
    lambda f: fx.jacfwd(fx.jacfwd(f)),
    lambda f: fx.jacfwd(fx.grad(f)),
    lambda f: fx.jacrev(fx.grad(f)),
], ids=["hessian", "fwd-rev", "rev-fwd", "rev-rev", "fwd-fwd", "fwd-grad", "rev-grad"])
def test_all_second_derivative_compositions_agree(second):
    x = np.array([0.7, -0.4, 1.2])
    expected = cubic_mix_hessian(x)
    H = second(cubic_mix)(x)
    assert H.shape == (3, 3)
    allclose(H, expected, rtol=1e-12, atol=1e-12)
    allclose(H, H.T, rtol=1e-12, atol=1e-12)


def test_hessian_with_tuple_argnums_is_nested_blocks():
    f = lambda x, y: fnp.sum(x ** 2 * y) + fnp.sum(y ** 3)   # noqa: E731
    x, y = np.array([1.0, 2.0]), np.array([3.0, 4.0])
    (hxx, hxy), (hyx, hyy) = fx.hessian(f, argnums=(0, 1))(x, y)
    allclose(hxx, np.diag(2 * y))
    allclose(hxy, np.diag(2 * x))
    allclose(hyx, np.diag(2 * x))
    allclose(hyy, np.diag(6 * y))


def test_hessian_of_a_pytree_input():
    f = lambda p: p["a"] ** 2 * p["b"]   # noqa: E731
    H = fx.hessian(f)({"a": 3.0, "b": 2.0})
    assert tree_structure(H) == tree_structure({"a": {"a": 0, "b": 0}, "b": {"a": 0, "b": 0}})
    allclose([[H["a"]["a"], H["a"]["b"]], [H["b"]["a"], H["b"]["b"]]], [[4.0, 6.0], [6.0, 0.0]])


def test_hessian_with_has_aux():
    H, aux = fx.hessian(lambda x: (fnp.sum(x ** 3), x * 2.0), has_aux=True)(np.array([1.0, 2.0]))
    allclose(H, np.diag([6.0, 12.0]))
    allclose(aux, [2.0, 4.0])


def test_hessian_of_a_matrix_input_has_four_axes():
    x = RNG.standard_normal((2, 3))
    H = fx.hessian(lambda m: fnp.sum(m ** 3))(x)
    assert H.shape == (2, 3, 2, 3)
    allclose(H.reshape(6, 6), np.diag(6 * x.ravel()))


# ---------------------------------------------------------------- nesting with other transforms

def test_grad_of_a_function_using_jacrev():
    # sum of the Jacobian of sin(x)² is sum 2 sin cos = sum sin(2x); its gradient 2 cos(2x)
    f = lambda x: fnp.sum(fx.jacrev(lambda y: fnp.sin(y) ** 2)(x))   # noqa: E731
    allclose(fx.grad(f)(X), 2 * np.cos(2 * X))


def test_jacfwd_of_a_function_using_jacrev_with_a_closure():
    def f(x):
        return fx.jacrev(lambda y: fnp.sin(x * y))(np.array(1.0))   # = x cos(x)
    allclose(fx.jacfwd(f)(X), np.diag(np.cos(X) - X * np.sin(X)))


def test_third_derivative_tensor():
    T = fx.jacfwd(fx.hessian(lambda x: fnp.sum(x ** 4)))(np.array([1.0, 2.0]))
    assert T.shape == (2, 2, 2)
    expected = np.zeros((2, 2, 2))
    expected[0, 0, 0], expected[1, 1, 1] = 24.0, 48.0
    allclose(T, expected)


def test_jacobians_return_plain_arrays():
    J = fx.jacrev(lambda x: {"a": x * 2.0})(X)
    assert all(isinstance(leaf, np.ndarray) for leaf in tree_leaves(J))
