"""Indexing primitives (slice, pad, gather, scatter_add): values against numpy,
derivatives to order 2 in both modes, float32 preservation, the slice/pad and
gather/scatter_add transpose pairs, and the shape-error messages; numba lowerings
against eager evaluation (every case, edge shapes and indices, integer and bool
operands, derivative programs)."""
import itertools
import re

import numpy as np
import pytest

import fxgrad as fx
from fxgrad.core.errors import FxTypeError
from fxgrad.core.ir import aval_of
from fxgrad.primitives.arith import mul
from fxgrad.primitives.indexing import gather, pad, scatter_add, static_slice
from fxgrad.primitives.reduce import reduce_sum
from fxgrad.test_util import check_grads, check_jit
from fxgrad.tree_util import tree_flatten

from .helpers import case_ids, rand, squared


def _np_pad(x, value, config):
    """Reference pad: interior padding by scattering into a filled array."""
    shape = [lo + hi + n + max(n - 1, 0) * k for n, (lo, hi, k) in zip(x.shape, config)]
    out = np.full(shape, value, x.dtype)
    out[tuple(slice(lo, lo + (n - 1) * (k + 1) + 1 if n else lo, k + 1)
              for n, (lo, hi, k) in zip(x.shape, config))] = x
    return out


def _np_scatter_add(operand, indices, updates, axis):
    out = operand.copy()
    np.add.at(out, (slice(None),) * axis + (np.clip(indices, 0, operand.shape[axis] - 1),),
              updates)
    return out


REPEATED = np.array([0, 2, 2, 4, 0, 2])
GRID = np.array([[0, 3], [1, 1], [3, 0]])
OUT_OF_RANGE = np.array([7, 0, -3, 2])
PAD_2D = ((0, 1, 1), (2, 0, 2))

# name, fxgrad function, numpy reference, argument shapes
CASES = [
    ("slice", lambda x: static_slice(x, (1, 0), (4, 6)), lambda x: x[1:4, 0:6], [(5, 6)]),
    ("slice_stride", lambda x: static_slice(x, (1,), (9,), (3,)), lambda x: x[1:9:3], [(10,)]),
    ("slice_strides_2d", lambda x: static_slice(x, (0, 1), (5, 6), (2, 3)),
     lambda x: x[0:5:2, 1:6:3], [(5, 7)]),
    ("slice_empty", lambda x: static_slice(x, (2,), (2,)), lambda x: x[2:2], [(4,)]),
    ("slice_scalar", lambda x: static_slice(x, (), ()), lambda x: x, [()]),
    ("pad", lambda x: pad(x, 0.5, ((1, 2, 0),)),
     lambda x: np.pad(x, (1, 2), constant_values=0.5), [(3,)]),
    ("pad_interior", lambda x: pad(x, -1.0, PAD_2D),
     lambda x: _np_pad(x, -1.0, PAD_2D), [(2, 3)]),
    ("pad_value_operand", lambda x, v: pad(x, v, PAD_2D),
     lambda x, v: _np_pad(x, v, PAD_2D), [(3, 2), ()]),
    ("pad_empty_axis", lambda x, v: pad(x, v, ((1, 1, 2), (0, 0, 0))),
     lambda x, v: np.full((2, 3), v), [(0, 3), ()]),
    ("gather_repeated", lambda x: gather(x, REPEATED, 0),
     lambda x: np.take(x, REPEATED, 0), [(5,)]),
    ("gather_2d_indices", lambda x: gather(x, GRID, 1),
     lambda x: np.take(x, GRID, 1), [(3, 4, 2)]),
    ("gather_negative_axis", lambda x: gather(x, GRID, -1),
     lambda x: np.take(x, GRID, -1), [(2, 4)]),
    ("gather_clipped", lambda x: gather(x, OUT_OF_RANGE, 0),
     lambda x: np.take(x, OUT_OF_RANGE, 0, mode="clip"), [(4, 2)]),
    ("gather_scalar_index", lambda x: gather(x, 2, 0), lambda x: x[2], [(4, 3)]),
    ("scatter_add_repeated", lambda op, up: scatter_add(op, REPEATED, up, 0),
     lambda op, up: _np_scatter_add(op, REPEATED, up, 0), [(5,), (6,)]),
    ("scatter_add_2d_indices", lambda op, up: scatter_add(op, GRID, up, 1),
     lambda op, up: _np_scatter_add(op, GRID, up, 1), [(2, 4), (2, 3, 2)]),
    ("scatter_add_clipped", lambda op, up: scatter_add(op, OUT_OF_RANGE, up, -1),
     lambda op, up: _np_scatter_add(op, OUT_OF_RANGE, up, 1), [(2, 4), (2, 4)]),
]


