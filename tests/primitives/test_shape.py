"""Shape primitives: values against numpy, derivatives to order 2 in both modes,
float32 preservation, param normalisation and the shape-error messages; numba
lowerings against eager evaluation (every case, edge shapes, integer and bool
operands, conversions, derivative programs); vmap against a loop over examples, and
composed with grad, jit and itself."""
import re

import numpy as np
import pytest

import fxgrad as fx
from fxgrad.core.errors import FxTypeError
from fxgrad.core.ir import aval_of
from fxgrad.primitives.arith import mul
from fxgrad.primitives.reduce import reduce_sum
from fxgrad.primitives.shape import (broadcast_in_dim, concatenate, convert_element_type,
                                     expand_dims, reshape, squeeze, transpose)
from fxgrad.test_util import check_grads, check_jit, check_vmap
from fxgrad.tree_util import tree_flatten

from .helpers import case_ids, rand, squared


# name, fxgrad function, numpy reference, argument shapes
CASES = [
    ("broadcast_new_axes", lambda x: broadcast_in_dim(x, (2, 3, 4), (1,)),
     lambda x: np.broadcast_to(x[None, :, None], (2, 3, 4)), [(3,)]),
    ("broadcast_size_one", lambda x: broadcast_in_dim(x, (3, 4), (0, 1)),
     lambda x: np.broadcast_to(x, (3, 4)), [(3, 1)]),
    ("broadcast_scalar", lambda x: broadcast_in_dim(x, (2, 3), ()),
     lambda x: np.broadcast_to(x, (2, 3)), [()]),
    ("broadcast_mixed", lambda x: broadcast_in_dim(x, (2, 4, 3), (0, -1)),
     lambda x: np.broadcast_to(x[:, None, :], (2, 4, 3)), [(1, 3)]),
    ("broadcast_identity", lambda x: broadcast_in_dim(x, (2, 3), (0, 1)),
     lambda x: x, [(2, 3)]),
    ("reshape", lambda x: reshape(x, (3, 2)), lambda x: x.reshape(3, 2), [(2, 3)]),
    ("reshape_infer", lambda x: reshape(x, (4, -1)), lambda x: x.reshape(4, -1), [(2, 3, 4)]),
    ("reshape_to_scalar", lambda x: reshape(x, ()), lambda x: x.reshape(()), [(1, 1)]),
    ("transpose", lambda x: transpose(x, (2, 0, 1)),
     lambda x: np.transpose(x, (2, 0, 1)), [(2, 3, 4)]),
    ("transpose_negative", lambda x: transpose(x, (-1, 0, 1)),
     lambda x: np.transpose(x, (2, 0, 1)), [(2, 3, 4)]),
    ("squeeze", lambda x: squeeze(x, (0, 2)), lambda x: np.squeeze(x, (0, 2)), [(1, 3, 1)]),
    ("squeeze_negative", lambda x: squeeze(x, -1), lambda x: np.squeeze(x, -1), [(2, 1)]),
    ("expand_dims", lambda x: expand_dims(x, (0, 3)),
     lambda x: np.expand_dims(x, (0, 3)), [(2, 3)]),
    ("expand_dims_negative", lambda x: expand_dims(x, (-1,)),
     lambda x: np.expand_dims(x, -1), [(2, 3)]),
    ("expand_dims_scalar", lambda x: expand_dims(x, (0, 1)),
     lambda x: np.expand_dims(x, (0, 1)), [()]),
    ("concatenate_3", lambda a, b, c: concatenate([a, b, c], 0),
     lambda a, b, c: np.concatenate([a, b, c], 0), [(2, 3), (1, 3), (4, 3)]),
    ("concatenate_last", lambda a, b: concatenate((a, b), -1),
     lambda a, b: np.concatenate([a, b], -1), [(2, 1), (2, 3)]),
    ("concatenate_1", lambda a: concatenate([a], 1),
     lambda a: a, [(2, 3)]),
]


