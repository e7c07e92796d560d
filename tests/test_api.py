"""The transformations of fxgrad.api: grad, value_and_grad, vjp, jvp, linearize, Lop, Rop,
hvp, make_jaxpr — arguments, pytrees, composition, Python control flow and dtypes."""
import collections
import dataclasses

import numpy as np
import pytest

import fxgrad as fx
import fxgrad.numpy as fnp
from fxgrad.api_util import linearize_program, trace_flat, flatten_args
from fxgrad.core.trace import new_trace
from fxgrad.interpreters.jvp import Zero, jvp_program
from fxgrad.core.ir import ShapedArray, Literal
from fxgrad.tree_util import register_pytree_node, tree_leaves, tree_structure

allclose = np.testing.assert_allclose
X3 = np.array([0.5, -1.2, 2.0])
Point = collections.namedtuple("Point", ["x", "y"])


@dataclasses.dataclass
class Layer:
    w: object
    b: object


class Pair:
    """A user class registered as a pytree node."""

    def __init__(self, first, second):
        self.first, self.second = first, second


register_pytree_node(Pair, lambda p: ((p.first, p.second), None), lambda _, c: Pair(*c))


def logistic(x):
    return 1.0 / (1.0 + fnp.exp(-x))


# ---------------------------------------------------------------- grad and argnums

def poly(x, y, z):
    return x * y ** 2 * z ** 3


def test_grad_of_a_square():
    assert float(fx.grad(lambda x: x ** 2)(4.0)) == 8.0


@pytest.mark.parametrize("argnums, expected", [
    (0, 4.0 * 27.0),                      # y² z³
    (1, 2 * 1.0 * 2.0 * 27.0),            # 2 x y z³
    (2, 3 * 1.0 * 4.0 * 9.0),             # 3 x y² z²
    (-1, 3 * 1.0 * 4.0 * 9.0),
    (-3, 4.0 * 27.0),
])
def test_grad_with_an_int_argnums(argnums, expected):
    g = fx.grad(poly, argnums)(1.0, 2.0, 3.0)
    assert np.ndim(g) == 0
    allclose(g, expected)


def test_grad_with_a_tuple_argnums_returns_a_tuple_in_that_order():
    g = fx.grad(poly, (2, 0))(1.0, 2.0, 3.0)
    assert isinstance(g, tuple) and len(g) == 2
    allclose(g, [108.0, 108.0])
    (g0,) = fx.grad(poly, (0,))(1.0, 2.0, 3.0)
    allclose(g0, 108.0)
    gx, gz = fx.grad(poly, (0, -1))(1.0, 2.0, 3.0)
    allclose([gx, gz], [108.0, 108.0])


def test_grad_passes_keyword_arguments_through():
    def scaled(x, scale=1.0, *, power=2):
        return scale * x ** power
    allclose(fx.grad(scaled)(3.0, scale=2.0), 12.0)
    allclose(fx.grad(scaled)(3.0, power=3), 27.0)
    allclose(fx.grad(scaled, 1)(3.0, 2.0, power=3), 27.0)


def test_value_and_grad():
    value, g = fx.value_and_grad(lambda x: fnp.sum(fnp.sin(x)))(X3)
    allclose(value, np.sum(np.sin(X3)))
    allclose(g, np.cos(X3))
    value, (gx, gy) = fx.value_and_grad(lambda x, y: x * y, (0, 1))(2.0, 5.0)
    allclose([value, gx, gy], [10.0, 5.0, 2.0])


def test_has_aux_returns_the_auxiliary_pytree_unchanged():
    def loss(x):
        y = fnp.sum(x ** 2)
        return y, {"norm": fnp.sqrt(y), "x": x, "tag": None}
    g, aux = fx.grad(loss, has_aux=True)(X3)
    allclose(g, 2 * X3)
    assert set(aux) == {"norm", "x", "tag"} and aux["tag"] is None
    allclose(aux["norm"], np.linalg.norm(X3))
    allclose(aux["x"], X3)
    (value, aux2), g2 = fx.value_and_grad(loss, has_aux=True)(X3)
    allclose(value, np.sum(X3 ** 2))
    allclose(g2, g)
    allclose(aux2["norm"], aux["norm"])


def test_aux_values_are_concrete_arrays_not_tracers():
    _, aux = fx.grad(lambda x: (x * 2.0, x * 3.0), has_aux=True)(1.0)
    assert isinstance(aux, np.ndarray)
    allclose(aux, 3.0)


