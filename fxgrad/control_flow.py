"""`scan`: a loop with a carried state, traced once into a program.

`scan(f, init, xs)` applies `f(carry, x) -> (carry, y)` to each slice of `xs` along
its leading axis and returns the final carry and the stacked ys, as `jax.lax.scan`.
The body is traced abstractly on the shapes and dtypes of one step, so the loop is
a single `scan` equation whatever its length, and every transformation (grad, jvp,
hessian, nesting) acts on that equation. Values the body closes over, including
traced values of an enclosing transformation, become operands of the equation.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from fxgrad.core.errors import FxTypeError, FxValueError, api_boundary, at_user_line
from fxgrad.core.ir import Program, ShapedArray, aval_of
from fxgrad.core.trace import Tracer
from fxgrad.primitives.control import scan_bind, trace_body
from fxgrad.tree_util import PyTreeDef, tree_flatten, tree_unflatten


@api_boundary
def scan(f: Callable[[Any, Any], tuple[Any, Any]], init: Any, xs: Any,
         length: int | None = None, reverse: bool = False) -> tuple[Any, Any]:
    """Loop `carry, y = f(carry, x)` over the leading axis of `xs`; return (carry, stacked ys).

    `init`, `xs` and the ys may be pytrees; `xs` may be None when `length` is given.
    With `reverse=True` the slices are visited last to first (ys keep their order).

    >>> import fxgrad as fx, numpy as np
    >>> from fxgrad.primitives.arith import add
    >>> fx.scan(lambda c, x: (add(c, x), c), 0.0, np.arange(1.0, 4.0))
    (array(6.), array([0., 1., 3.]))
    """
    if not callable(f):
        raise FxTypeError(at_user_line(
            f"scan: f must be a function (carry, x) -> (carry, y), got {type(f).__name__}"))
    init_flat, carry_tree = _flat_inputs(init, "init")
    xs_flat, xs_tree = _flat_inputs(xs, "xs")
    length = _scan_length(xs_flat, length)
    carry_avals = [aval_of(c) for c in init_flat]
    x_avals = [ShapedArray(aval_of(x).shape[1:], aval_of(x).dtype) for x in xs_flat]
    body, consts, y_tree = _trace_user_body(f, carry_tree, carry_avals, xs_tree, x_avals)
    outs = scan_bind(consts, init_flat, xs_flat, body, length, bool(reverse))
    num_carry = len(init_flat)
    return tree_unflatten(carry_tree, outs[:num_carry]), tree_unflatten(y_tree, outs[num_carry:])


def _flat_inputs(tree: Any, what: str) -> tuple[list[Any], PyTreeDef]:
    leaves, treedef = tree_flatten(tree)
    flat = []
    for i, x in enumerate(leaves):
        arr = x if isinstance(x, Tracer) else np.asarray(x)
        if not isinstance(x, Tracer) and (arr.dtype == object or arr.dtype.kind in "USVMm"):
            raise FxTypeError(at_user_line(
                f"scan: {what} leaf {i} must be an array or number, got {type(x).__name__}"))
        flat.append(arr)
    return flat, treedef


def _scan_length(xs_flat: list[Any], length: int | None) -> int:
    if length is not None and (isinstance(length, bool) or not isinstance(length, (int, np.integer))
                               or length < 0):
        raise FxValueError(at_user_line(
            f"scan: length must be a non-negative int, got {length!r}"))
    for i, x in enumerate(xs_flat):
        shape = aval_of(x).shape
        if not shape:
            raise FxValueError(at_user_line(
                f"scan: xs leaf {i} is a scalar; every xs leaf needs a leading axis to scan over"))
        if length is not None and shape[0] != length:
            raise FxValueError(at_user_line(
                f"scan: xs leaf {i} has shape {shape}, whose leading axis does not match "
                f"the scan length {length}; all xs leaves need the same leading size"))
        length = shape[0]
    if length is None:
        raise FxValueError(at_user_line(
            "scan: with no xs to scan over, pass length= to say how many steps to run"))
    return int(length)


def _trace_user_body(f: Callable[..., Any], carry_tree: PyTreeDef,
                     carry_avals: list[ShapedArray], xs_tree: PyTreeDef,
                     x_avals: list[ShapedArray]) -> tuple[Program, list[Any], PyTreeDef]:
    """Trace `f` on one step's avals into a closed body; check it keeps the carry's type."""
    y_trees: list[PyTreeDef] = []

    def flat_body(*leaves: Any) -> list[Any]:
        carry = tree_unflatten(carry_tree, leaves[:len(carry_avals)])
        out = f(carry, tree_unflatten(xs_tree, leaves[len(carry_avals):]))
        if not (isinstance(out, (tuple, list)) and len(out) == 2):
            raise FxTypeError(at_user_line(
                f"scan: f must return a pair (new_carry, y), got {type(out).__name__}"))
        new_carry, new_tree = tree_flatten(out[0])
        if new_tree != carry_tree:
            raise FxTypeError(at_user_line(
                f"scan: f returned a carry with structure {new_tree}, but the initial carry "
                f"has structure {carry_tree}; the carry must keep its structure"))
        y_leaves, y_tree = tree_flatten(out[1])
        y_trees.append(y_tree)
        return [*new_carry, *y_leaves]

    body, consts = trace_body(flat_body, [*carry_avals, *x_avals])
    _check_carry_types(body.out_avals[:len(carry_avals)], carry_avals)
    return body, consts, y_trees[0]


def _check_carry_types(out_avals: list[ShapedArray], in_avals: list[ShapedArray]) -> None:
    for i, (new, old) in enumerate(zip(out_avals, in_avals)):
        if new == old:
            continue
        hint = (f"convert it back with .astype(np.{old.dtype.name}) before returning it"
                if new.dtype != old.dtype else "it must keep the same shape every step")
        raise FxTypeError(at_user_line(
            f"scan: carry leaf {i} went in as {old.str_short()} but f returned it as "
            f"{new.str_short()}; the carry must keep its shape and dtype: {hint}"))
