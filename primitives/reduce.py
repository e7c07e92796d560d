"""Reductions: reduce_sum, reduce_max, reduce_min, argmax, argmin, cumsum.

Reductions take `axes`, a sorted tuple of distinct non-negative axes (the empty tuple
is the identity) and drop those axes from the shape. `reduce_sum` and `cumsum` are
linear: the transpose of a sum broadcasts the cotangent back over the summed axes, and
the transpose of a cumulative sum is the cumulative sum running the other way. The
tangent of a max or min is the tangent averaged over every position attaining the
extremum, so ties split the derivative evenly. argmax and argmin have integer outputs
and zero tangents.

The numba lowerings merge adjacent kept and adjacent reduced axes into groups, view the
operand with one axis per group and loop over the groups in memory order, folding into
a scalar accumulator when the innermost group is reduced and into the output rows
otherwise, so no operand is ever transposed. A sum over every axis is one np.sum (with
a float64 accumulator for float32: numba's own is naive); max and min are inline loops,
as numba compiles its np.max slowly, and a NaN wins them as in numpy. Sums of float32
rows accumulate in float64 too.

Under vmap a reduction leaves the batch axis where it is and reduces the example's axes,
renumbered past it; the batch axis moves left by the number of reduced axes before it.
"""
from __future__ import annotations

import contextlib
import operator
from typing import Any, Iterable

import numpy as np

from fxgrad.core.errors import FxTypeError
from fxgrad.core.ir import ShapedArray, aval_of
from fxgrad.core.trace import Primitive, shape_rules
from fxgrad.interpreters.batching import def_batch
from fxgrad.interpreters.evaluation import impl_rules
from fxgrad.interpreters.taylor import linear_jet
from fxgrad.interpreters.jvp import def_jvp
from fxgrad.interpreters.transpose import def_transpose
from fxgrad.jit.lowering import def_lowering, np_dtype
from fxgrad.primitives.logic import def_zero_jvp, eq


def _axes_param(axes: Iterable[int]) -> tuple[int, ...]:
    """Axes as the canonical param: a sorted tuple of Python ints."""
    return tuple(sorted(operator.index(a) for a in axes))


