"""Arithmetic primitives: values against numpy, derivatives to order 2 in both modes
(including a broadcast scalar operand), dtype preservation, shape and dtype errors, and
the special cases of max/min ties, pow at zero and integer_pow exponents; numba
lowerings against eager evaluation (values, NaN/inf edges, derivative programs)."""
import re

import numpy as np
import pytest

import fxgrad as fx
from fxgrad.core.errors import FxTypeError
from fxgrad.interpreters.jvp import is_zero, jvp_rules
from fxgrad.primitives import arith
from fxgrad.test_util import check_grads, check_jit
from fxgrad.tree_util import tree_flatten


def _any(rng, shape):
    return rng.uniform(-2.0, 2.0, shape)


def _positive(rng, shape):
    return rng.uniform(0.5, 2.0, shape)


def _nonzero(rng, shape):
    return rng.uniform(0.5, 2.0, shape) * rng.choice([-1.0, 1.0], shape)


# name, wrapper, numpy reference, domain of x, domain of y
BINARY = [
    ("add", arith.add, np.add, _any, _any),
    ("sub", arith.sub, np.subtract, _any, _any),
    ("mul", arith.mul, np.multiply, _any, _any),
    ("div", arith.div, np.true_divide, _any, _nonzero),
    ("max", arith.max, np.maximum, _any, _any),
    ("min", arith.min, np.minimum, _any, _any),
    ("pow", arith.pow, np.power, _positive, _any),
]
# shapes of x and y: equal, both scalar, and a scalar broadcasting on either side
BINARY_SHAPES = [((3, 4), (3, 4)), ((), ()), ((3, 4), ()), ((), (3, 4))]
INT_POWERS = [-3, -1, 0, 1, 2, 3]


def _ids(cases):
    return [c[0] for c in cases]


def _binary_args(x_domain, y_domain, shapes, seed):
    rng = np.random.default_rng(seed)
    return x_domain(rng, shapes[0]), y_domain(rng, shapes[1])


@pytest.mark.parametrize("shapes", BINARY_SHAPES, ids=str)
@pytest.mark.parametrize("name, fn, ref, x_domain, y_domain", BINARY, ids=_ids(BINARY))
def test_binary_values_match_numpy(name, fn, ref, x_domain, y_domain, shapes):
    x, y = _binary_args(x_domain, y_domain, shapes, 0)
    out = fn(x, y)
    np.testing.assert_allclose(out, ref(x, y), rtol=1e-14)
    assert np.shape(out) == np.broadcast_shapes(*shapes)


@pytest.mark.parametrize("shapes", BINARY_SHAPES, ids=str)
@pytest.mark.parametrize("name, fn, ref, x_domain, y_domain", BINARY, ids=_ids(BINARY))
def test_binary_check_grads_order_2(name, fn, ref, x_domain, y_domain, shapes):
    args = _binary_args(x_domain, y_domain, shapes, 1)
    check_grads(fn, args, order=2, modes=("fwd", "rev"))


@pytest.mark.parametrize("name, fn, ref, x_domain, y_domain", BINARY, ids=_ids(BINARY))
def test_binary_with_one_constant_operand(name, fn, ref, x_domain, y_domain):
    x, y = _binary_args(x_domain, y_domain, ((3,), (3,)), 2)
    check_grads(lambda a: fn(a, y), (x,), order=2, modes=("fwd", "rev"))
    check_grads(lambda b: fn(x, b), (y,), order=2, modes=("fwd", "rev"))


@pytest.mark.parametrize("name, fn, ref, x_domain, y_domain", BINARY, ids=_ids(BINARY))
def test_binary_float32_preserved(name, fn, ref, x_domain, y_domain):
    x, y = (a.astype(np.float32) for a in _binary_args(x_domain, y_domain, ((4,), (4,)), 3))
    out = fn(x, y)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, ref(x.astype(float), y.astype(float)), rtol=1e-6)
    assert fn(x, 1.5).dtype == np.float32 and fn(1.5, y).dtype == np.float32
    _, t = fx.jvp(fn, (x, y), (np.ones(4, np.float32), np.ones(4, np.float32)))
    assert t.dtype == np.float32
    gx, gy = fx.grad(lambda a, b: fn(a, b), argnums=(0, 1))(x[0], y[0])
    assert gx.dtype == np.float32 and gy.dtype == np.float32


