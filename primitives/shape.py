"""Shape manipulation: broadcast_in_dim, reshape, transpose, squeeze, expand_dims,
concatenate and convert_element_type.

All but convert_element_type only move (or copy) elements, so they are linear and
their JVP applies the primitive to the tangent. Transposes undo the data movement:
a broadcast becomes a sum over the broadcast dimensions, a reshape reshapes back, a
permutation applies its inverse and a concatenation slices the cotangent into
pieces. Wrappers normalise their static params (negative axes, tuples of ints) so
that equal operations print and hash equally; shape rules validate them. In numba
kernels, reshapes are views, convert_element_type is an elementwise cast, and
broadcasts and permutations are explicit loops. Under vmap each primitive applies to the
whole batch with its params rewritten for the extra axis, which stays where it is
(reshape alone needs it first or last, as it keeps row-major order).
"""
from __future__ import annotations

import contextlib
import operator
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from fxgrad.core.errors import FxTypeError, at_user_line
from fxgrad.core.ir import ShapedArray, aval_of
from fxgrad.core.trace import Primitive, shape_rules
from fxgrad.interpreters.batching import batch_size, def_batch, move_axis
from fxgrad.interpreters.evaluation import impl_rules
from fxgrad.interpreters.taylor import linear_jet
from fxgrad.interpreters.jvp import Zero, def_jvp, linear_jvp
from fxgrad.interpreters.transpose import def_transpose, is_undefined
from fxgrad.jit.lowering import Ctx, def_elementwise_lowering, def_lowering, np_dtype
from fxgrad.primitives.common import is_python_scalar, same_dtype


# ---------------------------------------------------------------- param helpers

def int_tuple(values: Any, what: str) -> tuple[int, ...]:
    """`values` (an int or a sequence of ints) as a tuple of Python ints."""
    seq = values if isinstance(values, (tuple, list, np.ndarray)) else (values,)
    try:
        return tuple(operator.index(v) for v in seq)
    except TypeError:
        raise FxTypeError(at_user_line(f"{what} must be integers, got {values!r}")) from None


def as_int(value: Any, what: str) -> int:
    """`value` as a Python int (numpy integers accepted, floats and tuples rejected)."""
    try:
        return operator.index(value)
    except TypeError:
        raise FxTypeError(at_user_line(f"{what} must be an integer, got {value!r}")) from None


def canonical_axis(axis: int, ndim: int) -> int:
    """A negative axis counted from the end; out-of-range axes are left for shape rules."""
    return axis + ndim if -ndim <= axis < 0 else axis


def canonical_axes(axes: Any, ndim: int, what: str) -> tuple[int, ...]:
    return tuple(canonical_axis(a, ndim) for a in int_tuple(axes, what))


def check_axes(prim: Primitive, axes: Sequence[int], ndim: int, shape: Any) -> None:
    """Raise unless `axes` are distinct and within [0, ndim)."""
    if any(not 0 <= a < ndim for a in axes) or len(set(axes)) != len(axes):
        raise FxTypeError(f"{prim.name}: dimensions {tuple(axes)} must be distinct axes in "
                          f"[0, {ndim}) for shape {shape}")


