"""Simplification passes over programs, iterated to a fixed point.

Each pass walks the equations once, keeping a substitution `var -> atom` for the
equations it removes:

* constant folding: an equation whose operands are all literals or constants is
  evaluated now (unless that would materialise a large array);
* common-subexpression elimination: equations equal up to operand order of
  commutative primitives are computed once;
* algebraic rewrites: `rewrite_rules[prim](eqn, operands) -> atom or None`
  replaces an equation by an existing atom (x*1 -> x, ...);
* dead-code elimination.

`simplify(closed)` returns a new `ClosedProgram`; `trace` (a list) records what
each pass did, for debugging.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from fxgrad.core.ir import Atom, ClosedProgram, Eqn, Literal, Program, Var, dce

# Algebraic rewrites: (operands, **params) -> replacement atom or None.
rewrite_rules: dict[Any, Callable[..., Atom | None]] = {}
commutative: set[Any] = set()

_FOLD_LIMIT = 64  # never fold into arrays larger than this many elements


def _key(atom: Atom) -> Any:
    if isinstance(atom, Literal):
        return ("lit", atom.val.dtype.str, atom.val.item())
    return id(atom)


def _params_key(params: dict) -> Any:
    try:
        return hash(tuple(sorted(params.items()))) and tuple(sorted(params.items()))
    except TypeError:
        return ("unhashable", id(params))


class _Pass:
    def __init__(self, program: Program, consts: dict[int, Any], log: list[str] | None):
        self.program = program
        self.consts = consts          # id(var) -> known constant value
        self.subst: dict[int, Atom] = {}
        self.seen: dict[Any, list[Var]] = {}
        self.log = log
        self.changed = False

    def read(self, atom: Atom) -> Atom:
        return atom if isinstance(atom, Literal) else self.subst.get(id(atom), atom)

    def note(self, what: str, eqn: Eqn) -> None:
        self.changed = True
        if self.log is not None:
            self.log.append(f"{what}: {eqn.prim.name}")

    def run(self) -> Program:
        eqns = []
        for eqn in self.program.eqns:
            new = Eqn(eqn.prim, [self.read(a) for a in eqn.inputs], eqn.params, eqn.outputs)
            if not (self.fold(new) or self.rewrite(new) or self.cse(new)):
                eqns.append(new)
        outs = [self.read(v) for v in self.program.outvars]
        return Program(self.program.invars, eqns, outs, self.program.num_consts)

    def value(self, atom: Atom) -> Any:
        return atom.val if isinstance(atom, Literal) else self.consts.get(id(atom))

    def fold(self, eqn: Eqn) -> bool:
        vals = [self.value(a) for a in eqn.inputs]
        if eqn.prim.multiple_results or any(v is None for v in vals) or not eqn.inputs:
            return False
        if eqn.outputs[0].aval.size > max([_FOLD_LIMIT] + [np.size(v) for v in vals]):
            return False
        out = np.asarray(eqn.prim.bind(*vals, **eqn.params))
        if out.ndim == 0:
            self.subst[id(eqn.outputs[0])] = Literal(out)
        else:
            self.consts[id(eqn.outputs[0])] = out
            return False   # kept; later passes fold its users, DCE drops it
        self.note("fold", eqn)
        return True

    def rewrite(self, eqn: Eqn) -> bool:
        rule = rewrite_rules.get(eqn.prim)
        replacement = rule(eqn, *eqn.inputs, **eqn.params) if rule else None
        if replacement is None or replacement.aval != eqn.outputs[0].aval:
            return False
        self.subst[id(eqn.outputs[0])] = replacement
        self.note("rewrite", eqn)
        return True

    def cse(self, eqn: Eqn) -> bool:
        keys = [_key(a) for a in eqn.inputs]
        if eqn.prim in commutative:
            keys.sort(key=repr)
        key = (eqn.prim, tuple(keys), _params_key(eqn.params))
        prior = self.seen.get(key)
        if prior is None:
            self.seen[key] = eqn.outputs
            return False
        for v, p in zip(eqn.outputs, prior):
            self.subst[id(v)] = p
        self.note("cse", eqn)
        return True


def simplify_program(program: Program, consts: list[Any], log: list[str] | None = None,
                     max_iterations: int = 20) -> tuple[Program, list[Any]]:
    """Simplify `program` (whose first inputs are `consts`) to a fixed point."""
    const_values = {id(v): c for v, c in zip(program.invars, consts)
                    if isinstance(c, np.ndarray) or np.isscalar(c)}
    for _ in range(max_iterations):
        p = _Pass(program, dict(const_values), log)
        program = dce(p.run())
        if not p.changed:
            break
    return _materialise_folded(program, consts, p.consts)


def _materialise_folded(program: Program, consts: list[Any],
                        values: dict[int, Any]) -> tuple[Program, list[Any]]:
    """Turn folded arrays still used by equations into constants of the program."""
    defined = {id(v) for e in program.eqns for v in e.outputs}
    needed = {id(a) for e in program.eqns for a in e.inputs if isinstance(a, Var)}
    needed |= {id(v) for v in program.outvars if isinstance(v, Var)}
    folded = [e for e in program.eqns for v in e.outputs
              if id(v) in values and id(v) in defined]
    if not folded:
        return program, consts
    new_consts = [v for e in folded for v in e.outputs if id(v) in needed]
    eqns = [e for e in program.eqns if e not in folded]
    k = program.num_consts
    invars = program.invars[:k] + new_consts + program.invars[k:]
    new_program = dce(Program(invars, eqns, program.outvars, k + len(new_consts)))
    return new_program, consts + [values[id(v)] for v in new_consts]


def simplify(closed: ClosedProgram, log: list[str] | None = None) -> ClosedProgram:
    """An equivalent, simplified program.

    >>> import fxgrad as fx
    >>> closed = fx.make_jaxpr(lambda x: (x * 2.0) + (2.0 * x))(1.0)
    >>> len(fx.simplify(closed).eqns)
    2
    """
    program, consts = simplify_program(closed.program, closed.consts, log)
    return ClosedProgram(program, consts)
