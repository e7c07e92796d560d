"""Arithmetic primitives: values against numpy, derivatives to order 2 in both modes
(including a broadcast scalar operand), dtype preservation, shape and dtype errors, and
the special cases of max/min ties, pow at zero and integer_pow exponents; numba
lowerings against eager evaluation (values, NaN/inf edges, derivative programs); vmap
against a loop over examples, and composed with grad, jit and itself."""


import numpy as np
import pytest

import fxgrad as fx
from fxgrad.core.errors import FxTypeError
from fxgrad.interpreters.jvp import is_zero, jvp_rules
from fxgrad.primitives import arith
from fxgrad.primitives.reduce import reduce_sum
from fxgrad.test_util import check_grads, check_jit, check_vmap


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
# Each test jits ONE function computing a whole table of named cases, so a table costs one
# numba compilation (about 0.1 s per array output); most cases use rank-0 operands.



NAN, INF = np.nan, np.inf
# numpy's answers at NaN, inf, zero denominators, ties of signed zeros, 0 ** -1, (-8) ** (1/3)
EDGE_X = [1.0, -1.0, 0.0, NAN, INF, 0.0, -8.0, -0.0, 0.0, NAN, -INF, 2.0]
EDGE_Y = [0.0, 0.0, 0.0, 1.0, INF, -1.0, 1 / 3, 0.0, -0.0, NAN, 2.0, NAN]



def _float_table(x, y, s, t, edge_x, edge_y, empty, single):
    """x, y: (3, 4) arrays (x > 0, y != 0); s, t: scalars; cases grouped by shape, so
    each group lowers to one fused loop."""
    out = {}
    for name, fn, *_ in BINARY:
        out[name], out[f"{name} array-scalar"] = fn(x, y), fn(x, t)
    out["sub scalar-array"], out["div scalar-array"] = arith.sub(s, y), arith.div(s, y)
    out["max literal array"], out["neg"] = arith.max(x, 1.5), arith.neg(x)
    for p in (-3, 0, 1, 2, 13):
        out[f"integer_pow y={p}"] = arith.integer_pow(y, p)
    for name in ("div", "max", "min", "pow"):
        out[f"{name} edges"] = getattr(arith, name)(edge_x, edge_y)
    out["integer_pow edges"] = [arith.integer_pow(edge_x, p) for p in (-2, 0)]
    for name, fn, *_ in BINARY:
        out[f"{name} ()"], out[f"{name} literal"] = fn(s, t), fn(s, 1.5)
    for p in INT_POWERS + [-7, 100]:
        out[f"integer_pow y={p} ()"] = arith.integer_pow(t, p)
    out["neg ()"] = arith.neg(s)
    out["size 0"] = [arith.add(empty, empty), arith.mul(empty, s)]
    out["size 1"] = arith.div(single, single)
    return out


def _float_args(dtype):
    rng = np.random.default_rng(12)
    arrays = [_positive(rng, (3, 4)), _nonzero(rng, (3, 4)), _positive(rng, ()),
              _nonzero(rng, ()), EDGE_X, EDGE_Y, np.ones(0), _positive(rng, (1,))]
    return tuple(np.asarray(a, dtype) for a in arrays)


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 1e-6)])
def test_jit_matches_eager_floats(unsimplified, dtype, rtol):
    # float32: numba's powf may differ from numpy's SIMD loop by an ulp
    with np.errstate(all="ignore"):
        check_jit(_float_table, _float_args(dtype), rtol=rtol)


def _int_table(x, y, s, t, edge_x, edge_y):
    out = {}
    for name in ("add", "sub", "mul", "div", "max", "min"):
        out[name] = getattr(arith, name)(x, y)
    out["sub array-scalar"], out["div array-scalar"] = arith.sub(x, t), arith.div(x, t)
    for p in (0, 2, 3, 41):   # 3 ** 41 wraps around, as in numpy
        out[f"integer_pow y={p}"] = arith.integer_pow(x, p)
    out["neg"] = arith.neg(x)
    x32, y32 = x.astype(np.int32), y.astype(np.int32)
    for name in ("add", "sub", "mul", "div", "max", "min"):
        out[f"{name} int32"] = getattr(arith, name)(x32, y32)
    out["integer_pow int32"], out["neg int32"] = arith.integer_pow(x32, 3), arith.neg(x32)
    for name in ("add", "mul", "max", "min"):   # or, and, or, and
        out[f"{name} bool"] = getattr(arith, name)(x > 0, y > 0)
    out["div edges"] = arith.div(edge_x, edge_y)
    for name in ("add", "sub", "mul", "div", "max", "min"):
        out[f"{name} ()"] = getattr(arith, name)(s, t)
    out["integer_pow y=1 ()"] = arith.integer_pow(s, 1)
    return out


def test_jit_matches_eager_integers_and_bools(unsimplified):
    rng = np.random.default_rng(13)
    x, y = rng.integers(-9, 10, (3, 4)), rng.integers(1, 5, (3, 4)) * rng.choice([-1, 1], (3, 4))
    lowest = np.iinfo(np.int64).min   # floor division, x // 0 == 0, MIN // -1 == MIN
    edge_x = np.array([7, -7, 7, -7, 5, 0, lowest, lowest])
    edge_y = np.array([2, 2, -2, -2, 0, 0, -1, 1])
    with np.errstate(all="ignore"):
        check_jit(_int_table, (x, y, x[0, 0], y[0, 1], edge_x, edge_y), rtol=0)


def _all_binary(x, y):
    """One function using every arithmetic primitive, so its derivatives use every rule."""
    z = arith.add(arith.mul(arith.max(x, y), arith.pow(x, y)), arith.div(arith.min(x, y), y))
    return arith.sub(arith.integer_pow(z, 3), arith.neg(arith.integer_pow(z, -2)))


