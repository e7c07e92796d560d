"""Scalarization: small arrays inside native loops live in registers, not on the heap.

Inside a scan body, an array of at most `LIMIT` elements is held as an `Elems`: one
scalar expression (a local variable) per element, in C order (outside scans, only
arrays of at most `lowering.TOP_SCALAR_LIMIT` elements, where it saves compile time).
Elementwise equations then become one scalar statement per element, data movement
(reshape, transpose, broadcast, slice, concatenate, pad) just renames elements, and
small reductions and `dot_general`s are unrolled sums of products, so an RK4 step on a
3-vector or an RNN step with an 8x8 matrix allocates nothing. An `Elems` is turned back
into an array (`materialize`) only when a primitive without a scalar form needs it.
"""
from __future__ import annotations

import re
from typing import Any, Callable

import numpy as np

from fxgrad.config import config
from fxgrad.core.ir import Eqn, Literal, ShapedArray
from fxgrad.interpreters.evaluation import impl_rules
from fxgrad.jit import vecmath
from fxgrad.jit.lowering import HELPERS, Fill

LIMIT = 64
_MOVES = {"broadcast_in_dim", "reshape", "transpose", "squeeze", "expand_dims", "slice",
          "concatenate", "pad"}


class Elems:
    """A small array held as scalar expressions, one per element in C order."""

    __slots__ = ("aval", "exprs", "source", "invariant")

    def __init__(self, aval: ShapedArray, exprs: list[str], source: str | None = None):
        self.aval = aval
        self.exprs = exprs
        self.source = source      # the flat array the elements were read from, if any
        self.invariant = False    # read before the enclosing loop (a scan's const)


def _dtype(aval: ShapedArray) -> str:
    return f"np.{aval.dtype.name}"


def materialize(builder: Any, value: Elems) -> str:
    """An array (or, at rank 0, a scalar) holding `value`'s elements."""
    if value.aval.ndim == 0:
        return value.exprs[0]
    cached = builder.materialized.get(id(value))
    if cached is not None:
        return cached[0]
    name, flat = builder.fresh("m"), builder.fresh("mf")
    builder.emit(f"{name} = np.empty({value.aval.shape!r}, {_dtype(value.aval)})")
    builder.emit(f"{flat} = {builder.flat(name, value.aval.shape)}")
    for k, expr in enumerate(value.exprs):
        builder.emit(f"{flat}[{k}] = {expr}")
    builder.materialized[id(value)] = (name, value)   # keeps `value` alive: keyed by id
    return name


def load(builder: Any, name: str, aval: ShapedArray) -> Elems:
    """The elements of array `name`, each read once into a local."""
    if aval.ndim == 0:
        return Elems(aval, [name])
    flat = builder.fresh("lf")
    builder.emit(f"{flat} = {builder.flat(name, aval.shape)}")
    names = [builder.fresh("l") for _ in range(aval.size)]
    for k, n in enumerate(names):
        builder.emit(f"{n} = {flat}[{k}]")
    return Elems(aval, names, source=flat)


def as_elems(builder: Any, env: dict[int, Any], atom: Any) -> Elems:
    if isinstance(atom, Literal):
        return Elems(atom.aval, [builder.literal(atom)])
    value = env[id(atom)]
    if isinstance(value, Elems):
        return value
    if isinstance(value, Fill):
        return Elems(atom.aval, [value.expr] * atom.aval.size)
    loaded = builder.loaded.get(value)
    if loaded is None:
        loaded = builder.loaded[value] = load(builder, value, atom.aval)
    return loaded


def scalar_handler(eqn: Eqn, rules: dict, limit: int = LIMIT) -> Callable[..., Elems] | None:
    """How to lower `eqn` on scalars, or None if it has arrays of more than `limit`
    elements or no scalar form (an equation over rank-0 values only is left to the
    ordinary scalar path)."""
    if eqn.prim.multiple_results:
        return None
    if all(a.aval.ndim == 0 for a in [*eqn.inputs, *eqn.outputs]):
        return None
    if any(not 0 < a.aval.size <= limit for a in [*eqn.inputs, *eqn.outputs]):
        return None
    return _handler(eqn, rules)


def lower_scalarized(builder: Any, eqn: Eqn, env: dict[int, Any],
                     handler: Callable[..., Elems]) -> None:
    """Lower `eqn` element by element; its output becomes an `Elems` (or a scalar)."""
    ops = [as_elems(builder, env, a) for a in eqn.inputs]
    result = handler(builder, eqn, ops)
    env[id(eqn.outputs[0])] = result.exprs[0] if result.aval.ndim == 0 else result


