"""scan: values against Python loops, derivatives to order 2 in both modes (through
closures, nesting, reverse scans, pytree and float32 carries, grad inside the body),
the seed Jacobian/Hessian-by-scan examples, the split of linearize into a single
tangent scan, printing, the errors for bad bodies and lengths, and jit: every case
(and its derivatives) compiled as one kernel each, against eager evaluation."""
import numpy as np
import pytest

import fxgrad as fx
from fxgrad.core.errors import ConcretizationError, FxTypeError, FxValueError
from fxgrad.primitives.arith import add, mul, sub
from fxgrad.primitives.control import scan_bind, scan_p, trace_body
from fxgrad.primitives.dot import dot_general
from fxgrad.primitives.indexing import gather
from fxgrad.primitives.logic import gt
from fxgrad.primitives.reduce import reduce_sum
from fxgrad.primitives.shape import convert_element_type
from fxgrad.primitives.unary import cos, sin, stop_gradient, tanh
from fxgrad.test_util import check_grads
from fxgrad.tree_util import tree_flatten, tree_leaves

RNG = np.random.default_rng(0)
W = RNG.standard_normal((3, 3)) * 0.5
H0 = RNG.standard_normal(3)
XS = RNG.standard_normal((4, 3))
STEPS = RNG.uniform(0.5, 1.5, 5) * RNG.choice([-1.0, 1.0], 5)


def _matvec(m, v):
    return dot_general(m, v, (((1,), (0,)), ((), ())))


def _cumprod(c, xs):
    return fx.scan(lambda c, x: (mul(c, x), mul(c, x)), c, xs)


def _rnn(w, h0, xs):
    return fx.scan(lambda h, x: (tanh(add(_matvec(w, h), x)),) * 2, h0, xs)


def _closure(a, xs):
    """The body closes over `a`, a traced value of the enclosing transformation."""
    return fx.scan(lambda c, x: (add(mul(c, sin(mul(a, x))), a), mul(c, a)), 0.5, xs)


def _reverse(c, xs):
    return fx.scan(lambda c, x: (mul(sin(c), x), cos(mul(c, x))), c, xs, reverse=True)


def _nested(a, xss):
    """The inner body closes over `a` and over the outer body's carry `c`."""
    def outer(c, xs):
        inner, ys = fx.scan(lambda d, x: (add(mul(d, sin(x)), mul(a, c)), mul(d, x)), c, xs)
        return inner, mul(ys, a)
    return fx.scan(outer, 0.3, xss)


def _pytree(p, xs):
    def body(c, x):
        new = {"a": mul(c["a"], cos(x)), "b": (add(c["b"][0], mul(x, c["a"])), sin(c["b"][1]))}
        return new, (c["a"], {"y": mul(x, c["b"][1])})
    return fx.scan(body, {"a": p, "b": (p, mul(p, p))}, xs)


def _zero_then_live(a, xs):
    """The carry c2 starts with a zero tangent and picks one up from c1 after a step."""
    def body(c, x):
        c1, c2 = c
        return (add(c1, mul(a, x)), add(c2, sin(c1))), c2
    return fx.scan(body, (0.0, 0.0), xs)


def _grad_in_body(a, xs):
    """Each step differentiates a function closing over `a` (an outer traced value)."""
    def body(c, x):
        g = fx.grad(lambda z: mul(mul(z, z), sin(mul(a, z))))(x)
        return add(c, g), g
    return fx.scan(body, 0.0, xs)


# Python-loop references -----------------------------------------------------------

def _loop(step, carry, xs, reverse=False):
    ys = [None] * len(xs)
    for i in (reversed(range(len(xs))) if reverse else range(len(xs))):
        carry, ys[i] = step(carry, xs[i])
    return carry, np.stack(ys)


def _rnn_ref(w, h0, xs):
    return _loop(lambda h, x: (np.tanh(w @ h + x),) * 2, h0, xs)