@pytest.mark.parametrize("name,fn,ref,shapes", CASES, ids=case_ids(CASES))
def test_values_match_numpy(name, fn, ref, shapes):
    args = rand(*shapes)
    out, expected = fn(*args), ref(*args)
    assert out.shape == expected.shape and out.dtype == expected.dtype
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("name,fn,ref,shapes", CASES, ids=case_ids(CASES))
def test_grads(name, fn, ref, shapes):
    check_grads(fn, rand(*shapes), order=2, modes=("fwd", "rev"))
    check_grads(squared(fn), rand(*shapes, seed=1), order=2, modes=("fwd", "rev"))


@pytest.mark.parametrize("name,fn,ref,shapes", CASES, ids=case_ids(CASES))
def test_float32_preserved(name, fn, ref, shapes):
    args = tuple(a.astype(np.float32) for a in rand(*shapes))
    out, pullback = fx.vjp(fn, *args)
    assert out.dtype == np.float32
    cts = pullback(np.ones(out.shape, np.float32))
    assert all(ct.dtype == np.float32 for ct in cts)
    _, t_out = fx.jvp(fn, args, args)
    assert t_out.dtype == np.float32


@pytest.mark.parametrize("name,fn,ref,shapes", CASES, ids=case_ids(CASES))
def test_params_are_hashable(name, fn, ref, shapes):
    program = fx.make_jaxpr(fn)(*rand(*shapes))
    for eqn in program.eqns:
        hash(tuple(eqn.params.items()))


def test_broadcast_transpose_sums_expanded_axes():
    x = np.arange(3.0).reshape(1, 3)
    _, pullback = fx.vjp(lambda x: broadcast_in_dim(x, (2, 4, 3), (0, 2)), x)
    ct = np.arange(24.0).reshape(2, 4, 3)
    np.testing.assert_allclose(pullback(ct)[0], ct.sum(axis=(0, 1)).reshape(1, 3))


def test_concatenate_transpose_slices_pieces():
    a, b, c = rand((2, 3), (1, 3), (4, 3))
    _, pullback = fx.vjp(lambda a, b, c: concatenate([a, b, c], 0), a, b, c)
    ct = np.arange(21.0).reshape(7, 3)
    for got, want in zip(pullback(ct), (ct[:2], ct[2:3], ct[3:])):
        np.testing.assert_array_equal(got, want)


def test_concatenate_with_constant_operand():
    a, b = rand((2, 3), (1, 3))
    check_grads(squared(lambda a: concatenate([b, a, b], 0)), (a,), order=2)


def test_wrappers_normalise_params():
    x = np.ones((2, 1, 3))
    program = fx.make_jaxpr(lambda x: transpose(squeeze(x, [-2]), [-1, 0]))(x)
    assert [e.params for e in program.eqns] == [{"dimensions": (1,)}, {"permutation": (1, 0)}]
    assert "reshape[new_sizes=(3, 2)]" in str(fx.make_jaxpr(lambda x: reshape(x, [3, -1]))(x))


# convert_element_type ----------------------------------------------------------

def test_convert_values_and_dtypes():
    x = np.array([1.7, -2.2, 0.4])
    for dtype in (np.float32, np.int64, np.bool_, np.complex128):
        out = convert_element_type(x, dtype)
        assert out.dtype == dtype
        np.testing.assert_array_equal(out, x.astype(dtype))


def test_convert_float_grads():
    x32 = rand((3,))[0].astype(np.float32)
    check_grads(squared(lambda x: convert_element_type(x, np.float64)), (x32,), order=2)
    x64 = rand((3,))[0]
    f = squared(lambda x: convert_element_type(convert_element_type(x, np.float32),
                                                np.float64))
    check_grads(f, (x64,), order=2, eps=1e-2, tol=1e-3)


def test_convert_down_and_back_keeps_float32_grad():
    x = np.float64(1.5)
    g = fx.grad(lambda x: mul(convert_element_type(x, np.float32), 3.0))(x)
    assert g.dtype == np.float64 and g == 3.0
    _, pullback = fx.vjp(lambda x: convert_element_type(x, np.float64), np.float32(2.0))
    assert pullback(np.float64(5.0))[0].dtype == np.float32


