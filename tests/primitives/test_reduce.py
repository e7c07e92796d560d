"""Tests of the reduction primitives: values against numpy, derivatives to second order
in both modes, float32 preservation, tie-splitting of max/min and shape errors."""
import numpy as np
import pytest

import fxgrad as fx
from fxgrad.primitives.reduce import (argmax, argmin, cumsum, reduce_max, reduce_max_p,
                                      reduce_min, reduce_sum, reduce_sum_p)
from fxgrad.primitives.shape import convert_element_type
from fxgrad.primitives.arith import mul
from fxgrad.test_util import check_grads

REDUCTIONS = [(reduce_sum, np.sum), (reduce_max, np.max), (reduce_min, np.min)]

# (shape, axes): several axes, all axes, no axes (identity) and scalars.
AXES_CASES = [((3, 4), (0,)), ((3, 4), (1,)), ((3, 4), (0, 1)), ((3, 4), ()),
              ((2, 3, 4), (0, 2)), ((2, 3, 4), (1,)), ((5,), (0,)), ((), ())]

CUMSUM_CASES = [((5,), 0, False), ((5,), 0, True), ((3, 4), 0, False), ((3, 4), 1, True),
                ((2, 3, 4), 1, False), ((2, 3, 4), 2, True)]


def rand(shape, seed=0, dtype=np.float64):
    # Distinct, well-separated values so max/min are differentiable at the point.
    rng = np.random.default_rng(seed)
    size = int(np.prod(shape, dtype=np.int64))
    return (rng.permutation(size).reshape(shape) * 0.5 + rng.uniform(-0.1, 0.1, shape)
            ).astype(dtype)


def cases(fns, table):
    return [pytest.param(f, np_f, *row, id=f"{f.__name__}-{row}") for f, np_f in fns
            for row in table]


@pytest.mark.parametrize("fn, np_fn, shape, axes", cases(REDUCTIONS, AXES_CASES))
def test_reduction_values(fn, np_fn, shape, axes):
    x = rand(shape)
    out = fn(x, axes)
    np.testing.assert_allclose(out, np_fn(x, axis=axes))
    assert out.shape == np_fn(x, axis=axes).shape and out.dtype == np.float64


@pytest.mark.parametrize("fn, np_fn, shape, axes", cases(REDUCTIONS, AXES_CASES))
def test_reduction_grads(fn, np_fn, shape, axes):
    check_grads(lambda x: fn(x, axes), (rand(shape),), order=2, modes=("fwd", "rev"))


@pytest.mark.parametrize("fn, np_fn, shape, axes", cases(REDUCTIONS, AXES_CASES))
def test_reduction_preserves_float32(fn, np_fn, shape, axes):
    x = rand(shape, dtype=np.float32)
    out, pullback = fx.vjp(lambda x: fn(x, axes), x)
    _, out_dot = fx.jvp(lambda x: fn(x, axes), (x,), (np.ones_like(x),))
    (ct_x,) = pullback(np.ones(out.shape, np.float32))
    assert out.dtype == out_dot.dtype == ct_x.dtype == np.float32
    np.testing.assert_allclose(out, np_fn(x, axis=axes), rtol=1e-6)


def test_reduce_sum_gradient_broadcasts_back():
    x = rand((2, 3, 4))
    g = fx.grad(lambda x: reduce_sum(mul(reduce_sum(x, (0, 2)), np.arange(3.0)), (0,)))(x)
    np.testing.assert_array_equal(g, np.broadcast_to(np.arange(3.0)[None, :, None], x.shape))


def test_reduce_sum_of_ints_keeps_dtype():
    x = np.arange(12, dtype=np.int32).reshape(3, 4)
    out = reduce_sum(x, (1,))
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, x.sum(axis=1))


def test_reduce_max_ties_split_the_derivative():
    x = np.array([1.0, 3.0, 3.0, 0.0])
    np.testing.assert_allclose(fx.grad(lambda x: reduce_max(x, (0,)))(x), [0, 0.5, 0.5, 0])
    _, t = fx.jvp(lambda x: reduce_max(x, (0,)), (x,), (np.array([5.0, 2.0, 4.0, 7.0]),))
    np.testing.assert_allclose(t, 3.0)


def test_reduce_min_ties_split_along_an_axis():
    x = np.array([[2.0, 1.0, 1.0, 1.0], [0.0, 4.0, 5.0, 0.0]])
    g = fx.grad(lambda x: reduce_sum(reduce_min(x, (1,)), (0,)))(x)
    np.testing.assert_allclose(g, [[0, 1 / 3, 1 / 3, 1 / 3], [0.5, 0, 0, 0.5]])


def test_reduce_max_ties_across_several_axes():
    x = np.array([[1.0, 2.0], [2.0, 0.0]])
    np.testing.assert_allclose(fx.grad(lambda x: reduce_max(x, (0, 1)))(x),
                               [[0, 0.5], [0.5, 0]])


ARG_CASES = [((5,), 0), ((3, 4), 0), ((3, 4), 1), ((2, 3, 4), 2)]


