"""Comparisons, boolean logic and select: values against numpy, bool outputs, zero
tangents, select's derivatives in both modes, and shape/dtype errors; numba lowerings
against eager evaluation (values with NaN and ties, derivative programs); vmap against a
loop over examples, and composed with grad, jit and itself."""


import numpy as np
import pytest

import fxgrad as fx
from fxgrad.core.errors import FxTypeError
from fxgrad.core.ir import ShapedArray
from fxgrad.interpreters.jvp import Zero, is_zero, jvp_rules
from fxgrad.interpreters.transpose import UndefinedPrimal, transpose_rules
from fxgrad.primitives import arith, logic
from fxgrad.primitives.reduce import reduce_sum
from fxgrad.test_util import check_grads, check_jit, check_vmap

COMPARISONS = [
    ("eq", logic.eq, logic.eq_p, np.equal),
    ("ne", logic.ne, logic.ne_p, np.not_equal),
    ("lt", logic.lt, logic.lt_p, np.less),
    ("le", logic.le, logic.le_p, np.less_equal),
    ("gt", logic.gt, logic.gt_p, np.greater),
    ("ge", logic.ge, logic.ge_p, np.greater_equal),
]
LOGICAL = [
    ("logical_and", logic.logical_and, logic.logical_and_p, np.logical_and),
    ("logical_or", logic.logical_or, logic.logical_or_p, np.logical_or),
]
BINARY_SHAPES = [((2, 3), (2, 3)), ((), ()), ((2, 3), ()), ((), (2, 3))]


def _ids(cases):
    return [c[0] for c in cases]


def _ties(rng, shape):
    """Small integers as floats, so equal elements are common."""
    return rng.integers(-1, 2, shape).astype(np.float64)


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64])
@pytest.mark.parametrize("shapes", BINARY_SHAPES, ids=str)
@pytest.mark.parametrize("name, fn, prim, ref", COMPARISONS, ids=_ids(COMPARISONS))
def test_comparison_values(name, fn, prim, ref, shapes, dtype):
    rng = np.random.default_rng(0)
    x, y = (_ties(rng, s).astype(dtype) for s in shapes)
    out = fn(x, y)
    assert out.dtype == np.bool_
    np.testing.assert_array_equal(out, ref(x, y))


@pytest.mark.parametrize("name, fn, prim, ref", COMPARISONS, ids=_ids(COMPARISONS))
def test_comparison_with_python_scalar_keeps_operand_dtype(name, fn, prim, ref):
    x = np.array([-1.0, 0.0, 1.0], np.float32)
    np.testing.assert_array_equal(fn(x, 0.0), ref(x, 0.0))
    np.testing.assert_array_equal(fn(0.0, x), ref(0.0, x))
    text = str(fx.make_jaxpr(lambda a: fn(a, 0.0))(x))
    assert f"b:bool[3] = {name} a 0.0" in text


@pytest.mark.parametrize("name, fn, prim, ref", COMPARISONS + LOGICAL,
                         ids=_ids(COMPARISONS + LOGICAL))
def test_shape_error(name, fn, prim, ref):
    x, y = np.ones(2, bool), np.ones(3, bool)
    with pytest.raises(FxTypeError, match=rf"{name}: incompatible operand shapes \(2,\), \(3,\)"):
        fn(x, y)


@pytest.mark.parametrize("name, fn, prim, ref", COMPARISONS, ids=_ids(COMPARISONS))
def test_comparison_dtype_error(name, fn, prim, ref):
    with pytest.raises(FxTypeError, match=rf"{name}: operand dtypes differ \(float64, int64\)"):
        fn(np.ones(2), np.ones(2, np.int64))


@pytest.mark.parametrize("name, fn, prim, ref", COMPARISONS, ids=_ids(COMPARISONS))
def test_comparison_tangent_is_symbolic_zero(name, fn, prim, ref):
    x, y = np.array([1.0, 2.0]), np.array([2.0, 2.0])
    out, t = jvp_rules[prim]((x, y), (np.ones(2), np.ones(2)))
    np.testing.assert_array_equal(out, ref(x, y))
    assert is_zero(t) and t.aval == ShapedArray((2,), bool)
    # a comparison steering a select contributes nothing to the derivative
    g = fx.grad(lambda a: logic.select(fn(a, 0.5), arith.mul(a, 3.0), arith.mul(a, -2.0)))
    assert g(1.0) == (3.0 if ref(1.0, 0.5) else -2.0)


@pytest.mark.parametrize("shapes", BINARY_SHAPES, ids=str)
@pytest.mark.parametrize("name, fn, prim, ref", LOGICAL, ids=_ids(LOGICAL))
def test_logical_values(name, fn, prim, ref, shapes):
    rng = np.random.default_rng(1)
    x, y = (rng.integers(0, 2, s).astype(bool) for s in shapes)
    out = fn(x, y)
    assert out.dtype == np.bool_
    np.testing.assert_array_equal(out, ref(x, y))
    assert is_zero(jvp_rules[prim]((x, y), (Zero.like(x), Zero.like(y)))[1])