def test_convert_to_int_has_zero_tangent():
    x = np.array([1.7, -2.2])

    def round_trip(x):
        return convert_element_type(convert_element_type(x, np.int64), np.float64)

    _, t = fx.jvp(round_trip, (x,), (np.ones(2),))
    np.testing.assert_array_equal(t, np.zeros(2))
    np.testing.assert_array_equal(fx.vjp(round_trip, x)[1](np.ones(2))[0], np.zeros(2))
    _, t_int = fx.jvp(lambda x: convert_element_type(x, np.int32), (x,), (np.ones(2),))
    assert t_int.shape == (2,) and not np.any(t_int)


def test_convert_same_dtype_binds_nothing():
    x = np.ones(3)
    assert convert_element_type(x, np.float64) is x
    assert fx.make_jaxpr(lambda x: convert_element_type(x, float))(x).eqns == []


# shape errors ---------------------------------------------------------------------

ERRORS = [
    ("broadcast_bad_size", lambda: broadcast_in_dim(np.ones(3), (2, 4), (1,)),
     r"broadcast_in_dim: operand dimension of size 3 cannot broadcast to size 4.*\(3,\)"),
    ("broadcast_dims_count", lambda: broadcast_in_dim(np.ones((2, 3)), (2, 3), (0,)),
     r"broadcast_in_dim: need one broadcast dimension per operand dimension.*\(2, 3\)"),
    ("broadcast_not_increasing", lambda: broadcast_in_dim(np.ones((2, 2)), (2, 2), (1, 0)),
     r"broadcast_in_dim: broadcast_dimensions must be strictly increasing"),
    ("broadcast_negative_size", lambda: broadcast_in_dim(np.ones(()), (-2,), ()),
     r"broadcast_in_dim: target shape \(-2,\) has a negative size"),
    ("reshape_size", lambda: reshape(np.ones((2, 3)), (4, 2)),
     r"reshape: cannot reshape an array of shape \(2, 3\) \(6 elements\) into shape \(4, 2\)"),
    ("reshape_infer", lambda: reshape(np.ones((2, 3)), (4, -1)),
     r"reshape: cannot reshape an array of shape \(2, 3\).*\(4, -1\)"),
    ("transpose_perm", lambda: transpose(np.ones((2, 3)), (0, 0)),
     r"transpose: permutation \(0, 0\) is not a permutation .* shape \(2, 3\)"),
    ("squeeze_not_one", lambda: squeeze(np.ones((2, 3)), (0,)),
     r"squeeze: dimensions \(0,\) of shape \(2, 3\) do not have size 1"),
    ("squeeze_range", lambda: squeeze(np.ones((1, 3)), (5,)),
     r"squeeze: dimensions \(5,\) must be distinct axes in \[0, 2\) for shape \(1, 3\)"),
    ("expand_dims_repeat", lambda: expand_dims(np.ones(3), (0, 0)),
     r"expand_dims: dimensions \(0, 0\) must be distinct axes in \[0, 3\) for shape \(3,\)"),
    ("concatenate_shapes", lambda: concatenate([np.ones((2, 3)), np.ones((2, 4))], 0),
     r"concatenate: operand shapes \(2, 3\), \(2, 4\) must be equal except along dimension 0"),
    ("concatenate_rank", lambda: concatenate([np.ones((2, 3)), np.ones(3)], 0),
     r"concatenate: operand shapes \(2, 3\), \(3,\) must be equal except"),
    ("concatenate_dtype", lambda: concatenate([np.ones(2), np.ones(2, np.float32)], 0),
     r"concatenate: operand dtypes differ \(float64, float32\)"),
    ("concatenate_scalar", lambda: concatenate([np.ones(()), np.ones(())], 0),
     r"concatenate: dimension 0 is out of range for operand shapes \(\), \(\)"),
    ("concatenate_empty", lambda: concatenate([], 0), r"concatenate: needs at least one"),
    ("convert_complex", lambda: convert_element_type(np.ones(2, complex), np.float64),
     r"convert_element_type: cannot convert complex complex128 of shape \(2,\)"),
    ("float_axis", lambda: squeeze(np.ones((1, 2)), (0.0,)),
     r"squeeze: dimensions must be integers"),
    ("float_dimension", lambda: concatenate([np.ones(2)], 0.5),
     r"concatenate: dimension must be an integer"),
]