def def_shape_rule(prim: Primitive) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator registering the shape rule of `prim`."""
    def register(rule: Callable[..., Any]) -> Callable[..., Any]:
        shape_rules[prim] = rule
        return rule
    return register


def batched_axis(axis: int, batch_dim: int) -> int:
    """Where axis `axis` of one example lies in a batch whose batch axis is `batch_dim`."""
    return axis + 1 if axis >= batch_dim else axis


def as_operand(x: Any) -> Any:
    """A Python scalar as a numpy array (of its default dtype); anything else unchanged."""
    return np.asarray(x) if is_python_scalar(x) else x


# ---------------------------------------------------------------- lowering helpers
# Data movement lowers to explicit loops: numba compiles them far faster than
# np.broadcast_to(...).copy(), strided transposes or strided slice assignment.

@contextlib.contextmanager
def loop_nest(ctx: Ctx, shape: Sequence[int]) -> Iterator[list[str]]:
    """Emit nested loops over `shape`; yields the index names, body inside the block."""
    indices = [ctx.fresh("i") for _ in shape]
    with contextlib.ExitStack() as stack:
        for i, n in zip(indices, shape):
            ctx.emit(f"for {i} in range({n}):")
            stack.enter_context(ctx.indented())
        yield indices


def new_array(ctx: Ctx) -> str:
    """Allocate the (array) output as `ctx.outs[0]`; return its name."""
    aval = ctx.out_aval
    ctx.emit(f"{ctx.outs[0]} = np.empty({aval.shape!r}, {np_dtype(aval.dtype)})")
    return ctx.outs[0]


# ---------------------------------------------------------------- broadcast_in_dim

broadcast_in_dim_p = Primitive("broadcast_in_dim")


def broadcast_in_dim(x: Any, shape: Sequence[int], broadcast_dimensions: Sequence[int]) -> Any:
    """Broadcast `x` to `shape`; operand dim i becomes output dim broadcast_dimensions[i]."""
    shape = int_tuple(shape, "broadcast_in_dim: shape")
    dims = canonical_axes(broadcast_dimensions, len(shape), "broadcast_in_dim: dimensions")
    return broadcast_in_dim_p.bind(as_operand(x), shape=shape, broadcast_dimensions=dims)


def _expanded_shape(in_shape: tuple[int, ...], ndim: int, dims: tuple[int, ...]) -> list[int]:
    """The output rank shape with the operand's dims in place and 1 elsewhere."""
    expanded = [1] * ndim
    for d, size in zip(dims, in_shape):
        expanded[d] = size
    return expanded


def _broadcast_in_dim_impl(x: np.ndarray, shape: tuple[int, ...],
                           broadcast_dimensions: tuple[int, ...]) -> np.ndarray:
    expanded = _expanded_shape(x.shape, len(shape), broadcast_dimensions)
    return np.broadcast_to(x.reshape(expanded), shape).copy()


impl_rules[broadcast_in_dim_p] = _broadcast_in_dim_impl


@def_shape_rule(broadcast_in_dim_p)
def _broadcast_in_dim_shape(x: ShapedArray, shape: tuple[int, ...],
                            broadcast_dimensions: tuple[int, ...]) -> ShapedArray:
    dims = broadcast_dimensions
    where = f"operand shape {x.shape}, target shape {shape}, broadcast_dimensions {dims}"
    if len(dims) != x.ndim:
        raise FxTypeError(f"broadcast_in_dim: need one broadcast dimension per operand "
                          f"dimension; got {where}")
    if any(s < 0 for s in shape):
        raise FxTypeError(f"broadcast_in_dim: target shape {shape} has a negative size")
    increasing = all(a < b for a, b in zip(dims, dims[1:]))
    if any(not 0 <= d < len(shape) for d in dims) or not increasing:
        raise FxTypeError(f"broadcast_in_dim: broadcast_dimensions must be strictly "
                          f"increasing axes of the target; got {where}")
    for size, d in zip(x.shape, dims):
        if size != 1 and size != shape[d]:
            raise FxTypeError(f"broadcast_in_dim: operand dimension of size {size} cannot "
                              f"broadcast to size {shape[d]}; got {where}")
    return ShapedArray(shape, x.dtype)


linear_jvp(broadcast_in_dim_p)
linear_jet(broadcast_in_dim_p)


@def_transpose(broadcast_in_dim_p)
def _broadcast_in_dim_transpose(ct: Any, x: Any, shape: tuple[int, ...],
                                broadcast_dimensions: tuple[int, ...]) -> Any:
    from fxgrad.primitives.reduce import reduce_sum
    in_shape = x.aval.shape
    expanded = _expanded_shape(in_shape, len(shape), broadcast_dimensions)
    summed = tuple(i for i, (e, s) in enumerate(zip(expanded, shape)) if e != s)
    if summed:
        ct = reduce_sum(ct, summed)
    return [ct if aval_of(ct).shape == in_shape else reshape(ct, in_shape)]


