"""Indexing: static slices, padding, and gather / scatter-add along one axis.

slice and pad are each other's transposes: slicing picks a strided box out of an
array and padding puts an array back into a box of zeros (interior padding fills
the gaps a stride leaves). gather is `np.take(x, indices, axis, mode="clip")`; its
transpose adds every cotangent entry back at the index it was taken from, which is
scatter_add (`np.add.at` on a copy), whose transpose is in turn a gather. Indices
are integer arrays and are never differentiated. The numba lowerings copy a strided
slice, and write explicit loops for the rest.

Under vmap, slice and pad take the batch axis whole, and gather / scatter_add with
unbatched indices index along the shifted axis. With batched indices the batch axis is
folded into the indexed one (a (B, n) block viewed as B * n entries) and example b's
indices, clipped to [0, n), are offset by b * n: one gather or scatter_add, whatever B.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from fxgrad.core.errors import FxTypeError
from fxgrad.core.ir import ShapedArray, aval_of
from fxgrad.core.trace import Primitive, Tracer
from fxgrad.interpreters.batching import batch_size, def_batch, move_axis
from fxgrad.interpreters.evaluation import def_impl, impl_rules
from fxgrad.interpreters.taylor import linear_jet
from fxgrad.interpreters.jvp import Zero, def_jvp, instantiate, is_zero, linear_jvp
from fxgrad.interpreters.transpose import def_transpose, is_undefined
from fxgrad.jit.lowering import Ctx, def_lowering, np_dtype
from fxgrad.primitives import arith
from fxgrad.primitives.common import coerce
from fxgrad.primitives.logic import select
from fxgrad.primitives.shape import (as_int, as_operand, broadcast_in_dim, canonical_axis,
                                     convert_element_type, def_shape_rule, int_tuple,
                                     loop_nest, new_array, reshape)


# ---------------------------------------------------------------- slice

slice_p = Primitive("slice")


def static_slice(x: Any, start_indices: Sequence[int], limit_indices: Sequence[int],
                 strides: Sequence[int] | None = None) -> Any:
    """`x[start:limit:stride, ...]` with one non-negative start/limit/stride per axis."""
    start = int_tuple(start_indices, "slice: start_indices")
    limit = int_tuple(limit_indices, "slice: limit_indices")
    steps = None if strides is None else int_tuple(strides, "slice: strides")
    if steps is not None and all(k == 1 for k in steps):
        steps = None
    return slice_p.bind(as_operand(x), start_indices=start, limit_indices=limit,
                        strides=steps)


def _slices(start: Sequence[int], limit: Sequence[int], strides: Sequence[int] | None
            ) -> tuple[slice, ...]:
    strides = strides or (1,) * len(start)
    return tuple(slice(s, l, k) for s, l, k in zip(start, limit, strides))


@def_impl(slice_p)
def _slice_impl(x: np.ndarray, start_indices: tuple[int, ...], limit_indices: tuple[int, ...],
                strides: tuple[int, ...] | None) -> np.ndarray:
    return x[_slices(start_indices, limit_indices, strides)].copy()


@def_shape_rule(slice_p)
def _slice_shape(x: ShapedArray, start_indices: tuple[int, ...], limit_indices: tuple[int, ...],
                 strides: tuple[int, ...] | None) -> ShapedArray:
    steps = strides or (1,) * x.ndim
    where = (f"operand shape {x.shape}, start_indices {start_indices}, limit_indices "
             f"{limit_indices}, strides {strides}")
    if not len(start_indices) == len(limit_indices) == len(steps) == x.ndim:
        raise FxTypeError(f"slice: need one start, limit and stride per dimension; got {where}")
    if any(not 0 <= s <= l <= n for s, l, n in zip(start_indices, limit_indices, x.shape)):
        raise FxTypeError(f"slice: need 0 <= start <= limit <= size in every dimension; "
                          f"got {where}")
    if any(k < 1 for k in steps):
        raise FxTypeError(f"slice: strides must be positive; got {where}")
    sizes = [-(-(l - s) // k) for s, l, k in zip(start_indices, limit_indices, steps)]
    return ShapedArray(sizes, x.dtype)


linear_jvp(slice_p)
linear_jet(slice_p)


@def_transpose(slice_p)
def _slice_transpose(ct: Any, x: Any, start_indices: tuple[int, ...],
                     limit_indices: tuple[int, ...], strides: tuple[int, ...] | None) -> Any:
    steps = strides or (1,) * x.aval.ndim
    config = []
    for n, s, k, m in zip(x.aval.shape, start_indices, steps, aval_of(ct).shape):
        used = m + (m - 1) * (k - 1) if m else 0     # extent of the picked elements
        config.append((s, n - s - used, k - 1))
    return [pad(ct, 0, tuple(config))]


@def_lowering(slice_p)
def _slice_lowering(ctx: Ctx, x: str, start_indices: tuple[int, ...],
                    limit_indices: tuple[int, ...], strides: tuple[int, ...] | None) -> None:
    if not start_indices:
        ctx.emit(f"{ctx.outs[0]} = {x}")
        return
    index = _index_text(_slices(start_indices, limit_indices, strides))
    ctx.emit(f"{ctx.outs[0]} = {x}[{index}].copy()")   # copy(): C-contiguous, not a view


def _index_text(slices: Sequence[slice]) -> str:
    """`slices` as Python source, e.g. '1:9:3, 0:4'."""
    def one(s: slice) -> str:
        return f"{s.start}:{s.stop}" + (f":{s.step}" if s.step not in (None, 1) else "")
    return ", ".join(one(s) for s in slices)


def _inserted(values: tuple[Any, ...], at: int, value: Any) -> tuple[Any, ...]:
    return values[:at] + (value,) + values[at:]


@def_batch(slice_p)
def _slice_batch(args: Sequence[Any], dims: Sequence[int | None],
                 start_indices: tuple[int, ...], limit_indices: tuple[int, ...],
                 strides: tuple[int, ...] | None) -> tuple[Any, int]:
    (x,), (d,) = args, dims
    steps = None if strides is None else _inserted(strides, d, 1)
    return static_slice(x, _inserted(start_indices, d, 0),
                        _inserted(limit_indices, d, aval_of(x).shape[d]), steps), d


# ---------------------------------------------------------------- pad

pad_p = Primitive("pad")


def pad(x: Any, padding_value: Any, padding_config: Sequence[Sequence[int]]) -> Any:
    """`x` with (lo, hi, interior) elements of the scalar `padding_value` added per axis."""
    x, padding_value = coerce(x, padding_value)
    config = tuple(int_tuple(c, "pad: padding_config") for c in padding_config)
    return pad_p.bind(x, padding_value, padding_config=config)


def _interior_slices(shape: Sequence[int], config: Sequence[Sequence[int]]) -> tuple[slice, ...]:
    """Where the operand's elements sit inside the padded array."""
    return tuple(slice(lo, n - hi, interior + 1) for n, (lo, hi, interior) in zip(shape, config))


