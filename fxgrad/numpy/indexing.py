"""numpy indexing (`x[idx]`, `take`, `take_along_axis`) and diagonals over slice and gather.

An index is first normalised to one entry per axis: the ellipsis expands to full slices,
`None` becomes a full slice of a size-1 axis inserted up front, a concrete boolean mask
becomes the integer arrays of its nonzero positions. Slices (and, without arrays, integers)
are one `slice` primitive; negative steps slice the mirrored range and flip it with a
`gather`. Integer arrays -- and integers among them, as numpy treats them -- are
"advanced": a single one is a `gather` on its axis; several are merged into one axis and
gathered with their flattened (row-major) index, the result axes placed where numpy
puts them (in place if the arrays index adjacent axes, first otherwise). A traced 0-d
integer (`x[i]` in a scan body) is a gather too. Concrete indices are bounds-checked and
negative ones wrapped; traced ones are wrapped with `where` and clamped by `gather`.
A plain numpy array cannot be indexed by a tracer (numpy converts the index itself):
use `fnp.take(a, i, axis)` for constants indexed inside a scan body.
"""
from __future__ import annotations

import operator
from typing import Any, Sequence

import numpy as np

from fxgrad.core.errors import FxgradError, FxTypeError, at_user_line
from fxgrad.numpy._promote import (broadcast_shapes, broadcast_to_shape, canonical_axis,
                                   cast, contains_tracer, dtype_of, is_traced, operand, out,
                                   shape_of)
from fxgrad.numpy.elementwise import add, multiply, where
from fxgrad.primitives import arith, logic, shape as shape_prims
from fxgrad.primitives.indexing import gather, scatter_add, static_slice


class FxIndexError(FxgradError, IndexError):
    """A concrete index is out of bounds, as numpy's IndexError."""


def _error(message: str) -> FxTypeError:
    return FxTypeError(at_user_line(message))


# ---------------------------------------------------------------- index normalisation

def _is_int(e: Any) -> bool:
    if isinstance(e, (bool, np.bool_)):
        return False
    if isinstance(e, (int, np.integer)):
        return True
    return isinstance(e, np.ndarray) and e.ndim == 0 and e.dtype.kind in "iu"


def _classify(e: Any) -> tuple[str, Any]:
    """(kind, value) of one index entry; kinds: none ellipsis slice int tint array mask."""
    if e is None:
        return "none", e
    if e is Ellipsis:
        return "ellipsis", e
    if isinstance(e, slice):
        return "slice", e
    if _is_int(e):
        return "int", operator.index(e)
    if contains_tracer(e):
        return _classify_traced(operand(e, "index"))
    arr = np.asarray(e)
    if arr.dtype.kind == "b" and arr.ndim > 0:
        return "mask", arr
    if arr.dtype.kind not in "iu" or arr.ndim == 0:
        raise FxIndexError(at_user_line(
            "only integers, slices (`:`), ellipsis (`...`), None (`newaxis`) and integer "
            f"or boolean arrays are valid indices, got {e!r}"))
    return "array", arr.astype(np.int64)


def _classify_traced(t: Any) -> tuple[str, Any]:
    if t.dtype.kind == "b":
        raise _error("boolean mask indexing with a traced mask has a data-dependent shape; "
                     "use fnp.where(mask, x, other) to select elementwise instead")
    if t.dtype.kind not in "iu":
        raise _error(f"arrays used as indices must be of integer type, got traced {t.dtype}")
    return ("tint" if t.ndim == 0 else "array"), t


def _axes_used(kind: str, value: Any) -> int:
    if kind == "mask":
        return value.ndim
    return 0 if kind in ("none", "ellipsis") else 1


def _entries(idx: Any, ndim: int) -> list[tuple[str, Any]]:
    """One (kind, value) per axis of the array with `None` axes inserted; masks expanded."""
    raw = [_classify(e) for e in (idx if isinstance(idx, tuple) else (idx,))]
    if sum(kind == "ellipsis" for kind, _ in raw) > 1:
        raise FxIndexError(at_user_line("an index can only have a single ellipsis ('...')"))
    used = sum(_axes_used(kind, v) for kind, v in raw)
    if used > ndim:
        raise FxIndexError(at_user_line(
            f"too many indices for array: array is {ndim}-dimensional, but {used} were indexed"))
    entries: list[tuple[str, Any]] = []
    for kind, v in raw:
        if kind == "ellipsis":
            entries += [("slice", slice(None))] * (ndim - used)
        elif kind == "mask":
            entries += [("array", a) for a in np.nonzero(v)]
        else:
            entries.append((kind, v))
    if not any(kind == "ellipsis" for kind, _ in raw):
        entries += [("slice", slice(None))] * (ndim - used)
    return entries


