"""fxgrad.numpy elementwise functions against numpy: values and dtypes on float64,
float32 and integer inputs, values under tracing, second-order derivative checks,
weak Python scalars and broadcasting."""
from __future__ import annotations

import numpy as np
import pytest

import fxgrad as fx
import fxgrad.numpy as fnp
from fxgrad.test_util import check_grads


def sample(domain: str, shape: tuple[int, ...], dtype=np.float64, seed: int = 0) -> np.ndarray:
    """Well-conditioned inputs: away from kinks, poles, and integers for rounding."""
    rng = np.random.default_rng(seed)
    u = rng.uniform(0.1, 0.9, shape)
    signs = np.where(rng.uniform(size=shape) < 0.5, -1.0, 1.0)
    values = {
        "real": signs * (u + rng.integers(0, 3, shape)),   # fractional parts in (0.1, 0.9)
        "positive": u * 3 + 0.2,
        "unit": signs * u * 0.9,
    }[domain]
    return values.astype(dtype)


# name, input domain, differentiable
UNARY = [
    ("negative", "real", True), ("positive", "real", True), ("square", "real", True),
    ("sqrt", "positive", True), ("cbrt", "real", True), ("reciprocal", "real", True),
    ("exp", "unit", True), ("exp2", "unit", True), ("expm1", "unit", True),
    ("log", "positive", True), ("log2", "positive", True), ("log10", "positive", True),
    ("log1p", "positive", True), ("sin", "real", True), ("cos", "real", True),
    ("tan", "unit", True), ("sinh", "unit", True), ("cosh", "unit", True),
    ("tanh", "real", True), ("deg2rad", "real", True), ("rad2deg", "real", True),
    ("radians", "real", True), ("degrees", "real", True), ("abs", "real", True),
    ("absolute", "real", True), ("fabs", "real", True), ("sign", "real", False),
    ("floor", "real", False), ("ceil", "real", False), ("trunc", "real", False),
    ("fix", "real", False), ("rint", "real", False), ("round", "real", False),
    ("around", "real", False), ("isnan", "real", False), ("isinf", "real", False),
    ("isfinite", "real", False), ("logical_not", "real", False),
]

BINARY = [
    ("add", "real", "real", True), ("subtract", "real", "real", True),
    ("multiply", "real", "real", True), ("divide", "real", "real", True),
    ("true_divide", "real", "real", True), ("power", "positive", "unit", True),
    ("float_power", "positive", "unit", True), ("maximum", "real", "real", True),
    ("minimum", "real", "real", True), ("logaddexp", "real", "real", True),
    ("logaddexp2", "real", "real", True), ("floor_divide", "real", "positive", False),
    ("remainder", "real", "positive", True), ("mod", "real", "positive", True),
    ("equal", "real", "real", False), ("not_equal", "real", "real", False),
    ("less", "real", "real", False), ("less_equal", "real", "real", False),
    ("greater", "real", "real", False), ("greater_equal", "real", "real", False),
    ("logical_and", "real", "real", False), ("logical_or", "real", "real", False),
    ("logical_xor", "real", "real", False),
]

UNARY_NAMES = [u[0] for u in UNARY]
BINARY_NAMES = [b[0] for b in BINARY]
INT_FREE = {"reciprocal"}   # numpy's integer reciprocal truncates; tested separately


def numpy_fn(name: str):
    return getattr(np, name)


