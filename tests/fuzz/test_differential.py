"""Differential tests on random programs (tests/fuzz/programs.py).

For each program and inputs: eager evaluation == its traced program == the simplified
program == `jit` (several programs, with their JVPs and gradients, share one kernel);
JVPs against central differences and VJPs by the dot-product test, to second order
(`check_grads`); Hessians forward-over-forward, forward-over-reverse (`hessian`, `hvp`)
and reverse-over-forward agree; `vmap` (of the program and of its gradient) agrees with
a loop; Taylor mode (`fx.jet`, order 3) agrees with nested `jvp` along the same path. The default run has a fixed budget (derandomized, so CI sees the same programs
and a warm numba cache); the `slow` versions draw 10x as many, at random: hypothesis
prints the falsifying program and a `@reproduce_failure` blob. The counts are printed
in the terminal summary (conftest.py).
"""
import numpy as np
from hypothesis import HealthCheck, Phase, assume, given, note, settings
from hypothesis import strategies as st
import pytest

import fxgrad as fx
import fxgrad.numpy as fnp
from fxgrad import test_util
from fxgrad.test_util import check_grads

from .programs import COUNTS, KINK_MARGIN, kink_margin, programs, programs_and_inputs, inputs

FAST = settings(max_examples=150, deadline=None, derandomize=True, database=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SLOW = settings(FAST, max_examples=1500, derandomize=False)
NO_SHRINK = [Phase.explicit, Phase.reuse, Phase.generate]   # a shrink step compiles a kernel
RTOL = 1e-12


def assert_close(actual, expected, what, rtol=RTOL):
    """Same structure, shapes and dtypes; values to `rtol`, relative to the largest entry."""
    assert len(actual) == len(expected), what
    for k, (a, e) in enumerate(zip(actual, expected)):
        a, e = np.asarray(a), np.asarray(e)
        assert (a.shape, a.dtype) == (e.shape, e.dtype), f"{what}, output {k}"
        scale = np.max(np.abs(e), initial=1.0)
        np.testing.assert_allclose(a, e, rtol=rtol, atol=rtol * scale, equal_nan=True,
                                   err_msg=f"{what}, output {k}")


def evaluate(program, args):
    """The eager outputs; rejects inputs that overflow (rare: the ops keep values bounded)."""
    note(repr(program))
    with np.errstate(all="ignore"):
        out = program(*args)
    assume(all(np.all(np.isfinite(o)) and np.max(np.abs(o), initial=0) < 1e6 for o in out))
    note(str(fx.make_jaxpr(program)(*args)))
    return out


# ---------------------------------------------------------------- values

def check_traced_and_simplified(program, args):
    expected = evaluate(program, args)
    closed = fx.make_jaxpr(program)(*args)
    assert_close(closed(*args), expected, "traced program vs eager")
    assert_close(fx.simplify(closed)(*args), expected, "simplified program vs eager")
    COUNTS["traced and simplified"] += 1


@FAST
@given(programs_and_inputs())
def test_traced_and_simplified_programs_agree_with_eager(case):
    check_traced_and_simplified(*case)


@pytest.mark.slow
@SLOW
@given(programs_and_inputs())
def test_traced_and_simplified_programs_agree_with_eager_slow(case):
    check_traced_and_simplified(*case)


def _weights(shape):
    return 0.5 + np.cos(np.arange(int(np.prod(shape)))).reshape(shape)


def loss(program, *xs):
    """A scalar of every output, weighted so that cotangents are not uniform fills."""
    return sum(fnp.sum(out * _weights(np.shape(out))) for out in program(*xs))


def _derivatives(program, tangents):
    """The program's outputs, its JVP along `tangents` and its gradient (where the modes apply)."""
    def outs(*xs):
        jvp_out = fx.jvp(program, xs, tangents)[1] if "fwd" in program.modes else ()
        grad_out = fx.grad(lambda *v: loss(program, *v), tuple(range(len(xs))))(*xs) \
            if "rev" in program.modes else ()
        return program(*xs), jvp_out, grad_out
    return outs


def check_jit(cases, seed):
    """One kernel for several programs, their JVPs and gradients."""
    rng = np.random.default_rng(seed)
    funs = [_derivatives(p, tuple(rng.standard_normal(np.shape(a)) for a in args)) for p, args in cases]
    argss = [args for _, args in cases]
    for p, args in cases:
        evaluate(p, args)
    expected = [f(*args) for f, args in zip(funs, argss)]
    actual = fx.jit(lambda argss: [f(*args) for f, args in zip(funs, argss)])(argss)
    for k, (a, e) in enumerate(zip(actual, expected)):
        for what, a_part, e_part in zip(["outputs", "jvp", "gradient"], a, e):
            assert_close(a_part, e_part, f"jit vs eager: program {k}, {what}", rtol=1e-10)
    COUNTS["jitted (with jvp and grad)"] += len(cases)


@settings(FAST, max_examples=10, phases=NO_SHRINK)
@given(st.lists(programs_and_inputs(), min_size=4, max_size=4), st.integers(0, 2 ** 16))
def test_jit_agrees_with_eager(cases, seed):
    check_jit(cases, seed)


@pytest.mark.slow
@settings(SLOW, max_examples=400, phases=NO_SHRINK)
@given(st.lists(programs_and_inputs(), min_size=1, max_size=1), st.integers(0, 2 ** 16))
def test_jit_agrees_with_eager_slow(cases, seed):
    check_jit(cases, seed)


# ---------------------------------------------------------------- derivatives

def _counted_check_grads(program, args, modes):
    """check_grads, counting its individual checks (jvp vs differences, vjp dot products)."""
    originals = test_util.check_jvp, test_util.check_vjp

    def counting(check):
        def run(*a, **k):
            check(*a, **k)
            COUNTS["derivative checks"] += 1
        return run
    test_util.check_jvp, test_util.check_vjp = map(counting, originals)
    try:
        check_grads(program, args, order=2, modes=modes)
    finally:
        test_util.check_jvp, test_util.check_vjp = originals


def _flat_loss(program, args):
    """(v0, g) with g(v) = loss at the inputs packed into the vector v."""
    sizes = [int(np.size(a)) for a in args]
    ends = np.cumsum(sizes)

    def g(v):
        return loss(program, *[fnp.reshape(v[e - n:e], np.shape(a))
                               for n, e, a in zip(sizes, ends, args)])
    return np.concatenate([np.ravel(a) for a in args]), g


def check_hessians(program, args, seed):
    """Second derivatives by every composition of modes agree."""
    v0, g = _flat_loss(program, args)
    t = np.random.default_rng(seed).standard_normal(v0.shape)
    found = {}
    if "fwd" in program.modes:
        h = fx.jacfwd(fx.jacfwd(g))(v0)
        tht = fx.jvp(lambda v: fx.jvp(g, (v,), (t,))[1], (v0,), (t,))[1]
        found["t'Ht, jvp of jvp vs jacfwd(jacfwd)"] = (np.asarray(tht)[None], (t @ h @ t)[None])
    if "rev" in program.modes:
        h = fx.hessian(g)(v0)
        found["hessian (fwd-over-rev) vs jacrev(jacrev)"] = (h, fx.jacrev(fx.jacrev(g))(v0))
        found["hessian symmetric"] = (h, h.T)
        found["hvp (fwd-over-rev)"] = (fx.hvp(g, (v0,), (t,)), h @ t)
    if program.modes == ("fwd", "rev"):
        found["hessian vs jacfwd(jacfwd)"] = (h, fx.jacfwd(fx.jacfwd(g))(v0))
        found["grad of jvp (rev-over-fwd)"] = (fx.grad(lambda v: fx.jvp(g, (v,), (t,))[1])(v0), h @ t)
    for what, (a, e) in found.items():
        assert_close([a], [e], what, rtol=1e-8)
        COUNTS["derivative checks"] += 1


def check_derivatives(program, args, seed):
    evaluate(program, args)
    if not program.modes:   # a while loop (forward only) and a custom_vjp (reverse only)
        COUNTS["differentiated (skipped: no mode applies)"] += 1
        return
    if kink_margin(program, args) < KINK_MARGIN:
        COUNTS["differentiated (skipped: near a kink)"] += 1
        return
    _counted_check_grads(program, args, program.modes)
    check_hessians(program, args, seed)
    COUNTS["differentiated"] += 1


@FAST
@given(programs_and_inputs(), st.integers(0, 2 ** 16))
def test_derivatives_agree_with_differences_and_each_other(case, seed):
    check_derivatives(*case, seed)


@pytest.mark.slow
@SLOW
@given(programs_and_inputs(), st.integers(0, 2 ** 16))
def test_derivatives_agree_with_differences_and_each_other_slow(case, seed):
    check_derivatives(*case, seed)


# ---------------------------------------------------------------- vmap

@st.composite
def batched_cases(draw):
    """(program, in_axes, examples): 3 examples, the unmapped inputs shared."""
    program = draw(programs())
    ranks = [len(s) for s in program.in_shapes]
    axes = [draw(st.one_of(st.none(), st.integers(-r - 1, r))) for r in ranks]
    if all(a is None for a in axes):
        axes[0] = 0
    examples = [draw(inputs(program.in_shapes)) for _ in range(3)]
    shared = examples[0]
    examples = [tuple(x if a is not None else s for x, s, a in zip(ex, shared, axes)) for ex in examples]
    return program, tuple(axes), examples


def _batched(fun, in_axes, examples):
    batched = [np.stack([ex[i] for ex in examples], a) if a is not None else examples[0][i]
               for i, a in enumerate(in_axes)]
    out = fx.vmap(fun, in_axes=in_axes)(*batched)
    expected = [np.stack(parts) for parts in zip(*[fun(*ex) for ex in examples])]
    return out, expected


def check_vmap(program, in_axes, examples):
    for ex in examples:
        evaluate(program, ex)
    note(f"in_axes={in_axes}")
    out, expected = _batched(program, in_axes, examples)
    assert_close(out, expected, "vmap vs loop")
    if "rev" in program.modes:
        grads = fx.grad(lambda *xs: loss(program, *xs), tuple(range(len(in_axes))))
        assert_close(*_batched(grads, in_axes, examples), "vmap of grad vs loop", rtol=1e-10)
    COUNTS["vmapped (with grad)"] += 1


@FAST
@given(batched_cases())
def test_vmap_agrees_with_a_loop(case):
    check_vmap(*case)


@pytest.mark.slow
@SLOW
@given(batched_cases())
def test_vmap_agrees_with_a_loop_slow(case):
    check_vmap(*case)


# ---------------------------------------------------------------- Taylor mode

def _path_derivatives(program, args, series):
    """d^k/dt^k of the program along x + v_1 t + v_2 t^2/2 + ..., by nesting jvp in t."""
    def along(t):
        return program(*[x + sum(v * t ** k / np.prod(np.arange(1, k + 1)) for k, v in
                                 enumerate(vs, 1)) for x, vs in zip(args, series)])
    derivs, g = [], along
    for _ in range(len(series[0])):
        g = (lambda h: lambda t: fx.jvp(h, (t,), (1.0,))[1])(g)
        derivs.append(g(0.0))
    return derivs


def check_jet(program, args, seed):
    """fx.jet of order 3 along a random polynomial path == nested jvp along that path."""
    evaluate(program, args)
    if "fwd" not in program.modes or kink_margin(program, args) < KINK_MARGIN:
        COUNTS["Taylor mode (skipped: reverse-only or near a kink)"] += 1
        return
    rng = np.random.default_rng(seed)
    series = tuple([0.1 * rng.standard_normal(np.shape(x)) for _ in range(3)] for x in args)
    _, terms = fx.jet(program, args, series)
    for k, (got, want) in enumerate(zip(zip(*terms), _path_derivatives(program, args, series)), 1):
        assert_close(got, want, f"jet vs nested jvp, order {k}", rtol=1e-8)
        COUNTS["derivative checks"] += 1
    COUNTS["Taylor mode (jet)"] += 1


@settings(FAST, max_examples=60)
@given(programs_and_inputs(), st.integers(0, 2 ** 16))
def test_jet_agrees_with_nested_jvp(case, seed):
    check_jet(*case, seed)


@pytest.mark.slow
@settings(SLOW, max_examples=600)
@given(programs_and_inputs(), st.integers(0, 2 ** 16))
def test_jet_agrees_with_nested_jvp_slow(case, seed):
    check_jet(*case, seed)
