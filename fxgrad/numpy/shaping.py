"""Shape manipulation: reshaping, axis permutation, joining, splitting, tiling, flipping.

Everything here only moves elements, so it maps onto the linear shape primitives:
`reshape`, `transpose`, `squeeze`/`expand_dims`, `broadcast_in_dim`, `concatenate`,
`slice` and `pad`. `tile` and `repeat` with an int count are a broadcast into an
interleaved shape followed by a reshape; `flip` gathers with reversed indices (slices
have positive strides only). Operations that would not change anything bind nothing.
"""
from __future__ import annotations

import builtins
import operator
from typing import Any, Sequence

import numpy as np

from fxgrad.core.errors import FxTypeError, FxValueError, at_user_line
from fxgrad.numpy._promote import (broadcast_shapes, broadcast_to_shape, canonical_axes,
                                   canonical_axis, cast, dtype_of, is_traced, operand, operands,
                                   out, result_type, shape_of)
from fxgrad.numpy.elementwise import not_equal, subtract
from fxgrad.primitives import shape as shape_prims
from fxgrad.primitives.indexing import gather, pad as pad_prim, static_slice


def shape(a: Any) -> tuple[int, ...]:
    """The shape of `a`, a tuple of ints (static, also for tracers).

    >>> import fxgrad as fx, fxgrad.numpy as fnp, numpy as np
    >>> fx.vmap(lambda x: fnp.zeros(fnp.shape(x)))(np.ones((4, 3))).shape
    (4, 3)
    """
    return shape_of(operand(a, "shape"))


def ndim(a: Any) -> int:
    """The number of dimensions of `a` (static, also for tracers).

    >>> import fxgrad.numpy as fnp, numpy as np
    >>> fnp.ndim(np.ones((2, 3)))
    2
    """
    return len(shape(a))


def size(a: Any, axis: Any = None) -> int:
    """The number of elements of `a`, or along `axis` (static, also for tracers).

    >>> import fxgrad.numpy as fnp, numpy as np
    >>> fnp.size(np.ones((2, 3))), fnp.size(np.ones((2, 3)), 1)
    (6, 3)
    """
    s = shape(a)
    if axis is None:
        return int(np.prod(s, dtype=np.int64))
    return s[canonical_axis(axis, len(s), "size")]


# ---------------------------------------------------------------- reshaping

def _as_shape(newshape: Any) -> tuple[int, ...]:
    if isinstance(newshape, (tuple, list)):
        return tuple(operator.index(s) for s in newshape)
    return (operator.index(newshape),)