# ---------------------------------------------------------------- pytrees

def test_grad_of_a_dict_tuple_and_none_pytree():
    params = {"w": np.array([1.0, 2.0]), "b": (np.array(0.5), None), "n": []}

    def loss(p):
        return fnp.sum(p["w"] ** 2) * p["b"][0]
    g = fx.grad(loss)(params)
    assert tree_structure(g) == tree_structure(params)
    allclose(g["w"], 2 * params["w"] * 0.5)
    allclose(g["b"][0], 5.0)
    assert g["b"][1] is None and g["n"] == []


def test_grad_of_a_namedtuple_dataclass_and_registered_class():
    def loss(point, layer, pair):
        return (point.x * point.y + fnp.sum(layer.w * layer.b)
                + pair.first * pair.second[0])
    point, layer = Point(2.0, 3.0), Layer(np.array([1.0, 2.0]), np.array([3.0, 4.0]))
    pair = Pair(5.0, [7.0])
    g_point, g_layer, g_pair = fx.grad(loss, (0, 1, 2))(point, layer, pair)
    assert isinstance(g_point, Point) and isinstance(g_layer, Layer) and isinstance(g_pair, Pair)
    allclose([g_point.x, g_point.y], [3.0, 2.0])
    allclose(g_layer.w, layer.b)
    allclose(g_layer.b, layer.w)
    allclose(g_pair.first, 7.0)
    assert isinstance(g_pair.second, list)
    allclose(g_pair.second[0], 5.0)


def test_vjp_with_pytree_inputs_and_outputs():
    def f(p):
        return {"prod": p[0] * p[1], "parts": [fnp.sin(p[0]), None]}
    x, y = np.array([1.0, 2.0]), np.array([3.0, 4.0])
    out, pullback = fx.vjp(f, (x, y))
    allclose(out["prod"], x * y)
    allclose(out["parts"][0], np.sin(x))
    assert out["parts"][1] is None
    ct = {"prod": np.array([1.0, 1.0]), "parts": [np.array([2.0, 0.0]), None]}
    (g,) = pullback(ct)
    assert isinstance(g, tuple)
    allclose(g[0], y + 2.0 * np.cos(x) * [1.0, 0.0])
    allclose(g[1], x)


def test_vjp_with_several_primals_and_has_aux():
    out, pullback, aux = fx.vjp(lambda a, b: (a * b, {"a": a}), 2.0, 3.0, has_aux=True)
    allclose(out, 6.0)
    allclose(aux["a"], 2.0)
    ga, gb = pullback(1.0)
    allclose([ga, gb], [3.0, 2.0])


def test_vjp_pullback_can_be_called_repeatedly():
    _, pullback = fx.vjp(lambda x: fnp.sin(x) * 2.0, X3)
    for scale in (1.0, -3.0):
        (g,) = pullback(np.full(3, scale))
        allclose(g, 2.0 * scale * np.cos(X3))


def test_jvp_with_pytrees():
    def f(p):
        return Point(p["a"] * p["b"], fnp.exp(p["a"]))
    primals = ({"a": np.array([1.0, 2.0]), "b": np.array(3.0)},)
    tangents = ({"a": np.array([1.0, 0.0]), "b": np.array(2.0)},)
    out, t_out = fx.jvp(f, primals, tangents)
    assert isinstance(out, Point) and isinstance(t_out, Point)
    allclose(out.x, [3.0, 6.0])
    allclose(t_out.x, [1.0 * 3.0 + 1.0 * 2.0, 0.0 * 3.0 + 2.0 * 2.0])
    allclose(t_out.y, np.exp([1.0, 2.0]) * [1.0, 0.0])


def test_jvp_accepts_lists_and_several_arguments():
    out, t_out = fx.jvp(lambda x, y: x * y, [2.0, 3.0], [1.0, 10.0])
    allclose([out, t_out], [6.0, 3.0 + 20.0])


def test_linearize_matches_jvp_and_can_be_reused():
    def f(x, y):
        return fnp.sin(x) * y, x ** 3
    x, y = X3, np.array([2.0, 3.0, 4.0])
    out, f_jvp = fx.linearize(f, x, y)
    allclose(out[0], np.sin(x) * y)
    for tx, ty in [(np.ones(3), np.zeros(3)), (X3, -X3)]:
        expected = fx.jvp(f, (x, y), (tx, ty))[1]
        got = f_jvp(tx, ty)
        allclose(got[0], expected[0])
        allclose(got[1], expected[1])