def _nested_ref(a, xss):
    def outer(c, xs):
        inner, ys = _loop(lambda d, x: (d * np.sin(x) + a * c, d * x), c, xs)
        return inner, ys * a
    return _loop(outer, 0.3, xss)


VALUE_CASES = [
    ("cumprod", _cumprod, lambda c, xs: _loop(lambda c, x: (c * x, c * x), c, xs), (1.3, STEPS)),
    ("rnn", _rnn, _rnn_ref, (W, H0, XS)),
    ("closure", _closure,
     lambda a, xs: _loop(lambda c, x: (c * np.sin(a * x) + a, c * a), 0.5, xs), (0.7, STEPS)),
    ("reverse", _reverse,
     lambda c, xs: _loop(lambda c, x: (np.sin(c) * x, np.cos(c * x)), c, xs, True), (0.4, STEPS)),
    ("nested", _nested, _nested_ref, (0.6, XS)),
]

GRAD_CASES = [(name, f, args) for name, f, _, args in VALUE_CASES] + [
    ("pytree", _pytree, (0.8, STEPS)),
    ("zero_then_live", _zero_then_live, (0.9, STEPS)),
    ("grad_in_body", _grad_in_body, (0.7, STEPS)),
]


def _ids(cases):
    return [c[0] for c in cases]


@pytest.mark.parametrize("name,f,ref,args", VALUE_CASES, ids=_ids(VALUE_CASES))
def test_values_match_python_loop(name, f, ref, args):
    carry, ys = f(*args)
    ref_carry, ref_ys = ref(*args)
    np.testing.assert_allclose(carry, ref_carry, rtol=1e-12)
    np.testing.assert_allclose(ys, ref_ys, rtol=1e-12)


@pytest.mark.parametrize("name,f,args", GRAD_CASES, ids=_ids(GRAD_CASES))
def test_check_grads_order_2(name, f, args):
    check_grads(f, args, order=2, modes=("fwd", "rev"))


def test_pytree_carry_values_and_structure():
    (carry, (ys_a, ys_dict)) = _pytree(0.8, STEPS)
    ref = {"a": 0.8, "b": (0.8, 0.64)}
    for i, x in enumerate(STEPS):
        np.testing.assert_allclose(ys_a[i], ref["a"])
        np.testing.assert_allclose(ys_dict["y"][i], x * ref["b"][1])
        ref = {"a": ref["a"] * np.cos(x), "b": (ref["b"][0] + x * ref["a"], np.sin(ref["b"][1]))}
    assert set(carry) == {"a", "b"} and isinstance(carry["b"], tuple)
    np.testing.assert_allclose(carry["a"], ref["a"])
    np.testing.assert_allclose(carry["b"][1], ref["b"][1])


def test_grad_of_grad_matches_finite_differences():
    f = lambda a: _closure(a, STEPS)[0]
    eps = 1e-5
    numeric = (fx.grad(f)(0.7 + eps) - fx.grad(f)(0.7 - eps)) / (2 * eps)
    np.testing.assert_allclose(fx.grad(fx.grad(f))(0.7), numeric, rtol=1e-6)


def test_float32_carry_is_preserved():
    xs = STEPS.astype(np.float32)
    carry, ys = _reverse(np.float32(0.4), xs)
    assert carry.dtype == np.float32 and ys.dtype == np.float32
    g = fx.grad(lambda c: _reverse(c, xs)[0])(np.float32(0.4))
    assert g.dtype == np.float32
    check_grads(_reverse, (np.float32(0.4), xs), order=2)


def test_jacobian_by_scan_over_grads_of_rows():
    """The seed example: row i of the Jacobian of y = x**2 is grad of y[i]."""
    x = np.array([4.0, 4.0])
    rows = lambda c, i: (c, fx.grad(lambda z: gather(mul(z, z), i, 0))(x))
    _, jac = fx.scan(rows, 0.0, np.arange(2))
    np.testing.assert_array_equal(jac, [[8.0, 0.0], [0.0, 8.0]])


