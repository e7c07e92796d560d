"""`fx.vmap`: vectorize a function over a batch axis of its arguments.

The function is traced once on per-example values (the batch axis removed) and the
batching interpreter runs the program on the batched arguments, so every primitive
sees whole batches: a matrix-vector product mapped over vectors becomes one
matrix-matrix product. `in_axes` and `out_axes` are pytree prefixes of the
arguments and outputs (ints, negative ints, or None for "not batched").
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from fxgrad.api_util import flatten_args, trace_flat
from fxgrad.core.errors import FxValueError, api_boundary
from fxgrad.core.ir import ShapedArray, aval_of
from fxgrad.interpreters.batching import batch_program, move_axis
from fxgrad.tree_util import (PyTreeDef, _node_type, tree_flatten, tree_structure,
                               tree_unflatten)

Axes = Any   # int | None | pytree prefix of ints and Nones


def _prefix_leaves(spec: Axes, tree: Any, what: str) -> list[int | None]:
    """One axis per leaf of `tree`, from a pytree prefix `spec` of it."""
    spec_kind, tree_kind = _node_type(spec), _node_type(tree)
    if spec is None or spec_kind is None:   # one axis for the whole subtree
        return [spec] * len(tree_flatten(tree)[0])
    if tree_kind is None or type(spec) is not type(tree):
        raise _structure_error(spec, tree, what)
    spec_children, spec_aux = spec_kind.to_iterable(spec)
    tree_children, tree_aux = tree_kind.to_iterable(tree)
    spec_children, tree_children = list(spec_children), list(tree_children)
    if spec_aux != tree_aux or len(spec_children) != len(tree_children):
        raise _structure_error(spec, tree, what)
    return [a for s, t in zip(spec_children, tree_children) for a in _prefix_leaves(s, t, what)]


def _structure_error(spec: Axes, tree: Any, what: str) -> FxValueError:
    described = "arguments" if what == "in_axes" else "outputs"
    structure = (f"a dict with keys {sorted(tree)}" if isinstance(tree, dict)
                 else str(tree_structure(tree)))
    return FxValueError(f"vmap: {what} {spec!r} does not match the structure of the "
                        f"{described} it describes ({structure}); give an int or None, or "
                        f"a container of the same type and keys")


def _in_axes_per_leaf(in_axes: Axes, args: tuple[Any, ...], flat: list[Any]) -> list[int | None]:
    spec = tuple(in_axes) if isinstance(in_axes, list) else in_axes
    if isinstance(spec, tuple) and len(spec) != len(args):
        raise FxValueError(f"vmap: in_axes has {len(spec)} entries but the function was called "
                           f"with {len(args)} positional arguments; give one entry per argument")
    axes = _prefix_leaves(spec, args, "in_axes")
    return [_normalize(a, aval_of(x).shape, "in_axes", f"argument leaf {i}")
            for i, (a, x) in enumerate(zip(axes, flat))]


def _normalize(axis: int | None, shape: tuple[int, ...], what: str, leaf: str) -> int | None:
    """`axis` of a value of shape `shape` as a non-negative int (None stays None)."""
    if axis is None:
        return None
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, (bool, np.bool_)):
        raise FxValueError(f"vmap: {what} entries must be ints or None, got {axis!r}")
    rank = len(shape)
    if not -rank <= axis < rank:
        raise FxValueError(f"vmap: {what}={axis} is out of range for {leaf} of shape {shape}; "
                           f"valid axes are {-rank}..{rank - 1}" if rank else
                           f"vmap: {leaf} is a scalar and cannot be mapped over "
                           f"({what}={axis}); use None for it")
    return int(axis) % rank


def _batch_size(flat: list[Any], axes: list[int | None], axis_size: int | None) -> int:
    sizes = {aval_of(x).shape[a] for x, a in zip(flat, axes) if a is not None}
    if axis_size is not None:
        sizes.add(axis_size)
    if not sizes:
        raise FxValueError("vmap: no argument is mapped (all in_axes are None); give "
                           "axis_size to say how many copies to make")
    if len(sizes) > 1:
        detail = ", ".join(f"leaf {i}: {aval_of(x).shape[a]}" for i, (x, a) in
                           enumerate(zip(flat, axes)) if a is not None)
        raise FxValueError(f"vmap: mapped axes have different sizes ({detail}"
                           f"{f', axis_size: {axis_size}' if axis_size is not None else ''})")
    return sizes.pop()


def _example_aval(x: Any, axis: int | None) -> ShapedArray:
    aval = aval_of(x)
    if axis is None:
        return aval
    return ShapedArray(aval.shape[:axis] + aval.shape[axis + 1:], aval.dtype)


def _place_outputs(outs: list[Any], dims: list[int | None], out_axes: Axes,
                   out_tree: PyTreeDef, size: int) -> list[Any]:
    targets = _prefix_leaves(out_axes, tree_unflatten(out_tree, outs), "out_axes")
    placed = []
    for i, (out, d, target) in enumerate(zip(outs, dims, targets)):
        if target is None:
            if d is not None:
                raise FxValueError(f"vmap: out_axes=None for output leaf {i}, which depends "
                                   "on the mapped arguments; give it an axis")
            placed.append(out)
            continue
        shape = aval_of(out).shape if d is not None else (size, *aval_of(out).shape)
        target = _normalize(target, shape, "out_axes", f"batched output leaf {i}")
        assert target is not None
        placed.append(move_axis(out, d, target, size))
    return placed


def vmap(fun: Callable[..., Any], in_axes: Axes = 0, out_axes: Axes = 0,
         axis_size: int | None = None) -> Callable[..., Any]:
    """Map `fun` over an axis of its arguments, as if by a loop, but vectorized.

    >>> import fxgrad as fx, fxgrad.numpy as fnp, numpy as np
    >>> fx.vmap(lambda x, w: fnp.dot(w, x), in_axes=(0, None))(np.eye(2), np.arange(4.).reshape(2, 2))
    array([[0., 2.],
           [1., 3.]])
    """
    if not callable(fun):
        raise FxValueError(f"vmap expects a function, got {type(fun).__name__}")
    if axis_size is not None and (not isinstance(axis_size, (int, np.integer))
                                  or isinstance(axis_size, bool) or axis_size < 0):
        raise FxValueError(f"vmap: axis_size must be a non-negative int, got {axis_size!r}")

    @api_boundary
    def batched(*args: Any, **kwargs: Any) -> Any:
        if kwargs:
            raise FxValueError("vmap: pass the mapped function's arguments positionally "
                               "(in_axes describes positional arguments only)")
        flat, in_tree = flatten_args(args)
        axes = _in_axes_per_leaf(in_axes, args, flat)
        size = _batch_size(flat, axes, axis_size)
        avals = [_example_aval(x, a) for x, a in zip(flat, axes)]
        program, consts, store = trace_flat(fun, [_Abstract(a) for a in avals], in_tree,
                                            concrete=False)
        outs, dims = batch_program(program, [*consts, *flat], [None] * len(consts) + axes)
        return tree_unflatten(store.tree, _place_outputs(outs, dims, out_axes, store.tree, size))

    return batched


class _Abstract:
    """Stands for an argument by its aval only (trace_flat reads `.aval`)."""

    def __init__(self, aval: ShapedArray):
        self.aval = aval


__all__ = ["vmap"]
