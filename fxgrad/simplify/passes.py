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

Once these settle, the polynomial normal form (`polynomial`) re-emits trees of
sums and products in Horner form, kept when the rewritten program is smaller.

`simplify(closed, log=[])` returns a new `ClosedProgram` and appends one line per
change to `log`, naming variables as the printed input program does, e.g.
`rewrite mul_identities: mul b 1.0 -> b` or `cse: exp a -> b`.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from fxgrad.config import config
from fxgrad.core.ir import Atom, ClosedProgram, Eqn, Literal, Program, Var, _Printer, dce
from fxgrad.simplify.polynomial import polynomial_normal_form

# Algebraic rewrites: (rewriter, *operands, **params) -> replacement atom or None.
rewrite_rules: dict[Any, Callable[..., Atom | None]] = {}
commutative: set[Any] = set()
# Whole-program rewrites tried once the local ones settle: program -> new program or None.
program_rewrites: list[Callable[[Program], Program | None]] = []

_FOLD_LIMIT = 64  # never fold into arrays larger than this many elements


def uniform_value(value: Any) -> Any:
    """The one value every element of `value` has, else None (also for no elements)."""
    flat = np.ravel(value)
    return flat[0] if flat.size and np.all(flat == flat[0]) else None


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

    def __init__(self, program: Program, consts: dict[int, Any], log: list[str] | None,
                 names: _Printer | None = None, bodies: dict | None = None):
        self.program = program
        # id(body) -> (body, its simplified form): each pass sees the bodies the last one
        # made, already at their fixed point; this skips simplifying them again
        self.bodies: dict[int, tuple[Program, Program]] = {} if bodies is None else bodies
        self.names = names or _Printer()
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

    def note(self, what: str, eqn: Eqn, *replacements: Atom) -> None:
        self.changed = True
        if self.log is not None:
            new = ", ".join(self.describe_atom(a) for a in replacements)
            self.log.append(f"{what}: {self.describe(eqn)} -> {new}")

    def describe_atom(self, atom: Atom) -> str:
        """The atom's name; a variable new to the log also shows its equation."""
        fresh = isinstance(atom, Var) and id(atom) not in self.names.names
        producer = self.producers.get(id(atom)) if fresh else None
        name = self.names.name(atom)
        return f"{name} = {self.describe(producer)}" if producer is not None else name

    def describe(self, eqn: Eqn, inline: bool = True) -> str:
        """`prim[params] operands`, sub-programs elided, for the log. Operands made by
        equations the log has not shown yet are written out, `(mul 2.0 a)`, once deep."""
        params = ", ".join(f"{k}={'{...}' if isinstance(v, Program) else self.names.param(v, 0)}"
                           for k, v in eqn.params.items())
        ins = " ".join(self.describe_operand(a) if inline else self.names.name(a)
                       for a in eqn.inputs)
        return f"{eqn.prim.name}{f'[{params}]' if params else ''} {ins}".rstrip()

    def describe_operand(self, atom: Atom) -> str:
        fresh = isinstance(atom, Var) and id(atom) not in self.names.names
        producer = self.producers.get(id(atom)) if fresh else None
        return f"({self.describe(producer, inline=False)})" if producer is not None else \
            self.names.name(atom)

    def run(self) -> Program:
        for eqn in self.program.eqns:
            self.process(Eqn(eqn.prim, [self.read(a) for a in eqn.inputs],
                             self.simplify_bodies(eqn), eqn.outputs))
        outs = [self.read(v) for v in self.program.outvars]
        return Program(self.program.invars, self.eqns, outs, self.program.num_consts)

    def simplify_bodies(self, eqn: Eqn) -> dict:
        """The params with each sub-program (a scan body) simplified, same signature."""
        params = dict(eqn.params)
        for k, body in eqn.params.items():
            if not isinstance(body, Program) or body.num_consts:
                continue
            known = self.bodies.get(id(body))
            if known is not None and known[0] is body:
                params[k] = known[1]
                self.changed = self.changed or known[1] is not body
                continue
            new, consts, restructured = _simplify(body, [], None, bodies=self.bodies)
            accepted = not consts and (restructured or len(new.eqns) < len(body.eqns)) and \
                all(isinstance(v, Var) for v in new.outvars)
            self.bodies[id(body)] = (body, new if accepted else body)
            self.bodies[id(new)] = (new, new)
            if accepted:
                params[k] = new
                if self.log is not None:
                    self.log.append(f"simplify {eqn.prim.name} body: {len(body.eqns)} -> "
                                    f"{len(new.eqns)} equations"
                                    + (", restructured" if restructured else ""))
                self.changed = True
        return params

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
            return uniform_value(value)
        eqn = self.producer(atom)
        if eqn is not None and eqn.prim.name == "broadcast_in_dim":
            return self.scalar(eqn.inputs[0])
        return None

    def emit(self, prim: Any, *operands: Atom, **params: Any) -> Atom:
        from fxgrad.core.trace import new_eqn
        eqn = new_eqn(prim, operands, params)
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
        self.note("fold", eqn, self.subst[id(eqn.outputs[0])])
        return True

    def rewrite(self, eqn: Eqn) -> bool:
        rule = rewrite_rules.get(eqn.prim)
        if rule is None or self.depth > 8:
            return False
        replacement = rule(self, *eqn.inputs, **eqn.params)
        if replacement is None or replacement.aval != eqn.outputs[0].aval:
            return False
        self.subst[id(eqn.outputs[0])] = replacement
        self.note(f"rewrite {getattr(rule, '__name__', 'rule')}", eqn, replacement)
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
        self.note("cse", eqn, *prior)
        return True


