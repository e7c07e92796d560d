"""Unary primitives: values against numpy, derivatives to order 2 in both modes, nested
derivatives against closed forms, dtype preservation, zero tangents and dtype errors;
numba lowerings against eager evaluation (values, NaN/inf edges, derivative programs); vmap
against a loop over examples, and composed with grad, jit and itself."""
import re

import numpy as np
import pytest

import fxgrad as fx
from fxgrad.config import config
from fxgrad.core.errors import FxTypeError
from fxgrad.interpreters.jvp import is_zero, jvp_rules
from fxgrad.primitives import arith, unary
from fxgrad.primitives.reduce import reduce_sum
from fxgrad.test_util import check_grads, check_jit, check_vmap
from fxgrad.tree_util import tree_flatten


def _any(rng, shape):
    return rng.uniform(-2.0, 2.0, shape)


def _positive(rng, shape):
    return rng.uniform(0.3, 3.0, shape)


def _trig(rng, shape):
    return rng.uniform(-1.2, 1.2, shape)


def _nonzero(rng, shape):
    return rng.uniform(0.2, 2.0, shape) * rng.choice([-1.0, 1.0], shape)


def _off_steps(rng, shape):
    """Values at least 0.2 away from integers and halves (where floor/round jump)."""
    offsets = rng.choice([0.25, 0.75], shape) + rng.uniform(-0.05, 0.05, shape)
    return rng.integers(-3, 3, shape) + offsets


# name, wrapper, numpy reference, input domain
SMOOTH = [
    ("exp", unary.exp, np.exp, _any),
    ("log", unary.log, np.log, _positive),
    ("log1p", unary.log1p, np.log1p, _positive),
    ("expm1", unary.expm1, np.expm1, _any),
    ("sin", unary.sin, np.sin, _any),
    ("cos", unary.cos, np.cos, _any),
    ("tan", unary.tan, np.tan, _trig),
    ("tanh", unary.tanh, np.tanh, _any),
    ("logistic", unary.logistic, lambda x: 1 / (1 + np.exp(-x)), _any),
    ("sqrt", unary.sqrt, np.sqrt, _positive),
    ("abs", unary.abs, np.abs, _nonzero),
]
PIECEWISE_CONSTANT = [
    ("sign", unary.sign, np.sign, _nonzero),
    ("floor", unary.floor, np.floor, _off_steps),
    ("round", unary.round, np.round, _off_steps),
]
ALL = SMOOTH + PIECEWISE_CONSTANT + [("stop_gradient", unary.stop_gradient, lambda x: x, _any)]
SHAPES = [(), (3, 4)]


def _ids(cases):
    return [c[0] for c in cases]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name, fn, ref, domain", ALL, ids=_ids(ALL))
def test_values_match_numpy(name, fn, ref, domain, shape):
    x = domain(np.random.default_rng(0), shape)
    out = fn(x)
    assert np.shape(out) == shape
    np.testing.assert_allclose(out, ref(x), rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name, fn, ref, domain", SMOOTH + PIECEWISE_CONSTANT,
                         ids=_ids(SMOOTH + PIECEWISE_CONSTANT))
def test_check_grads_order_2(name, fn, ref, domain, shape):
    x = domain(np.random.default_rng(1), shape)
    check_grads(fn, (x,), order=2, modes=("fwd", "rev"))


@pytest.mark.parametrize("name, fn, ref, domain", ALL, ids=_ids(ALL))
def test_float32_preserved(name, fn, ref, domain):
    x = domain(np.random.default_rng(2), (5,)).astype(np.float32)
    out = fn(x)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, ref(x.astype(np.float64)), rtol=1e-5, atol=1e-6)
    _, t = fx.jvp(fn, (x,), (np.ones(5, np.float32),))
    assert t.dtype == np.float32
    g = fx.grad(lambda s: fn(s))(x[0])
    assert g.dtype == np.float32