@pytest.mark.parametrize("name, fn, ref, x_domain, y_domain", BINARY, ids=_ids(BINARY))
def test_binary_shape_error(name, fn, ref, x_domain, y_domain):
    with pytest.raises(FxTypeError, match=rf"{name}: incompatible operand shapes \(2,\), \(3,\)"):
        fn(np.ones(2), np.ones(3))


@pytest.mark.parametrize("name, fn, ref, x_domain, y_domain", BINARY, ids=_ids(BINARY))
def test_binary_dtype_mismatch_error(name, fn, ref, x_domain, y_domain):
    with pytest.raises(FxTypeError, match=rf"{name}: operand dtypes differ \(float64, float32\)"):
        fn(np.ones(2), np.ones(2, np.float32))


@pytest.mark.parametrize("fn, ref", [(arith.max, np.maximum), (arith.min, np.minimum)])
def test_max_min_on_integers(fn, ref):
    x, y = np.array([1, 5, -2]), np.array([3, 2, -2])
    out = fn(x, y)
    assert out.dtype == x.dtype
    np.testing.assert_array_equal(out, ref(x, y))


@pytest.mark.parametrize("fn", [arith.max, arith.min])
def test_max_min_ties_split_the_derivative(fn):
    assert fx.grad(fn, argnums=(0, 1))(1.5, 1.5) == (0.5, 0.5)
    assert fx.grad(lambda x: fn(x, x))(1.5) == 1.0
    x = np.array([1.0, 2.0, 3.0])
    _, t = fx.jvp(fn, (x, np.array(2.0)), (np.ones(3), np.array(10.0)))
    winner_is_x = x > 2.0 if fn is arith.max else x < 2.0
    np.testing.assert_array_equal(t, np.where(x == 2.0, 5.5, np.where(winner_is_x, 1.0, 10.0)))


def test_pow_derivatives_at_zero_base_are_finite():
    gx, gy = fx.grad(arith.pow, argnums=(0, 1))(0.0, 2.0)
    assert (gx, gy) == (0.0, 0.0)
    hxy = fx.grad(fx.grad(arith.pow, argnums=1), argnums=0)(0.0, 3.0)
    assert np.isfinite(hxy) and hxy == 0.0
    x = np.array([0.0, 2.0])
    _, t = fx.jvp(arith.pow, (x, np.array(3.0)), (np.zeros(2), np.array(1.0)))
    np.testing.assert_allclose(t, [0.0, np.log(2.0) * 8.0])


def test_pow_requires_floats():
    with pytest.raises(FxTypeError, match=r"pow requires floating-point operands, got int64"):
        arith.pow(np.arange(3), np.arange(3))


@pytest.mark.parametrize("shape", [(), (3, 4)])
@pytest.mark.parametrize("y", INT_POWERS)
def test_integer_pow_values_and_grads(y, shape):
    x = _nonzero(np.random.default_rng(4), shape)
    np.testing.assert_allclose(arith.integer_pow(x, y), x ** float(y), rtol=1e-14)
    check_grads(lambda a: arith.integer_pow(a, y), (x,), order=2, modes=("fwd", "rev"))


@pytest.mark.parametrize("y", INT_POWERS)
def test_integer_pow_float32_preserved(y):
    x = np.array([0.5, -1.5, 2.0], np.float32)
    assert arith.integer_pow(x, y).dtype == np.float32
    assert fx.grad(lambda a: arith.integer_pow(a, y))(x[0]).dtype == np.float32


def test_integer_pow_zero_exponent_gives_ones_and_zero_tangent():
    x = np.array([0.0, -2.0, 3.0])
    np.testing.assert_array_equal(arith.integer_pow(x, 0), np.ones(3))
    out, t = jvp_rules[arith.integer_pow_p]((x,), (np.ones(3),), y=0)
    assert is_zero(t) and t.aval.shape == (3,)
    assert fx.grad(lambda a: arith.integer_pow(a, 0))(2.0) == 0.0


