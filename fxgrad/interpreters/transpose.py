"""The transpose interpreter: run a linear program backwards to pull cotangents back.

A program's inputs are either known values or `UndefinedPrimal(aval)` (the linear
inputs). Equations computing only from known values are evaluated forwards first;
the rest are walked in reverse, each through
`transpose_rules[prim](ct, *invals, **params) -> cotangents of the inputs` where
`invals` holds `UndefinedPrimal` for the linear operands and `ct` is the output
cotangent (a list with `multiple_results`). Rules return `None` or `Zero` for known
operands. Zero cotangents stay symbolic, so unused branches cost nothing.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

from fxgrad.core.errors import FxTypeError
from fxgrad.core.ir import Literal, Program, ShapedArray
from fxgrad.interpreters.jvp import Zero, add_tangents

transpose_rules: dict[Any, Callable[..., Any]] = {}


def def_transpose(prim: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator registering the transpose rule of a linear primitive."""
    def register(rule: Callable[..., Any]) -> Callable[..., Any]:
        transpose_rules[prim] = rule
        return rule
    return register


class UndefinedPrimal:
    """Stands for a linear input of a transposed equation."""

    __slots__ = ("aval",)

    def __init__(self, aval: ShapedArray):
        self.aval = aval

    def __repr__(self) -> str:
        return f"UndefinedPrimal({self.aval.str_short()})"


def is_undefined(x: Any) -> bool:
    return isinstance(x, UndefinedPrimal)


def backward_pass(program: Program, args: Sequence[Any], cts_out: Sequence[Any]) -> list[Any]:
    """Cotangents of the linear (UndefinedPrimal) inputs; Zero where nothing flows."""
    known: dict[int, Any] = {id(v): a for v, a in zip(program.invars, args)
                             if not isinstance(a, UndefinedPrimal)}
    linear_eqns = _eval_known(program, known)
    cts: dict[int, Any] = {}
    for v, ct in zip(program.outvars, cts_out):
        if not isinstance(v, Literal) and id(v) not in known:
            cts[id(v)] = add_tangents(cts.get(id(v), Zero(v.aval)), ct)
    for eqn in reversed(linear_eqns):
        ct_out = [cts.pop(id(v), Zero(v.aval)) for v in eqn.outputs]
        if all(isinstance(c, Zero) for c in ct_out):
            continue
        invals = [_inval(a, known) for a in eqn.inputs]
        cts_in = _transpose_eqn(eqn, ct_out, invals)
        for a, ct in zip(eqn.inputs, cts_in):
            if isinstance(_inval(a, known), UndefinedPrimal) and ct is not None:
                cts[id(a)] = add_tangents(cts.get(id(a), Zero(a.aval)), ct)
    return [cts.get(id(v), Zero(v.aval)) if isinstance(a, UndefinedPrimal) else None
            for v, a in zip(program.invars, args)]


def _inval(atom: Any, known: dict[int, Any]) -> Any:
    if isinstance(atom, Literal):
        return atom.val
    return known[id(atom)] if id(atom) in known else UndefinedPrimal(atom.aval)


def _eval_known(program: Program, known: dict[int, Any]) -> list[Any]:
    """Evaluate the equations that use only known values; return the others."""
    linear = []
    for eqn in program.eqns:
        if all(isinstance(a, Literal) or id(a) in known for a in eqn.inputs):
            ins = [_inval(a, known) for a in eqn.inputs]
            outs = eqn.prim.bind(*ins, **eqn.params)
            outs = outs if eqn.prim.multiple_results else [outs]
            known.update((id(v), o) for v, o in zip(eqn.outputs, outs))
        else:
            linear.append(eqn)
    return linear


def _transpose_eqn(eqn: Any, ct_out: list[Any], invals: list[Any]) -> Sequence[Any]:
    rule = transpose_rules.get(eqn.prim)
    if rule is None:
        raise FxTypeError(
            f"reverse-mode differentiation of '{eqn.prim.name}' is not implemented "
            "(it has no transpose rule); use forward mode (jvp, jacfwd) instead")
    ct = ct_out if eqn.prim.multiple_results else ct_out[0]
    return rule(ct, *invals, **eqn.params)