@pytest.mark.parametrize("name,thunk,message", ERRORS, ids=case_ids(ERRORS))
def test_shape_errors(name, thunk, message):
    with pytest.raises(FxTypeError, match=message):
        thunk()


def test_shape_errors_while_tracing_name_user_line():
    with pytest.raises(FxTypeError, match=r"reshape: .*\n  at test_shape.py:\d+"):
        fx.make_jaxpr(lambda x: reshape(x, (5,)))(np.ones(3))


# jit ---------------------------------------------------------------------------------
# Each test jits ONE function computing a whole table of cases: one numba compilation.

def _check_jit_cases(cases, rtol=1e-12):
    """check_jit of all `cases` (name -> (fn, args)) at once; a mismatch names its case."""
    names = sorted(cases)   # dict outputs flatten in sorted key order
    args = {n: cases[n][1] for n in names}
    try:
        check_jit(lambda a: {n: cases[n][0](*a[n]) for n in names}, (args,), rtol=rtol)
    except AssertionError as err:
        leaves = [n for n in names for _ in tree_flatten(cases[n][0](*args[n]))[0]]
        index = re.search(r"output (\d+)", str(err))
        raise AssertionError(f"case {leaves[int(index[1])] if index else '?'}: {err}") from None


# name, function, argument shapes: empty, size-1 and rank-0 operands
EDGE_CASES = [
    ("broadcast_to_empty", lambda x: broadcast_in_dim(x, (0, 3), (1,)), [(3,)]),
    ("broadcast_empty", lambda x: broadcast_in_dim(x, (2, 0), (1,)), [(0,)]),
    ("broadcast_scalar_to_scalar", lambda x: broadcast_in_dim(x, (), ()), [()]),
    ("broadcast_scalar_to_one", lambda x: broadcast_in_dim(x, (1,), ()), [()]),
    ("reshape_empty", lambda x: reshape(x, (3, 0)), [(0, 3)]),
    ("reshape_scalar_to_matrix", lambda x: reshape(x, (1, 1)), [()]),
    ("reshape_scalar_to_scalar", lambda x: reshape(x, ()), [()]),
    ("reshape_one_to_scalar", lambda x: reshape(x, ()), [(1,)]),
    ("transpose_empty", lambda x: transpose(x, (1, 2, 0)), [(0, 2, 3)]),
    ("transpose_scalar", lambda x: transpose(x, ()), [()]),
    ("transpose_vector", lambda x: transpose(x, (0,)), [(3,)]),
    ("transpose_2d", lambda x: transpose(x, (1, 0)), [(3, 5)]),
    ("squeeze_to_scalar", lambda x: squeeze(x, (0, 1)), [(1, 1)]),
    ("squeeze_empty", lambda x: squeeze(x, (1,)), [(0, 1)]),
    ("expand_dims_empty", lambda x: expand_dims(x, (1,)), [(0,)]),
    ("concatenate_empty_piece", lambda a, b: concatenate([a, b], 1), [(2, 0), (2, 3)]),
    ("concatenate_all_empty", lambda a, b: concatenate([a, b], 0), [(0,), (0,)]),
    ("concatenate_size_one", lambda a, b: concatenate([a, b], 0), [(1,), (1,)]),
]


def _table_cases(dtype, names=None, scale=1.0):
    """The value cases of CASES and EDGE_CASES (those in `names`) on `dtype` arguments."""
    table = [(name, fn, shapes) for name, fn, _, shapes in CASES] + EDGE_CASES
    return {name: (fn, tuple(np.asarray(a * scale, dtype) for a in rand(*shapes, seed=k)))
            for k, (name, fn, shapes) in enumerate(table) if names is None or name in names}


# within int8's range: out-of-range float-to-int casts are undefined, in numpy too
FLOATS = np.array([[-2.7, -0.5, -0.0, 0.0], [0.5, 1.5, 2.5, 127.9], [-128.9, 3.9, -3.9, 7.0]])
INTS = np.array([[0, 1, -1, 2], [-128, 127, 300, -300], [2**40, -2**40, 2**31, 5]])


