"""The batching interpreter: run a program on values that carry an extra batch axis.

Each value is paired with its batch dimension: an int (the axis holding the batch)
or `None` (the same for every example). `batch_rules[prim](args, dims, **params) ->
(out, out_dim)` (lists for `multiple_results`) computes a primitive on batched
operands by binding ordinary primitives, so vmap composes with every other
transformation. An equation with no batched operand is simply evaluated. Primitives
without a rule fall back to a loop over the batch (`loop_rule`), which is correct but
slow; `vmap` reports no error for them.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from fxgrad.core.ir import Literal, Program, ShapedArray, aval_of

batch_rules: dict[Any, Callable[..., Any]] = {}
not_mapped = None


def def_batch(prim: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator registering the batching rule of `prim`."""
    def register(rule: Callable[..., Any]) -> Callable[..., Any]:
        batch_rules[prim] = rule
        return rule
    return register


def move_axis(x: Any, src: int | None, dst: int, size: int) -> Any:
    """`x` with its batch axis at `dst`; an unbatched `x` is broadcast along a new one."""
    from fxgrad.primitives.shape import broadcast_in_dim, transpose
    shape = aval_of(x).shape
    if src is None:
        out_shape = shape[:dst] + (size,) + shape[dst:]
        dims = tuple(d if d < dst else d + 1 for d in range(len(shape)))
        return broadcast_in_dim(x, out_shape, dims)
    if src == dst:
        return x
    perm = [d for d in range(len(shape)) if d != src]
    perm.insert(dst, src)
    return transpose(x, tuple(perm))


def batch_size(args: Sequence[Any], dims: Sequence[int | None]) -> int:
    return next(aval_of(x).shape[d] for x, d in zip(args, dims) if d is not None)


def def_elementwise_batch(prim: Any, scalars_broadcast: Sequence[bool] = ()) -> None:
    """Batching rule of an elementwise primitive. `scalars_broadcast[i]` is False for an
    operand that must match the output shape even when it is an unbatched scalar
    (select's branches); by default unbatched scalars are left to broadcast."""
    def rule(args: Sequence[Any], dims: Sequence[int | None], **params: Any) -> Any:
        out_dim, shape = _batched_out_shape(args, dims)
        broadcasts = list(scalars_broadcast) + [True] * (len(args) - len(scalars_broadcast))
        aligned = [_align(x, d, out_dim, shape, b) for x, d, b in zip(args, dims, broadcasts)]
        return prim.bind(*aligned, **params), out_dim
    def_batch(prim)(rule)


def _batched_out_shape(args: Sequence[Any],
                       dims: Sequence[int | None]) -> tuple[int, tuple[int, ...]]:
    """The output's batch axis (that of the first batched operand of full rank, else 0)
    and its batched shape."""
    examples = [_drop_axis(aval_of(x).shape, d) for x, d in zip(args, dims)]
    example = max(examples, key=len)
    out_dim = next((d for e, d in zip(examples, dims)
                    if d is not None and len(e) == len(example)), 0)
    return out_dim, example[:out_dim] + (batch_size(args, dims),) + example[out_dim:]


def _drop_axis(shape: tuple[int, ...], axis: int | None) -> tuple[int, ...]:
    return shape if axis is None else shape[:axis] + shape[axis + 1:]


def _align(x: Any, d: int | None, out_dim: int, shape: tuple[int, ...],
           scalar_broadcasts: bool) -> Any:
    """Operand `x` (batch axis `d`) in the output's layout: the batch axis at `out_dim`,
    per-example scalars broadcast (unbatched ones only where they must be)."""
    ndim = aval_of(x).ndim
    if d is None and ndim == 0:
        return x if scalar_broadcasts else _broadcast_in_dim(x, shape, ())
    if d is None:
        return _broadcast_in_dim(x, shape, tuple(i for i in range(ndim + 1) if i != out_dim))
    if ndim == len(shape):
        return move_axis(x, d, out_dim, shape[out_dim])
    return _broadcast_in_dim(x, shape, (out_dim,))   # a batched scalar


def _broadcast_in_dim(x: Any, shape: tuple[int, ...], dims: tuple[int, ...]) -> Any:
    from fxgrad.primitives.shape import broadcast_in_dim
    return broadcast_in_dim(x, shape, dims)


def loop_rule(prim: Any, args: Sequence[Any], dims: Sequence[int | None],
              params: dict) -> tuple[Any, Any]:
    """Apply `prim` example by example and stack the results (fallback)."""
    import fxgrad.numpy as fnp
    from fxgrad.primitives.indexing import gather
    size = batch_size(args, dims)
    if size == 0:
        return _empty_batch(prim, args, dims, params)
    results = []
    for i in range(size):
        example = [x if d is None else gather(x, np.int64(i), d) for x, d in zip(args, dims)]
        out = prim.bind(*example, **params)
        results.append(out if prim.multiple_results else [out])
    stacked = [fnp.stack([r[k] for r in results]) for k in range(len(results[0]))]
    if prim.multiple_results:
        return stacked, [0] * len(stacked)
    return stacked[0], 0


def _empty_batch(prim: Any, args: Sequence[Any], dims: Sequence[int | None],
                 params: dict) -> tuple[Any, Any]:
    """Outputs of `prim` for a batch of no examples: empty arrays of the right shapes."""
    from fxgrad.core.trace import abstract_eval
    avals = [aval_of(x) for x in args]
    examples = [a if d is None else ShapedArray(a.shape[:d] + a.shape[d + 1:], a.dtype)
                for a, d in zip(avals, dims)]
    outs = [np.zeros((0, *a.shape), a.dtype) for a in abstract_eval(prim, examples, params)]
    return (outs, [0] * len(outs)) if prim.multiple_results else (outs[0], 0)


def batch_program(program: Program, args: Sequence[Any],
                  dims: Sequence[int | None]) -> tuple[list[Any], list[int | None]]:
    """Outputs of `program` on batched `args`, with their batch dimensions."""
    env: dict[int, tuple[Any, int | None]] = {
        id(v): (a, d) for v, a, d in zip(program.invars, args, dims)}

    def read(atom: Any) -> tuple[Any, int | None]:
        return (atom.val, None) if isinstance(atom, Literal) else env[id(atom)]

    for eqn in program.eqns:
        xs, ds = zip(*map(read, eqn.inputs)) if eqn.inputs else ((), ())
        outs, out_dims = _batch_eqn(eqn, list(xs), list(ds))
        env.update((id(v), (o, d)) for v, o, d in zip(eqn.outputs, outs, out_dims))
    pairs = [read(v) for v in program.outvars]
    return [p for p, _ in pairs], [d for _, d in pairs]


def _batch_eqn(eqn: Any, xs: list[Any], ds: list[int | None]) -> tuple[list[Any], list[Any]]:
    prim, multi = eqn.prim, eqn.prim.multiple_results
    if all(d is None for d in ds):
        out = prim.bind(*xs, **eqn.params)
        outs = out if multi else [out]
        return outs, [None] * len(outs)
    rule = batch_rules.get(prim)
    out, out_dim = rule(xs, ds, **eqn.params) if rule else loop_rule(prim, xs, ds, eqn.params)
    return (list(out), list(out_dim)) if multi else ([out], [out_dim])
