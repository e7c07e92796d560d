"""Numerical edge cases follow JAX's (and numpy's) conventions.

Derivatives at kinks (abs at 0 is 1, ties of max/min split the tangent evenly),
domain edges (sqrt and log at 0 give inf and infinite derivatives), overflow, inf and
nan propagation, the double-`where` pattern, and the float32 accuracy of every
elementwise derivative rule against the same rule in float64. Each case is checked
eagerly; the kink table also runs once under jit (one compiled kernel for all).
"""
import warnings

import numpy as np
import pytest

import fxgrad as fx
import fxgrad.numpy as fnp
from fxgrad.primitives import unary

inf, nan = np.inf, np.nan


def d(f, argnums=0):
    return fx.grad(f, argnums=argnums)


# (name, function of scalars, arguments, expected value, expected derivatives)
KINKS = [
    ("abs_at_0", fnp.abs, (0.0,), 0.0, (1.0,)),
    ("abs_at_minus_0", fnp.abs, (-0.0,), 0.0, (1.0,)),
    ("abs_negative", fnp.abs, (-2.0,), 2.0, (-1.0,)),
    ("maximum_tie", fnp.maximum, (1.5, 1.5), 1.5, (0.5, 0.5)),
    ("minimum_tie", fnp.minimum, (1.5, 1.5), 1.5, (0.5, 0.5)),
    ("maximum_at_0_relu", lambda x: fnp.maximum(x, 0.0), (0.0,), 0.0, (0.5,)),
    ("maximum_x_wins", fnp.maximum, (2.0, 1.0), 2.0, (1.0, 0.0)),
    ("sign_at_0", fnp.sign, (0.0,), 0.0, (0.0,)),
    ("floor", fnp.floor, (2.0,), 2.0, (0.0,)),
    ("round_half", fnp.round, (0.5,), 0.0, (0.0,)),
    ("sqrt_at_0", fnp.sqrt, (0.0,), 0.0, (inf,)),
    ("sqrt_power_at_0", lambda x: x ** 0.5, (0.0,), 0.0, (inf,)),
    ("log_at_0", fnp.log, (0.0,), -inf, (inf,)),
    ("log1p_at_minus_1", fnp.log1p, (-1.0,), -inf, (inf,)),
    ("reciprocal_at_0", lambda x: fnp.divide(1.0, x), (0.0,), inf, (-inf,)),
    ("square_at_0", lambda x: x ** 2.0, (0.0,), 0.0, (0.0,)),
    ("pow_exponent_at_base_0", lambda y: 0.0 ** y, (2.0,), 0.0, (0.0,)),
    ("exp_overflow", fnp.exp, (1000.0,), inf, (inf,)),
    ("exp_underflow", fnp.exp, (-1000.0,), 0.0, (0.0,)),
    ("exp_of_inf", fnp.exp, (inf,), inf, (inf,)),
    ("exp_of_minus_inf", fnp.exp, (-inf,), 0.0, (0.0,)),
    ("logistic_far_left", unary.logistic, (-1000.0,), 0.0, (0.0,)),
    ("logistic_far_right", unary.logistic, (1000.0,), 1.0, (0.0,)),
    ("tanh_saturated", fnp.tanh, (1000.0,), 1.0, (0.0,)),
    ("sin_of_nan", fnp.sin, (nan,), nan, (nan,)),
    ("linear_at_inf", lambda x: x * 2.0, (inf,), inf, (2.0,)),
    ("x_minus_x_at_inf", lambda x: x - x, (inf,), nan, (0.0,)),
    ("mul_nan", lambda x, y: x * y, (nan, 2.0), nan, (2.0, nan)),
]
KINK_IDS = [c[0] for c in KINKS]


def derivatives(f, args):
    argnums = tuple(range(len(args)))
    return d(f, argnums)(*args)


