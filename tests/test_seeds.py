"""Every numeric example of the seed documents reproduced with fxgrad.

002: "Derivatives in Theano" (grad, logistic gradient, Jacobian and Hessian by hand with
scan and by the built-ins, R-operator, L-operator, Hessian times a vector).
004: Theano `function` arguments (multiple outputs, updates, givens) and `theano.grad`.
Theano's symbolic graphs become pure functions; its `scan` becomes `fx.scan`.
"""
import functools

import numpy as np

import fxgrad as fx
import fxgrad.numpy as fnp

allclose = np.testing.assert_allclose


# ---------------------------------------------------------------- 002: computing gradients

def test_grad_of_x_squared():
    f = fx.grad(lambda x: x ** 2)
    assert float(f(4.0)) == 8.0
    assert np.allclose(f(94.2), 188.4)


def test_logistic_gradient_table():
    dlogistic = fx.grad(lambda x: fnp.sum(1 / (1 + fnp.exp(-x))))
    out = dlogistic(np.array([[0.0, 1.0], [-1.0, -2.0]]))
    allclose(out, [[0.25, 0.19661193], [0.19661193, 0.10499359]], rtol=1e-7)


def test_seed_000_derivative_of_x_squared_plus_x_minus_two():
    df = fx.grad(lambda x: x * x + x - 2)
    for x in (-1.5, 0.0, 3.0):
        allclose(df(x), 2 * x + 1)


# ---------------------------------------------------------------- 002: Jacobian

def test_jacobian_of_x_squared_by_the_builtins():
    x = np.array([4.0, 4.0])
    allclose(fx.jacfwd(lambda x: x ** 2)(x), [[8.0, 0.0], [0.0, 8.0]])
    allclose(fx.jacrev(lambda x: x ** 2)(x), [[8.0, 0.0], [0.0, 8.0]])


def test_jacobian_of_x_squared_by_scan_over_rows():
    def y(x):
        return x ** 2

    def jacobian(x):
        # one gradient per output entry y[i], stacked by scan (the carry is unused)
        row = lambda carry, i: (carry, fx.grad(lambda x: y(x)[i])(x))   # noqa: E731
        _, J = fx.scan(row, 0.0, fnp.arange(y(x).shape[0]))
        return J
    allclose(jacobian(np.array([4.0, 4.0])), [[8.0, 0.0], [0.0, 8.0]])


# ---------------------------------------------------------------- 002: Hessian

def cost(x):
    return fnp.sum(x ** 2)


def test_hessian_of_sum_of_squares_by_the_builtin():
    allclose(fx.hessian(cost)(np.array([4.0, 4.0])), [[2.0, 0.0], [0.0, 2.0]])


def test_hessian_of_sum_of_squares_by_scan_over_the_gradient():
    gy = fx.grad(cost)

    def hessian(x):
        row = lambda carry, i: (carry, fx.grad(lambda x: gy(x)[i])(x))   # noqa: E731
        _, H = fx.scan(row, 0.0, fnp.arange(x.shape[0]))
        return H
    allclose(hessian(np.array([4.0, 4.0])), [[2.0, 0.0], [0.0, 2.0]])


# ---------------------------------------------------------------- 002: R-op, L-op, Hv

def test_r_operator_of_a_vector_matrix_product():
    x = np.array([0.0, 1.0])
    JV = fx.Rop(lambda W: fnp.dot(x, W), (np.array([[1.0, 1.0], [1.0, 1.0]]),),
                (np.array([[2.0, 2.0], [2.0, 2.0]]),))
    allclose(JV, [2.0, 2.0])


def test_l_operator_of_a_vector_matrix_product():
    x, v = np.array([0.0, 1.0]), np.array([2.0, 2.0])
    (VJ,) = fx.Lop(lambda W: fnp.dot(x, W), (np.ones((2, 2)),), v)
    allclose(VJ, [[0.0, 0.0], [2.0, 2.0]])
    # the L-op has the shape of the input, the R-op the shape of the output
    assert VJ.shape == (2, 2)