def _derivative_table(x, y, s, t):
    out = {}
    for name, fn, *_ in BINARY:
        out[f"{name} hessian ()"] = fx.hessian(fn, argnums=(0, 1))(s, t)
    for shape_name, b in (("", y), (" array-scalar", t)):
        ct = np.linspace(-1.0, 1.0, x.size).reshape(x.shape)
        out[f"jvp{shape_name}"] = fx.jvp(_all_binary, (x, b), (ct, np.ones_like(b)))[1]
        out[f"vjp{shape_name}"] = fx.vjp(_all_binary, x, b)[1](ct)
    out["integer_pow hessian ()"] = [fx.hessian(lambda a, p=p: arith.integer_pow(a, p))(t)
                                     for p in INT_POWERS]
    return out


def test_jit_of_derivative_programs():
    rng = np.random.default_rng(14)
    x, y = rng.uniform(0.5, 1.5, (3, 4)), rng.uniform(-1.0, 1.0, (3, 4))
    check_jit(_derivative_table, (x, y, np.float64(0.7), np.float64(-0.4)))


# ----------------------------------------------------------------------------- vmap
# vmap against a Python loop over the examples: every non-empty subset of the operands
# mapped, along the first axis, the last axis and a negative axis; the batched program
# must not grow with the batch size (no loop fallback).



VMAP_DTYPES = [(np.float64, 1e-12), (np.float32, 1e-6)]


@pytest.mark.parametrize("dtype, rtol", VMAP_DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("shapes", BINARY_SHAPES, ids=str)
@pytest.mark.parametrize("name, fn, ref, x_domain, y_domain", BINARY, ids=_ids(BINARY))
def test_binary_vmap_matches_loop(name, fn, ref, x_domain, y_domain, shapes, dtype, rtol):
    def make_args(seed):
        return tuple(a.astype(dtype) for a in _binary_args(x_domain, y_domain, shapes, seed))
    check_vmap(fn, make_args, rtol)


UNARY_CASES = [("neg", arith.neg)] + [(f"integer_pow y={p}", lambda a, p=p: arith.integer_pow(a, p))
                                      for p in INT_POWERS]


@pytest.mark.parametrize("dtype, rtol", VMAP_DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("shape", [(), (3, 4)], ids=str)
@pytest.mark.parametrize("name, fn", UNARY_CASES, ids=_ids(UNARY_CASES))
def test_unary_vmap_matches_loop(name, fn, shape, dtype, rtol):
    check_vmap(fn, lambda seed: (_nonzero(np.random.default_rng(seed), shape)
                                              .astype(dtype),), rtol)


def test_vmap_keeps_the_batch_axis_in_place():
    """Operands batched along their last axis, output too: no transpose is needed."""
    x, y, s = _positive(np.random.default_rng(15), (3, 4, 5)), np.ones((3, 4, 5)), np.ones(5)
    f = lambda a, b, c: arith.integer_pow(arith.sub(_all_binary(a, b), c), 2)
    program = fx.make_jaxpr(fx.vmap(f, in_axes=-1, out_axes=-1))(x, y, s)
    assert "transpose" not in str(program)
    per_example = fx.make_jaxpr(f)(x[..., 0], y[..., 0], s[0])
    assert len(program.eqns) == len(per_example.eqns) + 1   # + broadcasting the batched scalar


def _all_binary_args(shape, seed):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.5, 1.5, shape), _nonzero(rng, shape)


def test_vmap_of_grad():
    xs, ys = _all_binary_args((5,), 16)
    out = fx.vmap(fx.grad(_all_binary, argnums=(0, 1)))(xs, ys)
    expected = [fx.grad(_all_binary, argnums=(0, 1))(x, y) for x, y in zip(xs, ys)]
    np.testing.assert_allclose(np.stack(out, 1), np.array(expected), rtol=1e-12)


def test_grad_of_vmap():
    xs, ys = _all_binary_args((5, 3), 17)
    summed = lambda a, b: reduce_sum(fx.vmap(_all_binary, in_axes=(0, None))(a, b), (0, 1))
    gx, gy = fx.grad(summed, argnums=(0, 1))(xs, ys[0])
    summed_example = lambda a, b: reduce_sum(_all_binary(a, b), (0,))
    per_example = [fx.grad(summed_example, argnums=(0, 1))(x, ys[0]) for x in xs]
    np.testing.assert_allclose(gx, np.stack([g for g, _ in per_example]), rtol=1e-12)
    np.testing.assert_allclose(gy, sum(g for _, g in per_example), rtol=1e-12)


def test_vmap_of_vmap():
    (xs, _), (_, ys) = _all_binary_args((4, 3), 18), _all_binary_args((5, 3), 19)
    out = fx.vmap(fx.vmap(_all_binary, in_axes=(0, None)), in_axes=(None, 0))(xs, ys)
    expected = [[_all_binary(x, y) for x in xs] for y in ys]
    np.testing.assert_allclose(out, np.array(expected), rtol=1e-12)


def _vmap_table(x, y, s):
    """Every arithmetic primitive on batched (3,) examples, and with a shared scalar `s`."""
    out = {name: fn(x, y) for name, fn, *_ in BINARY}
    out.update({f"{name} shared scalar": fn(x, s) for name, fn, *_ in BINARY})
    out["neg"], out["integer_pow"] = arith.neg(y), arith.integer_pow(y, -3)
    return out


def test_jit_of_vmap():
    xs, ys = _all_binary_args((5, 3), 20)
    check_jit(fx.vmap(_vmap_table, in_axes=(0, -1, None)), (xs, ys.T, np.float64(0.7)))