@pytest.mark.parametrize("name,f,args,value,grads", KINKS, ids=KINK_IDS)
def test_value_and_derivatives_at_edges(name, f, args, value, grads):
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(f(*args), value)
        np.testing.assert_array_equal(derivatives(f, args), grads)


def test_edges_agree_under_jit():
    """All edge cases in one jitted function: the kernel follows the same conventions."""
    def everything(*flat_args):
        it, outs = iter(flat_args), []
        for _, f, args, _, _ in KINKS:
            mine = [next(it) for _ in args]
            outs.append((f(*mine), derivatives(f, mine)))
        return outs

    flat = [np.float64(a) for _, _, args, _, _ in KINKS for a in args]
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        got = fx.jit(everything)(*flat)
    for (name, _, _, value, grads), (out, g) in zip(KINKS, got):
        np.testing.assert_array_equal(out, value, err_msg=name)
        np.testing.assert_array_equal(g, grads, err_msg=name)


# ---------------------------------------------------------------- reductions

REDUCTION_TIES = [
    ("max_two_ties", fnp.max, [1.0, 3.0, 3.0], [0.0, 0.5, 0.5]),
    ("min_three_ties", fnp.min, [2.0, 2.0, 2.0], [1 / 3, 1 / 3, 1 / 3]),
    ("max_unique", fnp.max, [1.0, 4.0, 3.0], [0.0, 1.0, 0.0]),
    ("max_with_nan", fnp.max, [1.0, nan], [nan, nan]),   # no position equals nan: 0/0
]


@pytest.mark.parametrize("name,reduce,x,grad", REDUCTION_TIES, ids=[c[0] for c in REDUCTION_TIES])
def test_reductions_split_the_gradient_among_ties(name, reduce, x, grad):
    with np.errstate(all="ignore"):
        np.testing.assert_allclose(d(reduce)(np.array(x)), grad, rtol=1e-15)


# ---------------------------------------------------------------- where

def single_where(x):
    return fnp.sum(fnp.where(x > 0, fnp.sqrt(x), 0.0))


def double_where(x):
    safe = fnp.where(x > 0, x, 1.0)   # the unselected branch never sees x <= 0
    return fnp.sum(fnp.where(x > 0, fnp.sqrt(safe), 0.0))


def single_where_log(x):
    return fnp.sum(fnp.where(x > 0, fnp.log(x), 0.0))


def double_where_log(x):
    return fnp.sum(fnp.where(x > 0, fnp.log(fnp.where(x > 0, x, 1.0)), 0.0))


X_WHERE = np.array([-1.0, 0.0, 4.0])
CLEAN = [0.0, 0.0, 0.25]
WHERE_CASES = [
    # Single where, reverse mode: the unselected branch's derivative (nan for sqrt(-1),
    # inf at 0) times a zero cotangent is nan, and it leaks into the gradient, as in
    # JAX. Forward mode selects tangents, so nothing leaks there.
    ("single_sqrt", single_where, [nan, nan, 0.25], CLEAN),
    ("single_log", single_where_log, [0.0, nan, 0.25], CLEAN),   # log'(-1) = -1 is finite
    ("double_sqrt", double_where, CLEAN, CLEAN),
    ("double_log", double_where_log, CLEAN, CLEAN),
]
TRANSFORMS = [   # (name, transform, is it reverse mode)
    ("grad", lambda f: d(f), True),
    ("jit_grad", lambda f: fx.jit(d(f)), True),
    ("vmap_grad", lambda f: lambda x: fx.vmap(d(lambda v: f(v[None])))(x), True),
    ("jacrev", lambda f: fx.jacrev(f), True),
    ("jacfwd", lambda f: fx.jacfwd(f), False),
]


@pytest.mark.parametrize("transform,reverse", [t[1:] for t in TRANSFORMS],
                         ids=[t[0] for t in TRANSFORMS])
@pytest.mark.parametrize("name,f,rev_grad,fwd_grad", WHERE_CASES, ids=[c[0] for c in WHERE_CASES])
def test_where_gradients(name, f, rev_grad, fwd_grad, transform, reverse):
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(transform(f)(X_WHERE), rev_grad if reverse else fwd_grad)


