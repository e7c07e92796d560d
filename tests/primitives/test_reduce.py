"""Tests of the reduction primitives: values against numpy, derivatives to second order
in both modes, float32 preservation, tie-splitting of max/min, shape errors, and the numba
lowerings against eager evaluation (NaN, ties, empty and size-1 axes, integers, bools)."""

import numpy as np
import pytest

import fxgrad as fx
from fxgrad.jit import jit
from fxgrad.primitives.reduce import (argmax, argmin, cumsum, reduce_max, reduce_max_p,
                                      reduce_min, reduce_sum, reduce_sum_p)
from fxgrad.primitives.shape import convert_element_type
from fxgrad.primitives.arith import mul
from fxgrad.test_util import check_grads, check_jit

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


# ----------------------------------------------------------------------------- jit
# Each test jits ONE function computing a whole table of named cases, so a table costs a
# single numba compilation. Unsimplified, every case reaches its own lowering.




# (shape, axes) reaching each path of the lowering: a row per output element (K R), rows
# folded into the output (R K), both (R K R, K R K R), one whole-array np.sum, kept axes
# all of size 1, reduced axes all of size 1 (a copy; a scalar), rank 0, no axes.
SUM_PATHS = [((3, 4), (1,)), ((3, 4), (0,)), ((2, 3, 4), (0, 2)), ((2, 3, 4, 5), (1, 3)),
             ((3, 4), (0, 1)), ((5,), (0,)), ((1, 3, 1, 4), (1, 3)), ((1, 3, 1, 4), (0, 2)),
             ((1, 1), (0, 1)), ((), ()), ((3, 4), ())]
NAN, INF = np.nan, np.inf
# rows: NaN first, NaN inside, two NaNs, all -inf, all +inf, ties, plain.
EDGES = [[NAN, 1.0, 2.0, 0.0], [1.0, NAN, 3.0, NAN], [NAN, NAN, 1.0, 1.0],
         [-INF, -INF, -INF, -INF], [INF, INF, INF, INF], [2.0, 5.0, 5.0, 2.0],
         [-0.5, 0.25, 4.0, -3.0]]


def _float_table(xs, edges, edges_3d, empty, empty_t):
    """xs: {shape: operand}; edges: EDGES, also as (7, 2, 2); empty, empty_t: shapes (0, 3)
    and (2, 0)."""
    out = {f"sum {shape} {axes}": reduce_sum(xs[shape], axes) for shape, axes in SUM_PATHS}
    out["sum empty"] = [reduce_sum(empty, (0,)), reduce_sum(empty, (0, 1)),
                        reduce_sum(empty_t, (1,))]
    for fn in (reduce_max, reduce_min):   # NaN wins; the loop paths are shared with sum
        out[fn.__name__] = [fn(edges, (0,)), fn(edges, (1,)), fn(edges, (0, 1)),
                            fn(edges_3d, (0, 2)), fn(xs[(2, 3, 4, 5)], (1, 3)),
                            fn(xs[()], ()), fn(empty, (1,))]
    for fn in (argmax, argmin):           # first of ties, first NaN
        out[fn.__name__] = [fn(edges, 0, np.int64), fn(edges, 1, np.int32),
                            fn(xs[(2, 3, 4, 5)], 1, np.int32), fn(xs[(5,)], 0, np.int64),
                            fn(xs[(1, 1)], 1, np.int64), fn(empty, 1, np.int64)]
    out["cumsum"] = [cumsum(xs[(5,)], 0, True), cumsum(xs[(3, 4)], 0),
                     cumsum(xs[(2, 3, 4, 5)], 1, True), cumsum(xs[(2, 3, 4, 5)], 3),
                     cumsum(edges, 1), cumsum(xs[(1, 1)], 0, True)]
    out["cumsum empty"] = [cumsum(empty, 0), cumsum(empty, 1, True), cumsum(empty_t, 1)]
    return out


def _float_args(dtype):
    shapes = sorted({shape for shape, _ in SUM_PATHS})
    xs = {shape: rand(shape, seed=i, dtype=dtype) for i, shape in enumerate(shapes)}
    edges = np.array(EDGES, dtype)
    return xs, edges, edges.reshape(7, 2, 2), np.ones((0, 3), dtype), np.ones((2, 0), dtype)


def test_jit_matches_eager_float64(unsimplified):
    with np.errstate(invalid="ignore"):
        check_jit(_float_table, _float_args(np.float64))