def test_integer_pow_prints_its_exponent():
    text = str(fx.make_jaxpr(lambda x: arith.integer_pow(x, 2))(1.0))
    assert "b:f64[] = integer_pow[y=2] a" in text
    text = str(fx.make_jaxpr(lambda x: arith.integer_pow(x, np.int64(-1)))(1.0))
    assert "integer_pow[y=-1] a" in text


def test_integer_pow_on_integers():
    x = np.array([-2, 0, 3])
    out = arith.integer_pow(x, 3)
    assert out.dtype == x.dtype
    np.testing.assert_array_equal(out, x ** 3)
    with pytest.raises(FxTypeError,
                       match=r"integer_pow requires floating-point operands, got int64"):
        arith.integer_pow(x, -1)


@pytest.mark.parametrize("bad", [2.0, True, "2"])
def test_integer_pow_rejects_non_integer_exponents(bad):
    with pytest.raises(FxTypeError, match=r"integer_pow: the exponent must be a Python int"):
        arith.integer_pow(np.ones(2), bad)


@pytest.mark.parametrize("shape", [(), (3, 4)])
def test_neg(shape):
    x = _any(np.random.default_rng(5), shape)
    np.testing.assert_array_equal(arith.neg(x), -x)
    assert arith.neg(x.astype(np.float32)).dtype == np.float32
    np.testing.assert_array_equal(arith.neg(np.array([1, -2])), [-1, 2])
    check_grads(arith.neg, (x,), order=2, modes=("fwd", "rev"))


def test_integer_division_floors_like_numpy():
    x, y = np.array([7, -7]), np.array([2, 2])
    np.testing.assert_array_equal(arith.div(x, y), np.floor_divide(x, y))


# ----------------------------------------------------------------------------- jit
# Each test jits ONE function computing a whole table of cases: one numba compilation.

def _check_jit_cases(cases, rtol=1e-12):
    """check_jit of all `cases` (name -> (fn, args)) at once; a mismatch names its case."""
    names = sorted(cases)   # dict outputs flatten in sorted key order
    args = {n: cases[n][1] for n in names}
    try:
        check_jit(lambda a: {n: cases[n][0](*a[n]) for n in names}, (args,), rtol=rtol)
    except AssertionError as err:
        leaves = [n for n in names for _ in tree_flatten(cases[n][0](*args[n]))[0]]
        index = re.search(r"output (\d+)", str(err))
        raise AssertionError(f"case {leaves[int(index[1])] if index else '?'}: {err}") from None


JIT_SHAPES = BINARY_SHAPES + [((0,), (0,)), ((1,), (1,)), ((0,), ())]
NAN, INF = np.nan, np.inf
EDGES = {   # numpy's answers at NaN, inf, zero denominators, ties of signed zeros
    "div": ([1.0, -1.0, 0.0, NAN, INF], [0.0, 0.0, 0.0, 1.0, INF]),
    "max": ([NAN, 1.0, NAN, -0.0, 0.0, INF], [1.0, NAN, NAN, 0.0, -0.0, 2.0]),
    "min": ([NAN, 1.0, NAN, -0.0, 0.0, -INF], [1.0, NAN, NAN, 0.0, -0.0, 2.0]),
    "pow": ([0.0, 0.0, -8.0, -2.0, INF, NAN], [-1.0, 0.0, 1 / 3, 2.0, -1.0, 0.0]),
}


def _float_cases(dtype):
    cases = {}
    for k, (name, fn, _, x_domain, y_domain) in enumerate(BINARY):
        for shapes in JIT_SHAPES:
            args = _binary_args(x_domain, y_domain, shapes, k)
            cases[f"{name}{shapes}"] = (fn, tuple(a.astype(dtype) for a in args))
        cases[f"{name} literal"] = (lambda x, fn=fn: fn(x, 1.5), (x_domain(np.random.default_rng(k), (3,)).astype(dtype),))
    for name, (x, y) in EDGES.items():
        cases[f"{name} edges"] = (getattr(arith, name), (np.array(x, dtype), np.array(y, dtype)))
    x = _nonzero(np.random.default_rng(9), (3, 4)).astype(dtype)
    for y in INT_POWERS + [-7, 13, 100]:
        cases[f"integer_pow y={y}"] = (lambda a, y=y: arith.integer_pow(a, y), (x,))
        cases[f"integer_pow y={y} ()"] = (lambda a, y=y: arith.integer_pow(a, y), (x[0, 0],))
    edge = np.array([0.0, -0.0, NAN, INF], dtype)
    cases["integer_pow edges"] = (lambda a: [arith.integer_pow(a, y) for y in (-2, -1, 0, 3)], (edge,))
    cases["neg"] = (arith.neg, (x,))
    cases["neg ()"] = (arith.neg, (x[0, 0],))
    return cases


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 1e-6)])
def test_jit_matches_eager_floats(dtype, rtol):
    # float32 transcendental (pow) results may differ from numpy's SIMD loops by an ulp
    with np.errstate(all="ignore"):
        _check_jit_cases(_float_cases(dtype), rtol=rtol)