def _pad_impl(x: np.ndarray, padding_value: np.ndarray,
              padding_config: tuple[tuple[int, int, int], ...]) -> np.ndarray:
    shape = _padded_shape(x.shape, padding_config)
    out = np.full(shape, padding_value, x.dtype)
    out[_interior_slices(shape, padding_config)] = x
    return out


impl_rules[pad_p] = _pad_impl


def _padded_shape(shape: Sequence[int], config: Sequence[Sequence[int]]) -> tuple[int, ...]:
    return tuple(lo + hi + n + max(n - 1, 0) * interior
                 for n, (lo, hi, interior) in zip(shape, config))


@def_shape_rule(pad_p)
def _pad_shape(x: ShapedArray, padding_value: ShapedArray,
               padding_config: tuple[tuple[int, ...], ...]) -> ShapedArray:
    where = f"operand shape {x.shape}, padding_config {padding_config}"
    if padding_value.shape != () or padding_value.dtype != x.dtype:
        raise FxTypeError(f"pad: padding_value must be a scalar of the operand's dtype "
                          f"{x.dtype.name}, got {padding_value.str_short()}; {where}")
    if len(padding_config) != x.ndim or any(len(c) != 3 for c in padding_config):
        raise FxTypeError(f"pad: need one (lo, hi, interior) triple per dimension; got {where}")
    if any(v < 0 for c in padding_config for v in c):
        raise FxTypeError(f"pad: padding amounts must be non-negative; got {where}")
    return ShapedArray(_padded_shape(x.shape, padding_config), x.dtype)