@pytest.mark.parametrize("name,fn,ref,shapes", CASES, ids=case_ids(CASES))
def test_values_match_numpy(name, fn, ref, shapes):
    args = rand(*shapes)
    out, expected = fn(*args), ref(*args)
    assert out.shape == expected.shape and out.dtype == expected.dtype
    np.testing.assert_allclose(out, expected, rtol=1e-15, atol=1e-15)


@pytest.mark.parametrize("name,fn,ref,shapes", CASES, ids=case_ids(CASES))
def test_grads(name, fn, ref, shapes):
    check_grads(fn, rand(*shapes), order=2, modes=("fwd", "rev"))
    check_grads(squared(fn), rand(*shapes, seed=1), order=2, modes=("fwd", "rev"))


@pytest.mark.parametrize("name,fn,ref,shapes", CASES, ids=case_ids(CASES))
def test_float32_preserved(name, fn, ref, shapes):
    args = tuple(np.asarray(a, np.float32) for a in rand(*shapes))
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


def test_slice_prints_as_slice():
    text = str(fx.make_jaxpr(lambda x: static_slice(x, [1], [9], [3]))(np.ones(10)))
    assert "slice[start_indices=(1,), limit_indices=(9,), strides=(3,)]" in text
    unit = fx.make_jaxpr(lambda x: static_slice(x, [1], [9], [1]))(np.ones(10))
    assert unit.eqns[0].params["strides"] is None


def test_slice_transpose_is_interior_pad():
    x = np.arange(10.0)
    _, pullback = fx.vjp(lambda x: static_slice(x, (1,), (9,), (3,)), x)
    np.testing.assert_array_equal(pullback(np.array([1.0, 2.0, 3.0]))[0],
                                  [0, 1, 0, 0, 2, 0, 0, 3, 0, 0])
    program = fx.make_jaxpr(lambda c: pullback(c))(np.ones(3))
    assert [e.prim.name for e in program.eqns] == ["pad"]


def test_pad_transpose_is_strided_slice():
    x = np.arange(6.0).reshape(2, 3)
    _, pullback = fx.vjp(lambda x: pad(x, 0.0, PAD_2D), x)
    ct = np.arange(36.0).reshape(4, 9)
    np.testing.assert_array_equal(pullback(ct)[0], ct[0:3:2, 2:9:3])


def test_pad_value_gradient_counts_padded_positions():
    x, v = np.ones((2, 3)), np.float64(0.5)
    g = fx.grad(lambda v: _sum(pad(x, v, PAD_2D)))(v)
    assert g == 4 * 9 - 6
    _, t = fx.jvp(lambda v: pad(x, v, PAD_2D), (v,), (np.float64(1.0),))
    np.testing.assert_array_equal(t, _np_pad(np.zeros((2, 3)), 1.0, PAD_2D))


def test_pad_of_scalar_has_no_padded_positions():
    g = fx.grad(lambda x, v: pad(x, v, ()), argnums=(0, 1))(np.float64(2.0), np.float64(3.0))
    assert g == (1.0, 0.0)


def test_gather_transpose_accumulates_repeated_indices():
    x = np.arange(5.0)
    _, pullback = fx.vjp(lambda x: gather(x, REPEATED, 0), x)
    np.testing.assert_array_equal(pullback(np.ones(6))[0], [2, 0, 3, 0, 1])
    program = fx.make_jaxpr(lambda c: pullback(c))(np.ones(6))
    assert [e.prim.name for e in program.eqns] == ["scatter_add"]


def test_gather_grad_with_2d_indices():
    x = rand((3, 4))[0]
    g = fx.grad(lambda x: _sum(mul(gather(x, GRID, 1), 2.0)))(x)
    expected = np.zeros((3, 4))
    np.add.at(expected, (slice(None), GRID), 2.0)
    np.testing.assert_array_equal(g, expected)


def test_scatter_add_transpose_is_gather():
    op, up = rand((5,), (6,))
    _, pullback = fx.vjp(lambda op, up: scatter_add(op, REPEATED, up, 0), op, up)
    ct = np.arange(5.0)
    ct_op, ct_up = pullback(ct)
    np.testing.assert_array_equal(ct_op, ct)
    np.testing.assert_array_equal(ct_up, ct[REPEATED])