def test_linearize_with_a_pytree_argument():
    out, f_jvp = fx.linearize(lambda p: p["u"] * p["v"], {"u": 2.0, "v": 5.0})
    allclose(out, 10.0)
    allclose(f_jvp({"u": 1.0, "v": 1.0}), 7.0)


# ---------------------------------------------------------------- composition

def test_grad_of_grad_of_grad():
    d3 = fx.grad(fx.grad(fx.grad(lambda x: x ** 4 + fnp.sin(x))))
    for x in (0.3, -1.7):
        allclose(d3(x), 24.0 * x - np.cos(x))


def _tanh_d4(x):
    t = np.tanh(x)
    return 8 * t * (1 - t ** 2) * (2 - 3 * t ** 2)


def _logistic_d4(x):
    s = 1 / (1 + np.exp(-x))
    return s * (1 - s) * (1 - 2 * s) * (1 - 12 * s + 12 * s ** 2)


@pytest.mark.parametrize("fun, d4", [
    (fnp.tanh, _tanh_d4),
    (fnp.sin, np.sin),
    (fnp.exp, np.exp),
    (logistic, _logistic_d4),
    (lambda x: x ** 5, lambda x: 120.0 * x),
], ids=["tanh", "sin", "exp", "logistic", "x**5"])
def test_fourth_derivatives_match_closed_forms(fun, d4):
    g4 = fx.grad(fx.grad(fx.grad(fx.grad(fun))))
    for x in (-0.8, 0.4, 1.3):
        allclose(g4(x), d4(x), rtol=1e-9, atol=1e-12)


def test_jvp_of_grad_is_a_hessian_vector_product():
    f = lambda x: fnp.sum(fnp.sin(x) * x ** 2)   # noqa: E731
    v = np.array([1.0, 0.5, -2.0])
    # f'' = 2 sin x + 4 x cos x - x² sin x, elementwise
    hessian = np.diag(2 * np.sin(X3) + 4 * X3 * np.cos(X3) - X3 ** 2 * np.sin(X3))
    _, hv = fx.jvp(fx.grad(f), (X3,), (v,))
    allclose(hv, hessian @ v)
    allclose(fx.hvp(f, (X3,), (v,)), hessian @ v)


def test_vjp_of_jvp_transposes_the_forward_derivative():
    f = lambda x: fnp.exp(x) * x   # noqa: E731
    v, u = np.array([1.0, 2.0, 3.0]), np.array([0.5, -1.0, 2.0])
    jvp_fun = lambda x: fx.jvp(f, (x,), (v,))[1]   # noqa: E731
    _, pullback = fx.vjp(jvp_fun, X3)
    # d/dx [f'(x) v] = f''(x) v elementwise, with f'' = e^x (x + 2)
    allclose(pullback(u)[0], u * np.exp(X3) * (X3 + 2) * v)


def test_grad_of_vjp_and_jvp_of_jvp():
    f = lambda x: x ** 3   # noqa: E731
    d2 = fx.grad(lambda x: fx.vjp(f, x)[1](1.0)[0])
    allclose(d2(2.0), 12.0)
    d2_fwd = lambda x: fx.jvp(lambda y: fx.jvp(f, (y,), (1.0,))[1], (x,), (1.0,))[1]   # noqa: E731
    allclose(d2_fwd(2.0), 12.0)


def test_nested_grads_do_not_confuse_perturbations():
    # d/dx [x * d/dy (x y)] = d/dx x² = 2x
    f = lambda x: x * fx.grad(lambda y: x * y)(3.0)   # noqa: E731
    allclose(fx.grad(f)(5.0), 10.0)
    # d/dx [x * d/dy (x + y)] = d/dx x = 1 (a confused implementation gives 2)
    g = lambda x: x * fx.grad(lambda y: x + y)(1.0)   # noqa: E731
    allclose(fx.grad(g)(2.0), 1.0)
    h = lambda x: x * fx.jvp(lambda y: x + y, (1.0,), (1.0,))[1]   # noqa: E731
    allclose(fx.grad(h)(2.0), 1.0)
    allclose(fx.jvp(h, (2.0,), (1.0,))[1], 1.0)


