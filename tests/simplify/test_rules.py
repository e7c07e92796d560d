"""Each rewrite rule of fxgrad.simplify.rules on a focused program: the rule fires (the
debug log names it), the equation count before and after, the printed simplified
program, and the same values as the unsimplified program on random inputs. Then the
`simplify_assume_finite` flag, and the accuracy the numerically stable rewrites buy at
extreme inputs, measured against the naive programs."""
import numpy as np
import pytest

import fxgrad as fx
import fxgrad.numpy as fnp
from fxgrad.core.ir import ClosedProgram, Eqn, Program, ShapedArray, Var
from fxgrad.core.trace import abstract_eval
from fxgrad.primitives import logic, reduce, shape
from fxgrad.primitives.unary import logistic
from fxgrad.simplify import rules

V3, M23 = (3,), (2, 3)


def random_args(closed, seed=0):
    """Random inputs for a program: positive, so that every case is well defined."""
    rng = np.random.default_rng(seed)
    return [rng.uniform(0.2, 1.5, a.shape).astype(a.dtype) for a in closed.in_avals]


def assert_same_values(closed, simple, seeds=(0, 1, 2)):
    assert simple.out_avals == closed.out_avals
    for seed in seeds:
        args = random_args(closed, seed)
        for want, got in zip(closed(*args), simple(*args)):
            assert np.asarray(got).dtype == np.asarray(want).dtype
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


def one_line(closed):
    return " ".join(str(closed).split())


def simplified(fun, *shapes, dtype=np.float64):
    closed = fx.make_jaxpr(fun)(*[np.ones(s, dtype) for s in shapes])
    log = []
    simple = fx.simplify(closed, log=log)
    assert_same_values(closed, simple)
    return closed, simple, log


def single_eqn_program(prim, aval, **params):
    """`{ lambda ; a. let b = prim[params] a in (b,) }`, for no-ops tracing never emits."""
    x = Var(aval)
    out = Var(abstract_eval(prim, [aval], params)[0])
    return ClosedProgram(Program([x], [Eqn(prim, [x], params, [out])], [out]), [])


def bcast(x, shape_):
    return fnp.broadcast_to(x, shape_)


