"""while_loop and fori_loop: values against Python loops (eager and compiled), forward
derivatives to order 2 against finite differences, the reverse-mode error of
while_loop, grad/hessian of fori_loop with static bounds against closed forms, vmap
with per-example trip counts against a loop, and the errors for bad loops."""
import numpy as np
import pytest

import fxgrad as fx
import fxgrad.numpy as fnp
from fxgrad.core.errors import FxTypeError
from fxgrad.primitives.loops import REVERSE_MODE_MESSAGE, while_p
from fxgrad.test_util import check_grads, check_jit

RNG = np.random.default_rng(0)
W = RNG.standard_normal((3, 3)) * 0.4
V80 = RNG.uniform(0.5, 1.5, 80)


def _collatz_steps(n):
    return fx.while_loop(lambda c: c[0] != 1,
                         lambda c: (fnp.where(c[0] % 2 == 0, c[0] // 2, 3 * c[0] + 1), c[1] + 1),
                         (n, 0))[1]


def _python_collatz_steps(n):
    steps = 0
    while n != 1:
        n, steps = (n // 2 if n % 2 == 0 else 3 * n + 1), steps + 1
    return steps


def _doubling(x):
    """Doubles until above 10: the trip count depends on x."""
    return fx.while_loop(lambda c: c < 10.0, lambda c: c * 2.0, x)


def _python_doubling(x):
    while x < 10.0:
        x = x * 2.0
    return x


def _damped(x):
    """Six steps of c <- c sin(c) + x (x closed over, so the body const has a tangent)."""
    return fx.while_loop(lambda c: c[0] < 6, lambda c: (c[0] + 1, c[1] * fnp.sin(c[1]) + x),
                         (0, x))[1]


def _rnn(w, h):
    """A pytree carry with a vector, threaded through a matrix closed over."""
    out = fx.while_loop(lambda c: c["i"] < 4,
                        lambda c: {"i": c["i"] + 1, "h": fnp.tanh(fnp.dot(w, c["h"]) + 0.1)},
                        {"i": 0, "h": h})
    return out["h"]


def _python_rnn(w, h):
    for _ in range(4):
        h = np.tanh(w @ h + 0.1)
    return h


def _big_carry(v):
    """An 80-element carry (an array, not scalars, inside the compiled loop)."""
    return fx.while_loop(lambda c: fnp.sum(c) < 1000.0, lambda c: c * 1.5, v)


def _python_big_carry(v):
    while v.sum() < 1000.0:
        v = v * 1.5
    return v


VALUE_CASES = [
    ("collatz", _collatz_steps, _python_collatz_steps, (27,)),
    ("doubling", _doubling, _python_doubling, (0.3,)),
    ("no iterations", _doubling, _python_doubling, (12.0,)),
    ("rnn", _rnn, _python_rnn, (W, RNG.standard_normal(3))),
    ("big carry", _big_carry, _python_big_carry, (V80,)),
]


@pytest.mark.parametrize("name,fun,reference,args", VALUE_CASES, ids=[c[0] for c in VALUE_CASES])
def test_while_values_match_python_loops(name, fun, reference, args):
    np.testing.assert_allclose(fun(*args), reference(*args), rtol=1e-12)
    check_jit(fun, args)


def test_while_is_one_equation_and_keeps_float32():
    program = fx.make_jaxpr(_doubling)(np.float32(0.3))
    assert [e.prim for e in program.eqns] == [while_p]
    out = _doubling(np.float32(0.3))
    assert out.dtype == np.float32 and fx.jit(_doubling)(np.float32(0.3)).dtype == np.float32


def test_while_returns_new_arrays_when_no_iteration_runs():
    v = np.full(80, 100.0)
    out = fx.jit(_big_carry)(v)
    out[0] = 0.0
    assert v[0] == 100.0


@pytest.mark.parametrize("fun,args", [(_doubling, (0.7,)), (_damped, (0.7,)),
                                      (_rnn, (W, RNG.standard_normal(3)))],
                         ids=["doubling", "damped", "rnn"])
def test_while_forward_derivatives_match_finite_differences(fun, args):
    check_grads(fun, args, order=2, modes=("fwd",))


def test_while_jacfwd_matches_finite_differences():
    h = RNG.standard_normal(3)
    jac = fx.jacfwd(_rnn, argnums=1)(W, h)
    eps = 1e-6
    numerical = np.stack([(_python_rnn(W, h + eps * e) - _python_rnn(W, h - eps * e)) / (2 * eps)
                          for e in np.eye(3)], axis=1)
    np.testing.assert_allclose(jac, numerical, rtol=1e-6, atol=1e-8)


def test_while_jvp_under_jit_matches_eager():
    check_jit(lambda x, t: fx.jvp(_damped, (x,), (t,)), (0.7, 1.0))


@pytest.mark.parametrize("transform", [fx.grad, fx.jacrev, lambda f: fx.grad(fx.jit(f))],
                         ids=["grad", "jacrev", "grad of jit"])
def test_while_reverse_mode_raises_a_clear_error(transform):
    with pytest.raises(FxTypeError, match="reverse-mode differentiation of while_loop is not "
                                          "supported") as info:
        transform(_damped)(0.7)
    assert "fx.fori_loop with static bounds" in str(info.value)
    assert REVERSE_MODE_MESSAGE in str(info.value)


def _power(x):
    return fx.fori_loop(0, 5, lambda i, c: c * x, 1.0)


def _weighted(x):
    """sum over i in [2, 6) of i * x**2 (the index enters the body)."""
    return fx.fori_loop(2, 6, lambda i, c: c + i * x ** 2, 0.0)


def test_fori_loop_static_bounds_grad_and_hessian_match_closed_forms():
    x = 1.3
    np.testing.assert_allclose(_power(x), x ** 5)
    np.testing.assert_allclose(fx.grad(_power)(x), 5 * x ** 4)
    np.testing.assert_allclose(fx.hessian(_power)(x), 20 * x ** 3)
    np.testing.assert_allclose(fx.grad(_weighted)(x), 2 * 14 * x)
    np.testing.assert_allclose(fx.hessian(_weighted)(x), 28.0)


def test_fori_loop_static_bounds_derivatives_in_every_mode():
    check_grads(lambda w, h: fx.fori_loop(0, 3, lambda i, c: fnp.tanh(fnp.dot(w, c)), h),
                (W, RNG.standard_normal(3)), order=2, modes=("fwd", "rev"))


def test_fori_loop_values_eager_and_compiled():
    np.testing.assert_allclose(fx.fori_loop(3, 3, lambda i, c: c + 1.0, 0.0), 0.0)
    np.testing.assert_allclose(fx.fori_loop(4, 1, lambda i, c: c + 1.0, 0.0), 0.0)
    check_jit(_weighted, (1.3,))
    check_jit(lambda n, x: fx.fori_loop(0, n, lambda i, c: c * x + i, 1.0), (np.int64(4), 0.5))


def test_fori_loop_traced_bounds_is_a_forward_mode_while():
    def f(n, x):
        return fx.fori_loop(1, n, lambda i, c: c * x, 1.0)
    program = fx.make_jaxpr(f)(np.int64(4), 2.0)
    assert while_p in [e.prim for e in program.eqns]
    assert fx.jit(f)(np.int64(4), 2.0) == 8.0
    np.testing.assert_allclose(fx.jvp(lambda x: f(np.int64(4), x), (2.0,), (1.0,))[1], 12.0)
    with pytest.raises(FxTypeError, match="reverse-mode differentiation of while_loop"):
        fx.grad(lambda x: fx.jit(f)(np.int64(4), x))(2.0)


def test_vmap_while_with_per_example_trip_counts_matches_a_loop():
    xs = np.array([1.0, 3.0, 0.5, 20.0, 0.01])
    expected = np.array([_python_doubling(x) for x in xs])
    np.testing.assert_allclose(fx.vmap(_doubling)(xs), expected)
    np.testing.assert_allclose(fx.jit(fx.vmap(_doubling))(xs), expected)
    ns = np.array([27, 1, 6, 97])
    assert list(fx.vmap(_collatz_steps)(ns)) == [_python_collatz_steps(n) for n in ns]


def test_vmap_while_with_batched_consts_and_unbatched_cond():
    def f(w, h):
        return _rnn(w, h)
    ws = RNG.standard_normal((4, 3, 3)) * 0.4
    h = RNG.standard_normal(3)
    expected = np.stack([_python_rnn(w, h) for w in ws])
    np.testing.assert_allclose(fx.vmap(f, in_axes=(0, None))(ws, h), expected)
    program = fx.make_jaxpr(fx.vmap(f, in_axes=(0, None)))(ws, h)
    body = next(e for e in program.eqns if e.prim is while_p).params["body_program"]
    assert "select" not in str(body)   # the trip count is shared: no masking


def test_vmap_while_with_batched_threshold():
    def f(limit, x):
        return fx.while_loop(lambda c: c < limit, lambda c: c * 2.0, x)
    limits = np.array([5.0, 50.0, 0.5])
    expected = [_python_doubling_to(limit, 1.0) for limit in limits]
    np.testing.assert_allclose(fx.vmap(f, in_axes=(0, None))(limits, 1.0), expected)


def _python_doubling_to(limit, x):
    while x < limit:
        x *= 2.0
    return x


def test_vmap_of_forward_derivative_of_while():
    xs = np.array([0.3, 0.7, 4.0])
    derivs = fx.vmap(lambda x: fx.jvp(_doubling, (x,), (1.0,))[1])(xs)
    np.testing.assert_allclose(derivs, [_python_doubling(x) / x for x in xs])


def test_while_loop_errors():
    with pytest.raises(FxTypeError, match="cond_fun must return a scalar bool, got f64"):
        fx.while_loop(lambda c: c, lambda c: c, 1.0)
    with pytest.raises(FxTypeError, match="body_fun returned a carry with structure"):
        fx.while_loop(lambda c: c[0] < 1.0, lambda c: c[0], (1.0, 2.0))
    with pytest.raises(FxTypeError, match=r"carry leaf 0 as f64\[\], but it went in as i64"):
        fx.while_loop(lambda c: c < 3, lambda c: c * 1.5, 1)
    with pytest.raises(FxTypeError, match="cond_fun must be a function"):
        fx.while_loop(None, lambda c: c, 1.0)


def test_fori_loop_errors():
    with pytest.raises(FxTypeError, match="fori_loop: upper must be an integer scalar"):
        fx.fori_loop(0, 3.0, lambda i, c: c, 1.0)
    with pytest.raises(FxTypeError, match=r"fori_loop: body_fun returned carry leaf 0 as f32"):
        fx.fori_loop(0, 3, lambda i, c: c.astype(np.float32), 1.0)


def _nested(x):
    """A while inside a scan body, and a fori_loop (a scan) inside a while body."""
    def step(c, s):
        inner = fx.while_loop(lambda v: v[0] < 3, lambda v: (v[0] + 1, fnp.sin(v[1]) * s), (0, c))
        return inner[1] + s, inner[1]
    carry, ys = fx.scan(step, x, np.array([0.5, 1.0, 1.5]))
    outer = fx.while_loop(lambda v: v[0] < 2,
                          lambda v: (v[0] + 1, fx.fori_loop(0, 2, lambda i, c: c * v[1], v[1])),
                          (0, carry))
    return outer[1] + fnp.sum(ys)


def test_nested_loops_values_forward_derivatives_and_jit():
    check_jit(_nested, (0.4,))
    check_grads(_nested, (0.4,), order=2, modes=("fwd",))


def test_grad_through_a_while_that_does_not_depend_on_the_input():
    def f(x):
        return x * _doubling(np.float64(0.3))
    np.testing.assert_allclose(fx.grad(f)(2.0), _python_doubling(0.3))