def test_hessian_by_scan_over_grad_rows():
    x = np.array([4.0, 4.0])
    grad_f = fx.grad(lambda z: reduce_sum(mul(z, z), (0,)))
    rows = lambda c, i: (c, fx.grad(lambda z: gather(grad_f(z), i, 0))(x))
    carry, hess = fx.scan(rows, None, np.arange(2))
    assert carry is None
    np.testing.assert_array_equal(hess, [[2.0, 0.0], [0.0, 2.0]])


def test_jacfwd_and_hessian_of_a_scan():
    def f(h0):
        return reduce_sum(_rnn(W, h0, XS)[1], (0, 1))
    eps, e = 1e-5, np.eye(3)
    numeric_grad = np.array([(f(H0 + eps * e[i]) - f(H0 - eps * e[i])) / (2 * eps)
                             for i in range(3)])
    np.testing.assert_allclose(fx.jacfwd(f)(H0), numeric_grad, rtol=1e-6)
    numeric_hess = np.stack([(fx.grad(f)(H0 + eps * e[i]) - fx.grad(f)(H0 - eps * e[i]))
                             / (2 * eps) for i in range(3)])
    hess = fx.hessian(f)(H0)
    np.testing.assert_allclose(hess, numeric_hess, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(hess, hess.T, atol=1e-12)


def test_linearize_stages_out_one_tangent_scan():
    _, f_jvp = fx.linearize(lambda a: _closure(a, STEPS), 0.7)
    program = fx.make_jaxpr(f_jvp)(1.0).program
    assert [e.prim for e in program.eqns] == [scan_p]
    assert program.eqns[0].params["num_carry"] == 1


def test_zero_tangents_stay_symbolic():
    """A body whose outputs do not depend on the differentiated input: no tangent scan."""
    f = lambda a: fx.scan(lambda c, x: (add(c, stop_gradient(mul(a, x))), c), 0.0, STEPS)
    _, (t_carry, t_ys) = fx.jvp(f, (0.5,), (1.0,))
    np.testing.assert_array_equal(t_carry, 0.0)
    np.testing.assert_array_equal(t_ys, np.zeros(5))
    _, f_jvp = fx.linearize(f, 0.5)
    assert not fx.make_jaxpr(f_jvp)(1.0).program.eqns


def test_identity_body_and_integer_xs():
    body = lambda c, x: (c, (c, x))
    carry, (cs, ks) = fx.scan(body, 2.0, np.arange(3))
    np.testing.assert_array_equal(cs, [2.0, 2.0, 2.0])
    np.testing.assert_array_equal(ks, [0, 1, 2])
    assert ks.dtype == np.arange(3).dtype
    assert fx.grad(lambda c: reduce_sum(fx.scan(body, c, np.arange(3))[1][0], (0,)))(2.0) == 3.0


def test_no_xs_and_empty_scan():
    carry, ys = fx.scan(lambda c, _: (mul(c, 2.0), None), 1.0, None, length=3)
    assert carry == 8.0 and ys is None
    carry, ys = fx.scan(lambda c, x: (add(c, x), sub(c, x)), 1.0, np.zeros(0))
    assert carry == 1.0 and ys.shape == (0,)
    g = fx.grad(lambda a: fx.scan(lambda c, x: (mul(c, a), x), 1.0, np.zeros(0))[0])(2.0)
    assert g == 0.0


def test_program_prints_the_body():
    text = str(fx.make_jaxpr(lambda a, xs: _closure(a, xs))(0.7, STEPS))
    assert "scan[program={ lambda ; " in text
    assert "num_consts=1, num_carry=1, length=5, reverse=False" in text
    assert "sin" in text


# Errors ----------------------------------------------------------------------------

def _to_f64(c, x):
    return convert_element_type(c, np.float64), x


ERROR_CASES = [
    ("dtype_change", lambda: fx.scan(_to_f64, np.float32(1), np.ones(3, np.float32)),
     FxTypeError, r"carry leaf 0 went in as f32\[\] but f returned it as f64\[\].*astype"),
    ("shape_change", lambda: fx.scan(lambda c, x: (x, x), 1.0, np.ones((3, 2))),
     FxTypeError, r"went in as f64\[\] but f returned it as f64\[2\]"),
    ("structure_change", lambda: fx.scan(lambda c, x: ((c, c), x), 1.0, np.ones(3)),
     FxTypeError, r"carry with structure tuple\(\*, \*\).*initial carry has structure \*"),
    ("not_a_pair", lambda: fx.scan(lambda c, x: c, 1.0, np.ones(3)),
     FxTypeError, r"f must return a pair \(new_carry, y\)"),
    ("xs_lengths_differ", lambda: fx.scan(lambda c, x: (c, x), 1.0, (np.ones(3), np.ones(4))),
     FxValueError, r"xs leaf 1 has shape \(4,\).*scan length 3"),
    ("length_mismatch", lambda: fx.scan(lambda c, x: (c, x), 1.0, np.ones(3), length=4),
     FxValueError, r"xs leaf 0 has shape \(3,\).*scan length 4"),
    ("no_length", lambda: fx.scan(lambda c, x: (c, x), 1.0, None),
     FxValueError, r"pass length="),
    ("scalar_xs", lambda: fx.scan(lambda c, x: (c, x), 1.0, 2.0),
     FxValueError, r"xs leaf 0 is a scalar"),
    ("bad_length", lambda: fx.scan(lambda c, x: (c, x), 1.0, None, length=-1),
     FxValueError, r"length must be a non-negative int"),
    ("not_callable", lambda: fx.scan(3, 1.0, np.ones(3)),
     FxTypeError, r"f must be a function \(carry, x\) -> \(carry, y\), got int"),
    ("python_if_in_body", lambda: fx.scan(lambda c, x: (c if gt(x, 0.0) else x, c), 1.0, STEPS),
     ConcretizationError, r"Python `if`.*abstract traced value f64\[\].*scan body"),
    ("bad_init", lambda: fx.scan(lambda c, x: (c, x), "a", np.ones(3)),
     FxTypeError, r"init leaf 0 must be an array or number, got str"),
]


@pytest.mark.parametrize("name,call,error,message", ERROR_CASES, ids=_ids(ERROR_CASES))
def test_errors_name_the_problem_and_the_user_line(name, call, error, message):
    with pytest.raises(error, match=message) as info:
        call()
    assert "test_control_flow.py" in str(info.value)


def test_primitive_shape_rule_checks_operands_against_the_body():
    body, _ = trace_body(lambda c, x: [add(c, x), c], [fx.ShapedArray((), np.float64)] * 2)
    np.testing.assert_allclose(scan_bind([], [1.0], [STEPS], body, 5, False)[0], 1.0 + STEPS.sum())
    with pytest.raises(FxTypeError, match=r"scan: xs operand 0 has shape \(5,\).*length 4"):
        scan_bind([], [1.0], [STEPS], body, 4, False)
    with pytest.raises(FxTypeError, match=r"scan: operands \[f32\[\], f64\[\]\].*inputs"):
        scan_bind([], [np.float32(1.0)], [STEPS], body, 5, False)


# jit -------------------------------------------------------------------------------
# Each distinct program costs a numba compilation, so every table is jitted as ONE
# function returning all its cases' outputs; a mismatch names the case.

F32 = np.float32


def _swap(a, b, xs):
    """Carries exchanged each step: they must be rebound simultaneously."""
    return fx.scan(lambda c, x: ((c[1], add(c[0], x)), c[0]), (a, b), xs)


JIT_CASES = [(name, f, args) for name, f, args in GRAD_CASES] + [
    ("reverse_rnn", lambda w, h, xs: fx.scan(
        lambda h, x: (tanh(add(_matvec(w, h), x)), sin(h)), h, xs, reverse=True), (W, H0, XS)),
    ("swap", _swap, (0.1, 0.2, STEPS)),
    ("array_carry_unchanged", lambda h, xs: fx.scan(lambda c, x: (c, add(c, x)), h, xs),
     (H0, XS)),
    ("xs_row_as_carry", lambda h, xs: fx.scan(lambda c, x: (x, c), h, xs), (H0, XS)),
    ("no_xs", lambda c: fx.scan(lambda c, _: (mul(c, 2.0), None), c, None, length=3), (1.5,)),
    ("integer_xs", lambda c, ks: fx.scan(lambda c, x: (c, (c, x)), c, ks), (2.0, np.arange(3))),
    ("integer_carry", lambda n, xs: fx.scan(lambda c, x: (add(c, x), mul(c, 3)), n, xs),
     (np.int64(2), np.arange(4))),
    ("length_0", lambda c, xs: fx.scan(lambda c, x: (add(c, x), sub(c, x)), c, xs),
     (1.0, np.zeros(0))),
    ("length_0_array", _rnn, (W, H0, np.zeros((0, 3)))),
    ("size_0_carry", lambda h, xs: fx.scan(lambda c, x: (add(c, x), mul(c, x)), h, xs),
     (np.zeros(0), np.ones((3, 0)))),
]

# numba's float32 math may round differently from numpy's by an ulp.
FLOAT32_CASES = [
    ("float32_reverse", _reverse, (F32(0.4), STEPS.astype(F32))),
    ("float32_rnn", _rnn, (W.astype(F32), H0.astype(F32), XS.astype(F32))),
    ("float32_literal_carry", lambda c, xs: fx.scan(lambda c, x: (F32(2.0), mul(c, x)), c, xs),
     (F32(0.5), STEPS.astype(F32))),
]


def _batched(cases):
    """One function of all the cases' arguments returning {case name: outputs}."""
    def f(all_args):
        return {name: fn(*all_args[name]) for name, fn, _ in cases}
    return f, {name: args for name, _, args in cases}


def _check_batched_jit(cases, rtol=1e-12, atol=1e-14):
    f, all_args = _batched(cases)
    expected, actual = f(all_args), fx.jit(f)(all_args)
    inputs = [a for a in tree_leaves(all_args) if isinstance(a, np.ndarray)]
    for name, _, _ in cases:
        e_leaves, e_tree = tree_flatten(expected[name])
        a_leaves, a_tree = tree_flatten(actual[name])
        assert a_tree == e_tree, f"{name}: jit returned {a_tree}, eager {e_tree}"
        for i, (a, e) in enumerate(zip(a_leaves, e_leaves)):
            e = np.asarray(e)
            assert (a.dtype, a.shape) == (e.dtype, e.shape), \
                f"{name} output {i}: jit {a.dtype}{a.shape}, eager {e.dtype}{e.shape}"
            np.testing.assert_allclose(a, e, rtol=rtol, atol=atol, err_msg=f"{name} output {i}")
            assert not any(np.shares_memory(a, x) for x in inputs), f"{name}: aliases an input"


def _sum_all(tree):
    total = 0.0
    for leaf in tree_leaves(tree):
        total = add(total, reduce_sum(leaf, tuple(range(np.ndim(leaf)))) if np.ndim(leaf) else leaf)
    return total


def _grad_case(name, f, args):
    """d(sum of every output)/d(first argument), a function of all the arguments."""
    return (f"grad_{name}",
            lambda a, *rest: fx.grad(lambda a: _sum_all(f(a, *rest)))(a), args)


def test_jit_matches_eager_on_every_case():
    _check_batched_jit(JIT_CASES)


def test_jit_keeps_float32_end_to_end():
    _check_batched_jit(FLOAT32_CASES + [_grad_case(*case) for case in FLOAT32_CASES[:2]],
                       rtol=1e-5, atol=1e-6)


def _rnn_loss(h0):
    return reduce_sum(_rnn(W, h0, XS)[1], (0, 1))


DERIVATIVE_CASES = [_grad_case(*case) for case in GRAD_CASES] + [
    ("jvp_closure", lambda a: fx.jvp(lambda a: _closure(a, STEPS), (a,), (1.0,)), (0.7,)),
    ("jacfwd_rnn", fx.jacfwd(_rnn_loss), (H0,)),
    ("hessian_rnn", fx.hessian(_rnn_loss), (H0,)),
]


def test_jit_of_derivatives_of_scans():
    _check_batched_jit(DERIVATIVE_CASES, rtol=1e-10)


def test_grad_of_jitted_scan_differentiates_the_same_program():
    for name, f, args in GRAD_CASES:
        def loss(a, *rest, f=f):
            return _sum_all(f(a, *rest))
        np.testing.assert_allclose(fx.grad(fx.jit(loss))(*args), fx.grad(loss)(*args),
                                   rtol=1e-12, err_msg=name)


def _scan_loops(text):
    """The `for` lines of the kernel's scan loops (their variables are named it<n>;
    fused elementwise loops are named differently)."""
    return [line for line in text.splitlines() if line.lstrip().startswith("for it")]


def test_jit_lowers_a_scan_to_one_native_loop_without_allocations():
    text = fx.jit(_cumprod).lower(1.3, STEPS).as_text()
    assert [line.lstrip() for line in text.splitlines() if " in range(" in line] \
        == [_scan_loops(text)[0].lstrip()]
    assert _scan_loops(text)[0].endswith(" in range(5):")
    body = text.split("range(5):")[1].split("return")[0]
    assert "np.empty((5,)" in text and "np.empty" not in body and "np.copy" not in body
    reverse = _scan_loops(fx.jit(_reverse).lower(0.4, STEPS).as_text())
    assert len(reverse) == 1 and reverse[0].endswith(" in range(4, -1, -1):")


def test_jit_lowers_nested_scans_to_nested_loops():
    outer, inner = _scan_loops(fx.jit(_nested).lower(0.6, XS).as_text())
    assert outer.endswith(" in range(4):") and inner.endswith(" in range(3):")
    assert len(inner) - len(inner.lstrip()) > len(outer) - len(outer.lstrip())


# vmap ------------------------------------------------------------------------------
# A batched scan is ONE scan over batched values; every case is compared with a Python
# loop over the examples, batching each operand alone and all of them together, along
# the leading axis and along the last one.

B = 3


def _batch_of(x, axis, seed):
    """B perturbed copies of `x` stacked along `axis` (integer arrays: shifted copies)."""
    x = np.asarray(x)
    rng = np.random.default_rng(seed)
    if x.dtype.kind in "iu":
        copies = [x + k for k in range(B)]
    else:
        copies = [x + (0.1 * k * rng.standard_normal(x.shape)).astype(x.dtype) for k in range(B)]
    return np.stack(copies, axis=axis)


def _examples(batched, in_axes):
    return [[x if a is None else np.take(x, k, axis=a) for x, a in zip(batched, in_axes)]
            for k in range(B)]


def _assert_matches_loop(f, args, in_axes, rtol=1e-12):
    batched = [a if ax is None else _batch_of(a, ax, i) for i, (a, ax) in enumerate(zip(args, in_axes))]
    out = fx.vmap(f, in_axes=tuple(in_axes))(*batched)
    per_example = [f(*ex) for ex in _examples(batched, in_axes)]
    out_leaves, out_tree = tree_flatten(out)
    assert out_tree == tree_flatten(per_example[0])[1]
    for i, leaf in enumerate(out_leaves):
        expected = np.stack([tree_leaves(p)[i] for p in per_example])
        assert leaf.dtype == expected.dtype, f"output {i}: {leaf.dtype} != {expected.dtype}"
        np.testing.assert_allclose(leaf, expected, rtol=rtol, atol=1e-14, err_msg=f"output {i}")


def _in_axes_patterns(args):
    """Each operand alone at 0, all at 0, all at the last axis."""
    n = len(args)
    alone = [tuple(0 if j == i else None for j in range(n)) for i in range(n)]
    return [*alone, (0,) * n, (-1,) * n] if n > 1 else [(0,), (-1,)]


VMAP_CASES = GRAD_CASES + [
    ("swap", _swap, (0.1, 0.2, STEPS)),
    ("integer_xs", lambda c, ks: fx.scan(lambda c, x: (c, (c, x)), c, ks), (2.0, np.arange(3))),
    ("integer_carry", lambda n, xs: fx.scan(lambda c, x: (add(c, x), mul(c, 3)), n, xs),
     (np.int64(2), np.arange(4))),
    ("length_0", _rnn, (W, H0, np.zeros((0, 3)))),
    ("float32_rnn", _rnn, (W.astype(F32), H0.astype(F32), XS.astype(F32))),
]
VMAP_PARAMS = [(f"{name}-{axes}", f, args, axes) for name, f, args in VMAP_CASES
               for axes in _in_axes_patterns(args)]


@pytest.mark.parametrize("name,f,args,in_axes", VMAP_PARAMS, ids=[p[0] for p in VMAP_PARAMS])
def test_vmap_of_scan_matches_loop(name, f, args, in_axes):
    _assert_matches_loop(f, args, in_axes, rtol=1e-5 if "float32" in name else 1e-12)


def _top_level_scans(f, *args):
    return [e for e in fx.make_jaxpr(f)(*args).program.eqns if e.prim is scan_p]


def test_vmap_binds_one_scan_with_the_same_carries():
    xs = _batch_of(XS, 0, 1)
    [eqn] = _top_level_scans(fx.vmap(_rnn, in_axes=(None, None, 0)), W, H0, xs)
    assert eqn.params["num_carry"] == 1 and eqn.params["length"] == 4
    [carry_aval] = eqn.params["program"].out_avals[:1]
    assert carry_aval.shape == (B, 3)   # the unbatched h0 became a batched carry


def _counter_and_state(n, s, xs):
    """A counter carry that never meets a batched value, a state carry that does."""
    return fx.scan(lambda c, x: ((add(c[0], 1.0), mul(c[1], x)), (c[0], mul(x, 2.0))), (n, s), xs)


def test_carries_untouched_by_the_batch_stay_unbatched():
    xs = _batch_of(STEPS, 0, 2)
    batched = fx.vmap(_counter_and_state, in_axes=(None, None, 0), out_axes=((None, 0), (None, 0)))
    (count, state), (counts, doubled) = batched(0.0, 1.5, xs)
    assert count == 5.0 and counts.shape == (5,)
    np.testing.assert_allclose(state, 1.5 * np.prod(xs, axis=1), rtol=1e-12)
    np.testing.assert_allclose(doubled, 2 * xs, rtol=1e-12)


def test_a_carry_batched_only_after_two_steps_of_dependence():
    """c3 meets the batch through c2, which meets it through c1 (a fixed point of 3 rounds)."""
    def chain(a, xs):
        body = lambda c, x: ((mul(a, x), add(c[1], c[0]), sin(c[1])), c[2])
        return fx.scan(body, (0.0, 0.0, 0.0), xs)
    _assert_matches_loop(chain, (0.7, STEPS), (0, None))
    [eqn] = _top_level_scans(fx.vmap(chain, in_axes=(0, None)), np.ones(B), STEPS)
    assert [a.shape for a in eqn.params["program"].out_avals] == [(B,)] * 4


def _rnn_sum(w, h0, xs):
    return _sum_all(_rnn(w, h0, xs))


def test_grad_of_vmap_and_vmap_of_grad_of_a_scan():
    hs = _batch_of(H0, 0, 3)
    per_example = np.stack([fx.grad(_rnn_sum)(W, h, XS) for h in hs])
    vmapped_grads = fx.vmap(fx.grad(_rnn_sum), in_axes=(None, 0, None))(W, hs, XS)
    np.testing.assert_allclose(vmapped_grads, per_example, rtol=1e-12)
    summed = lambda w: _sum_all(fx.vmap(_rnn, in_axes=(None, 0, None))(w, hs, XS))
    np.testing.assert_allclose(fx.grad(summed)(W), per_example.sum(0), rtol=1e-12)
    check_grads(lambda w, hs: fx.vmap(_rnn, in_axes=(None, 0, None))(w, hs, XS), (W, hs),
                order=2, modes=("fwd", "rev"))


def test_vmap_closing_over_an_outer_traced_value():
    xs = _batch_of(STEPS, 0, 4)
    f = lambda a: _sum_all(fx.vmap(lambda xs: _closure(a, xs))(xs))
    np.testing.assert_allclose(fx.grad(f)(0.7), sum(fx.grad(lambda a: _sum_all(_closure(a, x)))(0.7)
                                                    for x in xs), rtol=1e-12)


def test_jvp_of_vmap_of_a_scan():
    hs, dhs = _batch_of(H0, 0, 5), _batch_of(H0, 0, 6)
    _, t = fx.jvp(lambda hs: fx.vmap(_rnn, in_axes=(None, 0, None))(W, hs, XS), (hs,), (dhs,))
    for k in range(B):
        _, t_k = fx.jvp(lambda h: _rnn(W, h, XS), (hs[k],), (dhs[k],))
        for a, e in zip(tree_leaves(t), tree_leaves(t_k)):
            np.testing.assert_allclose(a[k], e, rtol=1e-12)


def test_vmap_of_vmap_and_scan_of_vmap():
    xs = np.stack([_batch_of(XS, 0, 7), _batch_of(XS, 0, 8)])   # (2, B, 4, 3)
    out = fx.vmap(fx.vmap(_rnn, in_axes=(None, None, 0)), in_axes=(None, None, 0))(W, H0, xs)
    for i in range(2):
        for k in range(B):
            np.testing.assert_allclose(out[1][i, k], _rnn(W, H0, xs[i, k])[1], rtol=1e-12)
    mapped_sin = fx.vmap(lambda u, c: sin(mul(u, c)), in_axes=(0, None))
    carry, ys = fx.scan(lambda c, x: (add(c, reduce_sum(mapped_sin(x, c), (0,))), c), 0.5, XS)
    ref_carry, ref_ys = _loop(lambda c, x: (c + np.sin(x * c).sum(), c), 0.5, XS)
    np.testing.assert_allclose(carry, ref_carry, rtol=1e-12)
    np.testing.assert_allclose(ys, ref_ys, rtol=1e-12)


def test_vmap_of_jacfwd_and_hessian_of_a_scan():
    hs = _batch_of(H0, 0, 9)
    loss = lambda h: _rnn_sum(W, h, XS)
    for transform in (fx.jacfwd, fx.jacrev, fx.hessian):
        expected = np.stack([transform(loss)(h) for h in hs])
        np.testing.assert_allclose(fx.vmap(transform(loss))(hs), expected, rtol=1e-10,
                                   atol=1e-12, err_msg=transform.__name__)


def test_jit_of_vmapped_scans():
    xs, hs, steps = _batch_of(XS, 0, 10), _batch_of(H0, 0, 11), _batch_of(STEPS, 1, 12)
    cases = [
        ("vmap_rnn", fx.vmap(_rnn, in_axes=(None, 0, 0)), (W, hs, xs)),
        ("vmap_nested", fx.vmap(_nested, in_axes=(None, 0)), (0.6, _batch_of(XS, 0, 13))),
        ("vmap_reverse_last_axis", fx.vmap(_reverse, in_axes=(None, 1)), (0.4, steps)),
        ("vmap_grad", fx.vmap(fx.grad(_rnn_sum), in_axes=(None, 0, None)), (W, hs, XS)),
        ("grad_vmap", fx.grad(lambda w, hs: _sum_all(fx.vmap(_rnn, in_axes=(None, 0, None))(
            w, hs, XS))), (W, hs)),
    ]
    _check_batched_jit(cases, rtol=1e-10)