def simplify_program(program: Program, consts: list[Any], log: list[str] | None = None,
                     max_iterations: int = 20) -> tuple[Program, list[Any]]:
    """Simplify `program` (whose first inputs are `consts`) to a fixed point.

    After the rewrites settle, the polynomial normal form (`polynomial`) is tried and
    kept when the program, rewritten again, has fewer equations; then the whole-program
    rewrites (`program_rewrites`) run.
    """
    program, consts, _ = _simplify(program, consts, log, max_iterations)
    return program, consts


def _simplify(program: Program, consts: list[Any], log: list[str] | None,
              max_iterations: int = 20, bodies: dict | None = None
              ) -> tuple[Program, list[Any], bool]:
    """simplify_program, also saying whether a whole-program rewrite changed it;
    `bodies` remembers scan bodies already simplified (see Rewriter)."""
    bodies = {} if bodies is None else bodies
    names = _Printer()
    names.program(program, indent=0)   # the log names variables as `print(program)` does
    program, consts = _broadcast_uniform_consts(program, consts, log, names)
    const_values = {id(v): c for v, c in zip(program.invars, consts)
                    if isinstance(c, np.ndarray) or np.isscalar(c)}
    program, folded = _rewrite_to_fixed_point(program, const_values, log, max_iterations, names,
                                              bodies)
    candidate = polynomial_normal_form(program, config.simplify_assume_finite)
    if candidate is not None:
        trial_log: list[str] | None = [] if log is not None else None
        candidate, trial_folded = _rewrite_to_fixed_point(candidate, const_values, trial_log,
                                                          max_iterations, names, bodies)
        if len(candidate.eqns) < len(program.eqns):
            if log is not None:
                log.append(f"polynomial: {len(program.eqns)} -> {len(candidate.eqns)} equations")
                log.extend(trial_log or [])
            program, folded = candidate, trial_folded
    restructured = False
    for rewrite in program_rewrites:
        rewritten = rewrite(program)
        if rewritten is not None:
            restructured = True
            if log is not None:
                log.append(f"{rewrite.__name__}: {len(program.eqns)} -> "
                           f"{len(rewritten.eqns)} equations")
            program, folded = _rewrite_to_fixed_point(rewritten, const_values, log,
                                                      max_iterations, names, bodies)
    return (*_drop_unused_consts(*_materialise_folded(program, consts, folded)), restructured)


def _broadcast_uniform_consts(program: Program, consts: list[Any], log: list[str] | None,
                              names: _Printer) -> tuple[Program, list[Any]]:
    """Constant inputs of more than _FOLD_LIMIT equal elements (a fill made while
    tracing: the 0.0 of `where(c, x, 0.0)` broadcast to c's shape) as a broadcast of one
    literal, which jit fuses into its loops instead of reading an array."""
    from fxgrad.primitives.shape import broadcast_in_dim_p
    k = program.num_consts
    kept: list[tuple[Var, Any]] = []
    fills: list[Eqn] = []
    for var, value in zip(program.invars[:k], consts):
        fill_value = uniform_value(value) if isinstance(value, np.ndarray) and \
            value.size > _FOLD_LIMIT else None
        if fill_value is not None:
            fill = Literal(fill_value)
            fills.append(Eqn(broadcast_in_dim_p, [fill],
                             {"shape": value.shape, "broadcast_dimensions": ()}, [var]))
            if log is not None:
                log.append(f"uniform constant: {names.name(var)} -> broadcast {fill!r}")
        else:
            kept.append((var, value))
    if not fills:
        return program, consts
    invars = [v for v, _ in kept] + program.invars[k:]
    return (Program(invars, fills + program.eqns, program.outvars, len(kept)),
            [c for _, c in kept])


def _rewrite_to_fixed_point(program: Program, const_values: dict[int, Any],
                            log: list[str] | None, max_iterations: int,
                            names: _Printer | None = None, bodies: dict | None = None
                            ) -> tuple[Program, dict[int, Any]]:
    """Rewriter passes until nothing changes; also the values of folded variables."""
    for _ in range(max_iterations):
        p = Rewriter(program, dict(const_values), log, names, bodies)
        program = dce(p.run())
        if not p.changed:
            break
    return program, p.consts


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


def _drop_unused_consts(program: Program, consts: list[Any]) -> tuple[Program, list[Any]]:
    """Dead-code elimination of constant inputs no equation or output reads any more."""
    used = {id(a) for e in program.eqns for a in e.inputs if isinstance(a, Var)}
    used |= {id(v) for v in program.outvars if isinstance(v, Var)}
    k = program.num_consts
    kept = [i for i in range(k) if id(program.invars[i]) in used]
    if len(kept) == k:
        return program, consts
    invars = [program.invars[i] for i in kept] + program.invars[k:]
    return Program(invars, program.eqns, program.outvars, len(kept)), [consts[i] for i in kept]


def simplify(closed: ClosedProgram, log: list[str] | None = None) -> ClosedProgram:
    """An equivalent, simplified program.

    >>> import fxgrad as fx
    >>> closed = fx.make_jaxpr(lambda x: (x * 2.0) + (2.0 * x))(1.0)
    >>> print(fx.simplify(closed))
    { lambda ; a:f64[]. let
        b:f64[] = mul 4.0 a
      in (b,) }
    """
    program, consts = simplify_program(closed.program, closed.consts, log)
    return ClosedProgram(program, consts)
