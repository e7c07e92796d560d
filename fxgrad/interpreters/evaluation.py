"""The evaluation interpreter: run a program by binding each equation in turn.

`impl_rules` maps each primitive to its numpy implementation `(*arrays, **params)`.
`eval_program` binds equations rather than calling implementations directly, so
evaluating a program whose inputs are tracers inlines it into the current trace: this
is how a program produced by one transformation is consumed by the next.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

from fxgrad.core.ir import Literal, Program

impl_rules: dict[Any, Callable[..., Any]] = {}


def def_impl(prim: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator registering the numpy implementation of `prim`."""
    def register(rule: Callable[..., Any]) -> Callable[..., Any]:
        impl_rules[prim] = rule
        return rule
    return register


def eval_program(program: Program, args: Sequence[Any]) -> list[Any]:
    """Values of the program's outputs for `args` (constants first, then inputs)."""
    if len(args) != len(program.invars):
        raise TypeError(f"program takes {len(program.invars)} inputs, got {len(args)}")
    env: dict[int, Any] = {id(v): a for v, a in zip(program.invars, args)}

    def read(atom: Any) -> Any:
        return atom.val if isinstance(atom, Literal) else env[id(atom)]

    for eqn in program.eqns:
        outs = eqn.prim.bind(*map(read, eqn.inputs), **eqn.params)
        outs = outs if eqn.prim.multiple_results else [outs]
        env.update((id(v), o) for v, o in zip(eqn.outputs, outs))
    return [read(v) for v in program.outvars]