@def_jvp(pad_p)
def _pad_jvp(primals: Any, tangents: Any, padding_config: Any) -> Any:
    (x, padding_value), (x_dot, value_dot) = primals, tangents
    out = pad(x, padding_value, padding_config)
    if is_zero(value_dot):
        return out, pad(x_dot, 0, padding_config)
    return out, pad(instantiate(x_dot), value_dot, padding_config)


@def_transpose(pad_p)
def _pad_transpose(ct: Any, x: Any, padding_value: Any, padding_config: Any) -> Any:
    shape = aval_of(ct).shape
    starts = [lo for lo, _, _ in padding_config]
    limits = [n - hi for n, (_, hi, _) in zip(shape, padding_config)]
    strides = [interior + 1 for _, _, interior in padding_config]
    ct_x = static_slice(ct, starts, limits, strides)
    ct_value = None
    if is_undefined(padding_value):
        ct_value = _sum_outside(ct, ct_x, padding_value.aval)
    return [ct_x if is_undefined(x) else None, ct_value]


@def_lowering(pad_p)
def _pad_lowering(ctx: Ctx, x: str, padding_value: str,
                  padding_config: tuple[tuple[int, int, int], ...]) -> None:
    in_shape, out_aval, out = ctx.in_avals[0].shape, ctx.out_aval, ctx.outs[0]
    if not in_shape:
        ctx.emit(f"{out} = {x}")
        return
    ctx.emit(f"{out} = np.full({out_aval.shape!r}, {padding_value}, "
             f"{np_dtype(out_aval.dtype)})")
    with loop_nest(ctx, in_shape) as i:
        target = [_affine(lo, interior + 1, j) for j, (lo, _, interior) in zip(i, padding_config)]
        ctx.emit(f"{out}[{', '.join(target)}] = {x}[{', '.join(i)}]")


def _affine(offset: int, step: int, i: str) -> str:
    """Source text of `offset + step * i`, without the unit terms."""
    scaled = i if step == 1 else f"{step} * {i}"
    return scaled if offset == 0 else f"{offset} + {scaled}"


def _sum_outside(ct: Any, ct_inside: Any, value_aval: ShapedArray) -> Any:
    """Sum of the padded positions of `ct`: everything minus the operand's positions."""
    if aval_of(ct).ndim == 0:
        return Zero(value_aval)
    from fxgrad.primitives.arith import sub
    from fxgrad.primitives.reduce import reduce_sum
    total = reduce_sum(ct, tuple(range(aval_of(ct).ndim)))
    return sub(total, reduce_sum(ct_inside, tuple(range(aval_of(ct).ndim))))


linear_jet(pad_p)


@def_batch(pad_p)
def _pad_batch(args: Sequence[Any], dims: Sequence[int | None],
               padding_config: tuple[tuple[int, int, int], ...]) -> tuple[Any, int]:
    (x, padding_value), (x_dim, value_dim) = args, dims
    if value_dim is None:
        return pad(x, padding_value, _inserted(padding_config, x_dim, (0, 0, 0))), x_dim
    # One value per example: pad with zeros, then select each example's value at the
    # padded positions (a constant mask).
    at = 0 if x_dim is None else x_dim
    x = move_axis(x, x_dim, at, batch_size(args, dims))
    config = _inserted(padding_config, at, (0, 0, 0))
    padded = pad(x, 0, config)
    is_padding = _pad_impl(np.zeros(aval_of(x).shape, bool), np.bool_(True), config)
    values = broadcast_in_dim(padding_value, aval_of(padded).shape, (at,))
    return select(is_padding, values, padded), at