def test_logical_not():
    x = np.array([True, False, True])
    np.testing.assert_array_equal(logic.logical_not(x), [False, True, False])
    assert logic.logical_not(np.bool_(True)) == np.False_
    assert is_zero(jvp_rules[logic.logical_not_p]((x,), (Zero.like(x),))[1])


@pytest.mark.parametrize("fn, args", [
    (logic.logical_and, (np.ones(2), np.ones(2))),
    (logic.logical_or, (np.ones(2, np.int64), np.ones(2, np.int64))),
    (logic.logical_not, (np.ones(2),)),
], ids=["and", "or", "not"])
def test_logical_requires_bools(fn, args):
    name = fn.__name__
    with pytest.raises(FxTypeError, match=rf"{name} requires bool operands, got "
                                          rf"{args[0].dtype.name}; compare first"):
        fn(*args)


# -------------------------------------------------------------------------- select

PRED = np.array([[True, False, True], [False, False, True]])


@pytest.mark.parametrize("pred", [PRED, np.bool_(True), np.bool_(False)], ids=["array", "T", "F"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64])
def test_select_values(pred, dtype):
    a, b = np.arange(6.0).reshape(2, 3).astype(dtype), -np.ones((2, 3), dtype)
    out = logic.select(pred, a, b)
    assert out.dtype == dtype
    np.testing.assert_array_equal(out, np.where(pred, a, b))


@pytest.mark.parametrize("pred", [PRED, np.bool_(True), np.bool_(False)], ids=["array", "T", "F"])
def test_select_check_grads_order_2(pred):
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    check_grads(lambda u, v: logic.select(pred, u, v), (a, b), order=2, modes=("fwd", "rev"))
    # nonlinear branches: derivatives of the branch functions are selected too
    f = lambda u, v: logic.select(pred, arith.mul(u, v), arith.integer_pow(u, 3))
    check_grads(f, (a, b), order=2, modes=("fwd", "rev"))


def test_select_scalar_branches_check_grads():
    check_grads(lambda u, v: logic.select(logic.gt(u, v), u, v), (1.3, -0.4), order=2)


def test_select_pullback_routes_cotangent_to_the_chosen_branch():
    a, b, ct = np.ones((2, 3)), np.ones((2, 3)), np.arange(1.0, 7.0).reshape(2, 3)
    _, pullback = fx.vjp(lambda u, v: logic.select(PRED, u, v), a, b)
    ct_a, ct_b = pullback(ct)
    np.testing.assert_array_equal(ct_a, np.where(PRED, ct, 0.0))
    np.testing.assert_array_equal(ct_b, np.where(PRED, 0.0, ct))


def test_select_with_one_constant_branch():
    a, const = np.array([1.0, 2.0, 3.0]), np.array([9.0, 9.0, 9.0])
    pred = np.array([True, False, True])
    _, t = fx.jvp(lambda u: logic.select(pred, u, const), (a,), (np.ones(3),))
    np.testing.assert_array_equal(t, [1.0, 0.0, 1.0])
    _, pullback = fx.vjp(lambda u: logic.select(pred, const, u), a)
    np.testing.assert_array_equal(pullback(np.ones(3))[0], [0.0, 1.0, 0.0])


def test_select_jvp_instantiates_a_zero_branch_only_when_needed():
    pred, a = np.array([True, False]), np.array([1.0, 2.0])
    zero = Zero.like(a)
    _, t = jvp_rules[logic.select_p]((pred, a, a), (Zero.like(pred), zero, zero))
    assert is_zero(t)
    _, t = jvp_rules[logic.select_p]((pred, a, a), (Zero.like(pred), np.ones(2), zero))
    np.testing.assert_array_equal(t, [1.0, 0.0])


def test_select_transpose_never_treats_pred_as_linear():
    ct = np.ones(2)
    rule = transpose_rules[logic.select_p]
    with pytest.raises(TypeError, match="not linear in its predicate"):
        rule(ct, UndefinedPrimal(ShapedArray((2,), bool)), ct, ct)
    undefined = UndefinedPrimal(ShapedArray((2,), np.float64))
    ct_pred, ct_true, ct_false = rule(ct, np.array([True, False]), undefined, ct)
    assert ct_pred is None and ct_false is None
    np.testing.assert_array_equal(ct_true, [1.0, 0.0])