# A Statement, not an Elementwise rule: the framework would fuse an elementwise rule
# only for a rank-0 operand and lower the other operands as scalar assignments.
@def_lowering(broadcast_in_dim_p)
def _broadcast_in_dim_lowering(ctx: Ctx, x: str, shape: tuple[int, ...],
                               broadcast_dimensions: tuple[int, ...]) -> None:
    in_shape, out = ctx.in_avals[0].shape, ctx.outs[0]
    if not shape:
        ctx.emit(f"{out} = {x}")
    elif not in_shape:
        ctx.emit(f"{out} = np.full({shape!r}, {x}, {np_dtype(ctx.out_aval.dtype)})")
    else:
        new_array(ctx)
        with loop_nest(ctx, shape) as i:
            source = [i[d] if n != 1 else "0" for d, n in zip(broadcast_dimensions, in_shape)]
            ctx.emit(f"{out}[{', '.join(i)}] = {x}[{', '.join(source)}]")


@def_batch(broadcast_in_dim_p)
def _broadcast_in_dim_batch(args: Sequence[Any], dims: Sequence[Any], shape: tuple[int, ...],
                            broadcast_dimensions: tuple[int, ...]) -> Any:
    (x,), (d,) = args, dims
    # the batch axis goes right after the output axis of the operand axis before it
    out_dim = broadcast_dimensions[d - 1] + 1 if d else 0
    out_dims = [batched_axis(b, out_dim) for b in broadcast_dimensions]
    out_dims.insert(d, out_dim)
    out_shape = shape[:out_dim] + (aval_of(x).shape[d],) + shape[out_dim:]
    return broadcast_in_dim(x, out_shape, out_dims), out_dim


# ---------------------------------------------------------------- reshape

reshape_p = Primitive("reshape")


def reshape(x: Any, new_sizes: Sequence[int]) -> Any:
    """`x` with shape `new_sizes` (row-major order); one size may be -1 (inferred)."""
    x = as_operand(x)
    sizes = _infer_size(int_tuple(new_sizes, "reshape: new_sizes"), aval_of(x))
    return reshape_p.bind(x, new_sizes=sizes)