# ---------------------------------------------------------------- gather

gather_p = Primitive("gather")


def gather(x: Any, indices: Any, axis: int) -> Any:
    """`np.take(x, indices, axis, mode="clip")`: pick entries of `x` along `axis`."""
    x = as_operand(x)
    indices = indices if isinstance(indices, Tracer) else np.asarray(indices)
    axis = canonical_axis(as_int(axis, "gather: axis"), aval_of(x).ndim)
    return gather_p.bind(x, indices, axis=axis)


impl_rules[gather_p] = lambda x, indices, axis: np.take(x, indices, axis, mode="clip")


def _check_indexed_axis(prim: Primitive, x: ShapedArray, indices: ShapedArray, axis: int) -> None:
    where = f"operand shape {x.shape}, indices {indices.str_short()}, axis {axis}"
    if indices.dtype.kind not in "iu":
        raise FxTypeError(f"{prim.name}: indices must be integers; got {where}")
    if not 0 <= axis < x.ndim:
        raise FxTypeError(f"{prim.name}: axis is out of range; got {where}")
    if x.shape[axis] == 0 and indices.size:
        raise FxTypeError(f"{prim.name}: cannot index into an empty axis; got {where}")


def _gathered_shape(x: ShapedArray, indices: ShapedArray, axis: int) -> tuple[int, ...]:
    return x.shape[:axis] + indices.shape + x.shape[axis + 1:]


@def_shape_rule(gather_p)
def _gather_shape(x: ShapedArray, indices: ShapedArray, axis: int) -> ShapedArray:
    _check_indexed_axis(gather_p, x, indices, axis)
    return ShapedArray(_gathered_shape(x, indices, axis), x.dtype)


@def_jvp(gather_p)
def _gather_jvp(primals: Any, tangents: Any, axis: int) -> Any:
    (x, indices), (x_dot, _) = primals, tangents
    out = gather(x, indices, axis)
    if is_zero(x_dot):
        return out, Zero(aval_of(out))
    return out, gather(x_dot, indices, axis)


@def_transpose(gather_p)
def _gather_transpose(ct: Any, x: Any, indices: Any, axis: int) -> Any:
    zeros = np.zeros(x.aval.shape, x.aval.dtype)
    return [scatter_add(zeros, indices, ct, axis), None]


# gather and scatter_add lower to loops over (before, index, after) views of their
# arrays: the axis splits the operand into a (pre, n, post) block; unit pre and post
# dimensions are left out.

def _blocks(shape: tuple[int, ...], axis: int) -> tuple[int, int, int]:
    return (int(np.prod(shape[:axis], dtype=np.int64)), shape[axis],
            int(np.prod(shape[axis + 1:], dtype=np.int64)))


def _block_view(ctx: Ctx, x: str, shape: tuple[int, ...], pre: int, mid: int,
                post: int) -> str:
    """`x` (of `shape`) viewed as a (pre, mid, post) block, emitting a reshape if needed."""
    block = tuple(d for d, keep in ((pre, pre != 1), (mid, True), (post, post != 1)) if keep)
    if block == shape:
        return x
    view = ctx.fresh("b")
    ctx.emit(f"{view} = {x}.reshape({block!r})")
    return view


def _emit_indexed_loops(ctx: Ctx, indices: str, pre: int, n: int, post: int,
                        statement: Callable[[str, str], str]) -> None:
    """Loops over the (pre, indices.size, post) block, emitting `statement(at_j, at_k)`
    where at_j indexes that block and at_k the (pre, n, post) one at the index j
    clipped to [0, n). A rank-0 `indices` is a scalar."""
    index_aval = ctx.in_avals[1]
    j, k = ctx.fresh("j"), ctx.fresh("k")
    index = indices
    if index_aval.ndim:
        index = f"{_block_view(ctx, indices, index_aval.shape, 1, index_aval.size, 1)}[{j}]"
    with loop_nest(ctx, [pre] if pre != 1 else []) as outer:
        ctx.emit(f"for {j} in range({index_aval.size}):")
        with ctx.indented():
            ctx.emit(f"{k} = min(max(np.int64({index}), 0), {n - 1})")
            with loop_nest(ctx, [post] if post != 1 else []) as inner:
                ctx.emit(statement(", ".join(outer + [j] + inner), ", ".join(outer + [k] + inner)))