def test_select_float32_preserved_with_python_scalar_branch():
    a = np.array([1.0, 2.0], np.float32)
    assert logic.select(np.bool_(True), a, np.full(2, 0.0, np.float32)).dtype == np.float32
    assert logic.select(np.bool_(True), 1.0, np.float32(0.0)).dtype == np.float32
    g = fx.grad(lambda u: logic.select(logic.gt(u, 0.0), u, arith.neg(u)))(np.float32(-2.0))
    assert g.dtype == np.float32 and g == -1.0


F23 = np.ones((2, 3))


@pytest.mark.parametrize("pred, a, b, message", [
    (F23, F23, F23, r"select: the predicate must be bool, got float64"),
    (PRED, F23, np.ones(3),
     r"select: the branches must have one shape and dtype, got f64\[2,3\] and f64\[3\]"),
    (PRED, F23, np.ones((2, 3), np.float32),
     r"branches must have one shape and dtype, got f64\[2,3\] and f32\[2,3\]"),
    (np.ones(3, bool), F23, F23,
     r"select: predicate shape \(3,\) does not match the branch shape \(2, 3\)"),
], ids=["pred-dtype", "branch-shapes", "branch-dtypes", "pred-shape"])
def test_select_errors(pred, a, b, message):
    with pytest.raises(FxTypeError, match=message):
        logic.select(pred, a, b)


# ----------------------------------------------------------------------------- jit
# Each test jits ONE function computing a whole table of named cases, so a table costs one
# numba compilation (about 0.1 s per array output); most cases use rank-0 operands.




def _logic_table(x, y, s, t, p, q):
    """x, y: (2, 3) with ties (and NaN for floats); s, t: scalars; p, q: bool (2, 3)."""
    out = {}
    for name, fn, *_ in COMPARISONS:   # (2, 3) outputs first: one fused loop
        out[name], out[f"{name} array-scalar"] = fn(x, y), fn(x, t)
    out["lt literal"], out["select"] = logic.lt(x, 0.5), logic.select(p, x, y)
    gt_scalar = logic.gt(s, t)
    out["select scalar pred"] = logic.select(gt_scalar, x, y)
    out["select bool"] = logic.select(p, p, q)
    for name, fn, *_ in LOGICAL:
        out[f"{name}"], out[f"{name} array-scalar"] = fn(p, q), fn(p, np.True_)
    out["logical_not"] = logic.logical_not(p)
    for name, fn, *_ in COMPARISONS:
        out[f"{name} ()"] = fn(s, t)
    for name, fn, *_ in LOGICAL:
        out[f"{name} ()"] = fn(np.True_, gt_scalar)
    out["logical_not ()"] = logic.logical_not(gt_scalar)
    out["select ()"] = logic.select(gt_scalar, s, t)
    return out


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64])
def test_jit_matches_eager(unsimplified, dtype):
    rng = np.random.default_rng(30)
    x, y = _ties(rng, (2, 3)), _ties(rng, (2, 3))
    if dtype != np.int64:   # NaN compares unequal to everything, itself included
        x[0, 0], y[0, 1], y[1, 1] = np.nan, np.nan, np.nan
    numbers = tuple(np.asarray(a).astype(dtype) for a in (x, y, x[1, 2], y[1, 2]))
    bools = (PRED, rng.integers(0, 2, (2, 3)).astype(bool))
    check_jit(_logic_table, numbers + bools, rtol=0)


def _branchy(u, v):
    return logic.select(logic.gt(u, v), arith.mul(u, v), arith.integer_pow(u, 3))


def _derivative_table(a, b, s, t):
    ct = np.linspace(-1.0, 1.0, a.size).reshape(a.shape)
    fixed_pred = lambda u, v: logic.select(PRED, u, v)
    return {"jvp": fx.jvp(_branchy, (a, b), (ct, -ct))[1],
            "vjp": fx.vjp(_branchy, a, b)[1](ct),
            "fixed pred vjp": fx.vjp(fixed_pred, a, b)[1](ct),
            "scalar pred jvp": fx.jvp(lambda u: logic.select(logic.gt(s, t), u, arith.neg(u)),
                                      (a,), (ct,))[1],
            "hessian ()": fx.hessian(_branchy, argnums=(0, 1))(s, t)}


def test_jit_of_derivative_programs():
    rng = np.random.default_rng(31)
    a, b = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    check_jit(_derivative_table, (a, b, np.float64(1.3), np.float64(-0.4)))


# ----------------------------------------------------------------------------- vmap
# vmap against a Python loop over the examples: every non-empty subset of the operands
# mapped (select's predicate and branches independently), along the first axis, the last
# axis and a negative axis; the batched program must not grow with the batch size.



def _random_bools(rng, shape):
    return rng.integers(0, 2, shape).astype(bool)


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64])
@pytest.mark.parametrize("shapes", BINARY_SHAPES, ids=str)
@pytest.mark.parametrize("name, fn, prim, ref", COMPARISONS, ids=_ids(COMPARISONS))
def test_comparison_vmap_matches_loop(name, fn, prim, ref, shapes, dtype):
    def make_args(seed):
        rng = np.random.default_rng(seed)
        return tuple(_ties(rng, s).astype(dtype) for s in shapes)
    check_vmap(fn, make_args, rtol=0)