def _handler(eqn: Eqn, rules: dict) -> Callable[..., Elems] | None:
    from fxgrad.jit.lowering import Elementwise
    name = eqn.prim.name
    if isinstance(rules.get(eqn.prim), Elementwise):
        return lambda b, e, ops: _elementwise(b, e, ops, rules[eqn.prim])
    if name in _MOVES:
        return _move
    if name in ("reduce_sum", "reduce_max", "reduce_min"):
        return _reduction
    if name == "dot_general":
        return _dot_general
    return None


def _bind(builder: Any, expr: str) -> str:
    name = builder.fresh("s")
    builder.emit(f"{name} = {expr}")
    return name


def _elementwise(builder: Any, eqn: Eqn, ops: list[Elems], rule: Any) -> Elems:
    from fxgrad.jit.lowering import Ctx
    out = eqn.outputs[0].aval
    exprs, kept = [], {}
    for k in range(out.size):
        args = [op.exprs[k] if op.aval.ndim else op.exprs[0] for op in ops]
        term = _nonzero_term(builder, eqn, args)
        if term is not None:
            kept[k] = term
        exprs.append(term or rule.expr(Ctx(builder, eqn, [""]), *args, **eqn.params))
    if kept:   # some elements pass an operand through: bind only the others
        return Elems(out, [kept.get(k) or _bind(builder, e) for k, e in enumerate(exprs)])
    calls = [m for e in exprs if (m := re.fullmatch(r"vm_(\w+)\((\w+)\)", e))]
    if len(exprs) > 1 and len(calls) == len(exprs) and len({c[1] for c in calls}) == 1 \
            and calls[0][1] in vecmath.UNARY:   # float64 (`vm_expf` has no lane calls)
        return Elems(out, _vector_calls(builder, calls[0][1], [c[2] for c in calls]))
    return Elems(out, [_bind(builder, e) for e in exprs])


def _nonzero_term(builder: Any, eqn: Eqn, args: list[str]) -> str | None:
    """`x` for the element `x + 0`, `0 + x` or `x - 0` (as the simplifier's identities:
    the sign of a zero sum may differ), where a zero padding or a zero cotangent meets
    a value; None otherwise, or when the simplifier is off."""
    name = eqn.prim.name
    if name not in ("add", "sub") or not config.jit_simplify or \
            eqn.outputs[0].aval.dtype != eqn.inputs[0].aval.dtype:
        return None
    if builder.is_zero(args[1]):
        return args[0]
    return args[1] if name == "add" and builder.is_zero(args[0]) else None


def _vector_calls(builder: Any, name: str, args: list[str]) -> list[str]:
    """`vm_<name>` of each arg, `vecmath.LANES` at a time in one SIMD call (the last
    group padded with its first argument)."""
    lanes, outs = vecmath.LANES, []
    builder.helpers.add(f"vmx_{name}")
    for start in range(0, len(args), lanes):
        group = args[start:start + lanes]
        names = [builder.fresh("s") for _ in group]
        padding = [group[0]] * (lanes - len(group))
        targets = names + ["_"] * len(padding)
        builder.emit(f"{', '.join(targets)} = vmx_{name}({', '.join(group + padding)})")
        outs += names
    return outs


def _move(builder: Any, eqn: Eqn, ops: list[Elems]) -> Elems:
    """Run the primitive on arrays of element numbers to learn where each element goes."""
    offsets = np.cumsum([0] + [op.aval.size for op in ops])
    markers = [np.arange(op.aval.size, dtype=np.float64).reshape(op.aval.shape) + off
               for op, off in zip(ops, offsets)]
    if eqn.prim.name == "pad":
        markers[1] = np.float64(-1)   # padding positions read the padding value
    index_map = np.asarray(impl_rules[eqn.prim](*markers, **eqn.params)).ravel()
    pool = [e for op in ops for e in op.exprs]
    pad_value = ops[1].exprs[0] if eqn.prim.name == "pad" else ""
    exprs = [pool[int(i)] if i >= 0 else pad_value for i in index_map]
    return Elems(eqn.outputs[0].aval, exprs)


def _groups(aval: ShapedArray, axes: tuple[int, ...]) -> np.ndarray:
    """Element numbers of `aval`, one row per output element of a reduction over `axes`."""
    index = np.arange(aval.size).reshape(aval.shape)
    kept = [d for d in range(aval.ndim) if d not in axes]
    return index.transpose(kept + list(axes)).reshape(-1, int(np.prod([aval.shape[d] for d in axes])))


def _max_expr(a: str, b: str, largest: bool) -> str:
    op = ">" if largest else "<"
    return f"({a} if {a} {op} {b} or {a} != {a} else {b})"