def test_scatter_add_with_constant_operand():
    up = rand((6,))[0]
    check_grads(squared(lambda up: scatter_add(np.ones(5), REPEATED, up, 0)), (up,), order=2)
    check_grads(squared(lambda op: scatter_add(op, REPEATED, up, 0)), (np.ones(5),), order=2)


def test_python_scalars_take_operand_dtype():
    x = np.ones(3, np.float32)
    assert pad(x, 0, ((1, 1, 0),)).dtype == np.float32
    assert scatter_add(x, [0], np.ones(1, np.float32), 0).dtype == np.float32
    assert pad(1, np.float32(0), ()).dtype == np.float32
    assert gather(x, [0, 1], 0).dtype == np.float32


def _sum(y):
    return reduce_sum(y, tuple(range(aval_of(y).ndim)))


# shape errors ---------------------------------------------------------------------

ERRORS = [
    ("slice_limit", lambda: static_slice(np.ones((2, 3)), (0, 0), (2, 4)),
     r"slice: need 0 <= start <= limit <= size in every dimension; got operand shape "
     r"\(2, 3\), start_indices \(0, 0\), limit_indices \(2, 4\)"),
    ("slice_reversed", lambda: static_slice(np.ones(3), (2,), (1,)),
     r"slice: need 0 <= start <= limit <= size.*\(3,\)"),
    ("slice_rank", lambda: static_slice(np.ones((2, 3)), (0,), (2,)),
     r"slice: need one start, limit and stride per dimension; got operand shape \(2, 3\)"),
    ("slice_stride", lambda: static_slice(np.ones(3), (0,), (3,), (0,)),
     r"slice: strides must be positive; got operand shape \(3,\).*strides \(0,\)"),
    ("pad_negative", lambda: pad(np.ones(3), 0.0, ((-1, 0, 0),)),
     r"pad: padding amounts must be non-negative; got operand shape \(3,\), padding_config"),
    ("pad_rank", lambda: pad(np.ones((2, 3)), 0.0, ((1, 1, 0),)),
     r"pad: need one \(lo, hi, interior\) triple per dimension; got operand shape \(2, 3\)"),
    ("pad_triple", lambda: pad(np.ones(3), 0.0, ((1, 1),)),
     r"pad: need one \(lo, hi, interior\) triple per dimension"),
    ("pad_value_shape", lambda: pad(np.ones(3), np.zeros(2), ((1, 1, 0),)),
     r"pad: padding_value must be a scalar of the operand's dtype float64, got f64\[2\]"),
    ("pad_value_dtype", lambda: pad(np.ones(3), np.float32(0), ((1, 1, 0),)),
     r"pad: padding_value must be a scalar .* got f32\[\]"),
    ("gather_float_indices", lambda: gather(np.ones(3), np.array([0.0]), 0),
     r"gather: indices must be integers; got operand shape \(3,\), indices f64\[1\], axis 0"),
    ("gather_axis", lambda: gather(np.ones((2, 3)), [0], 2),
     r"gather: axis is out of range; got operand shape \(2, 3\), indices i64\[1\], axis 2"),
    ("gather_scalar_operand", lambda: gather(np.ones(()), [0], 0),
     r"gather: axis is out of range; got operand shape \(\)"),
    ("gather_empty_axis", lambda: gather(np.ones((0, 2)), [0], 0),
     r"gather: cannot index into an empty axis; got operand shape \(0, 2\)"),
    ("scatter_add_updates_shape", lambda: scatter_add(np.ones((2, 4)), GRID, np.ones((2, 3)), 1),
     r"scatter_add: updates f64\[2,3\] must have the operand's dtype and shape \(2, 3, 2\) "
     r"\(operand shape \(2, 4\), indices shape \(3, 2\), axis 1\)"),
    ("scatter_add_updates_dtype",
     lambda: scatter_add(np.ones(3), [0], np.ones(1, np.float32), 0),
     r"scatter_add: updates f32\[1\] must have the operand's dtype"),
    ("scatter_add_float_indices", lambda: scatter_add(np.ones(3), [0.5], np.ones(1), 0),
     r"scatter_add: indices must be integers"),
    ("float_axis", lambda: gather(np.ones(3), [0], 0.0), r"gather: axis must be an integer"),
    ("float_start", lambda: static_slice(np.ones(3), (0.5,), (2,)),
     r"slice: start_indices must be integers"),
]