def test_grad_through_an_inner_grad_closing_over_the_outer_variable():
    # f(x) = d/dy [sin(x y)] at y=1 = x cos(x);  f'(x) = cos x - x sin x
    f = lambda x: fx.grad(lambda y: fnp.sin(x * y))(1.0)   # noqa: E731
    for x in (0.3, 1.1):
        allclose(fx.grad(f)(x), np.cos(x) - x * np.sin(x))
        allclose(fx.grad(fx.grad(f))(x), -2 * np.sin(x) - x * np.cos(x))


def test_grad_and_jacfwd_of_a_jacobian_built_with_scan():
    def jacobian(x):
        row = lambda carry, i: (carry, fx.grad(lambda x: (x ** 3)[i])(x))   # noqa: E731
        return fx.scan(row, 0.0, fnp.arange(x.shape[0]))[1]
    x = np.array([1.0, 2.0])
    allclose(jacobian(x), np.diag(3 * x ** 2))
    allclose(fx.grad(lambda x: fnp.sum(jacobian(x)))(x), 6 * x)
    third = fx.jacfwd(jacobian)(x)
    assert third.shape == (2, 2, 2)
    allclose(third[[0, 1], [0, 1], [0, 1]], 6 * x)
    assert np.count_nonzero(third) == 2


def test_lop_rop_and_hvp_agree_with_vjp_and_jvp():
    W = np.array([[1.0, 2.0], [3.0, 4.0]])
    f = lambda w, x: fnp.tanh(fnp.dot(x, w))   # noqa: E731
    x = np.array([0.3, -0.2])
    V, u = np.array([[0.1, 0.2], [0.3, 0.4]]), np.array([1.0, -1.0])
    allclose(fx.Rop(f, (W, x), (V, np.zeros(2))), fx.jvp(f, (W, x), (V, np.zeros(2)))[1])
    lop_w, lop_x = fx.Lop(f, (W, x), u)
    vjp_w, vjp_x = fx.vjp(f, W, x)[1](u)
    allclose(lop_w, vjp_w)
    allclose(lop_x, vjp_x)
    scalar = lambda w, x: fnp.sum(f(w, x) ** 2)   # noqa: E731
    hv_w, hv_x = fx.hvp(scalar, (W, x), (V, u))
    expected = fx.jvp(lambda w, x: fx.grad(scalar, (0, 1))(w, x), (W, x), (V, u))[1]
    allclose(hv_w, expected[0])
    allclose(hv_x, expected[1])


# ---------------------------------------------------------------- Python control flow

def test_if_on_a_traced_value():
    absolute = lambda x: x if x > 0 else -x   # noqa: E731
    assert float(fx.grad(absolute)(3.0)) == 1.0
    assert float(fx.grad(absolute)(-3.0)) == -1.0


def test_while_loop_on_traced_values():
    def double_until_ten(x):
        while x < 10.0:
            x = x * 2.0
        return x
    allclose(fx.grad(double_until_ten)(1.5), 8.0)     # 1.5 -> 12 in three doublings
    allclose(fx.grad(double_until_ten)(6.0), 2.0)
    allclose(fx.grad(double_until_ten)(20.0), 1.0)


def test_control_flow_on_a_reduction_of_an_intermediate():
    def f(x):
        y = fnp.sin(x)
        if fnp.sum(y) > 0:
            return fnp.sum(y ** 2)
        return fnp.sum(y)
    allclose(fx.grad(f)(np.array([1.0, 2.0])), 2 * np.sin([1.0, 2.0]) * np.cos([1.0, 2.0]))
    allclose(fx.grad(f)(np.array([-1.0, -2.0])), np.cos([-1.0, -2.0]))


def test_control_flow_inside_nested_grads():
    f = lambda x: x ** 3 if x > 0 else -(x ** 3)   # noqa: E731
    d2 = fx.grad(fx.grad(f))
    allclose(d2(2.0), 12.0)
    allclose(d2(-1.0), 6.0)
    allclose(fx.grad(fx.grad(fx.grad(f)))(-1.0), -6.0)


def test_control_flow_under_jvp_and_jacobians():
    f = lambda x: fnp.sin(x) if fnp.sum(x) < 1.0 else fnp.cos(x)   # noqa: E731
    allclose(fx.jvp(f, (np.zeros(2),), (np.ones(2),))[1], [1.0, 1.0])
    allclose(fx.jacrev(f)(np.ones(2)), np.diag(-np.sin([1.0, 1.0])))
    allclose(fx.jacfwd(f)(np.ones(2)), np.diag(-np.sin([1.0, 1.0])))