@def_lowering(gather_p)
def _gather_lowering(ctx: Ctx, x: str, indices: str, axis: int) -> None:
    x_shape, out_aval, out = ctx.in_avals[0].shape, ctx.out_aval, ctx.outs[0]
    pre, n, post = _blocks(x_shape, axis)
    if not out_aval.shape:    # a vector at a scalar index
        ctx.emit(f"{out} = {x}[min(max(np.int64({indices}), 0), {n - 1})]")
        return
    new_array(ctx)
    if not out_aval.size:
        return
    x_block = _block_view(ctx, x, x_shape, pre, n, post)
    out_block = _block_view(ctx, out, out_aval.shape, pre, ctx.in_avals[1].size, post)
    _emit_indexed_loops(ctx, indices, pre, n, post,
                        lambda at_j, at_k: f"{out_block}[{at_j}] = {x_block}[{at_k}]")


def _fold_batch(x: Any, x_dim: int | None, axis: int, size: int) -> Any:
    """`x` with its batch axis merged into `axis`: (..., B, n, ...) as (..., B * n, ...)."""
    x = move_axis(x, x_dim, axis, size)
    shape = aval_of(x).shape
    return reshape(x, shape[:axis] + (size * shape[axis + 1],) + shape[axis + 2:])


def _unfold_batch(y: Any, axis: int, size: int, n: int) -> Any:
    shape = aval_of(y).shape
    return reshape(y, shape[:axis] + (size, n) + shape[axis + 1:])


def _folded_indices(indices: Any, i_dim: int, n: int, size: int) -> Any:
    """Example b's indices (batch axis first), clipped to [0, n), plus b * n."""
    indices = move_axis(indices, i_dim, 0, size)
    if aval_of(indices).dtype.itemsize < 8:   # room for the offsets
        indices = convert_element_type(indices, np.int64)
    dtype, shape = aval_of(indices).dtype, aval_of(indices).shape
    if n and aval_of(indices).size:
        if dtype.kind == "i":
            indices = arith.max(indices, 0)
        indices = arith.min(indices, n - 1)
    offsets = (np.arange(size, dtype=dtype) * dtype.type(n)).reshape(
        (size,) + (1,) * (len(shape) - 1))
    return arith.add(indices, np.broadcast_to(offsets, shape).copy())


linear_jet(gather_p)


@def_batch(gather_p)
def _gather_batch(args: Sequence[Any], dims: Sequence[int | None],
                  axis: int) -> tuple[Any, int]:
    (x, indices), (x_dim, i_dim) = args, dims
    if i_dim is None:
        x_axis = axis + (x_dim <= axis)
        after = x_dim > x_axis      # the index axes replace x_axis before the batch axis
        return gather(x, indices, x_axis), x_dim + (aval_of(indices).ndim - 1) * after
    if x_dim is None:
        return gather(x, indices, axis), axis + i_dim
    size = batch_size(args, dims)
    n = aval_of(x).shape[axis + (x_dim <= axis)]
    folded = _folded_indices(indices, i_dim, n, size)
    return gather(_fold_batch(x, x_dim, axis, size), folded, axis), axis


# ---------------------------------------------------------------- scatter_add

scatter_add_p = Primitive("scatter_add")


def scatter_add(operand: Any, indices: Any, updates: Any, axis: int) -> Any:
    """A copy of `operand` with `np.add.at` of `updates` at `indices` (clipped) along `axis`."""
    operand, updates = coerce(operand, updates)
    indices = indices if isinstance(indices, Tracer) else np.asarray(indices)
    axis = canonical_axis(as_int(axis, "scatter_add: axis"), aval_of(operand).ndim)
    return scatter_add_p.bind(operand, indices, updates, axis=axis)


