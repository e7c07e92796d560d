"""fx.jet, fx.derivatives, fx.taylor_coefficients: closed forms to order 20, nested
jacfwd to order 6, composition with jit/vmap/grad, pytrees, errors."""
import math
from fractions import Fraction

import numpy as np
import pytest

import fxgrad as fx
import fxgrad.numpy as fnp


def nested_derivatives(f, order, x):
    """[f(x), f'(x), ..., f^(order)(x)] by nesting jacfwd (exponential cost)."""
    out, g = [f(x)], f
    for _ in range(order):
        g = fx.jacfwd(g)
        out.append(g(x))
    return np.array(out)


def bernoulli(n):
    b = [Fraction(1)]
    for m in range(1, n + 1):
        b.append(-sum(math.comb(m + 1, k) * b[k] for k in range(m)) / Fraction(m + 1))
    return b


def tanh_derivatives_at_zero(order):
    """tanh x = sum_n 2^{2n} (2^{2n} - 1) B_{2n} x^{2n-1} / (2n)!, times k! for the k-th."""
    b, out = bernoulli(order + 1), [0.0] * (order + 1)
    for n in range(1, order // 2 + 2):
        k = 2 * n - 1
        if k <= order:
            coeff = Fraction(2 ** (2 * n) * (2 ** (2 * n) - 1)) * b[2 * n] / math.factorial(2 * n)
            out[k] = float(coeff * math.factorial(k))
    return np.array(out)


CLOSED_FORMS = [
    ("exp", fnp.exp, 0.7, lambda k: np.exp(0.7)),
    ("sin", fnp.sin, 0.3, lambda k: [np.sin, np.cos, lambda x: -np.sin(x),
                                     lambda x: -np.cos(x)][k % 4](0.3)),
    ("geometric", lambda x: 1.0 / (1.0 - x), 0.0, lambda k: math.factorial(k)),
    ("log1p", fnp.log1p, 0.0, lambda k: 0.0 if k == 0 else (-1) ** (k - 1) * math.factorial(k - 1)),
    ("sqrt", fnp.sqrt, 1.0, lambda k: float(np.prod([0.5 - j for j in range(k)]))),
    ("tanh", fnp.tanh, 0.0, lambda k: tanh_derivatives_at_zero(20)[k]),
]


@pytest.mark.parametrize("name,f,x,kth", CLOSED_FORMS, ids=[c[0] for c in CLOSED_FORMS])
def test_derivatives_match_closed_forms_to_order_20(name, f, x, kth):
    got = fx.derivatives(f, order=20)(x)
    want = np.array([kth(k) for k in range(21)], dtype=float)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10 * np.abs(want).max())


NESTED = [
    ("sin_exp", lambda x: fnp.sin(x) * fnp.exp(x), 0.4),
    ("tanh_mix", lambda x: fnp.tanh(x * x) / (1.0 + x) + fnp.log(2.0 + fnp.cos(x)), 0.3),
    ("logistic_pow", lambda x: fx.primitives.unary.logistic(x) ** 3 + fnp.sqrt(x + 2.0), -0.2),
    ("scan", lambda x: fx.scan(lambda c, _: (fnp.sin(c) * x + c, None), x, None, length=4)[0], 0.6),
    ("cond", lambda x: fx.cond(x > 0.0, lambda y: fnp.exp(-y * y), lambda y: y, x), 0.5),
]


@pytest.mark.parametrize("name,f,x", NESTED, ids=[c[0] for c in NESTED])
def test_derivatives_match_nested_jacfwd_to_order_6(name, f, x):
    np.testing.assert_allclose(fx.derivatives(f, order=6)(x), nested_derivatives(f, 6, x),
                               rtol=1e-10, atol=1e-10)


def test_jet_follows_jax_conventions():
    # JAX's docstring example: h(z) = z^3 at 0.5 composed with exp.
    h0, h1, h2 = 0.5 ** 3, 3 * 0.5 ** 2, 6 * 0.5
    f0, (f1, f2) = fx.jet(fnp.exp, (h0,), ((h1, h2),))
    assert np.isclose(f0, np.exp(h0))
    assert np.isclose(f1, np.exp(h0) * h1)
    assert np.isclose(f2, np.exp(h0) * h1 ** 2 + np.exp(h0) * h2)