# (rule, fun, input shapes, equations before, simplified program on one line)
CASES = {
    "scalar broadcast operand": (
        "sink_scalar_broadcast", lambda x, y: bcast(y, V3) - x, (V3, ()), 2,
        "{ lambda ; a:f64[3] b:f64[]. let c:f64[3] = sub b a in (c,) }"),
    "fill-like constant operand": (
        "sink_scalar_broadcast", lambda x: x * fnp.full(V3, 2.0), (V3,), 1,
        "{ lambda ; a:f64[3]. let b:f64[3] = mul 2.0 a in (b,) }"),
    "unary of a broadcast": (
        "sink_broadcast", lambda y: fnp.sin(bcast(y, M23)), (V3,), 2,
        "{ lambda ; a:f64[3]. let b:f64[3] = sin a "
        "c:f64[2,3] = broadcast_in_dim[shape=(2, 3), broadcast_dimensions=(1,)] b in (c,) }"),
    "binary of two broadcasts": (
        "sink_broadcast", lambda x, y: bcast(x, M23) * bcast(y, M23), (V3, V3), 3,
        "{ lambda ; a:f64[3] b:f64[3]. let c:f64[3] = mul a b "
        "d:f64[2,3] = broadcast_in_dim[shape=(2, 3), broadcast_dimensions=(1,)] c in (d,) }"),
    "x + 0": ("add_identities", lambda x: x + 0.0, (V3,), 1,
              "{ lambda ; a:f64[3]. let in (a,) }"),
    "0 + x": ("add_identities", lambda x: 0.0 + x, (V3,), 1,
              "{ lambda ; a:f64[3]. let in (a,) }"),
    "x + -y": ("add_identities", lambda x, y: x + (-y), (V3, V3), 2,
               "{ lambda ; a:f64[3] b:f64[3]. let c:f64[3] = sub a b in (c,) }"),
    "like terms": ("add_identities", lambda x: x + x + 1.0 + x, (V3,), 3,
                   "{ lambda ; a:f64[3]. let b:f64[3] = mul 3.0 a c:f64[3] = add b 1.0 in (c,) }"),
    "x - 0": ("sub_identities", lambda x: x - 0.0, (V3,), 1,
              "{ lambda ; a:f64[3]. let in (a,) }"),
    "0 - x": ("sub_identities", lambda x: 0.0 - x, (V3,), 1,
              "{ lambda ; a:f64[3]. let b:f64[3] = neg a in (b,) }"),
    "x - -y": ("sub_identities", lambda x, y: x - (-y), (V3, V3), 2,
               "{ lambda ; a:f64[3] b:f64[3]. let c:f64[3] = add a b in (c,) }"),
    "exp(x) - 1": ("sub_identities", lambda x: fnp.exp(x) - 1.0, (V3,), 2,
                   "{ lambda ; a:f64[3]. let b:f64[3] = expm1 a in (b,) }"),
    "x - x keeps nan": ("sub_identities", lambda x: x - x, (V3,), 1,
                        "{ lambda ; a:f64[3]. let b:f64[3] = mul 0.0 a in (b,) }"),
    "--x": ("neg_identities", lambda x: -(-x), (V3,), 2,
            "{ lambda ; a:f64[3]. let in (a,) }"),
    "-(x - y)": ("neg_identities", lambda x, y: -(x - y), (V3, V3), 2,
                 "{ lambda ; a:f64[3] b:f64[3]. let c:f64[3] = sub b a in (c,) }"),
    "-(2x)": ("neg_identities", lambda x: -(2.0 * x), (V3,), 2,
              "{ lambda ; a:f64[3]. let b:f64[3] = mul -2.0 a in (b,) }"),
    "x * 1": ("mul_identities", lambda x: x * 1.0, (V3,), 1,
              "{ lambda ; a:f64[3]. let in (a,) }"),
    "1 * x": ("mul_identities", lambda x: 1.0 * x, (V3,), 1,
              "{ lambda ; a:f64[3]. let in (a,) }"),
    "x * -1": ("mul_identities", lambda x: x * -1.0, (V3,), 1,
               "{ lambda ; a:f64[3]. let b:f64[3] = neg a in (b,) }"),
    "literal first": ("mul_canonical", lambda x: x * 2.0, (V3,), 1,
                      "{ lambda ; a:f64[3]. let b:f64[3] = mul 2.0 a in (b,) }"),
    "2*(3*x)": ("mul_canonical", lambda x: 2.0 * (3.0 * x), (V3,), 2,
                "{ lambda ; a:f64[3]. let b:f64[3] = mul 6.0 a in (b,) }"),
    "2*(-x)": ("mul_canonical", lambda x: 2.0 * (-x), (V3,), 2,
               "{ lambda ; a:f64[3]. let b:f64[3] = mul -2.0 a in (b,) }"),
    "x*x": ("mul_canonical", lambda x: x * x, (V3,), 1,
            "{ lambda ; a:f64[3]. let b:f64[3] = integer_pow[y=2] a in (b,) }"),
    "x**2 * x**3": ("mul_canonical", lambda x: x ** 2 * x ** 3, (V3,), 3,
                    "{ lambda ; a:f64[3]. let b:f64[3] = integer_pow[y=5] a in (b,) }"),
    "(-x)*(-y)": ("mul_canonical", lambda x, y: (-x) * (-y), (V3, V3), 3,
                  "{ lambda ; a:f64[3] b:f64[3]. let c:f64[3] = mul a b in (c,) }"),
    "x / 1": ("div_identities", lambda x: x / 1.0, (V3,), 1,
              "{ lambda ; a:f64[3]. let in (a,) }"),
    "x**1": ("integer_pow_identities", lambda x: x ** 1, (V3,), 1,
             "{ lambda ; a:f64[3]. let in (a,) }"),
    "(x**2)**3": ("integer_pow_identities", lambda x: (x ** 2) ** 3, (V3,), 2,
                  "{ lambda ; a:f64[3]. let b:f64[3] = integer_pow[y=6] a in (b,) }"),
    "(-x)**2": ("integer_pow_identities", lambda x: (-x) ** 2, (V3,), 2,
                "{ lambda ; a:f64[3]. let b:f64[3] = integer_pow[y=2] a in (b,) }"),
    "log(1 + x)": ("log_stable", lambda x: fnp.log(1.0 + x), (V3,), 2,
                   "{ lambda ; a:f64[3]. let b:f64[3] = log1p a in (b,) }"),
    "log(x + 1)": ("log_stable", lambda x: fnp.log(x + 1.0), (V3,), 2,
                   "{ lambda ; a:f64[3]. let b:f64[3] = log1p a in (b,) }"),
    "log(exp(x))": ("log_stable", lambda x: fnp.log(fnp.exp(x)), (V3,), 2,
                    "{ lambda ; a:f64[3]. let in (a,) }"),
    "log(logistic(x))": (
        "log_stable", lambda x: fnp.log(logistic(x)), (V3,), 2,
        "{ lambda a:f64[3] ; b:f64[3]. let c:bool[3] = ge b 0.0 d:f64[3] = select c a b "
        "e:f64[3] = neg b f:f64[3] = select c e b g:f64[3] = exp f h:f64[3] = log1p g "
        "i:f64[3] = sub d h in (i,) }"),
    "reshape of reshape": ("reshape_identities", lambda x: x.reshape(3, 2).reshape(6), (M23,), 2,
                           "{ lambda ; a:f64[2,3]. let b:f64[6] = reshape[new_sizes=(6,)] a "
                           "in (b,) }"),
    "squeeze of expand_dims": (
        "reshape_identities", lambda x: fnp.squeeze(fnp.expand_dims(x, 0), 0), (V3,), 2,
        "{ lambda ; a:f64[3]. let in (a,) }"),
    "no-op reshape": ("reshape_identities", lambda x: shape.reshape(x, V3), (V3,), 1,
                      "{ lambda ; a:f64[3]. let in (a,) }"),
    "transpose of transpose": ("transpose_identities", lambda x: x.T.T, (M23,), 2,
                               "{ lambda ; a:f64[2,3]. let in (a,) }"),
    "composed transposes": (
        "transpose_identities",
        lambda x: fnp.transpose(fnp.transpose(x, (1, 2, 0)), (1, 2, 0)), ((2, 3, 4),), 2,
        "{ lambda ; a:f64[2,3,4]. let b:f64[4,2,3] = transpose[permutation=(2, 0, 1)] a "
        "in (b,) }"),
    "no-op transpose": ("transpose_identities", lambda x: shape.transpose(x, (0, 1)), (M23,), 1,
                        "{ lambda ; a:f64[2,3]. let in (a,) }"),
    "no-op broadcast": ("broadcast_identities",
                        lambda x: shape.broadcast_in_dim(x, V3, (0,)), (V3,), 1,
                        "{ lambda ; a:f64[3]. let in (a,) }"),
    "broadcast of broadcast": (
        "broadcast_identities", lambda x: bcast(bcast(x, M23), (4, 2, 3)), (V3,), 2,
        "{ lambda ; a:f64[3]. let "
        "b:f64[4,2,3] = broadcast_in_dim[shape=(4, 2, 3), broadcast_dimensions=(2,)] a in (b,) }"),
    "sum over no axes": ("reduce_sum_identities", lambda x: reduce.reduce_sum(x, ()), (V3,), 1,
                         "{ lambda ; a:f64[3]. let in (a,) }"),
    "sum of a broadcast scalar": (
        "reduce_sum_identities", lambda y: fnp.sum(bcast(y, M23)), ((),), 2,
        "{ lambda ; a:f64[]. let b:f64[] = mul 6.0 a in (b,) }"),
    "select between equal branches": (
        "select_identities", lambda x: logic.select(x > 0.5, x, x), (V3,), 2,
        "{ lambda ; a:f64[3]. let in (a,) }"),
    "select on a known predicate": (
        "select_identities", lambda x: fnp.where(fnp.full(V3, True), x, 2.0 * x), (V3,), 2,
        "{ lambda ; a:f64[3]. let in (a,) }"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_rule_on_a_focused_program(case):
    rule, fun, shapes, n_before, after = CASES[case]
    closed, simple, log = simplified(fun, *shapes)
    assert len(closed.eqns) == n_before, str(closed)
    assert one_line(simple) == after
    assert any(entry.startswith(f"rewrite {rule}:") for entry in log), log


def test_no_op_conversion_is_removed():
    closed = single_eqn_program(shape.convert_element_type_p, ShapedArray(V3, np.float32),
                                new_dtype=np.dtype(np.float32))
    log = []
    simple = fx.simplify(closed, log=log)
    assert one_line(simple) == "{ lambda ; a:f32[3]. let in (a,) }"
    assert log == ["rewrite convert_identity: convert_element_type[new_dtype=float32] a -> a"]
    assert_same_values(closed, simple)


def test_softmax_is_shifted_by_its_max():
    closed, simple, log = simplified(
        lambda x: fnp.exp(x) / fnp.sum(fnp.exp(x), axis=1, keepdims=True), M23)
    assert any(e.startswith("rewrite softmax_stable: div") for e in log), log
    assert [e.prim.name for e in simple.eqns] == [
        "reduce_max", "min", "max", "broadcast_in_dim", "sub", "exp", "reduce_sum",
        "expand_dims", "broadcast_in_dim", "div"]


def test_logsumexp_is_shifted_by_its_max():
    closed, simple, log = simplified(lambda x: fnp.log(fnp.sum(fnp.exp(x), axis=1)), M23)
    assert len(closed.eqns) == 3
    assert [e.prim.name for e in simple.eqns] == [
        "reduce_max", "min", "max", "broadcast_in_dim", "sub", "exp", "reduce_sum", "log", "add"]
    assert log == ["rewrite log_stable: log c -> e = add (max f -1.7976931348623157e+308) (log g)"]


def test_stable_rewrites_reach_a_fixed_point():
    """The shifted forms contain the patterns again; they must not be rewritten twice."""
    for fun in (lambda x: fnp.log(fnp.sum(fnp.exp(x), axis=1)),
                lambda x: fnp.exp(x) / fnp.sum(fnp.exp(x), axis=1, keepdims=True)):
        closed = fx.make_jaxpr(fun)(np.ones(M23))
        once = fx.simplify(closed)
        assert one_line(fx.simplify(once)) == one_line(once)
        assert_same_values(closed, once)
        assert sum(e.prim.name == "reduce_max" for e in once.eqns) == 1


@pytest.mark.parametrize("side", ["left", "right"])
def test_product_with_the_identity_is_a_transpose(side):
    eye = np.eye(3)
    fun = (lambda y: fnp.dot(eye, y)) if side == "left" else (lambda y: fnp.dot(y, eye))
    closed, simple, log = simplified(fun, (3, 2) if side == "left" else (2, 3))
    assert [e.prim.name for e in closed.eqns] == ["dot_general"]
    assert "dot_general" not in one_line(simple)
    assert any(e.startswith("rewrite dot_with_identity:") for e in log), log


def test_every_rule_has_a_focused_case():
    tested = {rule for rule, *_ in CASES.values()} | {"convert_identity", "softmax_stable",
                                                      "dot_with_identity"}
    registered = {rule.__name__ for chain in rules._chains.values() for rule in chain}
    assert registered <= tested, registered - tested


# ---------------------------------------------------------------- simplify_assume_finite

@pytest.fixture
def assume_finite():
    fx.config.update("simplify_assume_finite", True)
    yield
    fx.config.update("simplify_assume_finite", False)


@pytest.mark.parametrize("fun", [lambda x: x * 0.0, lambda x: 0.0 * x, lambda x: x - x],
                         ids=["x*0", "0*x", "x-x"])
def test_zero_rules_keep_inf_and_nan_by_default(fun):
    x = np.array([1.0, np.inf, np.nan])
    closed = fx.make_jaxpr(fun)(x)
    simple = fx.simplify(closed)
    assert len(simple.eqns) == 1 and simple.eqns[0].prim.name in ("mul", "sub")
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(simple(x)[0], [0.0, np.nan, np.nan])
        np.testing.assert_array_equal(simple(x)[0], closed(x)[0])


@pytest.mark.parametrize("fun", [lambda x: x * 0.0, lambda x: 0.0 * x, lambda x: x - x],
                         ids=["x*0", "0*x", "x-x"])
@pytest.mark.parametrize("shape_", [(), V3], ids=["scalar", "array"])
def test_zero_rules_fold_when_assuming_finite(assume_finite, fun, shape_):
    closed = fx.make_jaxpr(fun)(np.ones(shape_))
    log = []
    simple = fx.simplify(closed, log=log)
    assert simple.eqns == [] and simple.out_avals == closed.out_avals
    assert any(e.startswith(("rewrite mul_identities", "rewrite sub_identities")) for e in log)
    np.testing.assert_array_equal(simple(np.full(shape_, 3.0))[0], np.zeros(shape_))
    assert_same_values(closed, simple)


def test_assume_finite_drops_cancelled_terms(assume_finite):
    closed, simple, _ = simplified(lambda x, y: (x + y) - x, V3, V3)
    assert one_line(simple) == "{ lambda ; a:f64[3] b:f64[3]. let in (b,) }"


# ---------------------------------------------------------------- accuracy of stable forms

def naive_and_simplified(fun, x):
    closed = fx.make_jaxpr(fun)(x)
    with np.errstate(all="ignore"):
        return closed(x)[0], fx.simplify(closed)(x)[0]


def rel_err(got, want):
    return np.max(np.abs(got - want) / np.abs(want))


def test_log1p_is_accurate_for_tiny_x():
    x = np.array([1e-17, 1e-12, 3e-9, 0.5])
    naive, simple = naive_and_simplified(lambda x: fnp.log(1.0 + x), x)
    assert naive[0] == 0.0 and rel_err(naive[1:3], np.log1p(x[1:3])) > 1e-8
    assert rel_err(simple, np.log1p(x)) < 1e-15


def test_expm1_is_accurate_for_tiny_x():
    x = np.array([1e-17, -1e-12, 3e-9, 0.5])
    naive, simple = naive_and_simplified(lambda x: fnp.exp(x) - 1.0, x)
    assert naive[0] == 0.0 and rel_err(naive[1:3], np.expm1(x[1:3])) > 1e-8
    assert rel_err(simple, np.expm1(x)) < 1e-15


def test_log_logistic_is_accurate_in_both_tails():
    x = np.array([-800.0, -50.0, 0.0, 40.0, 800.0])
    naive, simple = naive_and_simplified(lambda x: fnp.log(logistic(x)), x)
    want = -np.logaddexp(0.0, -x)          # log σ(x) = -softplus(-x)
    assert naive[0] == -np.inf and naive[3] == 0.0          # underflow; 1 - 4e-18 rounds to 1
    np.testing.assert_allclose(simple, want, rtol=1e-15, atol=0)
    assert simple[3] == pytest.approx(-np.exp(-40.0), rel=1e-12)


def test_logsumexp_does_not_overflow():
    x = np.array([[1000.0, 999.0, 998.0], [-1000.0, -1001.0, -1002.0]])
    naive, simple = naive_and_simplified(lambda x: fnp.log(fnp.sum(fnp.exp(x), axis=1)), x)
    assert naive[0] == np.inf and naive[1] == -np.inf
    m = x.max(axis=1)
    want = m + np.log(np.sum(np.exp(x - m[:, None]), axis=1))
    np.testing.assert_allclose(simple, want, rtol=1e-15)


def test_logsumexp_keeps_infinite_and_empty_cases():
    naive, simple = naive_and_simplified(lambda x: fnp.log(fnp.sum(fnp.exp(x))),
                                         np.array([-np.inf, -np.inf]))
    assert naive == simple == -np.inf
    naive, simple = naive_and_simplified(lambda x: fnp.log(fnp.sum(fnp.exp(x))),
                                         np.array([np.inf, 1.0]))
    assert naive == simple == np.inf
    empty = fx.make_jaxpr(lambda x: fnp.log(fnp.sum(fnp.exp(x))))(np.zeros(0))
    with np.errstate(divide="ignore"):
        assert fx.simplify(empty)(np.zeros(0))[0] == -np.inf   # no max of an empty array


def softmax_reference(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@pytest.mark.parametrize("dtype, big", [(np.float64, 1000.0), (np.float32, 100.0)])
def test_softmax_does_not_overflow(dtype, big):
    x = (big + np.array([[0.0, -1.0, -2.0], [-2.0 * big, -2.0 * big - 3.0, 0.0]])).astype(dtype)
    naive, simple = naive_and_simplified(
        lambda x: fnp.exp(x) / fnp.sum(fnp.exp(x), axis=-1, keepdims=True), x)
    assert np.isnan(naive[0]).all()                  # inf / inf
    assert simple.dtype == dtype
    tol = 1e-15 if dtype == np.float64 else 1e-6
    np.testing.assert_allclose(simple, softmax_reference(x), rtol=tol)
    np.testing.assert_allclose(simple.sum(axis=-1), 1.0, rtol=tol)


def test_softmax_of_a_vector_without_keepdims():
    x = np.array([1000.0, 999.0, 990.0])
    naive, simple = naive_and_simplified(lambda x: fnp.exp(x) / fnp.sum(fnp.exp(x)), x)
    assert np.isnan(naive).all()
    np.testing.assert_allclose(simple, softmax_reference(x), rtol=1e-15)


def test_log_softmax_follows_from_logsumexp():
    x = np.array([[1000.0, 999.0, 990.0], [-1000.0, -1001.0, -1010.0]])
    naive, simple = naive_and_simplified(
        lambda x: x - fnp.log(fnp.sum(fnp.exp(x), axis=1, keepdims=True)), x)
    assert not np.isfinite(naive).any()
    shifted = x - x.max(axis=1, keepdims=True)
    want = shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))
    # x - lse(x) cancels at |x| = 1000: a few ulps of 1000 is the best this form can do
    np.testing.assert_allclose(simple, want, rtol=0, atol=4 * np.spacing(1000.0))


def test_stable_forms_agree_with_naive_ones_on_moderate_inputs():
    x = np.random.default_rng(0).uniform(-3, 3, M23)
    funs = [lambda x: fnp.log(1.0 + x * x), lambda x: fnp.exp(x) - 1.0,
            lambda x: fnp.log(logistic(x)), lambda x: fnp.log(fnp.sum(fnp.exp(x), axis=0)),
            lambda x: fnp.exp(x) / fnp.sum(fnp.exp(x), axis=1, keepdims=True),
            lambda x: x - fnp.log(fnp.sum(fnp.exp(x), axis=1, keepdims=True))]
    for fun in funs:
        naive, simple = naive_and_simplified(fun, x)
        np.testing.assert_allclose(simple, naive, rtol=1e-13, atol=1e-15)


def test_log_logistic_rewrite_keeps_every_derivative_at_zero():
    # log σ'(0) = 1/2, log σ''(0) = -1/4; a min/abs form would give 1 or 0 there
    f = fx.jit(lambda x: fnp.log(logistic(x)))
    assert float(fx.grad(f)(0.0)) == 0.5
    assert float(fx.grad(fx.grad(f))(0.0)) == -0.25