def test_python_loop_with_value_dependent_trip_count_newton_sqrt():
    def newton_sqrt(a):
        x = a
        while fnp.abs(x * x - a) > 1e-12:
            x = 0.5 * (x + a / x)
        return x
    allclose(newton_sqrt(2.0), np.sqrt(2.0))
    allclose(fx.grad(newton_sqrt)(2.0), 0.5 / np.sqrt(2.0), rtol=1e-6)


# ---------------------------------------------------------------- dtypes

def test_python_floats_default_to_float64():
    g = fx.grad(lambda x: x ** 2)(3.0)
    assert g.dtype == np.float64
    assert fx.jvp(lambda x: x * 2.0, (1.0,), (1.0,))[1].dtype == np.float64


@pytest.mark.parametrize("transform", [
    lambda f, x: fx.grad(lambda x: fnp.sum(f(x)))(x),
    lambda f, x: fx.jvp(f, (x,), (np.ones_like(x),))[1],
    lambda f, x: fx.vjp(f, x)[1](np.ones_like(x))[0],
    lambda f, x: fx.jacfwd(f)(x),
    lambda f, x: fx.jacrev(f)(x),
    lambda f, x: fx.hessian(lambda x: fnp.sum(f(x)))(x),
    lambda f, x: fx.grad(fx.grad(lambda x: fnp.sum(f(x))))(x[0]),
], ids=["grad", "jvp", "vjp", "jacfwd", "jacrev", "hessian", "grad2"])
def test_float32_in_float32_out(transform):
    x = X3.astype(np.float32)
    out = transform(lambda x: fnp.tanh(x) * 2.0 + x ** 2, x)
    assert out.dtype == np.float32


def test_float32_values_and_gradients():
    x = np.float32(0.5)
    value, g = fx.value_and_grad(lambda x: fnp.exp(x) * 3.0)(x)
    assert value.dtype == np.float32 and g.dtype == np.float32
    allclose(g, 3.0 * np.exp(0.5), rtol=1e-6)


def test_integer_arguments_are_fine_when_not_differentiated():
    allclose(fx.grad(lambda x, n: x ** n)(2.0, 3), 12.0)
    idx = np.array([2, 0])
    g = fx.grad(lambda i, x: fnp.sum(x[i] ** 2), argnums=1)(idx, X3)
    allclose(g, [2 * X3[0], 0.0, 2 * X3[2]])
    allclose(fx.grad(lambda x, k: x * k, 0)(2.0, np.int32(5)), 5.0)


def test_jvp_of_a_function_with_an_integer_input():
    out, t_out = fx.jvp(lambda x, n: x * n, (2.0, 3), (1.0, 0))
    allclose([out, t_out], [6.0, 3.0])


# ---------------------------------------------------------------- make_jaxpr

def test_make_jaxpr_prints_the_documented_format():
    text = str(fx.make_jaxpr(lambda x: fnp.sum(fnp.sin(x)))(np.zeros(3)))
    assert text == ("{ lambda ; a:f64[3]. let\n"
                    "    b:f64[3] = sin a\n"
                    "    c:f64[] = reduce_sum[axes=(0,)] b\n"
                    "  in (c,) }")


def test_make_jaxpr_returns_a_callable_closed_program():
    k = np.array([1.0, 2.0, 3.0])
    closed = fx.make_jaxpr(lambda x: fnp.sin(x) * k)(np.zeros(3))
    assert isinstance(closed, fx.ClosedProgram)
    assert str(closed).startswith("{ lambda a:f64[3] ; b:f64[3]. let")
    allclose(closed(X3)[0], np.sin(X3) * k)
    assert closed.in_avals == [ShapedArray((3,), np.float64)]


def test_make_jaxpr_with_static_argnums():
    def power(x, n):
        return x ** n if n > 1 else x
    closed = fx.make_jaxpr(power, static_argnums=1)(np.zeros(3), 3)
    assert closed.in_avals == [ShapedArray((3,), np.float64)]
    text = str(closed)
    assert "integer_pow" in text or "mul" in text
    assert str(fx.make_jaxpr(power, static_argnums=(1,))(np.zeros(3), 1)) == (
        "{ lambda ; a:f64[3]. let\n  in (a,) }")
    allclose(closed(X3)[0], X3 ** 3)


