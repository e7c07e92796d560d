"""Structured control flow traced once into a program: `scan`, `cond` and `switch`.

`scan(f, init, xs)` applies `f(carry, x) -> (carry, y)` to each slice of `xs` along
its leading axis and returns the final carry and the stacked ys, as `jax.lax.scan`.
`cond(pred, true_fun, false_fun, *operands)` and `switch(index, branches, *operands)`
run one of several functions, as `jax.lax.cond`/`switch`. Bodies and branches are
traced abstractly on the shapes and dtypes of their inputs, so each construct is a
single equation whatever the data, and every transformation (grad, jvp, vmap, jit,
nesting) acts on that equation. Values they close over, including traced values of an
enclosing transformation, become operands of the equation. (`while_loop` and
`fori_loop` are in `fxgrad.loops`.)
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from fxgrad.core.errors import FxTypeError, FxValueError, api_boundary, at_user_line
from fxgrad.core.ir import Program, ShapedArray, aval_of
from fxgrad.core.trace import Tracer
from fxgrad.primitives.branch import cond_bind, trace_branches
from fxgrad.primitives.control import scan_bind, trace_body
from fxgrad.primitives.logic import ne
from fxgrad.primitives.shape import convert_element_type
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


# ---------------------------------------------------------------- cond and switch

@api_boundary
def cond(pred: Any, true_fun: Callable[..., Any], false_fun: Callable[..., Any],
         *operands: Any) -> Any:
    """`true_fun(*operands)` if `pred` else `false_fun(*operands)`, as one `cond` equation.

    `pred` is a scalar bool (or int: non-zero is true), possibly traced; both functions
    are traced and must return the same structure, shapes and dtypes. Only the chosen
    branch runs, and grad, vmap and jit all see through the choice.

    >>> import fxgrad as fx
    >>> from fxgrad.primitives.arith import mul, neg
    >>> fx.cond(True, lambda x: mul(x, 2.0), neg, 3.0)
    array(6.)
    """
    _check_functions("cond", {"true_fun": true_fun, "false_fun": false_fun})
    index = _pred_index(pred)
    return _choose("cond", index, [false_fun, true_fun], ["false_fun", "true_fun"], operands)


@api_boundary
def switch(index: Any, branches: Sequence[Callable[..., Any]], *operands: Any) -> Any:
    """`branches[index](*operands)` with `index` clamped to [0, len(branches) - 1].

    >>> import fxgrad as fx
    >>> from fxgrad.primitives.arith import mul, neg
    >>> fx.switch(7, [neg, lambda x: mul(x, 2.0), lambda x: x], 3.0)
    array(3.)
    """
    if not isinstance(branches, (list, tuple)) or not branches:
        raise FxTypeError(at_user_line(
            f"switch: branches must be a non-empty list of functions, got {branches!r}"))
    names = [f"branches[{k}]" for k in range(len(branches))]
    _check_functions("switch", dict(zip(names, branches)))
    return _choose("switch", _switch_index(index), list(branches), names, operands)


def _check_functions(what: str, funs: dict[str, Any]) -> None:
    for name, fun in funs.items():
        if not callable(fun):
            raise FxTypeError(at_user_line(
                f"{what}: {name} must be a function of the operands, got {type(fun).__name__}"))


def _scalar_input(x: Any, what: str) -> Any:
    x = x if isinstance(x, Tracer) else np.asarray(x)
    aval = aval_of(x)
    if aval.shape != ():
        raise FxTypeError(at_user_line(
            f"{what} must be a scalar, got {aval.str_short()}; to choose per element use "
            "fnp.where(pred, x, y), or fx.vmap the cond over the elements"))
    return x


def _pred_index(pred: Any) -> Any:
    pred = _scalar_input(pred, "cond: pred")
    dtype = aval_of(pred).dtype
    if dtype.kind not in "biu":
        raise FxTypeError(at_user_line(
            f"cond: pred must be a bool (or int) scalar, got {dtype.name}; compare it first, "
            "e.g. fx.cond(x > 0, ...)"))
    if dtype.kind != "b":
        pred = ne(pred, np.zeros((), dtype))
    return convert_element_type(pred, np.int32)


def _switch_index(index: Any) -> Any:
    index = _scalar_input(index, "switch: index")
    dtype = aval_of(index).dtype
    if dtype.kind not in "biu":
        raise FxTypeError(at_user_line(
            f"switch: index must be an int scalar, got {dtype.name}; convert it with "
            ".astype(int) if it holds whole numbers"))
    return convert_element_type(index, np.int32) if dtype.kind == "b" else index


def _choose(what: str, index: Any, funs: list[Callable[..., Any]], names: list[str],
            operands: tuple[Any, ...]) -> Any:
    """Trace every branch on the operands' avals and bind one `cond` equation."""
    leaves, in_tree = tree_flatten(operands)
    flat = [_operand_leaf(x, i, what) for i, x in enumerate(leaves)]
    out_trees: list[PyTreeDef] = []

    def flat_branch(fun: Callable[..., Any]) -> Callable[..., list[Any]]:
        def run(*args: Any) -> list[Any]:
            out_leaves, out_tree = tree_flatten(fun(*tree_unflatten(in_tree, args)))
            out_trees.append(out_tree)
            return out_leaves
        return run

    branches, consts = trace_branches([flat_branch(f) for f in funs],
                                      [aval_of(x) for x in flat])
    _check_same_outputs(what, branches, out_trees, names)
    return tree_unflatten(out_trees[0], cond_bind(index, consts, flat, branches))


def _operand_leaf(x: Any, i: int, what: str) -> Any:
    if isinstance(x, Tracer):
        return x
    arr = np.asarray(x)
    if arr.dtype == object or arr.dtype.kind in "USVMm":
        raise FxTypeError(at_user_line(
            f"{what}: operand leaf {i} must be an array or number, got {type(x).__name__}"))
    return arr


def _check_same_outputs(what: str, branches: Sequence[Program], out_trees: list[PyTreeDef],
                        names: list[str]) -> None:
    """Every branch must return what the first returns; the error names both."""
    first = names[-1] if what == "cond" else names[0]
    k0 = len(names) - 1 if what == "cond" else 0
    for k, (branch, tree) in enumerate(zip(branches, out_trees)):
        if tree != out_trees[k0]:
            problem = f"a structure {tree}, but {first} returns {out_trees[k0]}"
        elif branch.out_avals != branches[k0].out_avals:
            problem = f"{_avals(branch)}, but {first} returns {_avals(branches[k0])}"
        else:
            continue
        raise FxTypeError(at_user_line(
            f"{what}: {names[k]} returns {problem}; every branch must return the same "
            "structure, shapes and dtypes (cast with .astype where dtypes differ)"))


def _avals(branch: Program) -> str:
    return f"({', '.join(a.str_short() for a in branch.out_avals)})"