def test_jet_of_pytrees_and_several_arguments():
    def f(params, x):
        return {"y": fnp.sin(params["w"] * x) + params["b"], "z": x * x}
    params = {"w": np.array([1.0, 2.0]), "b": np.array(0.5)}
    x = np.array([0.3, -0.2])
    v_params = {"w": np.array([1.0, 0.0]), "b": np.array(1.0)}
    y, series = fx.jet(f, (params, x), ((v_params, 0.0), (np.ones(2), 0.0)))
    assert set(series) == {"y", "z"} and len(series["y"]) == 2
    path = lambda t: f({"w": params["w"] + t * v_params["w"], "b": params["b"] + t}, x + t)
    second = fx.jacfwd(fx.jacfwd(lambda t: path(t)["y"]))(0.0)
    np.testing.assert_allclose(series["y"][1], second, rtol=1e-12)
    np.testing.assert_allclose(series["z"][0], 2 * x, rtol=1e-12)


def test_integer_inputs_have_zero_series():
    y, (d1,) = fx.jet(lambda x, n: x * n, (2.0, 3), ((1.0,), (1,)))
    assert float(d1) == 3.0


def test_float32_stays_float32():
    y, terms = fx.jet(fnp.sin, (np.float32(0.3),), ((np.float32(1.0), 0.0),))
    assert y.dtype == np.float32 and all(t.dtype == np.float32 for t in terms)


def test_jet_under_jit_vmap_and_grad():
    f = lambda x: fnp.tanh(x) * fnp.exp(-x)  # noqa: E731
    d = fx.derivatives(f, order=5)
    xs = np.array([0.1, 0.5, -0.7])
    eager = np.stack([d(x) for x in xs])
    np.testing.assert_allclose(fx.vmap(d)(xs), eager, rtol=1e-12)
    np.testing.assert_allclose(fx.jit(fx.vmap(d))(xs), eager, rtol=1e-12)
    # grad of the fifth derivative is the sixth derivative
    sixth = fx.grad(lambda x: d(x)[5])(0.5)
    np.testing.assert_allclose(sixth, fx.derivatives(f, order=6)(0.5)[6], rtol=1e-10)


def test_derivatives_of_array_argument_and_argnums():
    got = fx.derivatives(lambda a, x: a * fnp.sin(x), order=2, argnums=1)(2.0, np.array([0.0, 1.0]))
    np.testing.assert_allclose(got, [2 * np.sin([0, 1]), 2 * np.cos([0, 1]), -2 * np.sin([0, 1])])


def lorenz(s, sigma=10.0, rho=28.0, beta=8.0 / 3.0):
    x, y, z = s[0], s[1], s[2]
    return fnp.stack([sigma * (y - x), x * (rho - z) - y, x * y - beta * z])


def lie_derivative_coefficients(f, x0, order):
    """x^{(k)}(0) / k! for x' = f(x) by nesting jvp: F_{k+1}(x) = dF_k(x)[f(x)]."""
    out, F = [x0], f
    for k in range(1, order + 1):
        out.append(np.asarray(F(x0)) / math.factorial(k))
        F = (lambda G: lambda x: fx.jvp(G, (x,), (f(x),))[1])(F)
    return np.array(out)


def test_taylor_coefficients_of_the_lorenz_flow_match_nested_jvp():
    s0 = np.array([1.0, 2.0, 3.0])
    got = fx.taylor_coefficients(lorenz, order=6)(s0)
    np.testing.assert_allclose(got, lie_derivative_coefficients(lorenz, s0, 6), rtol=1e-11)


def test_taylor_coefficients_closed_form_and_extra_args():
    # x' = a x^2, x(0) = x0: x(t) = x0 / (1 - a x0 t), coefficients x0 (a x0)^k
    got = fx.taylor_coefficients(lambda x, a: a * x * x, order=10)(np.array(0.5), 3.0)
    np.testing.assert_allclose(got, [0.5 * 1.5 ** k for k in range(11)], rtol=1e-12)


def test_taylor_coefficients_under_jit():
    step = fx.jit(fx.taylor_coefficients(lorenz, order=8))
    s0 = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(step(s0), fx.taylor_coefficients(lorenz, order=8)(s0), rtol=1e-12)


@pytest.mark.parametrize("call,message", [
    (lambda: fx.jet(fnp.sin, (1.0,), ((1.0,), (2.0,))), "one list of terms per primal"),
    (lambda: fx.jet(fnp.add, (1.0, 2.0), ((1.0,), (1.0, 0.0))), "same length"),
    (lambda: fx.jet(fnp.sin, (np.ones(3),), ((np.ones(2),),)), "has shape (2,)"),
    (lambda: fx.jet(fnp.sin, 1.0, ((1.0,),)), "primals must be a tuple"),
    (lambda: fx.derivatives(fnp.sin, order=-1), "non-negative int"),
    (lambda: fx.derivatives(fnp.sin, order=2)(1), "floating-point"),
    (lambda: fx.taylor_coefficients(lambda x: fnp.sum(x), order=2)(np.ones(3)), "shape of x"),
])
def test_errors_name_the_mistake(call, message):
    with pytest.raises(fx.FxgradError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call()