def _infer_size(sizes: tuple[int, ...], x: ShapedArray) -> tuple[int, ...]:
    if sizes.count(-1) != 1:
        return sizes
    known = int(np.prod([s for s in sizes if s != -1], dtype=np.int64))
    if known == 0 or x.size % known:
        return sizes     # the shape rule reports the mismatch
    return tuple(x.size // known if s == -1 else s for s in sizes)


impl_rules[reshape_p] = lambda x, new_sizes: np.reshape(x, new_sizes)


@def_shape_rule(reshape_p)
def _reshape_shape(x: ShapedArray, new_sizes: tuple[int, ...]) -> ShapedArray:
    if any(s < 0 for s in new_sizes) or int(np.prod(new_sizes, dtype=np.int64)) != x.size:
        raise FxTypeError(f"reshape: cannot reshape an array of shape {x.shape} "
                          f"({x.size} elements) into shape {new_sizes}")
    return ShapedArray(new_sizes, x.dtype)


linear_jvp(reshape_p)
linear_jet(reshape_p)


@def_transpose(reshape_p)
def _reshape_transpose(ct: Any, x: Any, new_sizes: tuple[int, ...]) -> Any:
    return [reshape(ct, x.aval.shape)]


@def_lowering(reshape_p)
def _reshape_lowering(ctx: Ctx, x: str, **params: Any) -> None:
    """Also squeeze's and expand_dims': a view of the same row-major elements.

    Rank-0 values are numba scalars, so reshapes to and from shape () read the single
    element or build a new array. The others are views: kernels write only into arrays
    they allocate, or into donated inputs that nothing (views included) reads any more.
    """
    in_aval, out_aval, out = ctx.in_avals[0], ctx.out_aval, ctx.outs[0]
    if not out_aval.shape:
        ctx.emit(f"{out} = {single_element(x, in_aval.ndim)}")
    elif not in_aval.shape:
        ctx.emit(f"{out} = np.full({out_aval.shape!r}, {x}, {np_dtype(out_aval.dtype)})")
    else:
        ctx.emit(f"{out} = {x}.reshape({out_aval.shape!r})")


@def_batch(reshape_p)
def _reshape_batch(args: Sequence[Any], dims: Sequence[Any], new_sizes: tuple[int, ...]) -> Any:
    (x,), (d,) = args, dims
    size = aval_of(x).shape[d]
    if d and d == aval_of(x).ndim - 1:   # examples interleave element by element
        return reshape(x, new_sizes + (size,)), len(new_sizes)
    return reshape(move_axis(x, d, 0, size), (size,) + new_sizes), 0


def single_element(x: str, ndim: int) -> str:
    """The element of a size-1 array `x` of rank `ndim` (a scalar stays itself)."""
    return f"{x}[{', '.join(['0'] * ndim)}]" if ndim else x


# ---------------------------------------------------------------- transpose

transpose_p = Primitive("transpose")


def transpose(x: Any, permutation: Sequence[int]) -> Any:
    """Permute the axes of `x`: output axis i is input axis permutation[i]."""
    x = as_operand(x)
    perm = canonical_axes(permutation, aval_of(x).ndim, "transpose: permutation")
    return transpose_p.bind(x, permutation=perm)


impl_rules[transpose_p] = lambda x, permutation: np.transpose(x, permutation).copy()


@def_shape_rule(transpose_p)
def _transpose_shape(x: ShapedArray, permutation: tuple[int, ...]) -> ShapedArray:
    if sorted(permutation) != list(range(x.ndim)):
        raise FxTypeError(f"transpose: permutation {permutation} is not a permutation of "
                          f"the axes of an array of shape {x.shape}")
    return ShapedArray([x.shape[p] for p in permutation], x.dtype)


linear_jvp(transpose_p)
linear_jet(transpose_p)


@def_transpose(transpose_p)
def _transpose_transpose(ct: Any, x: Any, permutation: tuple[int, ...]) -> Any:
    inverse = tuple(int(i) for i in np.argsort(permutation))
    return [transpose(ct, inverse)]


@def_lowering(transpose_p)
def _transpose_lowering(ctx: Ctx, x: str, permutation: tuple[int, ...]) -> None:
    if not permutation:
        ctx.emit(f"{ctx.outs[0]} = {x}")
        return
    out = new_array(ctx)
    with loop_nest(ctx, ctx.out_aval.shape) as i:
        source = [i[permutation.index(axis)] for axis in range(len(permutation))]
        ctx.emit(f"{out}[{', '.join(i)}] = {x}[{', '.join(source)}]")


@def_batch(transpose_p)
def _transpose_batch(args: Sequence[Any], dims: Sequence[Any], permutation: tuple[int, ...]) -> Any:
    (x,), (d,) = args, dims
    perm = [batched_axis(p, d) for p in permutation]
    perm.insert(d, d)
    return transpose(x, perm), d


# ---------------------------------------------------------------- squeeze

squeeze_p = Primitive("squeeze")


def squeeze(x: Any, dimensions: Sequence[int]) -> Any:
    """`x` without the listed size-1 dimensions."""
    x = as_operand(x)
    dims = canonical_axes(dimensions, aval_of(x).ndim, "squeeze: dimensions")
    return squeeze_p.bind(x, dimensions=tuple(sorted(dims)))


impl_rules[squeeze_p] = lambda x, dimensions: np.squeeze(x, dimensions)


@def_shape_rule(squeeze_p)
def _squeeze_shape(x: ShapedArray, dimensions: tuple[int, ...]) -> ShapedArray:
    check_axes(squeeze_p, dimensions, x.ndim, x.shape)
    bad = [d for d in dimensions if x.shape[d] != 1]
    if bad:
        raise FxTypeError(f"squeeze: dimensions {tuple(bad)} of shape {x.shape} do not have "
                          "size 1; only size-1 dimensions can be squeezed")
    return ShapedArray([s for i, s in enumerate(x.shape) if i not in dimensions], x.dtype)


linear_jvp(squeeze_p)
linear_jet(squeeze_p)


@def_transpose(squeeze_p)
def _squeeze_transpose(ct: Any, x: Any, dimensions: tuple[int, ...]) -> Any:
    return [reshape(ct, x.aval.shape)]


def_lowering(squeeze_p)(_reshape_lowering)


@def_batch(squeeze_p)
def _squeeze_batch(args: Sequence[Any], dims: Sequence[Any], dimensions: tuple[int, ...]) -> Any:
    (x,), (d,) = args, dims
    out_dim = d - sum(1 for a in dimensions if a < d)
    return squeeze(x, [batched_axis(a, d) for a in dimensions]), out_dim


# ---------------------------------------------------------------- expand_dims

expand_dims_p = Primitive("expand_dims")


def expand_dims(x: Any, dimensions: Sequence[int]) -> Any:
    """`x` with new size-1 axes at positions `dimensions` of the result."""
    x = as_operand(x)
    dims = int_tuple(dimensions, "expand_dims: dimensions")
    out_ndim = aval_of(x).ndim + len(dims)
    dims = tuple(sorted(canonical_axis(d, out_ndim) for d in dims))
    return expand_dims_p.bind(x, dimensions=dims)


impl_rules[expand_dims_p] = lambda x, dimensions: np.expand_dims(x, dimensions)


@def_shape_rule(expand_dims_p)
def _expand_dims_shape(x: ShapedArray, dimensions: tuple[int, ...]) -> ShapedArray:
    out_ndim = x.ndim + len(dimensions)
    check_axes(expand_dims_p, dimensions, out_ndim, x.shape)
    sizes = iter(x.shape)
    return ShapedArray([1 if i in dimensions else next(sizes) for i in range(out_ndim)],
                       x.dtype)


linear_jvp(expand_dims_p)
linear_jet(expand_dims_p)


@def_transpose(expand_dims_p)
def _expand_dims_transpose(ct: Any, x: Any, dimensions: tuple[int, ...]) -> Any:
    return [squeeze(ct, dimensions)]


def_lowering(expand_dims_p)(_reshape_lowering)


@def_batch(expand_dims_p)
def _expand_dims_batch(args: Sequence[Any], dims: Sequence[Any],
                       dimensions: tuple[int, ...]) -> Any:
    (x,), (d,) = args, dims
    out_ndim = aval_of(x).ndim - 1 + len(dimensions)
    kept = [i for i in range(out_ndim) if i not in dimensions]   # the operand's axes
    out_dim = kept[d - 1] + 1 if d else 0
    return expand_dims(x, [batched_axis(a, out_dim) for a in dimensions]), out_dim


# ---------------------------------------------------------------- concatenate

concatenate_p = Primitive("concatenate")


def concatenate(xs: Sequence[Any], dimension: int) -> Any:
    """Join arrays of one dtype, equal in shape except along `dimension`."""
    xs = [as_operand(x) for x in xs]
    if not xs:
        raise FxTypeError(at_user_line("concatenate: needs at least one operand"))
    axis = canonical_axis(as_int(dimension, "concatenate: dimension"), aval_of(xs[0]).ndim)
    return concatenate_p.bind(*xs, dimension=axis)


impl_rules[concatenate_p] = lambda *xs, dimension: np.concatenate(xs, dimension)


@def_shape_rule(concatenate_p)
def _concatenate_shape(*xs: ShapedArray, dimension: int) -> ShapedArray:
    dtype = same_dtype(concatenate_p, *xs)
    shapes = ", ".join(str(x.shape) for x in xs)
    ref = xs[0]
    if not 0 <= dimension < ref.ndim:
        raise FxTypeError(f"concatenate: dimension {dimension} is out of range for operand "
                          f"shapes {shapes}")
    if any(x.ndim != ref.ndim or _drop(x.shape, dimension) != _drop(ref.shape, dimension)
           for x in xs):
        raise FxTypeError(f"concatenate: operand shapes {shapes} must be equal except along "
                          f"dimension {dimension}")
    size = sum(x.shape[dimension] for x in xs)
    return ShapedArray(ref.shape[:dimension] + (size,) + ref.shape[dimension + 1:], dtype)


def _drop(shape: tuple[int, ...], axis: int) -> tuple[int, ...]:
    return shape[:axis] + shape[axis + 1:]


linear_jvp(concatenate_p)
linear_jet(concatenate_p)


@def_transpose(concatenate_p)
def _concatenate_transpose(ct: Any, *xs: Any, dimension: int) -> Any:
    from fxgrad.primitives.indexing import static_slice
    shape = aval_of(ct).shape
    cts, offset = [], 0
    for x in xs:
        size = aval_of(x).shape[dimension]
        if is_undefined(x):
            start = [0] * len(shape)
            limit = list(shape)
            start[dimension], limit[dimension] = offset, offset + size
            cts.append(static_slice(ct, start, limit))
        else:
            cts.append(None)
        offset += size
    return cts


@def_lowering(concatenate_p)
def _concatenate_lowering(ctx: Ctx, *xs: str, dimension: int) -> None:
    ctx.emit(f"{ctx.outs[0]} = np.concatenate(({', '.join(xs)},), axis={dimension})")


@def_batch(concatenate_p)
def _concatenate_batch(args: Sequence[Any], dims: Sequence[Any], dimension: int) -> Any:
    size = batch_size(args, dims)
    out_dim = next(d for d in dims if d is not None)
    moved = [move_axis(x, d, out_dim, size) for x, d in zip(args, dims)]
    return concatenate(moved, batched_axis(dimension, out_dim)), out_dim


# ---------------------------------------------------------------- convert_element_type

convert_element_type_p = Primitive("convert_element_type")


def convert_element_type(x: Any, new_dtype: Any) -> Any:
    """`x` cast to `new_dtype` (returned unchanged if it already has that dtype)."""
    new_dtype = np.dtype(new_dtype)
    if not is_python_scalar(x) and aval_of(x).dtype == new_dtype:
        return x
    return convert_element_type_p.bind(as_operand(x), new_dtype=new_dtype)


impl_rules[convert_element_type_p] = lambda x, new_dtype: x.astype(new_dtype)


@def_shape_rule(convert_element_type_p)
def _convert_element_type_shape(x: ShapedArray, new_dtype: np.dtype) -> ShapedArray:
    if x.dtype.kind == "c" and new_dtype.kind != "c":
        raise FxTypeError(f"convert_element_type: cannot convert complex {x.dtype.name} of "
                          f"shape {x.shape} to {new_dtype.name}; take the real part first")
    return ShapedArray(x.shape, new_dtype)


def _is_float(dtype: np.dtype) -> bool:
    return dtype.kind in "fc"


@def_jvp(convert_element_type_p)
def _convert_element_type_jvp(primals: Any, tangents: Any, new_dtype: np.dtype) -> Any:
    (x,), (x_dot,) = primals, tangents
    out = convert_element_type(x, new_dtype)
    if not (_is_float(aval_of(x).dtype) and _is_float(new_dtype)):
        return out, Zero(aval_of(out))
    return out, convert_element_type(x_dot, new_dtype)


@def_transpose(convert_element_type_p)
def _convert_element_type_transpose(ct: Any, x: Any, new_dtype: np.dtype) -> Any:
    return [convert_element_type(ct, x.aval.dtype)]


@def_elementwise_lowering(convert_element_type_p)
def _convert_element_type_lowering(ctx: Ctx, x: str, new_dtype: np.dtype) -> str:
    # numba's integer casts truncate toward zero like astype; bool means "nonzero"
    return f"({x} != 0)" if new_dtype.kind == "b" else ctx.cast(x)


linear_jet(convert_element_type_p)


@def_batch(convert_element_type_p)
def _convert_element_type_batch(args: Sequence[Any], dims: Sequence[Any],
                                new_dtype: np.dtype) -> Any:
    return convert_element_type(args[0], new_dtype), dims[0]
