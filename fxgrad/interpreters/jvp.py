"""The forward-mode interpreter: push tangents through a program alongside primals.

`jvp_rules[prim](primals, tangents, **params) -> (primal_out, tangent_out)`; with
`multiple_results`, both outputs are lists. A tangent known to be zero is the symbolic
`Zero(aval)` and is never materialised: an equation whose tangents are all `Zero`
is just evaluated, and rules skip the terms of `Zero` tangents. Evaluating with the
tangents as inputs of a fresh trace stages out the linear part of the computation
(see `fxgrad.api.linearize_program`), which is how reverse mode is built.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from fxgrad.core.errors import FxTypeError
from fxgrad.core.ir import Literal, Program, ShapedArray, aval_of

jvp_rules: dict[Any, Callable[..., Any]] = {}


def def_jvp(prim: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator registering the JVP rule of `prim`."""
    def register(rule: Callable[..., Any]) -> Callable[..., Any]:
        jvp_rules[prim] = rule
        return rule
    return register


class Zero:
    """A symbolic zero tangent (or cotangent) of the given aval."""

    __slots__ = ("aval",)

    def __init__(self, aval: ShapedArray):
        self.aval = aval

    @classmethod
    def like(cls, x: Any) -> "Zero":
        return cls(aval_of(x))

    def __repr__(self) -> str:
        return f"Zero({self.aval.str_short()})"


def is_zero(x: Any) -> bool:
    return isinstance(x, Zero)


def tangent_dtype(dtype: Any) -> np.dtype:
    """Floating dtypes are their own tangent dtype; others (ints, bools) have none."""
    dtype = np.dtype(dtype)
    return dtype if dtype.kind in "fc" else np.dtype(np.float64)


def instantiate(t: Any) -> Any:
    """A materialised tangent: zeros for a symbolic `Zero`, `t` otherwise."""
    if isinstance(t, Zero):
        return np.zeros(t.aval.shape, tangent_dtype(t.aval.dtype))
    return t


def add_tangents(a: Any, b: Any) -> Any:
    if isinstance(a, Zero):
        return b
    if isinstance(b, Zero):
        return a
    from fxgrad.primitives.arith import add
    return add(a, b)


# primitives linear in all their operands (their JVP applies them to the tangents)
linear_primitives: set[Any] = set()


def linear_jvp(prim: Any) -> None:
    """JVP of a primitive linear in all its operands: apply it to the tangents."""
    def rule(primals: Sequence[Any], tangents: Sequence[Any], **params: Any) -> Any:
        out = prim.bind(*primals, **params)
        tangent_out = prim.bind(*map(instantiate, tangents), **params)
        return out, tangent_out
    jvp_rules[prim] = rule
    linear_primitives.add(prim)


def jvp_program(program: Program, primals: Sequence[Any],
                tangents: Sequence[Any]) -> tuple[list[Any], list[Any]]:
    """Outputs and output tangents of `program` (Zero where known to be zero)."""
    primal_env: dict[int, Any] = {}
    tangent_env: dict[int, Any] = {}
    for v, x, t in zip(program.invars, primals, tangents):
        primal_env[id(v)], tangent_env[id(v)] = x, t

    def read(atom: Any) -> tuple[Any, Any]:
        if isinstance(atom, Literal):
            return atom.val, Zero(atom.aval)
        return primal_env[id(atom)], tangent_env[id(atom)]

    for eqn in program.eqns:
        xs, ts = zip(*map(read, eqn.inputs)) if eqn.inputs else ((), ())
        outs, t_outs = _jvp_eqn(eqn, xs, ts)
        for v, o, t in zip(eqn.outputs, outs, t_outs):
            primal_env[id(v)], tangent_env[id(v)] = o, t
    pairs = [read(v) for v in program.outvars]
    return [p for p, _ in pairs], [t for _, t in pairs]


def _jvp_eqn(eqn: Any, xs: Sequence[Any], ts: Sequence[Any]) -> tuple[list[Any], list[Any]]:
    prim, multi = eqn.prim, eqn.prim.multiple_results
    if all(isinstance(t, Zero) for t in ts):
        outs = prim.bind(*xs, **eqn.params)
        outs = outs if multi else [outs]
        return outs, [Zero(v.aval) for v in eqn.outputs]
    rule = jvp_rules.get(prim)
    if rule is None:
        raise FxTypeError(f"differentiation of primitive '{prim.name}' is not implemented")
    out, t_out = rule(xs, ts, **eqn.params)
    return (list(out), list(t_out)) if multi else ([out], [t_out])