def _float32_table(x, edges):
    """The paths where float32 differs: float64 accumulators of sums, float32 rows."""
    return {"sum": [reduce_sum(x, (0, 1, 2)), reduce_sum(x, (2,)), reduce_sum(x, (0, 2)),
                    reduce_sum(x, (0,))],
            "max": [reduce_max(edges, (1,)), reduce_max(edges, (0,))],
            "argmin": argmin(edges, 1, np.int32), "cumsum": cumsum(x, 1, True)}


def test_jit_matches_eager_float32(unsimplified):
    # numpy sums float32 pairwise, the kernel in a float64 accumulator: an ulp apart
    with np.errstate(invalid="ignore"):
        check_jit(_float32_table, (rand((2, 3, 40), dtype=np.float32),
                                          np.array(EDGES, np.float32)), rtol=1e-6)


def _int_table(x32, x64, u8, flags, ties):
    out = {}
    for fn, _ in REDUCTIONS:   # int32 sums wrap around; numba widens, the kernel narrows
        out[fn.__name__] = [fn(x32, (0, 2)), fn(x32, (1,)), fn(x32, (0, 1, 2)), fn(x64, (0,)),
                            fn(u8, (1,))]
    for fn in (reduce_max, reduce_min):   # or, and
        out[f"{fn.__name__} bool"] = [fn(flags, (1,)), fn(flags, (0, 1))]
    for fn in (argmax, argmin):
        out[fn.__name__] = [fn(x32, 1, np.int64), fn(ties, 1, np.int32), fn(flags, 1, np.int64),
                            fn(u8, 0, np.int64)]
    out["cumsum"] = [cumsum(x32, 1), cumsum(x64, 0, True), cumsum(u8, 1)]
    return out


def test_jit_matches_eager_integers_and_bools(unsimplified):
    rng = np.random.default_rng(7)
    x32 = rng.integers(-2**30, 2**30, (2, 3, 4)).astype(np.int32)   # sums wrap around
    x64 = rng.integers(-50, 50, (4, 3))
    u8 = rng.integers(0, 256, (3, 5)).astype(np.uint8)
    flags = np.array([[True, False, True], [False, False, True]])
    ties = np.array([[3, 1, 3, 1], [1, 1, 1, 1], [0, 2, 2, -5]])
    check_jit(_int_table, (x32, x64, u8, flags, ties), rtol=0)


def _ct(shape):
    return np.linspace(-1.0, 1.0, int(np.prod(shape, dtype=np.int64))).reshape(shape)


def _derivative_table(x, x_dot, v):
    """x, x_dot: shape (2, 3, 4); v: shape (5,)."""
    out = {}
    for fn, axes, shape in ((reduce_sum, (0, 2), (3,)), (reduce_max, (2,), (2, 3)),
                            (reduce_min, (0, 2), (3,))):
        f = lambda x, fn=fn, axes=axes: fn(x, axes)  # noqa: E731
        out[fn.__name__] = [fx.jvp(f, (x,), (x_dot,))[1], fx.vjp(f, x)[1](_ct(shape))]
    out["cumsum"] = [fx.jvp(lambda x: cumsum(x, 1), (x,), (x_dot,))[1],
                     fx.vjp(lambda x: cumsum(x, 2, True), x)[1](_ct(x.shape))]
    out["hessian"] = fx.hessian(
        lambda v: reduce_sum(mul(cumsum(v, 0, True), mul(v, reduce_max(v, (0,)))), (0,)))(v)
    out["grad through argmin"] = fx.grad(lambda x: reduce_sum(mul(reduce_sum(x, (2,)), (
        convert_element_type(argmin(x, 2, np.int32), np.float64))), (0, 1)))(x)
    return out


def test_jit_of_derivative_programs():
    check_jit(_derivative_table, (rand((2, 3, 4)), rand((2, 3, 4), seed=1),
                                         rand((5,), seed=2)))


def test_lowering_of_a_full_sum_is_one_np_sum():
    source = jit(lambda x: reduce_sum(x, (0, 1))).lower(np.ones((3, 4))).as_text()
    assert "np.sum(in0)" in source and "for " not in source
    source = jit(lambda x: reduce_sum(x, (0, 1))).lower(np.ones((3, 4), np.float32)).as_text()
    assert "np.sum(in0, dtype=np.float64)" in source   # numba's float32 sum is naive


# ----------------------------------------------------------------------------- vmap
# Every case mapped over its operand at the first, the last and a negative axis, against
# a Python loop over the examples; a mapped reduction is one equation (the batch axis
# stays where it is); compositions with grad, jit and vmap.