@pytest.mark.parametrize("name,domain,_", UNARY, ids=UNARY_NAMES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_unary_matches_numpy(name, domain, _, dtype, matches_numpy):
    x = sample(domain, (2, 3), dtype)
    matches_numpy(getattr(fnp, name)(x), numpy_fn(name)(x), rtol=1e-5)


@pytest.mark.parametrize("name", [n for n in UNARY_NAMES if n not in INT_FREE])
def test_unary_on_integers_matches_numpy(name, matches_numpy):
    x = np.arange(1, 7).reshape(2, 3)
    matches_numpy(getattr(fnp, name)(x), numpy_fn(name)(x))


@pytest.mark.parametrize("name,domain,_", UNARY, ids=UNARY_NAMES)
def test_unary_on_python_scalar_gives_0d_array(name, domain, _, matches_numpy):
    x = float(sample(domain, ()))
    matches_numpy(getattr(fnp, name)(x), numpy_fn(name)(x))


@pytest.mark.parametrize("name,domain,_", UNARY, ids=UNARY_NAMES)
def test_unary_traced_value(name, domain, _, matches_numpy):
    x = sample(domain, (3,))
    out, _ = fx.jvp(getattr(fnp, name), (x,), (np.ones(3),))
    matches_numpy(out, numpy_fn(name)(x))


@pytest.mark.parametrize("name,domain", [(n, d) for n, d, diff in UNARY if diff])
def test_unary_grads(name, domain):
    check_grads(getattr(fnp, name), (sample(domain, (2, 3)),), order=2)


@pytest.mark.parametrize("name,domain", [(n, d) for n, d, diff in UNARY
                                         if not diff and n not in ("isnan", "isinf", "isfinite",
                                                                  "logical_not")])
def test_piecewise_constant_unary_has_zero_derivative(name, domain):
    x = sample(domain, (2, 3))
    _, t = fx.jvp(getattr(fnp, name), (x,), (np.ones_like(x),))
    np.testing.assert_array_equal(t, np.zeros_like(x))


@pytest.mark.parametrize("name,da,db,_", BINARY, ids=BINARY_NAMES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_binary_matches_numpy(name, da, db, _, dtype, matches_numpy):
    x, y = sample(da, (2, 3), dtype, 1), sample(db, (2, 3), dtype, 2)
    matches_numpy(getattr(fnp, name)(x, y), numpy_fn(name)(x, y), rtol=1e-5)


@pytest.mark.parametrize("name", [n for n in BINARY_NAMES if n != "power"])
def test_binary_on_integers_matches_numpy(name, matches_numpy):
    x, y = np.array([[-7, 2, 5], [9, -3, 4]]), np.array([[2, 3, 1], [4, 2, 7]])
    matches_numpy(getattr(fnp, name)(x, y), numpy_fn(name)(x, y))


@pytest.mark.parametrize("name,da,db,_", BINARY, ids=BINARY_NAMES)
def test_binary_broadcasts(name, da, db, _, matches_numpy):
    x, y = sample(da, (3, 1), seed=1), sample(db, (4,), seed=2)
    matches_numpy(getattr(fnp, name)(x, y), numpy_fn(name)(x, y))
    out, _ = fx.jvp(lambda a: getattr(fnp, name)(a, y), (x,), (np.ones_like(x),))
    matches_numpy(out, numpy_fn(name)(x, y))


@pytest.mark.parametrize("name,da,db,_", BINARY, ids=BINARY_NAMES)
def test_binary_weak_python_scalar_keeps_float32(name, da, db, _, matches_numpy):
    fn = getattr(fnp, name)
    x, scalar = sample(da, (3,), np.float32), float(sample(db, (), seed=3))
    matches_numpy(fn(x, scalar), numpy_fn(name)(x, scalar), rtol=1e-5)
    scalar, y = float(sample(da, (), seed=4)), sample(db, (3,), np.float32)
    matches_numpy(fn(scalar, y), numpy_fn(name)(scalar, y), rtol=1e-5)


@pytest.mark.parametrize("name,da,db", [(n, a, b) for n, a, b, diff in BINARY if diff])
def test_binary_grads(name, da, db):
    x, y = sample(da, (2, 3), seed=1), sample(db, (2, 3), seed=2)
    check_grads(getattr(fnp, name), (x, y), order=2)


@pytest.mark.parametrize("name,da,db", [(n, a, b) for n, a, b, diff in BINARY if diff])
def test_binary_grads_with_broadcasting(name, da, db):
    x, y = sample(da, (3, 1), seed=1), sample(db, (2, 1, 4), seed=2)
    check_grads(getattr(fnp, name), (x, y), order=2)


def test_grads_keep_float32():
    x = sample("positive", (3,), np.float32)
    g = fx.grad(lambda v: fnp.sum(fnp.log(v) * 2.0 + fnp.sqrt(v) / 3))(x)
    assert g.dtype == np.float32


def test_integer_reciprocal_truncates_like_numpy(matches_numpy):
    x = np.array([-3, -1, 1, 2, 5])
    matches_numpy(fnp.reciprocal(x), np.reciprocal(x))


def test_power_with_python_int_exponent_is_integer_pow():
    program = fx.make_jaxpr(lambda x: fnp.power(x, 3))(np.ones(2))
    assert [e.prim.name for e in program.eqns] == ["integer_pow"]
    assert program.eqns[0].params == {"y": 3}


def test_power_with_numpy_integer_exponent_follows_numpy_dtypes(matches_numpy):
    x = sample("real", (3,), np.float32)
    matches_numpy(fnp.power(x, np.int64(3)), np.power(x, np.int64(3)))   # float64, as numpy
    matches_numpy(fnp.power(np.arange(4), 3), np.power(np.arange(4), 3))
    program = fx.make_jaxpr(lambda v: v ** np.int32(2))(x)
    assert [e.prim.name for e in program.eqns][-1] == "integer_pow"


def test_power_with_float_exponent_is_pow():
    program = fx.make_jaxpr(lambda x: fnp.power(x, 0.5))(np.ones(2))
    assert [e.prim.name for e in program.eqns] == ["pow"]


def test_integer_to_negative_integer_power_raises():
    with pytest.raises(fx.FxValueError, match="negative integer powers"):
        fnp.power(np.arange(3), -1)


def test_round_decimals_matches_numpy(matches_numpy):
    x = np.array([1.2345, -2.5551, 1234.5])
    for decimals in (-2, -1, 0, 1, 2):
        matches_numpy(fnp.round(x, decimals), np.round(x, decimals))
    matches_numpy(fnp.round(np.array([1234, 1251]), -2), np.round(np.array([1234, 1251]), -2))


def test_isnan_isinf_isfinite_on_special_values(matches_numpy):
    x = np.array([0.0, np.nan, np.inf, -np.inf, -1.5], np.float32)
    for name in ("isnan", "isinf", "isfinite"):
        matches_numpy(getattr(fnp, name)(x), getattr(np, name)(x))


def test_logaddexp_is_stable(matches_numpy):
    x = np.array([1000.0, -1000.0, -np.inf, np.inf, 0.0])
    y = np.array([1000.0, -1001.0, -np.inf, np.inf, -np.inf])
    matches_numpy(fnp.logaddexp(x, y), np.logaddexp(x, y))


def test_sinh_accurate_near_zero(matches_numpy):
    x = np.array([1e-12, -3e-9, 1e-5])
    matches_numpy(fnp.sinh(x), np.sinh(x), rtol=1e-14)


def test_where_clip_isclose_match_numpy(matches_numpy):
    x, y = sample("real", (2, 3), seed=1), sample("real", (3,), seed=2)
    matches_numpy(fnp.where(x > 0, x, y), np.where(x > 0, x, y))
    matches_numpy(fnp.where(x > 0, x.astype(np.float32), 0.0),
                  np.where(x > 0, x.astype(np.float32), 0.0))
    matches_numpy(fnp.where(True, 1, 2.5), np.where(True, 1, 2.5))
    matches_numpy(fnp.clip(x, -1, 0.5), np.clip(x, -1, 0.5))
    matches_numpy(fnp.clip(x, None, 0.5), np.clip(x, None, 0.5))
    matches_numpy(fnp.clip(x, min=-0.5), np.clip(x, min=-0.5))
    matches_numpy(fnp.clip(np.arange(5), 1, 3), np.clip(np.arange(5), 1, 3))
    matches_numpy(fnp.isclose(x, x + 1e-9), np.isclose(x, x + 1e-9))
    z = np.array([np.inf, np.nan, 1.0])
    matches_numpy(fnp.isclose(z, z, equal_nan=True), np.isclose(z, z, equal_nan=True))
    matches_numpy(fnp.isclose(z, z), np.isclose(z, z))


def test_where_and_clip_grads():
    x, y = sample("real", (2, 3), seed=1), sample("real", (3,), seed=2)
    check_grads(lambda a, b: fnp.where(a > b, a * b, 2.0), (x, y), order=2)
    check_grads(lambda a: fnp.clip(a, -1.5, 1.5), (x,), order=2)


def test_where_with_only_condition_returns_nonzero():
    x = np.array([0.0, 1.0, 0.0, 2.0])
    np.testing.assert_array_equal(fnp.where(x)[0], np.where(x)[0])


def test_astype(matches_numpy):
    x = sample("real", (3,))
    matches_numpy(fnp.astype(x, np.float32), x.astype(np.float32))
    matches_numpy(fnp.astype(x, np.int32), x.astype(np.int32))
    assert fx.grad(lambda v: fnp.sum(fnp.astype(v, np.float32)))(x).dtype == np.float64


def test_unsupported_dtype_combination_raises():
    with pytest.raises(fx.FxTypeError, match="subtract"):
        fnp.subtract(np.array([True]), np.array([False]))


def test_clip_needs_a_bound():
    with pytest.raises(fx.FxValueError, match="a_min and a_max"):
        fnp.clip(np.ones(2))


def test_where_needs_both_branches():
    with pytest.raises(fx.FxTypeError, match="both or neither"):
        fnp.where(np.ones(2) > 0, 1.0)
    with pytest.raises(fx.FxTypeError, match="three-argument"):
        fx.make_jaxpr(lambda x: fnp.where(x > 0))(np.ones(2))


def test_logaddexp_derivatives_are_exact_at_ties_and_accurate_in_the_tails():
    softplus = lambda z: fnp.logaddexp(0.0, z)  # noqa: E731
    assert float(fx.grad(softplus)(0.0)) == 0.5
    assert float(fx.grad(fx.grad(softplus))(0.0)) == 0.25
    assert float(fx.grad(fx.grad(fx.grad(softplus)))(0.0)) == 0.0
    assert float(softplus(-40.0)) == np.logaddexp(0.0, -40.0)
    assert float(fx.grad(softplus)(-np.inf)) == 0.0