@pytest.mark.parametrize("name, fn, ref, domain", PIECEWISE_CONSTANT, ids=_ids(PIECEWISE_CONSTANT))
def test_piecewise_constant_have_zero_derivatives(name, fn, ref, domain):
    x = domain(np.random.default_rng(3), (4,))
    _, t = fx.jvp(fn, (x,), (np.ones(4),))
    np.testing.assert_array_equal(t, np.zeros(4))
    assert fx.grad(fn)(x[0]) == 0.0
    prim = {"sign": unary.sign_p, "floor": unary.floor_p, "round": unary.round_p}[name]
    out, t_sym = jvp_rules[prim]((x,), (np.ones(4),))
    assert is_zero(t_sym) and t_sym.aval.shape == (4,)
    np.testing.assert_array_equal(out, ref(x))


def _tanh_poly_step(p):       # d/dx P(tanh x) = P'(t) (1 - t²)
    return np.polynomial.Polynomial(p.deriv().coef) * np.polynomial.Polynomial([1, 0, -1])


def _logistic_poly_step(p):   # d/dx P(s(x)) = P'(s) s (1 - s)
    return np.polynomial.Polynomial(p.deriv().coef) * np.polynomial.Polynomial([0, 1, -1])


def _nth_derivative_by_poly(step, n, value):
    p = np.polynomial.Polynomial([0, 1])
    for _ in range(n):
        p = step(p)
    return p(value)


CLOSED_FORMS = [
    ("exp", unary.exp, lambda n, x: np.exp(x)),
    ("sin", unary.sin, lambda n, x: np.sin(x + n * np.pi / 2)),
    ("tanh", unary.tanh, lambda n, x: _nth_derivative_by_poly(_tanh_poly_step, n, np.tanh(x))),
    ("logistic", unary.logistic,
     lambda n, x: _nth_derivative_by_poly(_logistic_poly_step, n, 1 / (1 + np.exp(-x)))),
]


@pytest.mark.parametrize("name, fn, closed_form", CLOSED_FORMS, ids=_ids(CLOSED_FORMS))
def test_nested_grad_to_order_4_matches_closed_form(name, fn, closed_form):
    f = fn
    for n in range(1, 5):
        f = fx.grad(f)
        for x in (-0.7, 0.3, 1.1):
            np.testing.assert_allclose(f(x), closed_form(n, x), rtol=1e-12, atol=1e-12)


def test_closed_form_polynomials_are_the_known_ones():
    t, s = 0.4, 0.3
    assert np.isclose(_nth_derivative_by_poly(_tanh_poly_step, 2, t), -2 * t + 2 * t ** 3)
    assert np.isclose(_nth_derivative_by_poly(_logistic_poly_step, 2, s),
                      s - 3 * s ** 2 + 2 * s ** 3)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_logistic_is_stable_for_large_inputs(dtype):
    x = np.array([-1000.0, -40.0, 0.0, 40.0, 1000.0], dtype)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        out = unary.logistic(x)
    assert out.dtype == dtype
    np.testing.assert_allclose(out, [0.0, np.exp(-40.0), 0.5, 1.0, 1.0], rtol=1e-6, atol=0)
    assert np.all(np.isfinite(fx.jvp(unary.logistic, (x,), (np.ones(5, dtype),))[1]))


def test_round_is_half_to_even():
    x = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 2.6])
    np.testing.assert_array_equal(unary.round(x), [-2.0, -2.0, -0.0, 0.0, 2.0, 2.0, 3.0])


def test_abs_derivative_at_zero_is_one_as_in_jax():
    assert fx.grad(unary.abs)(0.0) == 1.0
    assert fx.grad(unary.abs)(-3.0) == -1.0


@pytest.mark.parametrize("fn, ref", [(unary.abs, np.abs), (unary.sign, np.sign),
                                     (unary.stop_gradient, lambda x: x)])
def test_integer_operands_allowed(fn, ref):
    x = np.array([-3, 0, 4])
    out = fn(x)
    assert out.dtype == x.dtype
    np.testing.assert_array_equal(out, ref(x))


FLOAT_ONLY = [c for c in SMOOTH + PIECEWISE_CONSTANT if c[0] not in ("abs", "sign")]


@pytest.mark.parametrize("name, fn, ref, domain", FLOAT_ONLY, ids=_ids(FLOAT_ONLY))
def test_integer_operand_is_rejected_with_the_fix(name, fn, ref, domain):
    with pytest.raises(FxTypeError, match=rf"{name} requires floating-point operands, got "
                                          r"int64; convert with \.astype\(float\)"):
        fn(np.arange(3))


