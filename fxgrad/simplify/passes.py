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

# Algebraic rewrites: (rewriter, *operands, **params) -> replacement atom or None.
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


class Rewriter:
    """One pass over a program; also the interface rewrite rules see.

    Rules call `producer(atom)` to look at the equation defining an operand,
    `scalar(atom)` for the value of a literal, a uniform constant or a broadcast
    literal, and `emit(prim, *operands, **params)` to add equations (which are
    themselves folded, rewritten and deduplicated).
    """

    def __init__(self, program: Program, consts: dict[int, Any], log: list[str] | None):
        self.program = program
        self.consts = consts          # id(var) -> known constant value
        self.subst: dict[int, Atom] = {}
        self.seen: dict[Any, list[Var]] = {}
        self.producers: dict[int, Eqn] = {}
        self.eqns: list[Eqn] = []
        self.processed: list[Eqn] = []
        self.log = log
        self.changed = False
        self.depth = 0

    def read(self, atom: Atom) -> Atom:
        return atom if isinstance(atom, Literal) else self.subst.get(id(atom), atom)

    def note(self, what: str, eqn: Eqn, detail: str = "") -> None:
        self.changed = True
        if self.log is not None:
            self.log.append(f"{what}: {eqn.prim.name}{' -> ' + detail if detail else ''}")

    def run(self) -> Program:
        for eqn in self.program.eqns:
            self.process(Eqn(eqn.prim, [self.read(a) for a in eqn.inputs], eqn.params,
                             eqn.outputs))
        outs = [self.read(v) for v in self.program.outvars]
        return Program(self.program.invars, self.eqns, outs, self.program.num_consts)

    def process(self, eqn: Eqn) -> None:
        self.processed.append(eqn)   # keeps its vars alive: the tables are keyed by id
        if not (self.fold(eqn) or self.rewrite(eqn) or self.cse(eqn)):
            self.eqns.append(eqn)
            self.producers.update((id(v), eqn) for v in eqn.outputs)

    # ---- the interface of rewrite rules
    def producer(self, atom: Atom) -> Eqn | None:
        return None if isinstance(atom, Literal) else self.producers.get(id(atom))

    def scalar(self, atom: Atom) -> Any:
        """The single value every element of `atom` is known to have, else None."""
        value = self.value(atom)
        if value is not None:
            flat = np.ravel(value)
            return flat[0] if flat.size and np.all(flat == flat[0]) else None
        eqn = self.producer(atom)
        if eqn is not None and eqn.prim.name == "broadcast_in_dim":
            return self.scalar(eqn.inputs[0])
        return None

    def emit(self, prim: Any, *operands: Atom, **params: Any) -> Atom:
        from fxgrad.core.trace import abstract_eval
        avals = abstract_eval(prim, [a.aval for a in operands], params)
        eqn = Eqn(prim, operands, params, [Var(a) for a in avals])
        self.depth += 1
        try:
            self.process(eqn)
        finally:
            self.depth -= 1
        return self.read(eqn.outputs[0])

    # ---- the passes
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
        if rule is None or self.depth > 8:
            return False
        replacement = rule(self, *eqn.inputs, **eqn.params)
        if replacement is None or replacement.aval != eqn.outputs[0].aval:
            return False
        self.subst[id(eqn.outputs[0])] = replacement
        self.note("rewrite", eqn, getattr(rule, "__name__", ""))
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
        p = Rewriter(program, dict(const_values), log)
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