# ---------------------------------------------------------------- float32 accuracy

# Every first and second derivative rule, evaluated in float32, agrees with the same
# rule in float64 to F32_TOL relative to max(|reference|, 1), and stays float32.
F32_TOL = 1e-6   # about 8 float32 ulps; the largest error measured is about 5e-7 (exp2)

UNARY = [
    ("exp", fnp.exp, -20, 20), ("log", fnp.log, 0.01, 100), ("log1p", fnp.log1p, -0.99, 100),
    ("expm1", fnp.expm1, -20, 20), ("sin", fnp.sin, -10, 10), ("cos", fnp.cos, -10, 10),
    ("tan", fnp.tan, -1.5, 1.5), ("tanh", fnp.tanh, -10, 10),
    ("logistic", unary.logistic, -30, 30), ("sqrt", fnp.sqrt, 0.01, 100),
    ("abs", fnp.abs, -5, 5), ("neg", fnp.negative, -5, 5), ("square", fnp.square, -5, 5),
    ("cube", lambda x: x ** 3, -5, 5), ("reciprocal", fnp.reciprocal, 0.1, 10),
    ("sinh", fnp.sinh, -10, 10), ("cosh", fnp.cosh, -10, 10), ("cbrt", fnp.cbrt, 0.01, 10),
    ("log2", fnp.log2, 0.01, 100), ("log10", fnp.log10, 0.01, 100),
    ("exp2", fnp.exp2, -20, 20),
]
BINARY = [
    ("add", fnp.add), ("sub", fnp.subtract), ("mul", fnp.multiply), ("div", fnp.divide),
    ("maximum", fnp.maximum), ("minimum", fnp.minimum), ("power", fnp.power),
    ("logaddexp", fnp.logaddexp),
]


def first(f):
    return d(lambda x: fnp.sum(f(x)))


def second(f):
    return d(lambda x: fnp.sum(first(f)(x)))


def assert_float32_close(got, want, name):
    assert got.dtype == np.float32, f"{name}: derivative has dtype {got.dtype}"
    scale = np.maximum(np.abs(want), 1.0)
    worst = np.max(np.abs(got.astype(np.float64) - want) / scale)
    assert worst <= F32_TOL, f"{name}: float32 error {worst:.2e} > {F32_TOL}"


def points(lo, hi, seed):
    return np.random.default_rng(seed).uniform(lo, hi, 64).astype(np.float32)


@pytest.mark.parametrize("name,f,lo,hi", UNARY, ids=[c[0] for c in UNARY])
def test_unary_derivatives_in_float32(name, f, lo, hi):
    x = points(lo, hi, 0)
    for order, deriv in (("first", first), ("second", second)):
        assert_float32_close(deriv(f)(x), deriv(f)(x.astype(np.float64)), f"{name} {order}")


@pytest.mark.parametrize("name,f", BINARY, ids=[c[0] for c in BINARY])
def test_binary_derivatives_in_float32(name, f):
    x, y = points(0.1, 5, 1), points(0.1, 5, 2)
    grad = d(lambda x, y: fnp.sum(f(x, y)), (0, 1))
    want = grad(x.astype(np.float64), y.astype(np.float64))
    for i, (got, ref) in enumerate(zip(grad(x, y), want)):
        assert_float32_close(got, ref, f"{name} argument {i}")


def test_float32_derivatives_under_jit_match_eager():
    """The compiled kernel computes float32 derivatives as accurately (one kernel)."""
    xs = [points(lo, hi, 3) for _, _, lo, hi in UNARY]
    compiled = fx.jit(lambda xs: [first(f)(x) for (_, f, _, _), x in zip(UNARY, xs)])(xs)
    for (name, f, _, _), x, got in zip(UNARY, xs, compiled):
        assert_float32_close(got, first(f)(x.astype(np.float64)), f"jit {name}")