def _infer_size(new_shape: tuple[int, ...], size: int) -> tuple[int, ...]:
    """`new_shape` with a -1 entry replaced by the size that keeps `size` elements."""
    if new_shape.count(-1) != 1:
        return new_shape
    known = int(np.prod([s for s in new_shape if s != -1], dtype=np.int64))
    if known == 0 or size % known:
        raise FxValueError(at_user_line(f"reshape: cannot reshape an array of size {size} "
                                        f"into shape {new_shape}"))
    return tuple(size // known if s == -1 else s for s in new_shape)


def reshape(a: Any, shape: Any, order: str = "C") -> Any:
    """`a` with a new shape (row-major); one dimension may be -1.

    Only order='C' is supported (others raise FxValueError); numpy's `copy` is not taken.

    >>> import fxgrad.numpy as fnp, numpy as np
    >>> fnp.reshape(np.arange(6), (2, -1))
    array([[0, 1, 2],
           [3, 4, 5]])
    """
    if order != "C":
        raise FxValueError(at_user_line(f"reshape: only order='C' is supported, got {order!r}"))
    a = operand(a, "reshape")
    new_shape = _infer_size(_as_shape(shape), int(np.prod(shape_of(a), dtype=np.int64)))
    if new_shape == shape_of(a):
        return out(a)
    return out(shape_prims.reshape(a, new_shape))


def ravel(a: Any, order: str = "C") -> Any:
    """`a` flattened to 1-d in row-major order (only order='C' is supported).

    >>> import fxgrad as fx, fxgrad.numpy as fnp, numpy as np
    >>> fx.vmap(fnp.ravel)(np.ones((2, 3, 4))).shape
    (2, 12)
    """
    return reshape(a, (-1,), order)


def transpose(a: Any, axes: Any = None) -> Any:
    """`a` with its axes permuted (reversed by default).

    >>> import fxgrad.numpy as fnp, numpy as np
    >>> fnp.transpose(np.ones((2, 3, 4)), (1, 0, 2)).shape
    (3, 2, 4)
    """
    a = operand(a, "transpose")
    n = len(shape_of(a))
    perm = tuple(range(n))[::-1] if axes is None else tuple(
        canonical_axis(ax, n, "transpose") for ax in axes)
    if sorted(perm) != list(range(n)):
        raise FxValueError(at_user_line(f"transpose: axes {axes!r} do not match an array of "
                                        f"dimension {n}"))
    return out(a if perm == tuple(range(n)) else shape_prims.transpose(a, perm))


def swapaxes(a: Any, axis1: int, axis2: int) -> Any:
    """`a` with axes `axis1` and `axis2` interchanged.

    >>> import fxgrad.numpy as fnp, numpy as np
    >>> fnp.swapaxes(np.ones((2, 3, 4)), 0, 2).shape
    (4, 3, 2)
    """
    a = operand(a, "swapaxes")
    n = len(shape_of(a))
    perm = list(range(n))
    i, j = canonical_axis(axis1, n, "swapaxes"), canonical_axis(axis2, n, "swapaxes")
    perm[i], perm[j] = j, i
    return transpose(a, perm)


def moveaxis(a: Any, source: Any, destination: Any) -> Any:
    """`a` with axes `source` moved to positions `destination`, the rest in order.

    >>> import fxgrad.numpy as fnp, numpy as np
    >>> fnp.moveaxis(np.ones((2, 3, 4)), 0, -1).shape
    (3, 4, 2)
    """
    a = operand(a, "moveaxis")
    n = len(shape_of(a))
    src = [canonical_axis(s, n, "moveaxis") for s in np.atleast_1d(source)]
    dst = [canonical_axis(d, n, "moveaxis") for d in np.atleast_1d(destination)]
    if len(src) != len(dst):
        raise FxValueError(at_user_line("moveaxis: source and destination must have the "
                                        "same number of elements"))
    perm = [i for i in range(n) if i not in src]
    for d, s in sorted(zip(dst, src)):
        perm.insert(d, s)
    return transpose(a, perm)


def squeeze(a: Any, axis: Any = None) -> Any:
    """`a` without its size-1 axes (or without the given ones, which must have size 1).

    >>> import fxgrad.numpy as fnp, numpy as np
    >>> fnp.squeeze(np.ones((1, 3, 1))).shape
    (3,)
    """
    a = operand(a, "squeeze")
    s = shape_of(a)
    axes = (tuple(i for i, n in enumerate(s) if n == 1) if axis is None
            else canonical_axes(axis, len(s), "squeeze"))
    return out(shape_prims.squeeze(a, axes) if axes else a)


def expand_dims(a: Any, axis: Any) -> Any:
    """`a` with new size-1 axes at positions `axis` of the result.

    >>> import fxgrad.numpy as fnp, numpy as np
    >>> fnp.expand_dims(np.ones(3), (0, 2)).shape
    (1, 3, 1)
    """
    a = operand(a, "expand_dims")
    seq = axis if isinstance(axis, (tuple, list)) else (axis,)
    axes = canonical_axes(seq, len(shape_of(a)) + len(seq), "expand_dims")
    return out(shape_prims.expand_dims(a, axes))


def broadcast_to(array: Any, shape: Any) -> Any:
    """`array` broadcast to `shape` by numpy's rules (a new array, not a read-only view).

    >>> import fxgrad as fx, fxgrad.numpy as fnp, numpy as np
    >>> fx.grad(lambda x: fnp.sum(fnp.broadcast_to(x, (3, 2))))(np.zeros(2))
    array([3., 3.])
    """
    array = operand(array, "broadcast_to")
    target = _as_shape(shape)
    if broadcast_shapes("broadcast_to", shape_of(array), target) != target:
        raise FxValueError(at_user_line(f"broadcast_to: cannot broadcast shape "
                                        f"{shape_of(array)} to {target}"))
    return out(broadcast_to_shape(array, target))


def broadcast_arrays(*args: Any) -> tuple[Any, ...]:
    """The arguments broadcast against each other (new arrays, not read-only views).

    >>> import fxgrad.numpy as fnp, numpy as np
    >>> fnp.broadcast_arrays(np.array([1, 2]), np.array([[3], [4]]))
    (array([[1, 2],
           [1, 2]]), array([[3, 3],
           [4, 4]]))
    """
    xs = operands("broadcast_arrays", *args)
    target = broadcast_shapes("broadcast_arrays", *(shape_of(x) for x in xs))
    return tuple(out(broadcast_to_shape(x, target)) for x in xs)


def _atleast(arys: Sequence[Any], fn: Any) -> Any:
    results = [fn(operand(a, "atleast")) for a in arys]
    return results[0] if len(results) == 1 else tuple(results)


def atleast_1d(*arys: Any) -> Any:
    """Each argument as an array of at least 1 dimension (a tuple for several).

    >>> import fxgrad.numpy as fnp, numpy as np
    >>> fnp.atleast_1d(1.0)
    array([1.])
    """
    return _atleast(arys, lambda a: out(a) if shape_of(a) else reshape(a, (1,)))


def atleast_2d(*arys: Any) -> Any:
    """Each argument as an array of at least 2 dimensions (a tuple for several).

    >>> import fxgrad.numpy as fnp, numpy as np
    >>> fnp.atleast_2d(np.array([1, 2]))
    array([[1, 2]])
    """
    return _atleast(arys, lambda a: out(a) if len(shape_of(a)) >= 2
                    else reshape(a, (1, -1) if shape_of(a) else (1, 1)))


def _to_3d(a: Any) -> Any:
    s = shape_of(a)
    new = {0: (1, 1, 1), 1: (1,) + s + (1,), 2: s + (1,)}.get(len(s), s)
    return reshape(a, new)


def atleast_3d(*arys: Any) -> Any:
    """Each argument as an array of at least 3 dimensions (a tuple for several).

    >>> import fxgrad.numpy as fnp, numpy as np
    >>> fnp.atleast_3d(np.ones((2, 3))).shape
    (2, 3, 1)
    """
    return _atleast(arys, _to_3d)


# ---------------------------------------------------------------- joining

def concatenate(arrays: Sequence[Any], axis: Any = 0) -> Any:
    """Join arrays along an existing axis (flattened first if `axis` is None).

    numpy's `out`, `dtype` and `casting` are not taken.

    >>> import fxgrad as fx, fxgrad.numpy as fnp, numpy as np
    >>> fx.grad(lambda x: fnp.sum(fnp.concatenate([x, 2.0 * x])))(np.zeros(2))
    array([3., 3.])
    """
    xs = operands("concatenate", *arrays)
    if not xs:
        raise FxValueError(at_user_line("concatenate: need at least one array to concatenate"))
    if axis is None:
        xs, axis = [reshape(x, (-1,)) for x in xs], 0
    if any(shape_of(x) == () for x in xs):
        raise FxValueError(at_user_line("concatenate: zero-dimensional arrays cannot be "
                                        "concatenated"))
    xs = [cast(x, result_type(*xs)) for x in xs]
    ax = canonical_axis(axis, len(shape_of(xs[0])), "concatenate")
    return out(xs[0] if len(xs) == 1 else shape_prims.concatenate(xs, ax))


def stack(arrays: Sequence[Any], axis: int = 0) -> Any:
    """Join arrays of one shape along a new axis (numpy's `out`, `dtype`, `casting` not taken).

    >>> import fxgrad as fx, fxgrad.numpy as fnp, numpy as np
    >>> fx.jacfwd(lambda x: fnp.stack([x, x ** 2]))(3.0)
    array([1., 6.])
    """
    xs = operands("stack", *arrays)
    if not xs:
        raise FxValueError(at_user_line("stack: need at least one array to stack"))
    shapes = {shape_of(x) for x in xs}
    if len(shapes) != 1:
        raise FxValueError(at_user_line(f"stack: all input arrays must have the same shape, "
                                        f"got {sorted(shapes)}"))
    ax = canonical_axis(axis, len(shape_of(xs[0])) + 1, "stack")
    return concatenate([expand_dims(x, ax) for x in xs], ax)


def hstack(tup: Sequence[Any]) -> Any:
    """Join arrays column-wise: along axis 1, or axis 0 if all are 1-d (`dtype` not taken).

    >>> import fxgrad.numpy as fnp, numpy as np
    >>> fnp.hstack([np.array([1, 2]), np.array([3])])
    array([1, 2, 3])
    """
    xs = [atleast_1d(x) for x in tup]
    return concatenate(xs, 0 if builtins.all(len(shape_of(x)) == 1 for x in xs) else 1)


def vstack(tup: Sequence[Any]) -> Any:
    """Join arrays row-wise, 1-d arrays as rows (numpy's `dtype`, `casting` not taken).

    >>> import fxgrad.numpy as fnp, numpy as np
    >>> fnp.vstack([np.array([1, 2]), np.array([3, 4])])
    array([[1, 2],
           [3, 4]])
    """
    return concatenate([atleast_2d(x) for x in tup], 0)


def dstack(tup: Sequence[Any]) -> Any:
    """Join arrays along the third axis, after `atleast_3d`.

    >>> import fxgrad.numpy as fnp, numpy as np
    >>> fnp.dstack([np.array([1, 2]), np.array([3, 4])]).shape
    (1, 2, 2)
    """
    return concatenate([atleast_3d(x) for x in tup], 2)


def column_stack(tup: Sequence[Any]) -> Any:
    """Join arrays as columns: 1-d arrays become columns, 2-d arrays join as they are.

    >>> import fxgrad.numpy as fnp, numpy as np
    >>> fnp.column_stack([np.array([1, 2]), np.array([3, 4])])
    array([[1, 3],
           [2, 4]])
    """
    cols = [operand(x, "column_stack") for x in tup]
    cols = [reshape(c, (-1, 1)) if len(shape_of(c)) < 2 else c for c in cols]
    return concatenate(cols, 1)


def append(arr: Any, values: Any, axis: Any = None) -> Any:
    """`values` appended to `arr` along `axis` (both flattened first if `axis` is None).

    >>> import fxgrad.numpy as fnp, numpy as np
    >>> fnp.append(np.array([1, 2]), 3)
    array([1, 2, 3])
    """
    return concatenate([arr, values], axis)


# ---------------------------------------------------------------- splitting

def _slice_axis(a: Any, axis: int, start: int, stop: int) -> Any:
    s = shape_of(a)
    if (start, stop) == (0, s[axis]):
        return out(a)
    starts = [0] * len(s)
    limits = list(s)
    starts[axis], limits[axis] = start, stop
    return out(static_slice(a, starts, limits))


def array_split(ary: Any, indices_or_sections: Any, axis: int = 0) -> list[Any]:
    """Split into pieces at the given indices, or into that many near-equal pieces.

    >>> import fxgrad.numpy as fnp, numpy as np
    >>> fnp.array_split(np.arange(5), 2)
    [array([0, 1, 2]), array([3, 4])]
    """
    a = operand(ary, "array_split")
    ax = canonical_axis(axis, len(shape_of(a)), "array_split")
    n = shape_of(a)[ax]
    if isinstance(indices_or_sections, (int, np.integer)):
        sections = int(indices_or_sections)
        if sections <= 0:
            raise FxValueError(at_user_line("array_split: number of sections must be > 0"))
        each, extra = divmod(n, sections)
        sizes = [each + 1] * extra + [each] * (sections - extra)
        bounds = np.cumsum([0] + sizes).tolist()
    else:
        cuts = [builtins.min(builtins.max(int(i) + (n if i < 0 else 0), 0), n)
                for i in indices_or_sections]
        bounds = [0] + cuts + [n]
    return [_slice_axis(a, ax, lo, builtins.max(lo, hi)) for lo, hi in zip(bounds, bounds[1:])]


def split(ary: Any, indices_or_sections: Any, axis: int = 0) -> list[Any]:
    """Like `array_split`, but a number of sections must divide the axis evenly.

    >>> import fxgrad.numpy as fnp, numpy as np
    >>> fnp.split(np.arange(6), [2, 3])
    [array([0, 1]), array([2]), array([3, 4, 5])]
    """
    a = operand(ary, "split")
    if isinstance(indices_or_sections, (int, np.integer)):
        n = shape_of(a)[canonical_axis(axis, len(shape_of(a)), "split")]
        if indices_or_sections <= 0 or n % indices_or_sections:
            raise FxValueError(at_user_line(
                f"split: array split does not result in an equal division ({n} into "
                f"{indices_or_sections})"))
    return array_split(a, indices_or_sections, axis)


def hsplit(ary: Any, indices_or_sections: Any) -> list[Any]:
    """`split` along axis 1 (axis 0 for 1-d arrays).

    >>> import fxgrad.numpy as fnp, numpy as np
    >>> fnp.hsplit(np.array([[1, 2], [3, 4]]), 2)
    [array([[1],
           [3]]), array([[2],
           [4]])]
    """
    return split(ary, indices_or_sections, 1 if len(shape(ary)) > 1 else 0)


def vsplit(ary: Any, indices_or_sections: Any) -> list[Any]:
    """`split` along axis 0.

    >>> import fxgrad.numpy as fnp, numpy as np
    >>> fnp.vsplit(np.array([[1, 2], [3, 4]]), 2)
    [array([[1, 2]]), array([[3, 4]])]
    """
    return split(ary, indices_or_sections, 0)


# ---------------------------------------------------------------- tiling, flipping, rolling

def tile(A: Any, reps: Any) -> Any:
    """`A` repeated `reps` times per axis: broadcast into (r0, s0, r1, s1, ...), reshape.

    >>> import fxgrad.numpy as fnp, numpy as np
    >>> fnp.tile(np.array([1, 2]), (2, 1))
    array([[1, 2],
           [1, 2]])
    """
    a = operand(A, "tile")
    reps = _as_shape(reps)
    d = builtins.max(len(shape_of(a)), len(reps))
    s = (1,) * (d - len(shape_of(a))) + shape_of(a)
    reps = (1,) * (d - len(reps)) + reps
    if builtins.all(r == 1 for r in reps):
        return reshape(a, s)
    interleaved = tuple(v for pair in zip(reps, s) for v in pair)
    tiled = shape_prims.broadcast_in_dim(reshape(a, s), interleaved, tuple(range(1, 2 * d, 2)))
    return reshape(tiled, tuple(r * n for r, n in zip(reps, s)))


def repeat(a: Any, repeats: Any, axis: Any = None) -> Any:
    """Each element repeated `repeats` times along `axis` (of the flattened array if None).

    The counts decide the shape, so traced counts raise FxTypeError.

    >>> import fxgrad as fx, fxgrad.numpy as fnp, numpy as np
    >>> fx.grad(lambda x: fnp.sum(fnp.repeat(x, 3)))(np.zeros(2))
    array([3., 3.])
    """
    a = operand(a, "repeat")
    if axis is None:
        a, axis = ravel(a), 0
    ax = canonical_axis(axis, len(shape_of(a)), "repeat")
    if is_traced(repeats):
        raise FxTypeError(at_user_line("repeat: traced repeat counts give a data-dependent "
                                       "shape; pass concrete counts"))
    counts = np.asarray(repeats)
    s = shape_of(a)
    if counts.ndim == 0:
        wide = s[:ax + 1] + (int(counts),) + s[ax + 1:]
        dims = tuple(range(ax + 1)) + tuple(range(ax + 2, len(s) + 1))
        spread = shape_prims.broadcast_in_dim(a, wide, dims)
        return reshape(spread, s[:ax] + (s[ax] * int(counts),) + s[ax + 1:])
    return out(gather(a, np.repeat(np.arange(s[ax]), counts), ax))


def flip(m: Any, axis: Any = None) -> Any:
    """`m` with the order of elements reversed along `axis` (all axes by default).

    >>> import fxgrad as fx, fxgrad.numpy as fnp, numpy as np
    >>> fx.grad(lambda x: fnp.dot(fnp.flip(x), np.array([1., 2., 3.])))(np.zeros(3))
    array([3., 2., 1.])
    """
    m = operand(m, "flip")
    for ax in canonical_axes(axis, len(shape_of(m)), "flip"):
        n = shape_of(m)[ax]
        if n > 1:
            m = gather(m, np.arange(n - 1, -1, -1), ax)
    return out(m)


def fliplr(m: Any) -> Any:
    """`m` with the order of columns (axis 1) reversed.

    >>> import fxgrad.numpy as fnp, numpy as np
    >>> fnp.fliplr(np.array([[1, 2], [3, 4]]))
    array([[2, 1],
           [4, 3]])
    """
    return flip(m, 1)


def flipud(m: Any) -> Any:
    """`m` with the order of rows (axis 0) reversed.

    >>> import fxgrad.numpy as fnp, numpy as np
    >>> fnp.flipud(np.array([[1, 2], [3, 4]]))
    array([[3, 4],
           [1, 2]])
    """
    return flip(m, 0)


def roll(a: Any, shift: Any, axis: Any = None) -> Any:
    """Elements shifted cyclically by `shift` along `axis` (of the flattened array if None).

    >>> import fxgrad.numpy as fnp, numpy as np
    >>> fnp.roll(np.array([1, 2, 3, 4]), 1)
    array([4, 1, 2, 3])
    """
    a = operand(a, "roll")
    if axis is None:
        return reshape(roll(ravel(a), shift, 0), shape_of(a))
    shifts, axes = np.broadcast_arrays(np.atleast_1d(shift), np.atleast_1d(axis))
    for k, ax in zip(shifts.tolist(), axes.tolist()):
        ax = canonical_axis(ax, len(shape_of(a)), "roll")
        n = shape_of(a)[ax]
        k = k % n if n else 0
        if k:
            a = concatenate([_slice_axis(a, ax, n - k, n), _slice_axis(a, ax, 0, n - k)], ax)
    return out(a)


def diff(a: Any, n: int = 1, axis: int = -1) -> Any:
    """`n`-th discrete difference `a[1:] - a[:-1]` along `axis` (`prepend`, `append` not taken).

    >>> import fxgrad as fx, fxgrad.numpy as fnp, numpy as np
    >>> fx.grad(lambda x: fnp.sum(fnp.diff(x) ** 2))(np.array([0., 1., 3.]))
    array([-2., -2.,  4.])
    """
    a = operand(a, "diff")
    ax = canonical_axis(axis, len(shape_of(a)), "diff")
    for _ in range(n):
        size = shape_of(a)[ax]
        hi, lo = _slice_axis(a, ax, 1, size), _slice_axis(a, ax, 0, builtins.max(size - 1, 0))
        a = not_equal(hi, lo) if dtype_of(a) == np.bool_ else subtract(hi, lo)
    return out(a)


def pad(array: Any, pad_width: Any, mode: str = "constant", constant_values: Any = 0) -> Any:
    """`array` padded with `constant_values`, which may be traced.

    Only mode='constant' with a scalar `constant_values` is supported; anything else
    raises FxValueError.

    >>> import fxgrad as fx, fxgrad.numpy as fnp, numpy as np
    >>> fnp.pad(np.array([1., 2.]), (0, 2), constant_values=9.)
    array([1., 2., 9., 9.])
    """
    if mode != "constant":
        raise FxValueError(at_user_line(f"pad: only mode='constant' is supported, got {mode!r}"))
    a = operand(array, "pad")
    widths = np.broadcast_to(np.asarray(pad_width, dtype=np.int64), (len(shape_of(a)), 2))
    if (widths < 0).any():
        raise FxValueError(at_user_line("pad: pad_width must be non-negative"))
    value = cast(operand(constant_values, "pad"), dtype_of(a))
    if shape_of(value) != ():
        raise FxValueError(at_user_line("pad: only a scalar constant_values is supported"))
    config = tuple((int(lo), int(hi), 0) for lo, hi in widths)
    return out(pad_prim(a, value, config))