@pytest.mark.parametrize("name,thunk,message", ERRORS, ids=case_ids(ERRORS))
def test_shape_errors(name, thunk, message):
    with pytest.raises(FxTypeError, match=message):
        thunk()


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


# name, function, argument shapes: size-0 and size-1 operands, rank-0 and empty indices
EDGE_CASES = [
    ("slice_full", lambda x: static_slice(x, (0, 0), (2, 3)), [(2, 3)]),
    ("slice_one", lambda x: static_slice(x, (1, 2), (2, 3)), [(3, 4)]),
    ("slice_of_empty", lambda x: static_slice(x, (0, 1), (0, 3)), [(0, 4)]),
    ("pad_scalar", lambda x, v: pad(x, v, ()), [(), ()]),
    ("pad_nothing", lambda x, v: pad(x, v, ((0, 0, 0), (0, 0, 3))), [(2, 1), ()]),
    ("pad_empty_to_empty", lambda x, v: pad(x, v, ((0, 0, 1), (1, 1, 0))), [(2, 0), ()]),
    ("gather_scalar_result", lambda x: gather(x, 5, 0), [(4,)]),
    ("gather_empty_indices", lambda x: gather(x, np.zeros((0, 2), int), 1), [(3, 4)]),
    ("gather_from_empty", lambda x: gather(x, np.zeros(0, int), 0), [(0, 3)]),
    ("gather_size_one_axis", lambda x: gather(x, REPEATED, 1), [(2, 1)]),
    ("gather_int32_indices", lambda x: gather(x, GRID.astype(np.int32), 0), [(4, 2)]),
    ("scatter_add_scalar_index", lambda op, up: scatter_add(op, -1, up, 0), [(3,), ()]),
    ("scatter_add_row", lambda op, up: scatter_add(op, 9, up, 0), [(3, 2), (2,)]),
    ("scatter_add_empty_indices", lambda op, up: scatter_add(op, np.zeros(0, int), up, 0),
     [(3, 2), (0, 2)]),
]


def _table_cases(dtype, names=None, scale=1.0):
    """The value cases of CASES and EDGE_CASES (those in `names`) on `dtype` arguments."""
    table = [(name, fn, shapes) for name, fn, _, shapes in CASES] + EDGE_CASES
    return {name: (fn, tuple(np.asarray(a * scale, dtype) for a in rand(*shapes, seed=k)))
            for k, (name, fn, shapes) in enumerate(table) if names is None or name in names}


def _index_operand_cases(dtype):
    """Indices as kernel arguments (arrays and scalars) rather than constants."""
    x, up = np.asarray(rand((4, 3))[0], dtype), np.asarray(rand((2, 3, 3))[0], dtype)
    indices = np.array([[3, -1, 0], [9, 2, 2]])
    return {
        "gather operand indices": (lambda x, i: gather(x, i, 0), (x, indices)),
        "gather scalar index": (lambda x, i: gather(x, i, 1), (x, np.int64(7))),
        "gather int32 operand indices": (lambda x, i: gather(x, i, 1),
                                         (x, indices.astype(np.int32))),
        "scatter_add operand indices": (lambda x, i, u: scatter_add(x, i, u, 0),
                                        (x, indices, up)),
        "scatter_add scalar index": (lambda x, i, u: scatter_add(x, i, u, 0),
                                     (x, np.int32(-4), x[0])),
    }


# one case of each primitive (and the pads: their value operand has the dtype too)
SOME_CASES = ("slice_strides_2d", "pad", "pad_interior", "pad_value_operand", "pad_scalar",
              "gather_2d_indices", "gather_scalar_result", "scatter_add_clipped",
              "scatter_add_scalar_index")


@pytest.mark.parametrize("dtype, names", [(np.float64, None), (np.float32, SOME_CASES)])
def test_jit_matches_eager_floats(dtype, names):
    cases = _table_cases(dtype, names)
    cases.update(_index_operand_cases(dtype))
    _check_jit_cases(cases)


def test_jit_matches_eager_integers_and_bools():
    cases = _index_operand_cases(np.int64)
    for dtype in (np.int64, np.int32, np.bool_):
        cases.update({f"{name} {np.dtype(dtype)}": case for name, case
                      in _table_cases(dtype, SOME_CASES + ("scatter_add_repeated",),
                                      scale=3.0).items()})
    _check_jit_cases(cases, rtol=0)