def test_dtype_error_names_the_user_line_when_traced():
    with pytest.raises(FxTypeError, match=r"(?s)exp requires floating.*test_unary\.py"):
        fx.make_jaxpr(lambda x: unary.exp(x))(np.arange(3))


def test_stop_gradient_blocks_first_and_nested_derivatives():
    assert fx.grad(lambda x: arith.mul(unary.stop_gradient(x), x))(3.0) == 3.0
    # d²/dx² [c * x²] with c = stop_gradient(x²) = 2c = 18 (not d²(x⁴) = 108)
    f = lambda x: arith.mul(unary.stop_gradient(arith.mul(x, x)), arith.mul(x, x))
    assert fx.grad(fx.grad(f))(3.0) == 18.0
    _, t = fx.jvp(unary.stop_gradient, (np.ones(3),), (np.ones(3),))
    np.testing.assert_array_equal(t, np.zeros(3))


def test_programs_print_primitive_names():
    text = str(fx.make_jaxpr(lambda x: unary.logistic(unary.sqrt(x)))(1.0))
    assert "b:f64[] = sqrt a" in text and "c:f64[] = logistic b" in text


# ----------------------------------------------------------------------------- jit
# Each test jits ONE function computing a whole table of named cases, so a table costs one
# numba compilation (about 0.1 s per array output); most cases use rank-0 operands.

def _check_jit_named(fn, args, rtol=1e-12):
    """check_jit of `fn`, which returns a dict of named cases; a mismatch names its case."""
    try:
        check_jit(fn, args, rtol=rtol)
    except AssertionError as err:
        out = fn(*args)   # dict outputs flatten in sorted key order
        leaves = [name for name in sorted(out) for _ in tree_flatten(out[name])[0]]
        index = re.search(r"output (\d+)", str(err))
        raise AssertionError(f"case {leaves[int(index[1])] if index else '?'}: {err}") from None


@pytest.fixture
def unsimplified(monkeypatch):
    """Lower programs as traced, so each case reaches its own primitive's lowering."""
    monkeypatch.setattr(config, "jit_simplify", False)


# overflow, domain edges, infinities, signed zero, halves (round to even), logistic's tails
EDGES = [0.0, -0.0, -1.0, np.nan, np.inf, -np.inf, 1000.0, -1000.0, 40.0, -40.0,
         -2.5, -1.5, -0.5, 0.5, 1.5, 2.5, -0.75]
EDGE_CASES = ["exp", "log", "log1p", "expm1", "tanh", "logistic", "sqrt", "abs", "sign",
              "floor", "round"]


def _unary_table(xs, x, edges, empty, single):
    """xs: one (3, 4) array per case, in ALL's order (each in its domain); x: 0 < x < 1."""
    out = {name: fn(a) for (name, fn, *_), a in zip(ALL, xs)}   # (3, 4): one fused loop
    out.update({f"{name} edges": getattr(unary, name)(edges) for name in EDGE_CASES})
    out.update({f"{name} ()": fn(x) for name, fn, *_ in ALL})
    out["size 0"], out["size 1"] = unary.exp(empty), unary.sin(single)
    return out


def _unary_args(dtype):
    rng = np.random.default_rng(20)
    xs = [domain(rng, (3, 4)).astype(dtype) for _, _, _, domain in ALL]
    others = [0.6, EDGES, np.ones(0), [0.3]]
    return (xs, *(np.asarray(a, dtype) for a in others))


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 1e-6)])
def test_jit_matches_eager_floats(unsimplified, dtype, rtol):
    # float32: numba's libm may differ from numpy's SIMD loops by an ulp
    with np.errstate(all="ignore"):
        _check_jit_named(_unary_table, _unary_args(dtype), rtol=rtol)


def _integer_table(x):
    out = {}
    for dtype in (np.int64, np.int32, np.int8, np.uint8):
        for fn in (unary.abs, unary.sign, unary.stop_gradient):
            out[f"{fn.__name__} {np.dtype(dtype).name}"] = fn(x.astype(dtype))
    out["abs bool"] = unary.abs(x > 0)
    out["abs ()"], out["sign ()"] = unary.abs(x[0]), unary.sign(x[0])
    return out