def _int_cases():
    rng = np.random.default_rng(10)
    x, y = rng.integers(-9, 10, (3, 4)), rng.integers(1, 5, (3, 4)) * rng.choice([-1, 1], (3, 4))
    cases = {}
    for name in ("add", "sub", "mul", "div", "max", "min"):
        fn = getattr(arith, name)
        cases[name] = (fn, (x, y))
        cases[f"{name} ()"] = (fn, (x[0, 0], y[0, 0]))
        cases[f"{name} scalar y"] = (fn, (x, y[0, 0]))
        cases[f"{name} int32"] = (fn, (x.astype(np.int32), y.astype(np.int32)))
    lowest = np.iinfo(np.int64).min   # floor division, x // 0 == 0, MIN // -1 == MIN
    cases["div edges"] = (arith.div, (np.array([7, -7, 7, -7, 5, 0, lowest, lowest]),
                                      np.array([2, 2, -2, -2, 0, 0, -1, 1])))
    for y in (0, 1, 2, 3, 13, 41):   # 3**41 wraps around, as in numpy
        cases[f"integer_pow y={y}"] = (lambda a, y=y: arith.integer_pow(a, y), (x,))
    cases["integer_pow int32"] = (lambda a: arith.integer_pow(a, 3), (x.astype(np.int32),))
    cases["neg"] = (arith.neg, (x,))
    cases["neg int32"] = (arith.neg, (x.astype(np.int32),))
    b, c = x > 0, y > 0
    for name in ("add", "mul", "max", "min"):   # or, and, or, and on bools
        cases[f"{name} bool"] = (getattr(arith, name), (b, c))
    return cases


def test_jit_matches_eager_integers_and_bools():
    with np.errstate(all="ignore"):
        _check_jit_cases(_int_cases(), rtol=0)


def _derivative_cases():
    cases = {}
    for k, (name, fn, _, x_domain, y_domain) in enumerate(BINARY):
        for shapes in [((3, 4), (3, 4)), ((3, 4), ()), ((), ())]:
            args = _binary_args(x_domain, y_domain, shapes, k)
            tangents = tuple(np.ones_like(a) for a in args)
            ct = np.ones(np.broadcast_shapes(*shapes))
            cases[f"{name}{shapes} jvp"] = (lambda *a, fn=fn, t=tangents: fx.jvp(fn, a, t)[1], args)
            cases[f"{name}{shapes} vjp"] = (lambda *a, fn=fn, ct=ct: fx.vjp(fn, *a)[1](ct), args)
        args = _binary_args(x_domain, y_domain, ((), ()), k)
        cases[f"{name} hessian"] = (fx.hessian(fn, argnums=(0, 1)), args)
    x = _nonzero(np.random.default_rng(11), (3, 4))
    for y in INT_POWERS:
        f = lambda a, y=y: arith.integer_pow(a, y)
        cases[f"integer_pow y={y} jvp"] = (lambda a, f=f: fx.jvp(f, (a,), (np.ones_like(a),))[1], (x,))
        cases[f"integer_pow y={y} grad2"] = (fx.grad(fx.grad(f)), (x[0, 0],))
    cases["neg vjp"] = (lambda a: fx.vjp(arith.neg, a)[1](np.ones_like(a)), (x,))
    return cases


def test_jit_of_derivative_programs():
    _check_jit_cases(_derivative_cases(), rtol=1e-12)