# name, function, example shape
VMAP_CASES = (
    [(f"{f.__name__} {shape} {axes}", lambda x, f=f, axes=axes: f(x, axes), shape)
     for f, _ in REDUCTIONS for shape, axes in AXES_CASES]
    + [(f"{f.__name__} {shape} {axis}", lambda x, f=f, axis=axis: f(x, axis, np.int32), shape)
       for f in (argmax, argmin) for shape, axis in ARG_CASES]
    + [(f"cumsum {shape} {axis} {reverse}",
        lambda x, axis=axis, reverse=reverse: cumsum(x, axis, reverse), shape)
       for shape, axis, reverse in CUMSUM_CASES])


def _batch_axes(rank):
    """Where to map an operand of rank `rank`: first, last, and a negative axis (the
    middle one when there is one)."""
    return list(dict.fromkeys([0, rank, -2 if rank else -1]))


def _vmap_ids(table):
    return [row[0] for row in table]


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 1e-6)])
@pytest.mark.parametrize("name, fn, shape", VMAP_CASES, ids=_vmap_ids(VMAP_CASES))
def test_vmap_matches_loop(name, fn, shape, dtype, rtol):
    examples = [rand(shape, seed, dtype) for seed in range(3)]
    expected = np.stack([fn(x) for x in examples])
    for axis in _batch_axes(len(shape)):
        out = fx.vmap(fn, in_axes=axis)(np.stack(examples, axis))
        assert (out.shape, out.dtype) == (expected.shape, expected.dtype), axis
        np.testing.assert_allclose(out, expected, rtol=rtol, atol=rtol, err_msg=f"in_axes={axis}")


@pytest.mark.parametrize("name, fn, shape", VMAP_CASES, ids=_vmap_ids(VMAP_CASES))
def test_vmap_program_does_not_grow_with_the_batch(name, fn, shape):
    for axis in _batch_axes(len(shape)):
        programs = [fx.make_jaxpr(fx.vmap(fn, in_axes=axis))(
            np.stack([rand(shape, seed) for seed in range(size)], axis)) for size in (2, 5)]
        assert len(programs[0].eqns) == len(programs[1].eqns), f"{axis}:\n{programs[1]}"


@pytest.mark.parametrize("name, fn, shape", VMAP_CASES, ids=_vmap_ids(VMAP_CASES))
def test_vmap_keeps_the_batch_axis_in_place(name, fn, shape):
    # batch first stays first, batch last stays last: one equation, no transpose
    xs = np.stack([rand(shape, seed) for seed in range(4)])
    for in_axes, out_axes, x in ((0, 0, xs), (-1, -1, np.moveaxis(xs, 0, -1))):
        program = fx.make_jaxpr(fx.vmap(fn, in_axes=in_axes, out_axes=out_axes))(x)
        assert len(program.eqns) == 1, program


def _composed(x):
    """x: shape (3, 4); every primitive of the family, and a scalar result."""
    row_max = reduce_max(x, (1,))
    picked = convert_element_type(argmin(x, 1, np.int32), np.float64)
    mixed = mul(cumsum(row_max, 0, True), mul(reduce_sum(x, (1,)), picked))
    return reduce_sum(mul(mixed, reduce_min(x, (0,))[:3]), (0,))


def test_vmap_of_grad_and_grad_of_vmap():
    xs = np.stack([rand((3, 4), seed) for seed in range(4)], -1)
    expected = np.stack([fx.grad(_composed)(xs[..., b]) for b in range(4)])
    np.testing.assert_allclose(fx.vmap(fx.grad(_composed), in_axes=-1)(xs), expected,
                               rtol=1e-12)
    summed = lambda xs: reduce_sum(fx.vmap(_composed, in_axes=-1)(xs), (0,))  # noqa: E731
    np.testing.assert_allclose(fx.grad(summed)(xs), np.moveaxis(expected, 0, -1), rtol=1e-12)


def test_vmap_of_vmap():
    xs = np.stack([np.stack([rand((3, 4), 10 * a + b) for b in range(3)], 1) for a in range(2)])
    expected = np.stack([[_composed(xs[a][:, b]) for b in range(3)] for a in range(2)])
    out = fx.vmap(fx.vmap(_composed, in_axes=1), in_axes=0)(xs)
    np.testing.assert_allclose(out, expected, rtol=1e-12)


def test_jit_of_vmap():
    def table(xs):
        return {name: fx.vmap(fn, in_axes=-1 if k % 2 else 0)(x)
                for k, ((name, fn, _), x) in enumerate(zip(VMAP_CASES, xs))}
    xs = [np.stack([rand(shape, seed) for seed in range(3)], -1 if k % 2 else 0)
          for k, (_, _, shape) in enumerate(VMAP_CASES)]
    check_jit(table, (xs,))