@pytest.mark.parametrize("shapes", BINARY_SHAPES, ids=str)
@pytest.mark.parametrize("name, fn, prim, ref", LOGICAL, ids=_ids(LOGICAL))
def test_logical_vmap_matches_loop(name, fn, prim, ref, shapes):
    def make_args(seed):
        rng = np.random.default_rng(seed)
        return tuple(_random_bools(rng, s) for s in shapes)
    check_vmap(fn, make_args, rtol=0)


@pytest.mark.parametrize("shape", [(2, 3), ()], ids=str)
def test_logical_not_vmap_matches_loop(shape):
    make_args = lambda seed: (_random_bools(np.random.default_rng(seed), shape),)
    check_vmap(logic.logical_not, make_args, rtol=0)


# shapes of pred and of both branches: equal, a scalar predicate, all scalars
SELECT_SHAPES = [((2, 3), (2, 3)), ((), (2, 3)), ((), ())]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shapes", SELECT_SHAPES, ids=str)
def test_select_vmap_matches_loop(shapes, dtype):
    def make_args(seed):
        rng = np.random.default_rng(seed)
        branches = rng.standard_normal((2, *shapes[1])).astype(dtype)
        return _random_bools(rng, shapes[0]), branches[0], branches[1]
    check_vmap(logic.select, make_args, rtol=0)


def _all_logic(u, v):
    """Every comparison and boolean primitive steering selects between smooth branches."""
    p = logic.logical_and(logic.lt(u, v), logic.ne(u, 0.5))
    q = logic.logical_or(logic.logical_not(logic.ge(v, 0.5)), logic.eq(u, v))
    r = logic.logical_or(logic.gt(u, 0.0), logic.le(v, -1.0))
    inner = logic.select(r, arith.mul(u, v), arith.integer_pow(v, 3))
    return logic.select(p, inner, logic.select(q, arith.integer_pow(u, 2), v))


def test_vmap_keeps_the_batch_axis_in_place():
    rng = np.random.default_rng(32)
    u, v = rng.standard_normal((2, 3, 5)), rng.standard_normal((2, 3, 5))
    program = fx.make_jaxpr(fx.vmap(_all_logic, in_axes=-1, out_axes=-1))(u, v)
    assert "transpose" not in str(program)
    assert len(program.eqns) == len(fx.make_jaxpr(_all_logic)(u[..., 0], v[..., 0]).eqns)


def test_vmap_of_grad():
    us, vs = np.random.default_rng(33).standard_normal((2, 8))
    grads = fx.vmap(fx.grad(_all_logic, argnums=(0, 1)))(us, vs)
    expected = [fx.grad(_all_logic, argnums=(0, 1))(u, v) for u, v in zip(us, vs)]
    np.testing.assert_allclose(np.stack(grads, 1), np.array(expected), rtol=1e-12)


def test_grad_of_vmap():
    us, v = np.random.default_rng(34).standard_normal((5, 3)), np.array([0.3, -1.2, 0.8])
    summed = lambda a, b: reduce_sum(fx.vmap(_all_logic, in_axes=(0, None))(a, b), (0, 1))
    gu, gv = fx.grad(summed, argnums=(0, 1))(us, v)
    summed_example = lambda a, b: reduce_sum(_all_logic(a, b), (0,))
    per_example = [fx.grad(summed_example, argnums=(0, 1))(u, v) for u in us]
    np.testing.assert_allclose(gu, np.stack([g for g, _ in per_example]), rtol=1e-12)
    np.testing.assert_allclose(gv, sum(g for _, g in per_example), rtol=1e-12)


def test_vmap_of_vmap():
    rng = np.random.default_rng(35)
    us, vs = rng.standard_normal((4, 3)), rng.standard_normal((3, 5))
    out = fx.vmap(fx.vmap(_all_logic, in_axes=(0, None)), in_axes=(None, 1))(us, vs)
    expected = [[_all_logic(u, vs[:, j]) for u in us] for j in range(5)]
    np.testing.assert_array_equal(out, np.array(expected))


def test_jit_of_vmap():
    rng = np.random.default_rng(36)
    xs, ys, ts = _ties(rng, (4, 2, 3)), _ties(rng, (2, 3, 4)), _ties(rng, 4)
    ps, q = _random_bools(rng, (4, 2, 3)), _random_bools(rng, (2, 3))
    in_axes = (0, -1, None, 0, 0, None)   # the scalar s shared, q shared, t batched
    check_jit(fx.vmap(_logic_table, in_axes=in_axes), (xs, ys, np.float64(0.0), ts, ps, q),
              rtol=0)
