"""cond and switch: values of every branch against plain Python (eager and jit),
derivatives to order 2 in both modes through operands passed and closed over, grad
under jit, vmap with batched and unbatched predicates against a loop, switch clamping,
cond nested in scan and scan nested in cond, float32, the linear tangent cond that
reverse mode transposes, the native if/elif chain of the kernel, and the errors."""
import numpy as np
import pytest

import fxgrad as fx
import fxgrad.numpy as fnp
from fxgrad.core.errors import ConcretizationError, FxTypeError
from fxgrad.primitives.branch import cond_p
from fxgrad.test_util import check_grads, check_jit

RNG = np.random.default_rng(0)
W = RNG.standard_normal((3, 3)) * 0.5
X3 = RNG.standard_normal(3)
XS = RNG.standard_normal(4)
F32 = np.float32


def _passed(p, x):
    """Both operands passed; the branches use them differently."""
    return fx.cond(p > 0, lambda p, x: fnp.sin(x) * p, lambda p, x: x * x - p, p, x)


def _closed_over(p, x):
    """No operands: both branches close over traced values."""
    return fx.cond(p > 0.5, lambda: p * fnp.sin(x), lambda: fnp.cos(p * x))


def _vector(p, v):
    """Array operands and a closed-over matrix; one branch ignores p."""
    return fx.cond(p < 0, lambda v: fnp.tanh(W @ v) * p, lambda v: fnp.exp(v) / 3.0, v)


def _pytree(p, x):
    """Pytree operands and outputs; an integer output has no tangent."""
    def true_fun(d):
        return {"y": fnp.sin(d["a"]) * d["b"][0], "k": np.int64(1)}

    def false_fun(d):
        return {"y": d["b"][1] * d["a"] ** 3, "k": np.int64(2)}
    return fx.cond(p > 0, true_fun, false_fun, {"a": x, "b": (p, 2.0)})["y"]


def _switch3(p, x):
    """Index 0, 1 or 2 from the sign and size of p; one branch is constant in x."""
    index = fnp.asarray(p > 0).astype(np.int32) + fnp.asarray(p > 1).astype(np.int32)
    return fx.switch(index, [lambda x: x * p, lambda x: fnp.sin(x * p), lambda x: p ** 2], x)


def _cond_in_scan(p, xs):
    def body(c, x):
        c = fx.cond(x > 0, lambda c: fnp.sin(c * x) + p, lambda c: c * p - x, c)
        return c, c * x
    carry, ys = fx.scan(body, 0.3, xs)
    return carry + fnp.sum(ys)


def _scan_in_cond(p, xs):
    def loop(xs):
        return fx.scan(lambda c, x: (fnp.sin(c * x) + p, c), 0.5, xs)[0]
    return fx.cond(p > 0, loop, lambda xs: fnp.sum(xs) * p, xs)


def _ref_passed(p, x):
    return np.sin(x) * p if p > 0 else x * x - p


def _ref_closed_over(p, x):
    return p * np.sin(x) if p > 0.5 else np.cos(p * x)


def _ref_vector(p, v):
    return np.tanh(W @ v) * p if p < 0 else np.exp(v) / 3.0


def _ref_pytree(p, x):
    return np.sin(x) * p if p > 0 else 2.0 * x ** 3


def _ref_switch3(p, x):
    return [x * p, np.sin(x * p), p ** 2 + 0 * x][int(p > 0) + int(p > 1)]


def _ref_cond_in_scan(p, xs):
    c, total = 0.3, 0.0
    for x in xs:
        c = np.sin(c * x) + p if x > 0 else c * p - x
        total += c * x
    return c + total


def _ref_scan_in_cond(p, xs):
    if p <= 0:
        return np.sum(xs) * p
    c = 0.5
    for x in xs:
        c = np.sin(c * x) + p
    return c


# (name, f, reference, args): each function at points taking every branch
CASES = [
    ("passed_true", _passed, _ref_passed, (0.7, 1.3)),
    ("passed_false", _passed, _ref_passed, (-0.4, 1.3)),
    ("closed_over_true", _closed_over, _ref_closed_over, (0.9, 0.6)),
    ("closed_over_false", _closed_over, _ref_closed_over, (0.2, 0.6)),
    ("vector_true", _vector, _ref_vector, (-0.8, X3)),
    ("vector_false", _vector, _ref_vector, (0.8, X3)),
    ("pytree_true", _pytree, _ref_pytree, (0.6, 1.1)),
    ("pytree_false", _pytree, _ref_pytree, (-0.6, 1.1)),
    ("switch_0", _switch3, _ref_switch3, (-0.5, 0.9)),
    ("switch_1", _switch3, _ref_switch3, (0.5, 0.9)),
    ("switch_2", _switch3, _ref_switch3, (1.5, 0.9)),
    ("cond_in_scan", _cond_in_scan, _ref_cond_in_scan, (0.4, XS)),
    ("scan_in_cond_true", _scan_in_cond, _ref_scan_in_cond, (0.4, XS)),
    ("scan_in_cond_false", _scan_in_cond, _ref_scan_in_cond, (-0.4, XS)),
]
IDS = [c[0] for c in CASES]