def test_hessian_times_vector_both_ways():
    x, v = np.array([4.0, 4.0]), np.array([2.0, 2.0])
    gy = fx.grad(lambda x: fnp.sum(x ** 2))
    vH = fx.grad(lambda x: fnp.sum(gy(x) * v))(x)
    Hv = fx.Rop(gy, (x,), (v,))
    allclose(vH, [4.0, 4.0])
    allclose(Hv, [4.0, 4.0])
    allclose(fx.hvp(lambda x: fnp.sum(x ** 2), (x,), (v,)), [4.0, 4.0])


# ---------------------------------------------------------------- 004: function arguments

def test_multiple_outputs_of_one_function():
    a = np.random.default_rng(0).standard_normal((3, 3)).astype(np.float32)
    ex = lambda a: [fnp.exp(a), fnp.log(a), a ** 2]   # noqa: E731
    with np.errstate(invalid="ignore"):
        outs = ex(a)
        expected = [np.exp(a), np.log(a), a ** 2]
    assert isinstance(outs, list) and len(outs) == 3
    for got, want in zip(outs, expected):
        assert got.dtype == np.float32
        allclose(got, want, rtol=1e-6, equal_nan=True)
    assert np.isnan(outs[1][a < 0]).all()
    # traced once, the three outputs are one program with three results
    closed = fx.make_jaxpr(ex)(a)
    assert len(closed.out_avals) == 3 and closed.in_avals[0].dtype == np.float32
    with np.errstate(invalid="ignore"):
        for got, want in zip(closed(a), expected):
            allclose(got, want, rtol=1e-6, equal_nan=True)


def test_jacobians_of_multiple_outputs():
    a = np.array([[0.5, 1.0], [1.5, 2.0]])
    ex = lambda a: [fnp.exp(a), fnp.log(a), a ** 2]   # noqa: E731
    for jac in (fx.jacfwd, fx.jacrev):
        J = jac(ex)(a)
        assert isinstance(J, list) and [j.shape for j in J] == [(2, 2, 2, 2)] * 3
        for got, derivative in zip(J, [np.exp(a), 1 / a, 2 * a]):
            allclose(got.reshape(4, 4), np.diag(derivative.ravel()))


def test_updates_become_a_pure_function_returning_new_state():
    def mul(state, x):
        """Theano's `function([x], updates=[(w, w * x)])`: outputs nothing, new w."""
        return [], {"w": state["w"] * x}
    state = {"w": np.array(1.0)}
    outputs, state = mul(state, 4.0)
    assert outputs == []
    allclose(state["w"], 4.0)
    # the update is differentiable like any other function
    allclose(fx.grad(lambda w: mul({"w": w}, 4.0)[1]["w"])(1.0), 4.0)
    allclose(fx.jacrev(lambda s: mul(s, 4.0)[1])({"w": 1.0})["w"]["w"], 4.0)


def test_givens_become_partial_application_or_a_closure():
    def fn(x, state):
        return state * 2 + x
    foo = np.array(3.0)
    given_partial = functools.partial(fn, state=foo)
    given_closure = lambda x: fn(x, foo)   # noqa: E731
    allclose(given_partial(1.0), 7.0)
    allclose(given_closure(1.0), 7.0)
    allclose(fx.grad(given_partial)(1.0), 1.0)
    allclose(fx.grad(fn, argnums=1)(1.0, foo), 2.0)


def test_grad_of_a_squared_is_two_a():
    g = fx.grad(lambda a: a ** 2)
    for a in (-2.0, 0.0, 0.5, 3.0):
        allclose(g(a), 2 * a)
    text = str(fx.make_jaxpr(g)(1.0))
    assert text.startswith("{ lambda ; a:f64[]. let")
    assert "mul" in text or "integer_pow" in text
    program_text = str(fx.make_jaxpr(lambda a: a ** 2)(np.zeros(3)))
    assert program_text.startswith("{ lambda ; a:f64[3]. let")
    assert "integer_pow" in program_text or "mul" in program_text