def test_make_jaxpr_of_a_gradient_shows_its_program():
    text = str(fx.make_jaxpr(fx.grad(lambda a: a ** 2))(1.0))
    assert text.startswith("{ lambda ; a:f64[]. let")
    assert "mul" in text or "integer_pow" in text
    closed = fx.make_jaxpr(fx.grad(lambda a: a ** 2))(1.0)
    for a in (0.5, 4.0, -2.0):
        allclose(closed(np.array(a))[0], 2 * a)


def test_make_jaxpr_of_float32_and_pytree_arguments():
    closed = fx.make_jaxpr(lambda p: p["a"] * p["b"])({"a": np.ones(2, np.float32),
                                                       "b": np.float32(2.0)})
    assert str(closed).startswith("{ lambda ; a:f32[2] b:f32[]. let")


# ---------------------------------------------------------------- symbolic zeros

def test_grad_with_respect_to_an_unused_input_is_zeros_of_its_shape():
    gx, gy = fx.grad(lambda x, y: fnp.sum(x * 2.0), (0, 1))(X3, np.ones((2, 2), np.float32))
    allclose(gx, [2.0, 2.0, 2.0])
    assert gy.shape == (2, 2) and gy.dtype == np.float32 and not gy.any()
    g = fx.grad(lambda x: 3.0)(X3)
    assert g.shape == (3,) and not g.any()


def test_grad_through_a_constant_branch_is_zero():
    g = fx.grad(lambda x: fnp.sum(fnp.zeros(3)) + 1.0)(1.0)
    assert float(g) == 0.0


def _linear_program(fun, primals, tangent_mask):
    """The linear program of `fun`'s JVP where tangents are inputs only where the mask says."""
    flat, in_tree = flatten_args(primals)
    program, consts, _ = trace_flat(fun, flat, in_tree)
    with new_trace() as lin:
        tangents = [lin.new_arg(ShapedArray(np.shape(x), np.float64)) if keep
                    else Zero(ShapedArray(np.shape(x), np.float64))
                    for x, keep in zip(flat, tangent_mask)]
        _, t_outs = jvp_program(program, [*consts, *flat],
                                [*(Zero.like(c) for c in consts), *tangents])
        assert not isinstance(t_outs[0], Zero)
        return lin.build(t_outs)


def test_a_zero_tangent_input_is_not_materialised_in_the_linear_program():
    f = lambda x, y: x * fnp.sin(y) + fnp.exp(y) * y   # noqa: E731
    program, consts = _linear_program(f, (X3, X3 + 1.0), [True, False])
    names = [e.prim.name for e in program.eqns]
    assert names == ["mul"], str(program)          # x_dot * sin(y), nothing for y
    for eqn in program.eqns:
        assert not any(isinstance(a, Literal) and a.val == 0 for a in eqn.inputs)
    for c in consts:
        assert np.any(np.asarray(c) != 0)


def test_linearize_of_a_function_of_an_integer_has_no_tangent_input_for_it():
    f = lambda x, n: x * n   # noqa: E731
    flat, in_tree = flatten_args((X3, np.array(3)))
    program, consts, store = trace_flat(f, flat, in_tree)
    outs, lin = linearize_program(program, consts, flat, store.num_main)
    assert len(lin.program.invars) - lin.program.num_consts == 1
    allclose(outs[0], X3 * 3)
    allclose(lin.apply([np.ones(3), Zero.like(np.array(3))])[0], [3.0, 3.0, 3.0])


def test_jvp_of_an_output_that_does_not_depend_on_the_input_is_zeros():
    out, t_out = fx.jvp(lambda x: (x * 2.0, np.ones(2)), (1.0,), (1.0,))
    allclose(t_out[0], 2.0)
    assert t_out[1].shape == (2,) and not np.any(t_out[1])


def test_outputs_of_transformations_are_plain_arrays():
    assert all(isinstance(leaf, np.ndarray) for leaf in tree_leaves(
        [fx.grad(lambda x: x * x)(1.0), fx.jvp(fnp.sin, (1.0,), (1.0,)),
         fx.vjp(fnp.sin, 1.0)[1](1.0), fx.jacrev(fnp.sin)(X3)]))