@pytest.mark.parametrize("name,f,ref,args", CASES, ids=IDS)
def test_values_match_python(name, f, ref, args):
    np.testing.assert_allclose(f(*args), ref(*args), rtol=1e-12)


@pytest.mark.parametrize("name,f,ref,args", CASES, ids=IDS)
def test_jit_matches_eager(name, f, ref, args):
    check_jit(f, args)


@pytest.mark.parametrize("name,f,ref,args", CASES, ids=IDS)
def test_check_grads_order_2(name, f, ref, args):
    check_grads(f, args, order=2, modes=("fwd", "rev"))


@pytest.mark.parametrize("name,f,ref,args", CASES, ids=IDS)
def test_grad_under_jit(name, f, ref, args):
    def loss(p, x):
        return fnp.sum(f(p, x))
    grad = fx.grad(loss, argnums=(0, 1))
    for actual, expected in zip(fx.jit(grad)(*args), grad(*args)):
        np.testing.assert_allclose(actual, expected, rtol=1e-12)


def test_switch_clamps_the_index():
    branches = [lambda x: x - 1.0, lambda x: x * 10.0, lambda x: x + 100.0]
    expected = {-7: 0.0, 0: 0.0, 1: 10.0, 2: 101.0, 9: 101.0}
    for index, value in expected.items():
        assert fx.switch(index, branches, 1.0) == value
        assert fx.jit(lambda i: fx.switch(i, branches, 1.0))(np.int64(index)) == value


def test_int_predicate_is_true_when_nonzero_and_concrete_preds_still_bind_one_cond():
    assert fx.cond(3, lambda: 1.0, lambda: 2.0) == 1.0
    assert fx.cond(np.int32(0), lambda: 1.0, lambda: 2.0) == 2.0
    program = fx.make_jaxpr(lambda x: fx.cond(True, fnp.sin, fnp.cos, x))(0.5).program
    assert [e.prim for e in program.eqns if e.prim is cond_p] == [cond_p]


def test_float32_is_preserved():
    x = np.float32(0.7)
    for p in (F32(1.0), F32(-1.0)):
        out = _passed(p, x)
        assert out.dtype == F32
        assert fx.grad(_passed, argnums=1)(p, x).dtype == F32
        assert fx.jit(_passed)(p, x).dtype == F32


def test_reverse_mode_transposes_one_linear_tangent_cond():
    _, f_vjp = fx.vjp(lambda x: _passed(0.7, x), 1.3)
    lin_program = fx.make_jaxpr(lambda x: fx.linearize(lambda x: _passed(0.7, x), x)[1](x))
    conds = [e for e in lin_program(1.3).program.eqns if e.prim is cond_p]
    assert len(conds) == 2   # the primal cond (outputs + residuals) and the tangent cond
    np.testing.assert_allclose(f_vjp(1.0), np.cos(1.3) * 0.7, rtol=1e-12)


def test_untaken_branch_tangents_are_zeros_not_garbage():
    """A branch ignoring an operand gives it a zero cotangent."""
    np.testing.assert_allclose(fx.jacrev(_vector, argnums=0)(0.8, X3), 0.0)
    np.testing.assert_allclose(fx.grad(_switch3, argnums=1)(1.5, 0.9), 0.0)


# vmap ------------------------------------------------------------------------------

def _loop(f, ps, xs):
    return np.stack([f(p, x) for p, x in zip(ps, xs)])


BATCHED_PRED_CASES = CASES[::2] + [CASES[9], CASES[11]]   # every function


@pytest.mark.parametrize("name,f,ref,args", BATCHED_PRED_CASES,
                         ids=[c[0] for c in BATCHED_PRED_CASES])
def test_vmap_with_batched_predicate_matches_loop(name, f, ref, args):
    p, x = args
    ps = np.array([p, -p, 0.3, 1.7, -2.0])
    xs = np.stack([np.asarray(x) * s for s in (1.0, 0.5, -1.0, 2.0, 0.7)])
    np.testing.assert_allclose(fx.vmap(f)(ps, xs), _loop(f, ps, xs), rtol=1e-12)
    np.testing.assert_allclose(fx.vmap(f, in_axes=(0, None))(ps, x),
                               _loop(f, ps, [x] * 5), rtol=1e-12)
    program = fx.make_jaxpr(fx.vmap(f))(ps, xs).program
    assert cond_p not in [e.prim for e in program.eqns]   # every branch, then select