# ---------------------------------------------------------------- concrete index arithmetic

def _wrap_concrete(idx: Any, n: int, axis: int) -> Any:
    arr = np.asarray(idx)
    bad = (arr < -n) | (arr >= n)
    if bad.any():
        raise FxIndexError(at_user_line(
            f"index {int(arr[bad].flat[0])} is out of bounds for axis {axis} with size {n}"))
    wrapped = np.where(arr < 0, arr + n, arr)
    return wrapped if arr.ndim else int(wrapped)


def _wrap_traced(idx: Any, n: int) -> Any:
    """Negative traced indices count from the end (unsigned ones cannot be negative);
    `gather` clamps the ones still out of range, as JAX does."""
    if dtype_of(idx).kind == "u":
        return idx
    return logic.select(logic.lt(idx, 0), cast(add(idx, n), dtype_of(idx)), idx)


def _wrap(idx: Any, n: int, axis: int) -> Any:
    return _wrap_traced(idx, n) if is_traced(idx) else _wrap_concrete(idx, n, axis)


def _positive_slice(s: slice, n: int) -> tuple[int, int, int, bool]:
    """(start, limit, stride, flip): `s` as a positive-stride slice, maybe reversed after."""
    r = range(*s.indices(n))
    if len(r) == 0:
        return 0, 0, 1, False
    if r.step > 0:
        return r.start, r[-1] + 1, r.step, False
    return r[-1], r[0] + 1, -r.step, len(r) > 1


# ---------------------------------------------------------------- getitem

def getitem(x: Any, idx: Any) -> Any:
    """`x[idx]` with numpy's semantics (see the module docstring)."""
    x = operand(x, "index")
    entries = _entries(idx, len(shape_of(x)))
    new_axes = tuple(i for i, (kind, _) in enumerate(entries) if kind == "none")
    if new_axes:
        x = shape_prims.expand_dims(x, new_axes)
    entries = [("slice", slice(None)) if kind == "none" else (kind, v) for kind, v in entries]
    advanced = any(kind == "array" for kind, _ in entries)
    x = _basic(x, entries, keep_ints=advanced)
    if advanced:
        return out(_advanced(x, entries))
    return out(_drop_ints(x, entries))


def _basic(x: Any, entries: list[tuple[str, Any]], keep_ints: bool) -> Any:
    """Apply slices (and static ints as length-1 slices unless `keep_ints`), then flips."""
    shape = shape_of(x)
    starts, limits, strides, flips = [], [], [], []
    for axis, ((kind, v), n) in enumerate(zip(entries, shape)):
        if kind == "slice":
            start, limit, stride, flip = _positive_slice(v, n)
            flips += [axis] if flip else []
        elif kind == "int" and not keep_ints:
            start = _wrap_concrete(v, n, axis)
            limit, stride = start + 1, 1
        else:
            start, limit, stride = 0, n, 1
        starts.append(start)
        limits.append(limit)
        strides.append(stride)
    if (starts, limits, strides) != ([0] * len(shape), list(shape), [1] * len(shape)):
        x = static_slice(x, starts, limits, strides)
    for axis in flips:
        x = gather(x, np.arange(shape_of(x)[axis] - 1, -1, -1), axis)
    return x


def _drop_ints(x: Any, entries: list[tuple[str, Any]]) -> Any:
    """Squeeze the axes of static ints, then gather the traced 0-d ints (last axis first)."""
    static = tuple(i for i, (kind, _) in enumerate(entries) if kind == "int")
    if static:
        x = shape_prims.squeeze(x, static)
    traced = [(i, v) for i, (kind, v) in enumerate(entries) if kind == "tint"]
    for axis, idx in reversed(traced):
        axis -= sum(i < axis for i in static)
        x = gather(x, _wrap_traced(idx, shape_of(x)[axis]), axis)
    return x


