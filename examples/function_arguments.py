"""Theano's `function` arguments (multiple outputs, updates, givens) and `grad`,
the way they look with pure functions.

* multiple outputs: a function returns a tuple; transformations handle any pytree.
* updates: Theano mutates shared variables after a call. Here the state is an
  argument and the new state is returned, so the update is an ordinary function
  that can itself be differentiated.
* givens: Theano substitutes a variable of the graph. Here you pass a different
  value: with a closure or `functools.partial` for the fixed part.
* grad: `fx.grad` of a ** 2 is a function equivalent to 2 * a; `fx.make_jaxpr`
  prints its program (Theano drew it with pydotprint).

Run: python examples/function_arguments.py
"""
import functools

import numpy as np

import fxgrad as fx
import fxgrad.numpy as fnp

# The seed's float32 outputs for a random 3x3 matrix a; a = log(exp(a)) recovers it.
SEED_EXP = np.array([[2.33447003, 0.30287042, 0.63557744], [0.18511547, 1.34327984, 0.42203984],
                     [0.87083125, 5.01169062, 6.88732481]])
SEED_LOG = np.array([[-0.16512829, np.nan, np.nan], [np.nan, -1.2203927, np.nan],
                     [np.nan, 0.47733498, 0.65735561]])
SEED_SQUARE = np.array([[0.71873927, 1.42671108, 0.20540957], [2.84521151, 0.08709242, 0.74417454],
                        [0.01912885, 2.59781313, 3.72367549]])


def ex(a):
    """Three outputs computed together, as in theano.function([a], [exp, log, a**2])."""
    return fnp.exp(a), fnp.log(a), a ** 2


def multiple_outputs():
    a = np.log(SEED_EXP).astype(np.float32)
    with np.errstate(invalid="ignore"):  # log of the negative entries is nan, as in the seed
        outs = ex(a)
        _, tangents = fx.jvp(ex, (a,), (np.ones_like(a),))
    for name, out, expected in zip(["exp(a)", "log(a)", "a ** 2"], outs,
                                   [SEED_EXP, SEED_LOG, SEED_SQUARE]):
        print(f"{name} ({out.dtype}):\n{out}")
        assert out.dtype == np.float32
        assert np.allclose(out, expected, equal_nan=True)
    # d/da of (exp a, log a, a**2) along ones: (exp a, 1/a, 2a), one tangent per output.
    for t, expected in zip(tangents, [np.exp(a), 1 / a, 2 * a]):
        assert np.allclose(t, expected)
    print("jvp of the three outputs gives three tangents: exp(a), 1/a, 2a")


def mul(state, x):
    """Theano: function([x], updates=[(w, w * x)]). No outputs; the new state is returned."""
    return [], {"w": state["w"] * x}


def updates():
    state = {"w": 1.0}
    outputs, state = mul(state, 4.0)
    print("mul(state, 4.0) returns", outputs, "and the new state", state, "(expected w = 4.0)")
    assert outputs == [] and np.allclose(state["w"], 4.0)
    dw_dx = fx.grad(lambda x: mul({"w": 1.5}, x)[1]["w"])(4.0)
    print("d(new w)/dx at w = 1.5 is", dw_dx, "(expected 1.5)")
    assert np.allclose(dw_dx, 1.5)


def fn_of_state(state, inc):
    return state * 2 + inc


def givens():
    # Theano: function([inc, foo], fn_of_state, givens=[(state, foo)]); skip_shared(1, 3) == 7
    skip_shared = functools.partial(fn_of_state, 3.0)
    closure = lambda inc: fn_of_state(3.0, inc)  # noqa: E731
    print("with state replaced by 3: partial ->", skip_shared(1.0), ", closure ->", closure(1.0),
          "(expected 7.0)")
    assert skip_shared(1.0) == closure(1.0) == 7.0
    d_inc, d_state = fx.grad(skip_shared)(1.0), fx.grad(fn_of_state, argnums=0)(3.0, 1.0)
    print("d/d inc =", d_inc, "(expected 1.0); d/d state =", d_state, "(expected 2.0)")
    assert np.allclose(d_inc, 1.0) and np.allclose(d_state, 2.0)


def grad_and_program():
    g = fx.grad(lambda a: a ** 2)
    print("grad(a ** 2) at 3.0 =", g(3.0), "(expected 6.0, i.e. 2 * a)")
    assert np.allclose(g(3.0), 6.0)
    program = fx.make_jaxpr(g)(3.0)
    print("its program:")
    print(program)
    assert all(np.allclose(program(np.float64(a))[0], 2 * a) for a in [-1.5, 0.0, 7.0])


def main():
    multiple_outputs()
    updates()
    givens()
    grad_and_program()


if __name__ == "__main__":
    main()