@pytest.mark.parametrize("name,f,ref,args", CASES, ids=IDS)
def test_vmap_with_unbatched_predicate_matches_loop(name, f, ref, args):
    p, x = args
    xs = np.stack([np.asarray(x) * s for s in (1.0, 0.5, -1.0)])
    out = fx.vmap(f, in_axes=(None, 0))(p, xs)
    np.testing.assert_allclose(out, _loop(f, [p] * 3, xs), rtol=1e-12)
    program = fx.make_jaxpr(fx.vmap(f, in_axes=(None, 0)))(p, xs).program
    assert name == "cond_in_scan" or cond_p in [e.prim for e in program.eqns]   # one cond


def test_vmap_of_grad_and_jit_of_vmap():
    ps, x = np.array([0.7, -0.4, 0.2]), 1.3
    grads = fx.vmap(fx.grad(_passed), in_axes=(0, None))(ps, x)
    np.testing.assert_allclose(grads, [fx.grad(_passed)(p, x) for p in ps], rtol=1e-12)
    batched = fx.vmap(_passed, in_axes=(0, None))
    np.testing.assert_allclose(fx.jit(batched)(ps, x), batched(ps, x), rtol=1e-12)


# jit lowering -----------------------------------------------------------------------

def test_jit_lowers_cond_to_an_if_else_chain():
    text = fx.jit(_switch3).lower(0.5, 0.9).as_text()
    lines = [line.strip() for line in text.splitlines()]
    assert sum(line.startswith("if ") for line in lines) == 1
    assert sum(line.startswith("elif ") for line in lines) == 1
    assert "else:" in lines


def test_jit_copies_an_operand_returned_by_a_branch():
    v = np.arange(3.0)
    out = fx.jit(lambda p, v: fx.cond(p > 0, lambda v: v, lambda v: v * 2.0, v))(1.0, v)
    assert not np.shares_memory(out, v)
    np.testing.assert_array_equal(out, v)


# errors ----------------------------------------------------------------------------

ERRORS = [
    ("mismatched_dtypes", lambda: fx.cond(True, lambda x: x, lambda x: x.astype(F32), 1.0),
     FxTypeError, r"false_fun returns \(f32\[\]\), but true_fun returns \(f64\[\]\)"),
    ("mismatched_shapes", lambda: fx.cond(True, lambda x: x, lambda x: x[:2], X3),
     FxTypeError, r"false_fun returns \(f64\[2\]\), but true_fun returns \(f64\[3\]\)"),
    ("mismatched_structure", lambda: fx.cond(True, lambda x: (x, x), lambda x: x, 1.0),
     FxTypeError, "false_fun returns a structure"),
    ("switch_mismatch", lambda: fx.switch(0, [lambda: 1.0, lambda: X3], ),
     FxTypeError, r"branches\[1\] returns \(f64\[3\]\), but branches\[0\] returns \(f64\[\]\)"),
    ("vector_pred", lambda: fx.cond(X3 > 0, lambda: 1.0, lambda: 2.0),
     FxTypeError, r"cond: pred must be a scalar, got bool\[3\].*fnp.where"),
    ("float_pred", lambda: fx.cond(1.0, lambda: 1.0, lambda: 2.0),
     FxTypeError, "pred must be a bool .* scalar, got float64"),
    ("float_index", lambda: fx.switch(1.0, [lambda: 1.0], ),
     FxTypeError, "switch: index must be an int scalar, got float64"),
    ("not_callable", lambda: fx.cond(True, 1.0, lambda: 2.0),
     FxTypeError, "cond: true_fun must be a function of the operands, got float"),
    ("no_branches", lambda: fx.switch(0, []),
     FxTypeError, "switch: branches must be a non-empty list"),
    ("string_operand", lambda: fx.cond(True, lambda s: 1.0, lambda s: 2.0, "a"),
     FxTypeError, "cond: operand leaf 0 must be an array or number, got str"),
]


@pytest.mark.parametrize("name,call,error,message", ERRORS, ids=[e[0] for e in ERRORS])
def test_errors_name_the_mistake_and_the_user_line(name, call, error, message):
    with pytest.raises(error, match=message) as info:
        call()
    assert "test_branch.py" in str(info.value)


def test_python_if_in_jit_points_to_cond():
    def f(x):
        return x if x > 0 else -x
    with pytest.raises(ConcretizationError, match="fx.cond") as info:
        fx.jit(f)(1.0)
    assert "fnp.where" in str(info.value) and "static_argnums" in str(info.value)
    np.testing.assert_allclose(fx.jit(lambda x: fx.cond(x > 0, lambda: x, lambda: -x))(-2.0), 2.0)


def test_shape_rule_checks_the_index_and_the_operands():
    branch = fx.make_jaxpr(lambda x: fx.cond(True, fnp.sin, fnp.cos, x))(0.5).program
    eqn = next(e for e in branch.eqns if e.prim is cond_p)
    with pytest.raises(FxTypeError, match="branch index must be an integer scalar"):
        cond_p.bind(0.5, 1.0, **eqn.params)
    with pytest.raises(FxTypeError, match="do not match the inputs"):
        cond_p.bind(np.int32(0), X3, **eqn.params)