def _advanced(x: Any, entries: list[tuple[str, Any]]) -> Any:
    """Gather with the integer arrays (and ints) of `entries`, numpy's axis placement."""
    shape = shape_of(x)
    axes = [i for i, (kind, _) in enumerate(entries) if kind in ("int", "tint", "array")]
    indices = [_wrap(entries[i][1], shape[i], i) for i in axes]
    broadcast_shapes("index", *(np.shape(i) if not is_traced(i) else shape_of(i)
                                for i in indices))
    if len(axes) == 1:
        return gather(x, indices[0], axes[0])
    adjacent = axes == list(range(axes[0], axes[-1] + 1))
    dest = axes[0] if adjacent else 0
    rest = [i for i in range(len(shape)) if i not in axes]
    perm = rest[:dest] + axes + rest[dest:]
    moved = x if perm == list(range(len(shape))) else shape_prims.transpose(x, perm)
    merged_shape = (tuple(shape[i] for i in rest[:dest]) + (-1,)
                    + tuple(shape[i] for i in rest[dest:]))
    merged = shape_prims.reshape(moved, merged_shape)
    return gather(merged, _flat_index(indices, [shape[i] for i in axes]), dest)


def _flat_index(indices: Sequence[Any], sizes: Sequence[int]) -> Any:
    """Row-major flat index of broadcast per-axis indices into an axis of prod(sizes)."""
    strides = np.cumprod((list(sizes[1:]) + [1])[::-1])[::-1].tolist()
    if not any(is_traced(i) for i in indices):
        return sum(np.asarray(i, np.int64) * s for i, s in zip(indices, strides))
    flat = None
    for i, s in zip(indices, strides):
        term = multiply(cast(i, np.int64), s) if s != 1 else cast(i, np.int64)
        flat = term if flat is None else add(flat, term)
    return flat


# ---------------------------------------------------------------- take and friends

def take(a: Any, indices: Any, axis: Any = None, mode: Any = None) -> Any:
    """Elements of `a` at `indices` along `axis` (of the flattened array if None).

    Concrete indices are bounds-checked (mode 'raise'), or clipped/wrapped as numpy's
    'clip'/'wrap'; traced indices count negatives from the end and are clipped, where
    numpy would raise. numpy's `out` is not taken.

    >>> import fxgrad as fx, fxgrad.numpy as fnp, numpy as np
    >>> fx.vmap(lambda i: fnp.take(np.array([10., 20., 30.]), i))(np.array([0, -1, 7]))
    array([10., 30., 30.])
    """
    a = operand(a, "take")
    if axis is None:
        a, axis = shape_prims.reshape(a, (-1,)), 0
    ax = canonical_axis(axis, len(shape_of(a)), "take")
    n = shape_of(a)[ax]
    idx = operand(indices, "take")
    if is_traced(idx):
        return out(gather(a, _wrap_traced(idx, n), ax))
    idx = np.asarray(idx, np.int64)
    if mode == "wrap":
        idx = np.mod(idx, n)
    elif mode == "clip":
        idx = np.clip(idx, 0, n - 1)
    else:
        idx = _wrap_concrete(idx, n, ax)
    return out(gather(a, idx, ax))


def take_along_axis(arr: Any, indices: Any, axis: int) -> Any:
    """`arr` picked at `indices` along `axis`, other axes matched by position (broadcast).

    Concrete indices are bounds-checked; traced ones count from the end when negative and
    are clamped into range when out of it (as JAX does), since they cannot raise.

    >>> import fxgrad as fx, fxgrad.numpy as fnp, numpy as np
    >>> fnp.take_along_axis(np.array([[3, 1], [2, 4]]), np.array([[1], [0]]), axis=1)
    array([[1],
           [2]])
    """
    a, idx = operand(arr, "take_along_axis"), operand(indices, "take_along_axis")
    s, si = shape_of(a), shape_of(idx)
    if len(s) != len(si):
        raise _error(f"take_along_axis: indices of shape {si} must have as many dimensions "
                     f"as the array of shape {s}")
    ax = canonical_axis(axis, len(s), "take_along_axis")
    out_shape = broadcast_shapes("take_along_axis", s[:ax] + (si[ax],) + s[ax + 1:], si)
    a = _broadcast_except(a, out_shape[:ax] + (s[ax],) + out_shape[ax + 1:])
    strides = np.cumprod((list(shape_of(a)[1:]) + [1])[::-1])[::-1]
    base = sum(np.arange(n).reshape([-1 if d == i else 1 for d in range(len(s))]) * strides[i]
               for i, n in enumerate(out_shape) if i != ax)
    idx = cast(_wrap(idx, s[ax], ax), np.int64)
    if is_traced(idx):   # clamp per axis: the gather below only clamps the flat index
        idx = arith.min(arith.max(idx, 0), max(s[ax] - 1, 0))
    flat = add(idx if strides[ax] == 1 else multiply(idx, int(strides[ax])),
               np.asarray(base, np.int64))
    flat = broadcast_to_shape(flat, out_shape)
    return out(gather(shape_prims.reshape(a, (-1,)), flat, 0))


