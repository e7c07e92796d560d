"""`checkpoint` (alias `remat`): trade computation for memory in reverse mode.

Reverse mode normally stores, between the forward and the backward pass, every
intermediate value the derivative needs. `checkpoint(f)` makes `f` one `remat_call`
equation whose linearization keeps only `f`'s inputs; the backward pass recomputes
`f`'s intermediates from them (see `fxgrad.primitives.custom`). Wrapped around the
body of a long `scan`, it stores one carry per step instead of every layer's values.
Values are unchanged, and so are derivatives of every order.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

from fxgrad.api_util import flatten_args, normalize_argnums
from fxgrad.core.errors import FxTypeError, api_boundary, at_user_line
from fxgrad.core.ir import aval_of
from fxgrad.primitives.custom import remat_call_p, trace_closed
from fxgrad.tree_util import tree_flatten, tree_unflatten


def checkpoint(fun: Callable[..., Any], *,
               static_argnums: int | Sequence[int] = ()) -> Callable[..., Any]:
    """`fun`, whose intermediates reverse mode recomputes instead of storing.

    Arguments at `static_argnums` are Python values fixed into the traced program.

    >>> import fxgrad as fx, fxgrad.numpy as fnp
    >>> f = fx.checkpoint(lambda x: fnp.sin(fnp.sin(x)))
    >>> bool(fnp.allclose(fx.grad(f)(0.5), fnp.cos(fnp.sin(0.5)) * fnp.cos(0.5)))
    True
    """
    if not callable(fun):
        raise FxTypeError(at_user_line(
            f"checkpoint: expected a function, got {type(fun).__name__}"))
    static = (static_argnums,) if isinstance(static_argnums, int) else tuple(static_argnums)

    @functools.wraps(fun)
    @api_boundary
    def remat_fun(*args: Any, **kwargs: Any) -> Any:
        nums = normalize_argnums(static, len(args), "checkpoint") if static else ()
        return _remat_apply(fun, nums, args, kwargs)

    return remat_fun


def _remat_apply(fun: Callable[..., Any], static: tuple[int, ...], args: tuple[Any, ...],
                 kwargs: dict) -> Any:
    """Trace `fun` on the call's arguments into one `remat_call` equation and bind it."""
    dyn = tuple(a for i, a in enumerate(args) if i not in static)
    leaves, in_tree = flatten_args((dyn, kwargs))
    out_trees = []

    def flat_fun(*xs: Any) -> list[Any]:
        dyn_args, dyn_kwargs = tree_unflatten(in_tree, xs)
        it = iter(dyn_args)
        full = [args[i] if i in static else next(it) for i in range(len(args))]
        out_leaves, out_tree = tree_flatten(fun(*full, **dyn_kwargs))
        out_trees.append(out_tree)
        return out_leaves

    # the arguments' values, where known, let Python control flow on them work
    program, captured = trace_closed(flat_fun, [aval_of(x) for x in leaves], leaves)
    return tree_unflatten(out_trees[0], remat_call_p.bind(*captured, *leaves, program=program))


remat = checkpoint
