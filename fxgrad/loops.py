"""`while_loop` and `fori_loop`: loops traced once into a single equation.

`while_loop(cond_fun, body_fun, init)` repeats `carry = body_fun(carry)` while
`cond_fun(carry)` is true, as `jax.lax.while_loop`. Both functions are traced
abstractly on the carry's shapes and dtypes, so the loop is one `while` equation
whatever the number of steps, and works under jit (a native loop), vmap and forward
mode. Reverse mode needs the trip count in advance, so `fori_loop(lower, upper,
body_fun, init)` with Python-int bounds is a `scan` over the index (differentiable
in every mode); with traced bounds it is a `while_loop` (forward mode only).
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from fxgrad.control_flow import scan
from fxgrad.core.errors import FxTypeError, api_boundary, at_user_line
from fxgrad.core.ir import Program, ShapedArray, aval_of
from fxgrad.core.trace import Tracer
from fxgrad.primitives.control import trace_body
from fxgrad.primitives.loops import while_bind
from fxgrad.tree_util import PyTreeDef, tree_flatten, tree_unflatten


@api_boundary
def while_loop(cond_fun: Callable[[Any], Any], body_fun: Callable[[Any], Any],
               init: Any) -> Any:
    """Repeat `carry = body_fun(carry)` while `cond_fun(carry)`; return the final carry.

    `init` may be a pytree; `body_fun` must return a carry of the same structure,
    shapes and dtypes, and `cond_fun` a scalar bool.

    >>> import fxgrad as fx
    >>> fx.while_loop(lambda x: x < 10.0, lambda x: x * 2.0, 1.0)
    array(16.)
    """
    for name, fun in (("cond_fun", cond_fun), ("body_fun", body_fun)):
        if not callable(fun):
            raise FxTypeError(at_user_line(
                f"while_loop: {name} must be a function of the carry, got {type(fun).__name__}"))
    init_flat, tree = _flat_carry(init, "while_loop")
    avals = [aval_of(x) for x in init_flat]
    cond, cond_consts = _trace_cond(cond_fun, tree, avals)
    body, body_consts = trace_body(
        lambda *leaves: _checked_carry(body_fun(tree_unflatten(tree, leaves)), tree, avals,
                                       "while_loop: body_fun"), avals)
    return tree_unflatten(tree, while_bind(cond_consts, body_consts, init_flat, cond, body))


def _flat_carry(init: Any, where: str) -> tuple[list[Any], PyTreeDef]:
    leaves, tree = tree_flatten(init)
    flat = []
    for i, x in enumerate(leaves):
        arr = x if isinstance(x, Tracer) else np.asarray(x)
        if arr.dtype == object or arr.dtype.kind in "USVMm":
            raise FxTypeError(at_user_line(
                f"{where}: init leaf {i} must be an array or number, got {type(x).__name__}"))
        flat.append(arr)
    return flat, tree


def _trace_cond(cond_fun: Callable[[Any], Any], tree: PyTreeDef,
                avals: list[ShapedArray]) -> tuple[Program, list[Any]]:
    def flat_cond(*leaves: Any) -> list[Any]:
        out = cond_fun(tree_unflatten(tree, leaves))
        out_leaves, _ = tree_flatten(out)
        aval = aval_of(out_leaves[0]) if len(out_leaves) == 1 else None
        if aval is None or aval != ShapedArray((), np.bool_):
            got = aval.str_short() if aval else f"a pytree of {len(out_leaves)} leaves"
            raise FxTypeError(at_user_line(
                f"while_loop: cond_fun must return a scalar bool, got {got}; compare to "
                "get one (e.g. x < 10.0), and reduce arrays (e.g. fnp.all(x < 10.0))"))
        return out_leaves

    return trace_body(flat_cond, avals)


def _checked_carry(out: Any, tree: PyTreeDef, avals: list[ShapedArray], who: str) -> list[Any]:
    """The leaves of a new carry, checked to have the initial carry's structure and types."""
    leaves, out_tree = tree_flatten(out)
    if out_tree != tree:
        raise FxTypeError(at_user_line(
            f"{who} returned a carry with structure {out_tree}, but the initial carry has "
            f"structure {tree}; the carry must keep its structure"))
    for i, (x, old) in enumerate(zip(leaves, avals)):
        new = aval_of(x)
        if new != old:
            hint = (f"convert it back with .astype(np.{old.dtype.name}) before returning it"
                    if new.dtype != old.dtype else "it must keep the same shape every step")
            raise FxTypeError(at_user_line(
                f"{who} returned carry leaf {i} as {new.str_short()}, but it went in as "
                f"{old.str_short()}; the carry must keep its shape and dtype: {hint}"))
    return leaves