def _conversion_cases(x, targets):
    """Conversions of the array `x` (and of one element, a scalar) to each target."""
    cases = {}
    for target in targets:
        f = lambda a, t=target: convert_element_type(a, t)   # noqa: E731
        name = f"convert {x.dtype}->{np.dtype(target)}"
        cases[name], cases[f"{name} ()"] = (f, (x,)), (f, (x[1, 2],))
    return cases


# one case of each primitive and the rank-0 paths: for the dtypes other than float64
SOME_CASES = ("broadcast_mixed", "broadcast_scalar", "reshape_to_scalar",
              "reshape_scalar_to_matrix", "transpose", "squeeze", "squeeze_to_scalar",
              "expand_dims_scalar", "concatenate_last")


@pytest.mark.parametrize("dtype, other, names", [(np.float64, np.float32, None),
                                                 (np.float32, np.float64, SOME_CASES)])
def test_jit_matches_eager_floats(dtype, other, names):
    cases = _table_cases(dtype, names)
    cases.update(_conversion_cases(FLOATS.astype(dtype), [other, np.int64, np.int32, np.int8,
                                                          np.bool_, np.complex128]))
    cases["convert nan->bool"] = (lambda a: convert_element_type(a, bool),
                                  (np.array([np.nan, -np.nan, np.inf], dtype),))
    _check_jit_cases(cases)


def test_jit_matches_eager_integers_and_bools():
    cases = {}
    for dtype in (np.int64, np.int32, np.bool_):
        cases.update({f"{name} {np.dtype(dtype)}": case for name, case
                      in _table_cases(dtype, SOME_CASES, scale=3.0).items()})
    cases.update(_conversion_cases(INTS, [np.float64, np.float32, np.int32, np.int8, np.uint8,
                                          np.bool_]))
    cases.update(_conversion_cases(INTS.astype(np.int8), [np.int64, np.float32]))
    cases.update(_conversion_cases(INTS != 0, [np.int64, np.float64, np.int8]))
    _check_jit_cases(cases, rtol=0)


def _sum_of_squares(fn):
    def f(*args):
        y = fn(*args)
        return reduce_sum(mul(y, y), tuple(range(aval_of(y).ndim)))
    return f


def _derivative_cases():
    """Gradients of every case (their VJPs are the transposes) and a few JVPs."""
    cases = {}
    for k, (name, fn, _, shapes) in enumerate(CASES):
        args = rand(*shapes, seed=k)
        argnums = tuple(range(len(shapes)))
        cases[f"{name} grad"] = (fx.grad(_sum_of_squares(fn), argnums=argnums), args)
        if name in SOME_CASES:
            tangents = rand(*shapes, seed=k + 100)
            cases[f"{name} jvp"] = (lambda *a, fn=fn, t=tangents: fx.jvp(fn, a, t)[1], args)
    x = rand((2, 3))[0]
    for name, f in [("to f32", lambda a: convert_element_type(a, np.float32)),
                    ("round trip", lambda a: convert_element_type(
                        convert_element_type(a, np.float32), np.float64))]:
        cases[f"convert {name} jvp"] = (lambda a, f=f: fx.jvp(f, (a,), (a,))[1], (x,))
        cases[f"convert {name} vjp"] = (lambda a, f=f: fx.vjp(f, a)[1](f(a)), (x,))
    return cases


def test_jit_of_derivative_programs():
    _check_jit_cases(_derivative_cases())


# vmap ----------------------------------------------------------------------------------
# vmap against a Python loop over the examples: every non-empty subset of the operands
# mapped, along the first axis, the last axis and a negative axis; the batched program
# must not grow with the batch size (no loop fallback).



@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name,fn,ref,shapes", CASES, ids=case_ids(CASES))
def test_vmap_matches_loop(name, fn, ref, shapes, dtype):
    make_args = lambda seed: tuple(a.astype(dtype) for a in rand(*shapes, seed=seed))
    check_vmap(fn, make_args, rtol=0)


@pytest.mark.parametrize("target", [np.float32, np.int64, np.bool_, np.complex128])
@pytest.mark.parametrize("shape", [(2, 3), ()], ids=str)
def test_convert_vmap_matches_loop(shape, target):
    make_args = lambda seed: (rand(shape, seed=seed)[0],)
    check_vmap(lambda x: convert_element_type(x, target), make_args, rtol=0)