@pytest.mark.parametrize("fn, np_fn", [(argmax, np.argmax), (argmin, np.argmin)])
@pytest.mark.parametrize("shape, axis", ARG_CASES)
@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
def test_arg_extremum_values(fn, np_fn, shape, axis, index_dtype):
    x = rand(shape, seed=3)
    out = fn(x, axis, index_dtype)
    assert out.dtype == index_dtype
    np.testing.assert_array_equal(out, np_fn(x, axis=axis))


@pytest.mark.parametrize("fn, expected", [(argmax, [0, 1]), (argmin, [0, 0])])
def test_arg_extremum_first_of_ties_and_zero_tangent(fn, expected):
    x = np.array([[1.0, 1.0, 1.0], [0.0, 2.0, 2.0]])
    np.testing.assert_array_equal(fn(x, 1, np.int64), expected)
    out, t = fx.jvp(lambda x: fn(x, 1, np.int64), (x,), (np.ones_like(x),))
    np.testing.assert_array_equal(t, np.zeros(2))


@pytest.mark.parametrize("fn", [argmax, argmin])
def test_arg_extremum_inside_differentiated_function(fn):
    x = rand((3, 4), seed=5)

    def f(x):
        index = convert_element_type(fn(x, 1, np.int32), np.float64)
        return reduce_sum(mul(reduce_sum(x, (1,)), index), (0,))

    check_grads(f, (x,), order=2, modes=("fwd", "rev"))
    np.testing.assert_allclose(fx.grad(f)(x),
                               np.broadcast_to(fn(x, 1, np.int32)[:, None], x.shape))


@pytest.mark.parametrize("shape, axis, reverse", CUMSUM_CASES)
def test_cumsum_values(shape, axis, reverse):
    x = rand(shape)
    flip = (lambda a: np.flip(a, axis)) if reverse else (lambda a: a)
    np.testing.assert_allclose(cumsum(x, axis, reverse), flip(np.cumsum(flip(x), axis=axis)))


@pytest.mark.parametrize("shape, axis, reverse", CUMSUM_CASES)
def test_cumsum_grads(shape, axis, reverse):
    check_grads(lambda x: cumsum(x, axis, reverse), (rand(shape),), order=2,
                modes=("fwd", "rev"))


def test_cumsum_transpose_is_reversed_cumsum():
    _, pullback = fx.vjp(lambda x: cumsum(x, 0), np.zeros(4))
    np.testing.assert_allclose(pullback(np.array([1.0, 2.0, 3.0, 4.0]))[0], [10, 9, 7, 4])
    _, pullback = fx.vjp(lambda x: cumsum(x, 0, reverse=True), np.zeros(4))
    np.testing.assert_allclose(pullback(np.array([1.0, 2.0, 3.0, 4.0]))[0], [1, 3, 6, 10])


def test_cumsum_preserves_float32():
    x = rand((3, 4), dtype=np.float32)
    out, pullback = fx.vjp(lambda x: cumsum(x, 1), x)
    assert out.dtype == pullback(np.ones((3, 4), np.float32))[0].dtype == np.float32


def test_printed_params():
    text = str(fx.make_jaxpr(lambda x: reduce_sum(x, [1, 0]))(np.ones((2, 3))))
    assert "reduce_sum[axes=(0, 1)] a" in text
    text = str(fx.make_jaxpr(lambda x: cumsum(argmax(x, 0, np.int32), 0))(np.ones((2, 3))))
    assert "argmax[axis=0, index_dtype=int32] a" in text
    assert "cumsum[axis=0, reverse=False]" in text


ERRORS = [
    (lambda: reduce_sum(np.ones((2, 3)), (2,)), r"reduce_sum: axes \(2,\) are out of range"
     r" for an operand of shape \(2, 3\)"),
    (lambda: reduce_max(np.ones(()), (0,)), r"reduce_max: axes \(0,\) are out of range"),
    (lambda: reduce_sum(np.ones((2, 3)), (0, 0)), r"reduce_sum: axes \(0, 0\) must be "
     r"sorted and distinct \(operand shape \(2, 3\)\)"),
    (lambda: reduce_sum_p.bind(np.ones((2, 3)), axes=(1, 0)), r"must be sorted"),
    (lambda: reduce_sum(np.ones(3, bool), (0,)), r"reduce_sum: cannot sum a bool operand"),
    (lambda: reduce_max_p.bind(np.ones((0, 3)), axes=(0,)),
     r"reduce_max: cannot reduce over an axis of size 0 \(operand shape \(0, 3\)"),
    (lambda: argmin(np.ones((2, 3)), 2), r"argmin: axis 2 is out of range for an operand "
     r"of shape \(2, 3\)"),
    (lambda: argmax(np.ones(3), 0, np.float64), r"argmax: index_dtype must be an integer "
     r"dtype, got float64"),
    (lambda: cumsum(np.ones(()), 0), r"cumsum: axis 0 is out of range for an operand of "
     r"shape \(\)"),
]


@pytest.mark.parametrize("thunk, message", ERRORS)
def test_shape_errors(thunk, message):
    with pytest.raises(fx.FxTypeError, match=message):
        thunk()


def test_shape_error_raised_while_tracing():
    with pytest.raises(fx.FxTypeError, match=r"reduce_min: axes \(3,\)"):
        fx.grad(lambda x: reduce_min(x, (3,)))(np.ones(2))
