"""Comparisons, boolean logic and `select`.

Comparisons (eq ne lt le gt ge) take operands of one dtype, equal shapes or a scalar
that broadcasts, and give a bool array. Their outputs are piecewise constant, so their
tangents are symbolic zeros; the same holds for the boolean operations, which accept
bools only. `select(pred, on_true, on_false)` picks elementwise between two branches
of one aval; it is linear in the branches (never in `pred`), so its JVP selects the
branch tangents and its transpose routes the cotangent back to the branch it came from.
All of them lower to numba as Python scalar operators (`a < b`, `a and b`, `t if p else f`).

Batching uses `def_elementwise_batch`; select's predicate and branches may be batched
independently.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from fxgrad.core.errors import FxTypeError
from fxgrad.core.ir import ShapedArray, aval_of
from fxgrad.core.trace import Primitive, shape_rules
from fxgrad.interpreters.batching import def_elementwise_batch
from fxgrad.interpreters.evaluation import impl_rules
from fxgrad.interpreters.jvp import Zero, def_jvp, instantiate, is_zero, jvp_rules
from fxgrad.interpreters.taylor import linear_jet, zero_jet
from fxgrad.interpreters.transpose import def_transpose, is_undefined
from fxgrad.jit.lowering import def_elementwise_lowering
from fxgrad.primitives.common import binary_shape, coerce


def def_zero_jvp(prim: Primitive) -> None:
    """JVP of a piecewise-constant primitive: its output, with a symbolic zero tangent."""
    def rule(primals: Any, tangents: Any, **params: Any) -> Any:
        out = prim.bind(*primals, **params)
        return out, Zero(aval_of(out))
    jvp_rules[prim] = rule
    zero_jet(prim)


def def_operator_lowering(prim: Primitive, template: str) -> None:
    """Lower `prim` to a Python operator expression, e.g. "{0} < {1}" (IEEE NaN rules)."""
    def_elementwise_lowering(prim)(lambda ctx, *operands: template.format(*operands))


def _comparison(name: str, np_fn: Callable[..., Any],
                template: str) -> tuple[Primitive, Callable[..., Any]]:
    """A comparison primitive (bool output, zero tangent) and its wrapper function."""
    prim = Primitive(name)
    impl_rules[prim] = np_fn
    binary_shape(prim, out_dtype=np.dtype(bool))
    def_zero_jvp(prim)
    def_operator_lowering(prim, template)
    def_elementwise_batch(prim)

    def wrapper(x: Any, y: Any) -> Any:
        return prim.bind(*coerce(x, y))
    wrapper.__name__ = wrapper.__qualname__ = name
    wrapper.__doc__ = f"Elementwise `{np_fn.__name__}` of x and y, a bool array."
    return prim, wrapper


eq_p, eq = _comparison("eq", np.equal, "{0} == {1}")
ne_p, ne = _comparison("ne", np.not_equal, "{0} != {1}")
lt_p, lt = _comparison("lt", np.less, "{0} < {1}")
le_p, le = _comparison("le", np.less_equal, "{0} <= {1}")
gt_p, gt = _comparison("gt", np.greater, "{0} > {1}")
ge_p, ge = _comparison("ge", np.greater_equal, "{0} >= {1}")


def _check_bool(prim: Primitive, *avals: ShapedArray) -> None:
    for a in avals:
        if a.dtype != np.dtype(bool):
            raise FxTypeError(f"{prim.name} requires bool operands, got {a.dtype.name}; "
                              "compare first (e.g. x > 0) or convert with .astype(bool)")


def _logical(name: str, np_fn: Callable[..., Any], template: str) -> Primitive:
    """A boolean primitive: the elementwise shape rule, restricted to bool operands."""
    prim = Primitive(name)
    impl_rules[prim] = np_fn
    binary_shape(prim)
    elementwise_rule = shape_rules[prim]

    def rule(*avals: ShapedArray) -> ShapedArray:
        _check_bool(prim, *avals)
        return elementwise_rule(*avals)
    shape_rules[prim] = rule
    def_zero_jvp(prim)
    def_operator_lowering(prim, template)
    def_elementwise_batch(prim)
    return prim


logical_and_p = _logical("logical_and", np.logical_and, "{0} and {1}")
logical_or_p = _logical("logical_or", np.logical_or, "{0} or {1}")
logical_not_p = _logical("logical_not", np.logical_not, "not {0}")


def logical_and(x: Any, y: Any) -> Any:
    return logical_and_p.bind(*coerce(x, y))


def logical_or(x: Any, y: Any) -> Any:
    return logical_or_p.bind(*coerce(x, y))


def logical_not(x: Any) -> Any:
    return logical_not_p.bind(x)


select_p = Primitive("select")
impl_rules[select_p] = np.where


def _select_shape(pred: ShapedArray, on_true: ShapedArray, on_false: ShapedArray) -> ShapedArray:
    if pred.dtype != np.dtype(bool):
        raise FxTypeError(f"select: the predicate must be bool, got {pred.dtype.name}; "
                          "build it with a comparison (e.g. x > 0)")
    if on_true != on_false:
        raise FxTypeError(f"select: the branches must have one shape and dtype, got "
                          f"{on_true.str_short()} and {on_false.str_short()}")
    if pred.shape not in ((), on_true.shape):
        raise FxTypeError(f"select: predicate shape {pred.shape} does not match the branch "
                          f"shape {on_true.shape} (it must be equal, or a scalar)")
    return on_true


shape_rules[select_p] = _select_shape


def select(pred: Any, on_true: Any, on_false: Any) -> Any:
    """`on_true` where `pred` holds, else `on_false` (elementwise)."""
    return select_p.bind(pred, *coerce(on_true, on_false))


@def_jvp(select_p)
def _select_jvp(primals: Any, tangents: Any) -> Any:
    (pred, on_true, on_false), (_, t_true, t_false) = primals, tangents
    out = select(pred, on_true, on_false)
    if is_zero(t_true) and is_zero(t_false):
        return out, Zero(aval_of(out))
    return out, select(pred, instantiate(t_true), instantiate(t_false))


@def_transpose(select_p)
def _select_transpose(ct: Any, pred: Any, on_true: Any, on_false: Any) -> Any:
    if is_undefined(pred):
        raise TypeError("select is not linear in its predicate")
    zeros = np.zeros(aval_of(ct).shape, aval_of(ct).dtype)
    return [None,
            select(pred, ct, zeros) if is_undefined(on_true) else None,
            select(pred, zeros, ct) if is_undefined(on_false) else None]


def_operator_lowering(select_p, "{1} if {0} else {2}")
# The branches must share one shape, so an unbatched scalar branch is broadcast too.
def_elementwise_batch(select_p, scalars_broadcast=(True, False, False))
linear_jet(select_p)