@api_boundary
def fori_loop(lower: Any, upper: Any, body_fun: Callable[[Any, Any], Any], init: Any) -> Any:
    """`carry = body_fun(i, carry)` for `i` in `range(lower, upper)`; the final carry.

    With Python-int bounds this is a `scan` (differentiable in every mode); with
    traced bounds a `while_loop` (forward mode only).

    >>> import fxgrad as fx
    >>> fx.fori_loop(0, 4, lambda i, x: x + i, 0.5)
    array(6.5)
    >>> fx.grad(lambda x: fx.fori_loop(0, 3, lambda i, c: c * x, 1.0))(2.0)
    array(12.)
    """
    if not callable(body_fun):
        raise FxTypeError(at_user_line(
            f"fori_loop: body_fun must be a function (i, carry) -> carry, got "
            f"{type(body_fun).__name__}"))
    index_dtype = _index_dtype(lower, upper)
    init_flat, tree = _flat_carry(init, "fori_loop")
    avals = [aval_of(x) for x in init_flat]

    def step(i: Any, carry: Any) -> Any:
        new = body_fun(i, carry)
        return tree_unflatten(tree, _checked_carry(new, tree, avals, "fori_loop: body_fun"))

    if _is_static(lower) and _is_static(upper):
        return _static_fori(int(lower), int(upper), step, init, index_dtype)
    return _traced_fori(lower, upper, step, init, index_dtype)


def _is_static(bound: Any) -> bool:
    return not isinstance(bound, Tracer)


def _index_dtype(lower: Any, upper: Any) -> np.dtype:
    dtypes = []
    for name, bound in (("lower", lower), ("upper", upper)):
        aval = aval_of(bound)
        if aval.shape != () or aval.dtype.kind not in "iu":
            raise FxTypeError(at_user_line(
                f"fori_loop: {name} must be an integer scalar, got {aval.str_short()}; "
                "pass an int (use fx.while_loop for a float condition)"))
        dtypes.append(aval.dtype if isinstance(bound, (Tracer, np.ndarray, np.generic))
                      else np.dtype(np.int64))
    return np.result_type(*dtypes)


def _static_fori(lower: int, upper: int, step: Callable[[Any, Any], Any], init: Any,
                 index_dtype: np.dtype) -> Any:
    from fxgrad.primitives.arith import add

    def scan_step(carry: tuple[Any, Any], _: Any) -> tuple[tuple[Any, Any], None]:
        i, x = carry
        return (add(i, 1), step(i, x)), None

    start = np.asarray(lower, index_dtype)
    (_, out), _ = scan(scan_step, (start, init), None, length=max(upper - lower, 0))
    return out


def _traced_fori(lower: Any, upper: Any, step: Callable[[Any, Any], Any], init: Any,
                 index_dtype: np.dtype) -> Any:
    from fxgrad.primitives.arith import add
    from fxgrad.primitives.logic import lt
    from fxgrad.primitives.shape import convert_element_type
    lower, upper = (convert_element_type(b, index_dtype) if isinstance(b, Tracer)
                    else np.asarray(b, index_dtype) for b in (lower, upper))
    _, out = while_loop(lambda c: lt(c[0], upper), lambda c: (add(c[0], 1), step(*c)),
                        (lower, init))
    return out