def _kept_dims(ndim: int, axes: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(d for d in range(ndim) if d not in axes)


def _check_axes(prim: Primitive, x: ShapedArray, axes: tuple[int, ...]) -> None:
    if not all(isinstance(a, int) and 0 <= a < x.ndim for a in axes):
        raise FxTypeError(f"{prim.name}: axes {axes} are out of range for an operand of "
                          f"shape {x.shape} (valid axes are 0..{x.ndim - 1})")
    if list(axes) != sorted(set(axes)):
        raise FxTypeError(f"{prim.name}: axes {axes} must be sorted and distinct "
                          f"(operand shape {x.shape})")


def _check_not_bool(prim: Primitive, x: ShapedArray) -> None:
    if x.dtype.kind == "b":
        raise FxTypeError(f"{prim.name}: cannot sum a bool operand of shape {x.shape}; "
                          "convert it with .astype(int) first")


def _check_nonempty(prim: Primitive, x: ShapedArray, axes: tuple[int, ...]) -> None:
    if any(x.shape[a] == 0 for a in axes):
        raise FxTypeError(f"{prim.name}: cannot reduce over an axis of size 0 (operand "
                          f"shape {x.shape}, axes {axes}); the result has no identity")


def _reduced_aval(x: ShapedArray, axes: tuple[int, ...], dtype: Any = None) -> ShapedArray:
    shape = tuple(x.shape[d] for d in _kept_dims(x.ndim, axes))
    return ShapedArray(shape, x.dtype if dtype is None else dtype)


def _broadcast_back(y: Any, shape: tuple[int, ...], axes: tuple[int, ...]) -> Any:
    """`y`, reduced over `axes`, broadcast back to the operand shape."""
    if not axes:
        return y
    from fxgrad.primitives.shape import broadcast_in_dim
    return broadcast_in_dim(y, shape, _kept_dims(len(shape), axes))


def _past_batch(axis: int, batch_dim: int) -> int:
    """An example's axis renumbered in the batched operand (batch axis at `batch_dim`)."""
    return axis + (axis >= batch_dim)


def _reduction_batch(reduce_fn: Any) -> Any:
    """Batching of reduce_sum/max/min: the batch axis stays, `axes` shift past it."""
    def rule(args: Any, dims: Any, axes: tuple[int, ...]) -> tuple[Any, int]:
        (x,), (d,) = args, dims
        out = reduce_fn(x, tuple(_past_batch(a, d) for a in axes))
        return out, d - sum(a < d for a in axes)
    return rule


def identity_expr(kind: str, dtype: np.dtype) -> str:
    """The neutral element of a sum / max / min as a typed numba expression."""
    dt = np_dtype(dtype)
    if kind == "sum":
        return f"{dt}(0)"
    if dtype.kind == "b":
        return "False" if kind == "max" else "True"
    if dtype.kind == "f":
        return f"{dt}({'-' if kind == 'max' else ''}np.inf)"
    info = np.iinfo(dtype)
    return f"{dt}({info.min if kind == 'max' else info.max})"


def _emit_fold(ctx: Any, kind: str, acc: str, value: str, dtype: np.dtype) -> None:
    """Fold `value` into `acc`; a NaN wins a float max/min, as in numpy."""
    if kind == "sum":
        ctx.emit(f"{acc} += {value}")
        return
    nan = f" or {value} != {value}" if dtype.kind == "f" else ""
    ctx.emit(f"if {value} {'>' if kind == 'max' else '<'} {acc}{nan}:")
    with ctx.indented():
        ctx.emit(f"{acc} = {value}")


def _groups(shape: tuple[int, ...], axes: tuple[int, ...]) -> list[tuple[int, bool]]:
    """Runs of adjacent reduced / kept axes as (merged size, reduced); size-1 axes dropped."""
    groups: list[tuple[int, bool]] = []
    for d, n in enumerate(shape):
        if n == 1:
            continue
        if groups and groups[-1][1] == (d in axes):
            groups[-1] = (groups[-1][0] * n, d in axes)
        else:
            groups.append((n, d in axes))
    return groups


def _reshaped(ctx: Any, x: str, shape: tuple[int, ...], new_shape: tuple[int, ...]) -> str:
    if shape == new_shape:
        return x
    name = ctx.fresh("xg")
    ctx.emit(f"{name} = {x}.reshape({new_shape!r})")
    return name


def _reduction_lowering(kind: str) -> Any:
    """Lowering of reduce_<kind>: copy, one whole-array reduction, or grouped loops."""
    def rule(ctx: Any, x: str, axes: tuple[int, ...]) -> None:
        x_aval, out = ctx.in_avals[0], ctx.outs[0]
        groups = _groups(x_aval.shape, axes)
        if x_aval.ndim == 0:
            ctx.emit(f"{out} = {x}")
        elif x_aval.size == 0 or not any(reduced for _, reduced in groups):
            _emit_without_folding(ctx, kind, x)
        elif all(reduced for _, reduced in groups):
            _emit_whole(ctx, kind, x)
        else:
            _emit_group_loops(ctx, kind, x, groups)
    return rule


def _emit_without_folding(ctx: Any, kind: str, x: str) -> None:
    """An empty operand (identity everywhere) or only size-1 reduced axes (a reshape)."""
    if ctx.in_avals[0].size == 0:
        _emit_filled(ctx, identity_expr(kind, ctx.out_aval.dtype))
    elif not ctx.out_aval.shape:
        ctx.emit(f"{ctx.outs[0]} = {x}.reshape(1)[0]")
    else:
        ctx.emit(f"{ctx.outs[0]} = np.copy({x}).reshape({ctx.out_aval.shape!r})")


def _emit_filled(ctx: Any, value: str) -> None:
    """The output: `value` at every position (a scalar for a rank-0 output)."""
    shape = ctx.out_aval.shape
    if not shape:
        ctx.emit(f"{ctx.outs[0]} = {value}")
    else:
        ctx.emit(f"{ctx.outs[0]} = np.full({shape!r}, {value}, {np_dtype(ctx.out_aval.dtype)})")


def _emit_whole(ctx: Any, kind: str, x: str) -> None:
    """A reduction of every element: one np.sum (float32 accumulating in float64, as
    numba's own float32 sum is naive), or one flat loop for max/min."""
    x_aval = ctx.in_avals[0]
    if kind == "sum":
        dtype = ", dtype=np.float64" if x_aval.dtype == np.float32 else ""
        total = f"np.sum({x}{dtype})"
    else:
        flat = _reshaped(ctx, x, x_aval.shape, (x_aval.size,))
        total = _emit_row_fold(ctx, kind, f"{flat}[", x_aval.size)
    _emit_filled(ctx, ctx.cast(total) if kind == "sum" and x_aval.dtype != np.float64
                 else total)


def _emit_group_loops(ctx: Any, kind: str, x: str, groups: list[tuple[int, bool]]) -> None:
    """Loops over the groups in memory order; the output rows are written once when
    only the innermost run is reduced, else folded into (starting from the identity)."""
    dtype, out_shape = ctx.out_aval.dtype, ctx.out_aval.shape
    kept = tuple(n for n, reduced in groups if not reduced)
    inner_reduced = groups[-1][1]
    written_once = inner_reduced and not any(reduced for _, reduced in groups[:-1])
    xg = _reshaped(ctx, x, ctx.in_avals[0].shape, tuple(n for n, _ in groups))
    rows = ctx.outs[0] if kept == out_shape else ctx.fresh("rows")
    fill = f"np.empty({kept!r}" if written_once else f"np.full({kept!r}, {identity_expr(kind, dtype)}"
    ctx.emit(f"{rows} = {fill}, {np_dtype(dtype)})")
    with contextlib.ExitStack() as loops:
        index, kept_index = [], []
        for n, reduced in groups[:-1] if inner_reduced else groups:
            index.append(ctx.fresh("i"))
            kept_index += [] if reduced else [index[-1]]
            ctx.emit(f"for {index[-1]} in range({n}):")
            loops.enter_context(ctx.indented())
        target = f"{rows}[{', '.join(kept_index)}]"
        if inner_reduced:
            element = _emit_row_fold(ctx, kind, f"{xg}[{''.join(i + ', ' for i in index)}",
                                     groups[-1][0])
        else:
            element = ctx.fresh("e")
            ctx.emit(f"{element} = {xg}[{', '.join(index)}]")
        if written_once:
            ctx.emit(f"{target} = {element}")
        else:
            _emit_fold(ctx, kind, target, element, dtype)
    if rows != ctx.outs[0]:
        ctx.emit(f"{ctx.outs[0]} = {rows}.reshape({out_shape!r})")


def _emit_row_fold(ctx: Any, kind: str, row: str, n: int) -> str:
    """Fold `row j]` for j < n into a new scalar accumulator; return its name.

    Inline loops: numba compiles its np.max & co. slowly, once per dtype and rank."""
    dtype = ctx.out_aval.dtype
    acc_dtype = np.dtype(np.float64) if kind == "sum" and dtype == np.float32 else dtype
    acc, j, element = ctx.fresh("acc"), ctx.fresh("j"), ctx.fresh("e")
    ctx.emit(f"{acc} = {identity_expr(kind, acc_dtype)}")
    ctx.emit(f"for {j} in range({n}):")
    with ctx.indented():
        ctx.emit(f"{element} = {row}{j}]")
        _emit_fold(ctx, kind, acc, element, dtype)
    return acc


reduce_sum_p = Primitive("reduce_sum")
impl_rules[reduce_sum_p] = lambda x, axes: np.sum(x, axis=axes)


def reduce_sum(x: Any, axes: Iterable[int]) -> Any:
    return reduce_sum_p.bind(x, axes=_axes_param(axes))


def _reduce_sum_shape(x: ShapedArray, axes: tuple[int, ...]) -> ShapedArray:
    _check_axes(reduce_sum_p, x, axes)
    _check_not_bool(reduce_sum_p, x)
    return _reduced_aval(x, axes)


shape_rules[reduce_sum_p] = _reduce_sum_shape


@def_jvp(reduce_sum_p)
def _reduce_sum_jvp(primals: Any, tangents: Any, axes: tuple[int, ...]) -> Any:
    return reduce_sum(primals[0], axes), reduce_sum(tangents[0], axes)


@def_transpose(reduce_sum_p)
def _reduce_sum_transpose(ct: Any, x: Any, axes: tuple[int, ...]) -> Any:
    return [_broadcast_back(ct, x.aval.shape, axes)]


def_lowering(reduce_sum_p)(_reduction_lowering("sum"))
def_batch(reduce_sum_p)(_reduction_batch(reduce_sum))
linear_jet(reduce_sum_p)


def _extremum(name: str, np_fn: Any) -> Primitive:
    """reduce_max or reduce_min: primitive, numpy implementation and shape rule."""
    prim = Primitive(name)
    impl_rules[prim] = lambda x, axes: np_fn(x, axis=axes)

    def shape_rule(x: ShapedArray, axes: tuple[int, ...]) -> ShapedArray:
        _check_axes(prim, x, axes)
        _check_nonempty(prim, x, axes)
        return _reduced_aval(x, axes)

    shape_rules[prim] = shape_rule
    return prim


def _extremum_jvp(reduce_fn: Any) -> Any:
    """JVP of a max/min: the tangent averaged over the positions equal to the result."""
    def rule(primals: Any, tangents: Any, axes: tuple[int, ...]) -> Any:
        from fxgrad.primitives.arith import div, mul
        from fxgrad.primitives.shape import convert_element_type
        (x,), (x_dot,) = primals, tangents
        out = reduce_fn(x, axes)
        hits = eq(x, _broadcast_back(out, aval_of(x).shape, axes))
        mask = convert_element_type(hits, aval_of(x_dot).dtype)
        return out, div(reduce_sum(mul(x_dot, mask), axes), reduce_sum(mask, axes))
    return rule


reduce_max_p = _extremum("reduce_max", np.max)


def reduce_max(x: Any, axes: Iterable[int]) -> Any:
    return reduce_max_p.bind(x, axes=_axes_param(axes))


def_jvp(reduce_max_p)(_extremum_jvp(reduce_max))
linear_jet(reduce_max_p)
def_lowering(reduce_max_p)(_reduction_lowering("max"))
def_batch(reduce_max_p)(_reduction_batch(reduce_max))

reduce_min_p = _extremum("reduce_min", np.min)


def reduce_min(x: Any, axes: Iterable[int]) -> Any:
    return reduce_min_p.bind(x, axes=_axes_param(axes))


def_jvp(reduce_min_p)(_extremum_jvp(reduce_min))
linear_jet(reduce_min_p)
def_lowering(reduce_min_p)(_reduction_lowering("min"))
def_batch(reduce_min_p)(_reduction_batch(reduce_min))


def _check_axis(prim: Primitive, x: ShapedArray, axis: int) -> None:
    if not (isinstance(axis, int) and 0 <= axis < x.ndim):
        raise FxTypeError(f"{prim.name}: axis {axis!r} is out of range for an operand of "
                          f"shape {x.shape} (valid axes are 0..{x.ndim - 1})")


def _around(shape: tuple[int, ...], axis: int) -> tuple[int, int, int]:
    """(size before `axis`, its size, size after): the operand viewed as 3-d."""
    return (int(np.prod(shape[:axis], dtype=np.int64)), shape[axis],
            int(np.prod(shape[axis + 1:], dtype=np.int64)))


def _arg_lowering(kind: str) -> Any:
    """Lowering of arg<kind>: a scan along the axis keeping the first best index."""
    def rule(ctx: Any, x: str, axis: int, index_dtype: np.dtype) -> None:
        shape = ctx.in_avals[0].shape
        outer, n, inner = _around(shape, axis)
        view = (outer, n, inner) if inner > 1 else (outer, n)
        xg, found, o = _reshaped(ctx, x, shape, view), ctx.fresh("found"), ctx.fresh("o")
        ctx.emit(f"{found} = np.empty({view[:1] + view[2:]!r}, {np_dtype(index_dtype)})")
        ctx.emit(f"for {o} in range({outer}):")
        with contextlib.ExitStack() as loops:
            loops.enter_context(ctx.indented())
            position = [o]
            if inner > 1:
                position.append(ctx.fresh("i"))
                ctx.emit(f"for {position[1]} in range({inner}):")
                loops.enter_context(ctx.indented())
            tail = "".join(", " + i for i in position[1:]) + "]"
            at = _emit_arg_scan(ctx, kind, f"{xg}[{o}, ", tail, n)
            ctx.emit(f"{found}[{', '.join(position)}] = {at}")
        out_shape = ctx.out_aval.shape
        ctx.emit(f"{ctx.outs[0]} = {found}[0]" if not out_shape
                 else f"{ctx.outs[0]} = {found}.reshape({out_shape!r})")
    return rule


def _emit_arg_scan(ctx: Any, kind: str, head: str, tail: str, n: int) -> str:
    """Scan `head + j + tail` for j < n; return the name of the first best index.

    A NaN beats every number and the first NaN is kept (numpy's argmax/argmin)."""
    best, at, j, e = ctx.fresh("best"), ctx.fresh("at"), ctx.fresh("j"), ctx.fresh("e")
    ctx.emit(f"{best} = {head}0{tail}")
    ctx.emit(f"{at} = 0")
    ctx.emit(f"for {j} in range(1, {n}):")
    with ctx.indented():
        ctx.emit(f"{e} = {head}{j}{tail}")
        nan = (f" or ({e} != {e} and {best} == {best})"
               if ctx.in_avals[0].dtype.kind == "f" else "")
        ctx.emit(f"if {e} {'>' if kind == 'max' else '<'} {best}{nan}:")
        with ctx.indented():
            ctx.emit(f"{best} = {e}")
            ctx.emit(f"{at} = {j}")
    return at


def _arg_extremum(name: str, np_fn: Any) -> Primitive:
    """argmax or argmin: primitive, numpy implementation, shape rule and zero JVP."""
    prim = Primitive(name)
    impl_rules[prim] = lambda x, axis, index_dtype: np_fn(x, axis=axis).astype(index_dtype)

    def shape_rule(x: ShapedArray, axis: int, index_dtype: np.dtype) -> ShapedArray:
        _check_axis(prim, x, axis)
        _check_nonempty(prim, x, (axis,))
        if np.dtype(index_dtype).kind not in "iu":
            raise FxTypeError(f"{prim.name}: index_dtype must be an integer dtype, got "
                              f"{np.dtype(index_dtype).name} (operand shape {x.shape})")
        return _reduced_aval(x, (axis,), index_dtype)

    shape_rules[prim] = shape_rule
    def_zero_jvp(prim)
    return prim


def _arg_batch(arg_fn: Any) -> Any:
    """Batching of argmax/argmin: the batch axis stays, `axis` shifts past it."""
    def rule(args: Any, dims: Any, axis: int, index_dtype: np.dtype) -> tuple[Any, int]:
        (x,), (d,) = args, dims
        return arg_fn(x, _past_batch(axis, d), index_dtype), d - (axis < d)
    return rule


argmax_p = _arg_extremum("argmax", np.argmax)
def_lowering(argmax_p)(_arg_lowering("max"))


def argmax(x: Any, axis: int, index_dtype: Any = np.int64) -> Any:
    return argmax_p.bind(x, axis=operator.index(axis), index_dtype=np.dtype(index_dtype))


def_batch(argmax_p)(_arg_batch(argmax))

argmin_p = _arg_extremum("argmin", np.argmin)
def_lowering(argmin_p)(_arg_lowering("min"))


def argmin(x: Any, axis: int, index_dtype: Any = np.int64) -> Any:
    return argmin_p.bind(x, axis=operator.index(axis), index_dtype=np.dtype(index_dtype))


def_batch(argmin_p)(_arg_batch(argmin))


def _cumsum_impl(x: np.ndarray, axis: int, reverse: bool) -> np.ndarray:
    if not reverse:
        return np.cumsum(x, axis=axis)
    return np.flip(np.cumsum(np.flip(x, axis), axis=axis), axis)


cumsum_p = Primitive("cumsum")
impl_rules[cumsum_p] = _cumsum_impl


def cumsum(x: Any, axis: int, reverse: bool = False) -> Any:
    return cumsum_p.bind(x, axis=operator.index(axis), reverse=bool(reverse))


def _cumsum_shape(x: ShapedArray, axis: int, reverse: bool) -> ShapedArray:
    _check_axis(cumsum_p, x, axis)
    _check_not_bool(cumsum_p, x)
    return x


shape_rules[cumsum_p] = _cumsum_shape


@def_jvp(cumsum_p)
def _cumsum_jvp(primals: Any, tangents: Any, axis: int, reverse: bool) -> Any:
    return cumsum(primals[0], axis, reverse), cumsum(tangents[0], axis, reverse)


@def_transpose(cumsum_p)
def _cumsum_transpose(ct: Any, x: Any, axis: int, reverse: bool) -> Any:
    # out[i] = sum_{j<=i} x[j], so ct_x[j] = sum_{i>=j} ct[i]: the reversed cumsum.
    return [cumsum(ct, axis, not reverse)]


@def_lowering(cumsum_p)
def _cumsum_lowering(ctx: Any, x: str, axis: int, reverse: bool) -> None:
    shape = ctx.in_avals[0].shape
    outer, n, inner = _around(shape, axis)
    view = (outer, n, inner) if inner > 1 else (outer, n)
    xg = _reshaped(ctx, x, shape, view)
    out_g = ctx.outs[0] if view == shape else ctx.fresh("og")
    ctx.emit(f"{out_g} = np.empty({view!r}, {np_dtype(ctx.out_aval.dtype)})")
    order = list(range(n))[::-1] if reverse else list(range(n))
    if n:
        o = ctx.fresh("o")
        ctx.emit(f"for {o} in range({outer}):")
        with ctx.indented():
            if inner == 1:
                _emit_running_sum(ctx, f"{xg}[{o}, ", f"{out_g}[{o}, ", order)
            else:
                _emit_row_running_sum(ctx, f"{xg}[{o}, ", f"{out_g}[{o}, ", order, inner)
    if out_g != ctx.outs[0]:
        ctx.emit(f"{ctx.outs[0]} = {out_g}.reshape({shape!r})")


def _range(order: list[int]) -> str:
    """`range(...)` running through `order` (consecutive integers, either direction)."""
    if len(order) > 1 and order[1] < order[0]:
        return f"range({order[0]}, {order[-1] - 1}, -1)"
    return f"range({order[0]}, {order[-1] + 1})" if order[0] else f"range({order[-1] + 1})"


def _emit_running_sum(ctx: Any, x_row: str, out_row: str, order: list[int]) -> None:
    acc, j = ctx.fresh("acc"), ctx.fresh("j")
    ctx.emit(f"{acc} = {ctx.const(0, ctx.out_aval.dtype)}")
    ctx.emit(f"for {j} in {_range(order)}:")
    with ctx.indented():
        ctx.emit(f"{acc} += {x_row}{j}]")
        ctx.emit(f"{out_row}{j}] = {acc}")


def _emit_row_running_sum(ctx: Any, x_rows: str, out_rows: str, order: list[int],
                          inner: int) -> None:
    """Rows along the axis: each output row is the previous one plus the input row."""
    i, j, k = ctx.fresh("i"), ctx.fresh("j"), ctx.fresh("k")
    ctx.emit(f"for {i} in range({inner}):")
    with ctx.indented():
        ctx.emit(f"{out_rows}{order[0]}, {i}] = {x_rows}{order[0]}, {i}]")
    if len(order) == 1:
        return
    previous = f"{j} + 1" if order[1] < order[0] else f"{j} - 1"
    ctx.emit(f"for {j} in {_range(order[1:])}:")
    with ctx.indented():
        ctx.emit(f"for {k} in range({inner}):")
        with ctx.indented():
            ctx.emit(f"{out_rows}{j}, {k}] = {out_rows}{previous}, {k}] + {x_rows}{j}, {k}]")


linear_jet(cumsum_p)


@def_batch(cumsum_p)
def _cumsum_batch(args: Any, dims: Any, axis: int, reverse: bool) -> tuple[Any, int]:
    (x,), (d,) = args, dims
    return cumsum(x, _past_batch(axis, d), reverse), d