def _reduction(builder: Any, eqn: Eqn, ops: list[Elems]) -> Elems:
    x, name = ops[0], eqn.prim.name
    exprs = []
    for row in _groups(x.aval, tuple(eqn.params["axes"])):
        terms = [x.exprs[int(i)] for i in row]
        if name == "reduce_sum":
            zero = f"{_dtype(eqn.outputs[0].aval)}(0)"
            exprs.append(_bind(builder, tree_sum(terms) if terms else zero))
            continue
        acc = terms[0]
        for t in terms[1:]:
            acc = _bind(builder, _max_expr(acc, t, name == "reduce_max"))
        exprs.append(acc)
    return Elems(eqn.outputs[0].aval, exprs)


def tree_sum(terms: list[str]) -> str:
    """`terms` added pairwise: log2(n) additions deep rather than n - 1, which is the
    latency of each step when the sum feeds a scan carry (LLVM may not reassociate)."""
    return str(vecmath.pairwise_sum(terms, lambda a, b: f"({a} + {b})"))


def _matvec(builder: Any, eqn: Eqn, ops: list[Elems]) -> Elems | None:
    """A loop-invariant matrix times a vector, four rows per SIMD register
    (vecmath.matvec_*), the matrix laid out column by column before the loop; None
    where that does not apply."""
    (lc, rc), (lb, rb) = eqn.params["dimension_numbers"]
    out = eqn.outputs[0].aval
    if lb or rb or len(lc) != 1 or out.ndim != 1 or out.dtype != np.float64:
        return None
    pairs = [(ops[0], ops[1], lc[0]), (ops[1], ops[0], rc[0])]
    found = [(m, v, c) for m, v, c in pairs if m.aval.ndim == 2 and v.aval.ndim == 1
             and m.invariant and m.aval.dtype == v.aval.dtype == np.float64]
    if not found:
        return None
    matrix, vector, contracted = found[0]
    rows, k = matrix.aval.shape[1 - contracted], matrix.aval.shape[contracted]
    if rows < 2 or k < 2:
        return None
    padded = -(-rows // 4) * 4
    view = f"{matrix.source}.reshape({matrix.aval.shape!r})" + (".T" if contracted == 1 else "")
    layout = builder.before_loop(("matvec", matrix.source, contracted), lambda name: [
        f"{name} = np.zeros(({k}, {padded}), np.float64)", f"{name}[:, :{rows}] = {view}"])
    if layout is None:
        return None
    fn = f"matvec_{padded}_{k}"
    HELPERS.setdefault(fn, f"from fxgrad.jit.vecmath import {fn}")
    builder.helpers.add(fn)
    names = [builder.fresh("s") for _ in range(padded)]
    builder.emit(f"{', '.join(names)} = {fn}({layout}, ({', '.join(vector.exprs)},))")
    return Elems(out, names[:rows])


def _dot_general(builder: Any, eqn: Eqn, ops: list[Elems]) -> Elems:
    """Unrolled sums of products; output order: batch, lhs free, rhs free."""
    simd = _matvec(builder, eqn, ops)
    if simd is not None:
        return simd
    (lc, rc), (lb, rb) = eqn.params["dimension_numbers"]
    lhs, rhs = ops
    l_idx = _arranged(lhs.aval, lb, lc, contract_last=True)
    r_idx = _arranged(rhs.aval, rb, rc, contract_last=False)
    out = eqn.outputs[0].aval
    zero = f"{_dtype(out)}(0)"
    exprs = []
    for b in range(l_idx.shape[0]):
        for m in range(l_idx.shape[1]):
            for n in range(r_idx.shape[2]):
                terms = [f"{lhs.exprs[l_idx[b, m, k]]} * {rhs.exprs[r_idx[b, k, n]]}"
                         for k in range(l_idx.shape[2])]
                exprs.append(_bind(builder, tree_sum(terms) if terms else zero))
    return Elems(out, exprs)


def _arranged(aval: ShapedArray, batch: Any, contract: Any, contract_last: bool) -> np.ndarray:
    """Element numbers as (batch, free, contract) for the lhs, (batch, contract, free) for
    the rhs."""
    free = [d for d in range(aval.ndim) if d not in batch and d not in contract]
    order = list(batch) + (free + list(contract) if contract_last else list(contract) + free)
    sizes = [int(np.prod([aval.shape[d] for d in group], dtype=np.int64))
             for group in (batch, free, contract)]
    index = np.arange(aval.size).reshape(aval.shape).transpose(order)
    shape = (sizes[0], sizes[1], sizes[2]) if contract_last else (sizes[0], sizes[2], sizes[1])
    return index.reshape(shape)


def is_small_array(aval: ShapedArray) -> bool:
    return 0 < aval.ndim and aval.size <= LIMIT and aval.size > 0


__all__ = ["Elems", "LIMIT", "as_elems", "is_small_array", "load", "lower_scalarized",
           "materialize", "scalar_handler"]
