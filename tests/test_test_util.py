"""check_grads: passes on correct derivatives and fails on deliberately wrong rules."""
import numpy as np
import pytest

from fxgrad.core.trace import Primitive, shape_rules
from fxgrad.interpreters.evaluation import impl_rules
from fxgrad.interpreters.jvp import def_jvp
from fxgrad.interpreters.transpose import def_transpose
from fxgrad.primitives.arith import add, div, mul, neg, sub
from fxgrad.test_util import check_grads, numerical_jvp


def _unary(name, fn):
    prim = Primitive(name)
    impl_rules[prim] = fn
    shape_rules[prim] = lambda x: x
    return prim


# square with a JVP that is off by a factor: d(x²) = 3x dx (wrong, should be 2x dx)
bad_square_p = _unary("bad_square", lambda x: x * x)


@def_jvp(bad_square_p)
def _bad_square_jvp(primals, tangents):
    (x,), (x_dot,) = primals, tangents
    return bad_square_p.bind(x), mul(mul(3.0, x), x_dot)


# doubling with a correct JVP but a wrong transpose (3 ct instead of 2 ct)
bad_double_p = _unary("bad_double", lambda x: 2.0 * x)


@def_jvp(bad_double_p)
def _bad_double_jvp(primals, tangents):
    return bad_double_p.bind(primals[0]), bad_double_p.bind(tangents[0])


@def_transpose(bad_double_p)
def _bad_double_transpose(ct, x):
    return [mul(3.0, ct)]


# cube with a correct first derivative 3x² computed by `dcube`, whose own JVP is wrong
dcube_p = _unary("dcube", lambda x: 3.0 * x * x)
cube_p = _unary("cube", lambda x: x * x * x)


@def_jvp(dcube_p)
def _dcube_jvp(primals, tangents):
    (x,), (x_dot,) = primals, tangents
    return dcube_p.bind(x), mul(mul(5.0, x), x_dot)   # wrong: should be 6x


@def_jvp(cube_p)
def _cube_jvp(primals, tangents):
    (x,), (x_dot,) = primals, tangents
    return cube_p.bind(x), mul(dcube_p.bind(x), x_dot)


# x² whose derivative is 1% too large
slightly_off_p = _unary("slightly_off", lambda x: x * x)


@def_jvp(slightly_off_p)
def _slightly_off_jvp(primals, tangents):
    (x,), (x_dot,) = primals, tangents
    return slightly_off_p.bind(x), mul(mul(2.02, x), x_dot)


X = np.array([0.7, -1.3, 2.1])


@pytest.mark.parametrize("mode", ["fwd", "rev"])
def test_check_grads_fails_on_a_wrong_jvp_rule(mode):
    with pytest.raises(AssertionError):
        check_grads(lambda x: bad_square_p.bind(x), (X,), order=1, modes=(mode,))


def test_check_grads_fails_on_a_wrong_transpose_rule_in_reverse_mode_only():
    check_grads(lambda x: bad_double_p.bind(x), (X,), order=1, modes=("fwd",))
    with pytest.raises(AssertionError, match="vjp"):
        check_grads(lambda x: bad_double_p.bind(x), (X,), order=1, modes=("rev",))


@pytest.mark.parametrize("mode", ["fwd", "rev"])
def test_check_grads_order_two_catches_a_wrong_second_derivative(mode):
    cube = lambda x: cube_p.bind(x)   # noqa: E731
    check_grads(cube, (X,), order=1, modes=(mode,))
    with pytest.raises(AssertionError):
        check_grads(cube, (X,), order=2, modes=(mode,))


@pytest.mark.parametrize("mode", ["fwd", "rev"])
def test_check_grads_catches_a_one_percent_error(mode):
    f = lambda x: slightly_off_p.bind(x)   # noqa: E731
    with pytest.raises(AssertionError):
        check_grads(f, (X,), order=1, modes=(mode,))


CORRECT_FUNCTIONS = [
    (lambda x: mul(x, x), (X,)),
    (lambda x, y: div(mul(x, y), add(mul(y, y), 1.0)), (X, X[::-1].copy())),
    (lambda x: neg(sub(mul(mul(x, x), x), x)), (np.array(0.3),)),
    (lambda p: mul(p["w"], p["b"][0]), ({"w": X, "b": (np.array(2.0),)},)),
    (lambda x, y: (mul(x, y), sub(x, y)), (X, np.array(1.5))),
]


@pytest.mark.parametrize("fun, args", CORRECT_FUNCTIONS)
def test_check_grads_passes_on_correct_functions(fun, args):
    check_grads(fun, args, order=2, modes=("fwd", "rev"))


def test_check_grads_accepts_float32_inputs():
    check_grads(lambda x: mul(mul(x, x), 0.5), (X.astype(np.float32),), order=2)


def test_check_grads_rejects_an_unknown_mode():
    with pytest.raises(ValueError, match="mode"):
        check_grads(lambda x: x, (X,), modes=("sideways",))


def test_numerical_jvp_is_a_central_difference():
    out = numerical_jvp(lambda x: mul(mul(x, x), x), (np.array(2.0),), (np.array(1.0),), 1e-4)
    np.testing.assert_allclose(out, 12.0, rtol=1e-7)


def test_check_grads_works_with_fxgrad_numpy_functions():
    import fxgrad.numpy as fnp
    check_grads(lambda x: fnp.sum(fnp.tanh(x) * fnp.exp(x)), (X,), order=2)