def test_jit_outputs_never_alias_the_operand():
    x = np.arange(6.0)
    outs = fx.jit(lambda x: (static_slice(x, (0,), (6,)), static_slice(x, (1,), (5,)),
                             pad(x, 0.0, ((0, 0, 0),)),
                             scatter_add(x, np.zeros(0, int), np.zeros(0), 0)))(x)
    assert not any(np.shares_memory(out, x) for out in outs)


def _sum_of_squares(fn):
    def f(*args):
        y = fn(*args)
        return _sum(mul(y, y))
    return f


def _derivative_cases():
    """Gradients of every case (slices become pads, gathers scatter_adds, ...) and JVPs."""
    cases = {}
    for k, (name, fn, _, shapes) in enumerate(CASES):
        args = rand(*shapes, seed=k)
        argnums = tuple(range(len(shapes)))
        cases[f"{name} grad"] = (fx.grad(_sum_of_squares(fn), argnums=argnums), args)
        if name in SOME_CASES:
            tangents = rand(*shapes, seed=k + 100)
            cases[f"{name} jvp"] = (lambda *a, fn=fn, t=tangents: fx.jvp(fn, a, t)[1], args)
    return cases


def test_jit_of_derivative_programs():
    _check_jit_cases(_derivative_cases())


# vmap ---------------------------------------------------------------------------------
# Every case mapped over every set of its operands, at the first, the last and a negative
# axis, against a Python loop over the examples; programs must not grow with the batch
# (no loop over it); compositions with grad, jit and vmap.

def _with_indices(shapes, index_shape, n, index_dtype=np.int64):
    """Examples: float operands of `shapes`, integer indices (some outside [0, n),
    some repeated) as the second argument."""
    def make(seed):
        x, *rest = rand(*shapes, seed=seed)
        indices = np.random.default_rng(seed).integers(-2, n + 2, index_shape)
        return (x, np.asarray(indices).astype(index_dtype), *rest)
    return make


# name, function, example maker (seed -> argument tuple)
VMAP_CASES = [(name, fn, lambda seed, shapes=shapes: rand(*shapes, seed=seed))
              for name, fn, _, shapes in CASES] + [
    ("gather operand indices", lambda x, i: gather(x, i, 1),
     _with_indices([(3, 4, 2)], (3, 2), 4)),
    ("gather operand scalar index", lambda x, i: gather(x, i, 0), _with_indices([(4, 3)], (), 4)),
    ("gather uint8 indices", lambda x, i: gather(x, i, -1),
     _with_indices([(2, 5)], (4,), 5, np.uint8)),
    ("scatter_add operand indices", lambda op, i, up: scatter_add(op, i, up, 1),
     _with_indices([(2, 4), (2, 3, 2)], (3, 2), 4)),
    ("scatter_add operand scalar index", lambda op, i, up: scatter_add(op, i, up, 0),
     _with_indices([(3, 2), (2,)], (), 3)),
    ("scatter_add int32 indices", lambda op, i, up: scatter_add(op, i, up, 0),
     _with_indices([(4,), (5,)], (5,), 4, np.int32)),
]


def _in_axes_variants(ranks):
    """in_axes mapping every non-empty set of operands, at axis 0, last and negative."""
    operands = range(len(ranks))
    subsets = [set(c) for n in operands for c in itertools.combinations(operands, n + 1)]
    picks = (lambda r: 0, lambda r: r, lambda r: -2 if r else -1)
    return list(dict.fromkeys(tuple(pick(r) if k in subset else None for k, r in enumerate(ranks))
                              for subset in subsets for pick in picks))


def _per_example(examples, in_axes):
    """Each example's arguments; an unmapped operand is the first example's."""
    return [tuple(examples[0][k] if axis is None else arg for k, (arg, axis)
                  in enumerate(zip(ex, in_axes))) for ex in examples]


def _stacked(examples, in_axes):
    """The arguments of the mapped function: operands stacked along their in_axes."""
    return tuple(examples[0][k] if axis is None else np.stack([ex[k] for ex in examples], axis)
                 for k, axis in enumerate(in_axes))