def _scatter_add_impl(operand: np.ndarray, indices: np.ndarray, updates: np.ndarray,
                      axis: int) -> np.ndarray:
    out = operand.copy()
    clipped = np.clip(indices, 0, max(operand.shape[axis] - 1, 0))
    np.add.at(out, (slice(None),) * axis + (clipped,), updates)
    return out


impl_rules[scatter_add_p] = _scatter_add_impl


@def_shape_rule(scatter_add_p)
def _scatter_add_shape(operand: ShapedArray, indices: ShapedArray, updates: ShapedArray,
                       axis: int) -> ShapedArray:
    _check_indexed_axis(scatter_add_p, operand, indices, axis)
    expected = _gathered_shape(operand, indices, axis)
    if updates.shape != expected or updates.dtype != operand.dtype:
        raise FxTypeError(f"scatter_add: updates {updates.str_short()} must have the "
                          f"operand's dtype and shape {expected} (operand shape "
                          f"{operand.shape}, indices shape {indices.shape}, axis {axis})")
    return operand


@def_jvp(scatter_add_p)
def _scatter_add_jvp(primals: Any, tangents: Any, axis: int) -> Any:
    (operand, indices, updates), (operand_dot, _, updates_dot) = primals, tangents
    out = scatter_add(operand, indices, updates, axis)
    if is_zero(updates_dot):
        return out, operand_dot
    return out, scatter_add(instantiate(operand_dot), indices, updates_dot, axis)


@def_lowering(scatter_add_p)
def _scatter_add_lowering(ctx: Ctx, operand: str, indices: str, updates: str,
                          axis: int) -> None:
    out, out_shape, updates_aval = ctx.outs[0], ctx.out_aval.shape, ctx.in_avals[2]
    pre, n, post = _blocks(out_shape, axis)
    ctx.emit(f"{out} = {operand}.copy()")
    if not updates_aval.size:
        return
    out_block = _block_view(ctx, out, out_shape, pre, n, post)
    updates_block = updates    # a rank-0 update: a scalar added to a vector at a scalar index
    if updates_aval.ndim:
        updates_block = _block_view(ctx, updates, updates_aval.shape, pre,
                                    ctx.in_avals[1].size, post)
    accumulate = "|=" if updates_aval.dtype.kind == "b" else "+="   # np.add on bools is or

    def statement(at_j: str, at_k: str) -> str:
        update = f"{updates_block}[{at_j}]" if updates_aval.ndim else updates_block
        return f"{out_block}[{at_k}] {accumulate} {update}"

    _emit_indexed_loops(ctx, indices, pre, n, post, statement)


@def_transpose(scatter_add_p)
def _scatter_add_transpose(ct: Any, operand: Any, indices: Any, updates: Any, axis: int) -> Any:
    ct_updates = gather(ct, indices, axis) if is_undefined(updates) else None
    return [ct if is_undefined(operand) else None, None, ct_updates]


linear_jet(scatter_add_p)


@def_batch(scatter_add_p)
def _scatter_add_batch(args: Sequence[Any], dims: Sequence[int | None],
                       axis: int) -> tuple[Any, int]:
    (operand, indices, updates), (op_dim, i_dim, up_dim) = args, dims
    size = batch_size(args, dims)
    if i_dim is None:   # the batch axis at op_dim (or 0) of operand, likewise in updates
        at = 0 if op_dim is None else op_dim
        up_at = at if at <= axis else at + aval_of(indices).ndim - 1
        return scatter_add(move_axis(operand, op_dim, at, size), indices,
                           move_axis(updates, up_dim, up_at, size), axis + (at <= axis)), at
    n = aval_of(operand).shape[axis + (op_dim is not None and op_dim <= axis)]
    folded = _folded_indices(indices, i_dim, n, size)
    out = scatter_add(_fold_batch(operand, op_dim, axis, size), folded,
                      move_axis(updates, up_dim, axis, size), axis)
    return _unfold_batch(out, axis, size, n), axis