def _broadcast_except(a: Any, shape: tuple[int, ...]) -> Any:
    if shape_of(a) == shape:
        return a
    return shape_prims.broadcast_in_dim(a, shape, tuple(range(len(shape))))


def _diagonal_index(n: int, m: int, offset: int) -> np.ndarray:
    """Flat positions of the `offset` diagonal of an n-by-m matrix."""
    rows = np.arange(max(0, min(n, m - offset) if offset >= 0 else min(n + offset, m)))
    return (rows - min(offset, 0)) * m + rows + max(offset, 0)


def diagonal(a: Any, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Any:
    """The `offset` diagonal of the (axis1, axis2) planes, as the last axis.

    A new array, not numpy's read-only view.

    >>> import fxgrad.numpy as fnp, numpy as np
    >>> fnp.diagonal(np.arange(9).reshape(3, 3), 1)
    array([1, 5])
    """
    a = operand(a, "diagonal")
    s = shape_of(a)
    if len(s) < 2:
        raise _error(f"diagonal: the array must be at least 2-d, got shape {s}")
    i, j = canonical_axis(axis1, len(s), "diagonal"), canonical_axis(axis2, len(s), "diagonal")
    if i == j:
        raise _error("diagonal: axis1 and axis2 cannot be the same")
    rest = [d for d in range(len(s)) if d not in (i, j)]
    moved = shape_prims.transpose(a, rest + [i, j]) if rest + [i, j] != list(range(len(s))) else a
    flat = shape_prims.reshape(moved, tuple(s[d] for d in rest) + (s[i] * s[j],))
    return out(gather(flat, _diagonal_index(s[i], s[j], offset), len(rest)))


def trace(a: Any, offset: int = 0, axis1: int = 0, axis2: int = 1, dtype: Any = None) -> Any:
    """Sum of the `offset` diagonal (numpy's `out` is not taken).

    >>> import fxgrad as fx, fxgrad.numpy as fnp, numpy as np
    >>> fx.grad(fnp.trace)(np.ones((2, 2)))
    array([[1., 0.],
           [0., 1.]])
    """
    from fxgrad.numpy.reductions import sum as fnp_sum
    return fnp_sum(diagonal(a, offset, axis1, axis2), axis=-1, dtype=dtype)


def diag(v: Any, k: int = 0) -> Any:
    """The `k` diagonal of a 2-d array, or a 2-d array with 1-d `v` on its `k` diagonal.

    >>> import fxgrad.numpy as fnp, numpy as np
    >>> fnp.diag(np.array([1, 2]))
    array([[1, 0],
           [0, 2]])
    """
    v = operand(v, "diag")
    s = shape_of(v)
    if len(s) == 2:
        return diagonal(v, k)
    if len(s) != 1:
        raise _error(f"diag: input must be 1-d or 2-d, got shape {s}")
    n = s[0] + abs(k)
    zeros = np.zeros(n * n, dtype_of(v))
    return out(shape_prims.reshape(scatter_add(zeros, _diagonal_index(n, n, k), v, 0), (n, n)))


def _triangle(m: Any, k: int, lower: bool, name: str) -> Any:
    m = operand(m, name)
    s = shape_of(m)
    if len(s) < 2:
        raise _error(f"{name}: the array must be at least 2-d, got shape {s}")
    mask = np.tri(s[-2], s[-1], k if lower else k - 1, dtype=bool)
    return where(mask if lower else ~mask, m, np.zeros((), dtype_of(m)))


def tril(m: Any, k: int = 0) -> Any:
    """`m` with the elements above the `k` diagonal zeroed.

    >>> import fxgrad as fx, fxgrad.numpy as fnp, numpy as np
    >>> fx.grad(lambda x: fnp.sum(fnp.tril(x)))(np.ones((2, 2)))
    array([[1., 0.],
           [1., 1.]])
    """
    return _triangle(m, k, True, "tril")


def triu(m: Any, k: int = 0) -> Any:
    """`m` with the elements below the `k` diagonal zeroed.

    >>> import fxgrad.numpy as fnp, numpy as np
    >>> fnp.triu(np.array([[1, 2], [3, 4]]), 1)
    array([[0, 2],
           [0, 0]])
    """
    return _triangle(m, k, False, "triu")