def _cast_floats(args, dtype):
    return tuple(np.asarray(a, dtype) if np.asarray(a).dtype.kind == "f" else a for a in args)


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 1e-6)])
@pytest.mark.parametrize("name,fn,make", VMAP_CASES, ids=case_ids(VMAP_CASES))
def test_vmap_matches_loop(name, fn, make, dtype, rtol):
    examples = [_cast_floats(make(seed), dtype) for seed in range(3)]
    for in_axes in _in_axes_variants([np.ndim(a) for a in examples[0]]):
        expected = np.stack([fn(*args) for args in _per_example(examples, in_axes)])
        out = fx.vmap(fn, in_axes=in_axes)(*_stacked(examples, in_axes))
        assert (out.shape, out.dtype) == (expected.shape, expected.dtype), in_axes
        np.testing.assert_allclose(out, expected, rtol=rtol, atol=rtol,
                                   err_msg=f"in_axes={in_axes}")


@pytest.mark.parametrize("name,fn,make", VMAP_CASES, ids=case_ids(VMAP_CASES))
def test_vmap_program_does_not_grow_with_the_batch(name, fn, make):
    for in_axes in _in_axes_variants([np.ndim(a) for a in make(0)]):
        programs = [fx.make_jaxpr(fx.vmap(fn, in_axes=in_axes))(
            *_stacked([make(seed) for seed in range(size)], in_axes)) for size in (2, 5)]
        assert len(programs[0].eqns) == len(programs[1].eqns), f"{in_axes}:\n{programs[1]}"


def test_vmap_of_gather_with_batched_indices_is_one_gather():
    x, indices = _stacked([_with_indices([(3, 4, 2)], (3, 2), 4)(s) for s in range(5)], (0, 0))
    program = fx.make_jaxpr(fx.vmap(lambda x, i: gather(x, i, 1)))(x, indices)
    assert [e.prim.name for e in program.eqns].count("gather") == 1, program


def test_vmap_of_pad_with_batched_value_selects_the_value():
    xs, values = np.ones((3, 2)), np.array([-1.0, 0.0, 2.0])
    out = fx.vmap(lambda x, v: pad(x, v, ((1, 1, 1),)))(xs, values)
    np.testing.assert_array_equal(out, [[v, 1, v, 1, v] for v in values])
    program = fx.make_jaxpr(fx.vmap(lambda v: pad(xs[0], v, ((1, 1, 1),))))(values)
    assert [e.prim.name for e in program.eqns][-1] == "select", program


COMPOSED_CASES = [c for c in VMAP_CASES if c[0] in
                  ("pad_value_operand", "gather operand indices", "scatter_add operand indices")]


@pytest.mark.parametrize("name,fn,make", COMPOSED_CASES, ids=case_ids(COMPOSED_CASES))
def test_vmap_of_grad_and_grad_of_vmap(name, fn, make):
    examples = [make(seed) for seed in range(4)]
    argnums = tuple(k for k, a in enumerate(examples[0]) if np.asarray(a).dtype.kind == "f")
    f = _sum_of_squares(fn)
    expected = [np.stack(g) for g in zip(*(fx.grad(f, argnums)(*ex) for ex in examples))]
    args, in_axes = _stacked(examples, (0,) * len(examples[0])), 0
    for grads in (fx.vmap(fx.grad(f, argnums), in_axes)(*args),
                  fx.grad(lambda *a: _sum(fx.vmap(f, in_axes)(*a)), argnums)(*args)):
        for g, e in zip(grads, expected):
            np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name,fn,make", COMPOSED_CASES, ids=case_ids(COMPOSED_CASES))
def test_vmap_of_vmap(name, fn, make):
    outer_axes, inner_axes = (0,) + (None,) * (len(make(0)) - 1), (-1,) * len(make(0))
    grid = [[make(10 * a + b) for b in range(3)] for a in range(2)]
    # rows[a][b]: the arguments of example (a, b); operands the outer vmap leaves
    # unmapped come from row 0
    rows = [[tuple(grid[0][b][k] if axis is None else grid[a][b][k]
                   for k, axis in enumerate(outer_axes)) for b in range(3)] for a in range(2)]
    expected = np.stack([np.stack([fn(*args) for args in row]) for row in rows])
    args = _stacked([_stacked(row, inner_axes) for row in rows], outer_axes)
    out = fx.vmap(fx.vmap(fn, inner_axes), outer_axes)(*args)
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)


def test_jit_of_vmap():
    cases = {}
    for k, (name, fn, make) in enumerate(VMAP_CASES):
        examples = [make(seed) for seed in range(3)]
        in_axes = tuple((0 if k % 2 else -1) for _ in examples[0])
        cases[name] = (fx.vmap(fn, in_axes), _stacked(examples, in_axes))
    _check_jit_cases(cases)