@pytest.mark.parametrize("name,fn,ref,shapes", CASES, ids=case_ids(CASES))
def test_vmap_along_the_first_axis_adds_no_equations(name, fn, ref, shapes):
    """Each primitive batched along axis 0 is that primitive alone: no transposes."""
    args = rand(*shapes)
    batched = [np.stack([a, a]) for a in args]
    assert (len(fx.make_jaxpr(fx.vmap(fn))(*batched).eqns)
            == len(fx.make_jaxpr(fn)(*args).eqns))


def test_vmap_along_the_last_axis_of_reshapes_adds_no_transposes():
    chain = lambda x: expand_dims(squeeze(reshape(x, (3, 1, 2)), (1,)), (0,))
    x = rand((2, 3, 5))[0]
    program = fx.make_jaxpr(fx.vmap(chain, in_axes=-1, out_axes=-1))(x)
    assert [e.prim.name for e in program.eqns] == ["reshape", "squeeze", "expand_dims"]
    np.testing.assert_array_equal(fx.vmap(chain, in_axes=-1, out_axes=-1)(x),
                                  np.stack([chain(x[..., k]) for k in range(5)], -1))


def _all_shape(x, y):
    """Every shape primitive in a chain, on x of shape (2, 3) and y of shape (1, 3)."""
    a = transpose(concatenate([x, y], 0), (1, 0))                         # (3, 3)
    b = broadcast_in_dim(expand_dims(reshape(a, (9,)), (0,)), (2, 9), (0, 1))
    c = squeeze(expand_dims(b, (1,)), (1,))                                 # (2, 9)
    return mul(c, convert_element_type(convert_element_type(c, np.float32), np.float64))


def _summed(fn):
    def f(*args):
        y = fn(*args)
        return reduce_sum(y, tuple(range(aval_of(y).ndim)))
    return f


def test_vmap_of_grad():
    xs, y = rand((5, 2, 3), (1, 3), seed=40)
    grad = fx.grad(_summed(_all_shape), argnums=(0, 1))
    gx, gy = fx.vmap(grad, in_axes=(0, None))(xs, y)
    expected = [grad(x, y) for x in xs]
    np.testing.assert_allclose(gx, np.stack([g for g, _ in expected]), rtol=1e-12)
    np.testing.assert_allclose(gy, np.stack([g for _, g in expected]), rtol=1e-12)


def test_grad_of_vmap():
    xs, y = rand((2, 3, 5), (1, 3), seed=41)
    batched = _summed(fx.vmap(_all_shape, in_axes=(-1, None)))
    gx, gy = fx.grad(batched, argnums=(0, 1))(xs, y)
    per_example = [fx.grad(_summed(_all_shape), argnums=(0, 1))(xs[..., k], y) for k in range(5)]
    np.testing.assert_allclose(gx, np.stack([g for g, _ in per_example], -1), rtol=1e-12)
    np.testing.assert_allclose(gy, sum(g for _, g in per_example), rtol=1e-12)


def test_vmap_of_vmap():
    xs, ys = rand((4, 2, 3), (5, 1, 3), seed=42)
    out = fx.vmap(fx.vmap(_all_shape, in_axes=(0, None)), in_axes=(None, 0))(xs, ys)
    np.testing.assert_array_equal(out, np.array([[_all_shape(x, y) for x in xs] for y in ys]))


def test_jit_of_vmap():
    """Every case batched along axis 0, and a concatenation with a shared operand."""
    args = {name: [np.stack(a) for a in zip(*(rand(*shapes, seed=k) for k in range(3)))]
            for name, _, _, shapes in CASES}
    functions = {name: fn for name, fn, _, _ in CASES}

    def table(batched, shared):
        out = {name: functions[name](*batched[name]) for name in functions}
        out["concatenate shared"] = concatenate([batched["reshape"][0], shared], 0)
        return out
    check_jit(fx.vmap(table, in_axes=(0, None)), (args, rand((1, 3))[0]), rtol=0)