def test_jit_matches_eager_integers(unsimplified):
    x = np.array([-128, -3, -1, 0, 1, 2, 127])   # abs(int8 -128) wraps to -128, as in numpy
    _check_jit_named(_integer_table, (x,), rtol=0)


def _all_unary(x):
    """One function using every unary primitive (x in (0.3, 1.2)), for derivative programs."""
    z = arith.add(arith.mul(unary.exp(x), unary.sin(x)), arith.mul(unary.cos(x), unary.tan(x)))
    z = arith.add(z, arith.mul(unary.tanh(x), unary.logistic(x)))
    z = arith.add(z, arith.mul(unary.log(x), unary.sqrt(x)))
    z = arith.add(z, arith.mul(unary.log1p(x), unary.expm1(x)))
    z = arith.add(z, arith.mul(unary.abs(x), unary.sign(x)))
    z = arith.add(z, arith.add(unary.floor(x), unary.round(x)))
    return arith.mul(z, unary.stop_gradient(x))


def _derivative_table(x, s):
    ct = np.linspace(-1.0, 1.0, x.size).reshape(x.shape)
    out = {"jvp": fx.jvp(_all_unary, (x,), (ct,))[1], "vjp": fx.vjp(_all_unary, x)[1](ct)}
    out.update({f"{name} grad2 ()": fx.grad(fx.grad(fn))(s)
                for name, fn, *_ in SMOOTH + PIECEWISE_CONSTANT})
    out["hessian ()"] = fx.hessian(_all_unary)(s)
    return out


def test_jit_of_derivative_programs():
    x = np.random.default_rng(21).uniform(0.3, 1.2, (3, 4))
    _check_jit_named(_derivative_table, (x, np.float64(0.7)))


# ----------------------------------------------------------------------------- vmap
# vmap against a Python loop over the examples, along the first axis, the last axis and a
# negative axis; the batched program must not grow with the batch size (no loop fallback).



@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 1e-6)],
                         ids=["f64", "f32"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name, fn, ref, domain", ALL, ids=_ids(ALL))
def test_vmap_matches_loop(name, fn, ref, domain, shape, dtype, rtol):
    make_args = lambda seed: (domain(np.random.default_rng(seed), shape).astype(dtype),)
    check_vmap(fn, make_args, rtol)


def test_vmap_keeps_the_batch_axis_in_place():
    x = np.random.default_rng(22).uniform(0.3, 1.2, (3, 4, 5))
    program = fx.make_jaxpr(fx.vmap(_all_unary, in_axes=-1, out_axes=-1))(x)
    assert "transpose" not in str(program)
    assert len(program.eqns) == len(fx.make_jaxpr(_all_unary)(x[..., 0]).eqns)


def test_vmap_of_grad():
    xs = np.random.default_rng(23).uniform(0.3, 1.2, 5)
    np.testing.assert_allclose(fx.vmap(fx.grad(_all_unary))(xs),
                               [fx.grad(_all_unary)(x) for x in xs], rtol=1e-12)


def test_grad_of_vmap():
    xs = np.random.default_rng(24).uniform(0.3, 1.2, (3, 5))
    summed = lambda a: reduce_sum(fx.vmap(_all_unary, in_axes=1)(a), (0, 1))
    per_example = [fx.grad(lambda a: reduce_sum(_all_unary(a), (0,)))(x) for x in xs.T]
    np.testing.assert_allclose(fx.grad(summed)(xs), np.stack(per_example, 1), rtol=1e-12)


def test_vmap_of_vmap():
    xs = np.random.default_rng(25).uniform(0.3, 1.2, (4, 3, 5))
    out = fx.vmap(fx.vmap(_all_unary, in_axes=0), in_axes=-1)(xs)
    expected = [[_all_unary(xs[i, :, j]) for i in range(4)] for j in range(5)]
    np.testing.assert_allclose(out, np.array(expected), rtol=1e-12)


def test_jit_of_vmap():
    xs = _unary_args(np.float64)[0]   # one (3, 4) array per case: 3 examples of shape (4,)
    table = lambda cases: {name: fn(a) for (name, fn, *_), a in zip(ALL, cases)}
    _check_jit_named(fx.vmap(table), (xs,))
