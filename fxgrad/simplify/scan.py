"""Moving accumulations out of scan loops (Theano's `scan_push_out_add`), and pruning a
loop's inputs and outputs.

The reverse-mode derivative of a loop accumulates each loop-invariant parameter's
gradient in a carry, `acc = acc + term_t`. When nothing else in the body reads `acc`,
the loop need not carry it: the body emits `term_t` as a per-iteration output and the
sum happens once, after the loop: `acc_T = acc_0 + sum_t term_t`. When the term is a
`dot_general(x_t, y_t)` (an outer product, for a matrix parameter), the body emits `x_t`
and `y_t` instead, and the sum is one dot_general that also contracts the iteration
axis — a single BLAS call instead of T rank-one updates of a carry that, for small
states, is dozens of scalars the native loop keeps in registers or spills.

The sum's order changes (rounding-level differences), never its terms. A carry stays
in the loop when stacking its terms would take more than STACK_LIMIT elements.
"""
from __future__ import annotations

from typing import Any

from fxgrad.core.ir import Atom, Eqn, Program, ShapedArray, Var, dce
from fxgrad.core.trace import new_eqn
from fxgrad.primitives.arith import add_p
from fxgrad.primitives.control import scan_p
from fxgrad.primitives.dot import dot_general_p
from fxgrad.primitives.reduce import reduce_sum_p
from fxgrad.simplify.passes import program_rewrites

# At most this many elements of new per-iteration outputs per carry pushed out: the
# loop's carry took one term's worth of memory, the stack takes `length` of them.
STACK_LIMIT = 1 << 22


def _uses(body: Program) -> dict[int, int]:
    """How many times each variable is read, by equations and as an output."""
    counts: dict[int, int] = {}
    for atom in [a for e in body.eqns for a in e.inputs] + list(body.outvars):
        if isinstance(atom, Var):
            counts[id(atom)] = counts.get(id(atom), 0) + 1
    return counts


class _PushOut:
    """Rebuilds one scan equation without its pure-accumulation carries."""

    def __init__(self, eqn: Eqn):
        self.eqn, p = eqn, eqn.params
        self.body: Program = p["program"]
        self.num_consts, self.num_carry = p["num_consts"], p["num_carry"]
        self.length = p["length"]
        self.first_x = self.num_consts + self.num_carry
        self.uses = _uses(self.body)
        self.producers = {id(v): e for e in self.body.eqns for v in e.outputs}
        self.new_ys: list[Atom] = []      # body atoms now emitted per iteration ...
        self.new_stacks: list[Var] = []   # ... and the outer arrays stacking them
        self.after: list[Eqn] = []        # equations after the loop

    def stacked(self, atom: Atom) -> Atom:
        """The outer array holding `atom` for every iteration: the xs operand it is, or
        a new per-iteration output of the body."""
        if atom in self.body.invars[self.first_x:]:
            return self.eqn.inputs[self.body.invars.index(atom)]
        self.new_ys.append(atom)
        self.new_stacks.append(Var(ShapedArray((self.length, *atom.aval.shape), atom.aval.dtype)))
        return self.new_stacks[-1]

    def summed(self, term: Var, dot: Eqn | None) -> Atom:
        """The sum over iterations of `term`; a dot_general contracting the iteration
        axis too when `term` is that `dot`'s output."""
        if dot is None:
            total = new_eqn(reduce_sum_p, [self.stacked(term)], {"axes": (0,)})
        else:
            (lc, rc), (lb, rb) = dot.params["dimension_numbers"]
            shift = lambda dims: tuple(d + 1 for d in dims)  # noqa: E731
            dims = (((0, *shift(lc)), (0, *shift(rc))), (shift(lb), shift(rb)))
            x, y = (self.stacked(a) for a in dot.inputs)
            total = new_eqn(dot_general_p, [x, y], {**dot.params, "dimension_numbers": dims})
        self.after.append(total)
        return total.outputs[0]

    def accumulated_term(self, k: int) -> Var | None:
        """`term` when carry k only ever does `acc = acc + term`, else None."""
        acc_in, acc_out = self.body.invars[self.num_consts + k], self.body.outvars[k]
        producer = self.producers.get(id(acc_out))
        if producer is None or producer.prim is not add_p or self.uses.get(id(acc_out)) != 1:
            return None
        a, b = producer.inputs
        term = b if a is acc_in else a if b is acc_in else None
        if not isinstance(term, Var) or term is acc_in or self.uses.get(id(acc_in)) != 1:
            return None
        return term if term.aval == acc_in.aval else None

    def per_iteration_dot(self, term: Var) -> Eqn | None:
        """The dot_general making `term`, if only the accumulation reads `term` and both
        its operands vary per iteration."""
        dot = self.producers.get(id(term))
        if dot is None or dot.prim is not dot_general_p or self.uses.get(id(term)) != 1:
            return None
        invariant = self.body.invars[:self.num_consts]
        return dot if all(isinstance(a, Var) and a not in invariant for a in dot.inputs) \
            else None

    def new_elements(self, atoms: Any) -> int:
        """Elements of the new per-iteration outputs stacking `atoms` would take."""
        xs = self.body.invars[self.first_x:]
        return sum(self.length * a.aval.size for a in atoms if a not in xs)

    def run(self) -> list[Eqn] | None:
        found: dict[int, tuple[Var, Eqn | None]] = {}
        for k in range(self.num_carry):
            term = self.accumulated_term(k)
            dot = self.per_iteration_dot(term) if term is not None else None
            if term is not None and \
                    self.new_elements(dot.inputs if dot else [term]) <= STACK_LIMIT:
                found[k] = (term, dot)
        if not found or self.length == 0:
            return None
        for k, (term, dot) in found.items():
            total = self.summed(term, dot)
            init = self.eqn.inputs[self.num_consts + k]
            self.after.append(Eqn(add_p, [init, total], {}, [self.eqn.outputs[k]]))
        return [self.loop(found), *self.after]

    def loop(self, found: dict[int, Any]) -> Eqn:
        keep = [k for k in range(self.num_carry) if k not in found]
        body, eqn, c = self.body, self.eqn, self.num_consts
        invars = [*body.invars[:c], *(body.invars[c + k] for k in keep),
                  *body.invars[self.first_x:]]
        outvars = [*(body.outvars[k] for k in keep), *body.outvars[self.num_carry:],
                   *self.new_ys]
        new_body = dce(Program(invars, body.eqns, outvars, body.num_consts))
        inputs = [*eqn.inputs[:c], *(eqn.inputs[c + k] for k in keep),
                  *eqn.inputs[self.first_x:]]
        outputs = [*(eqn.outputs[k] for k in keep), *eqn.outputs[self.num_carry:],
                   *self.new_stacks]
        params = {**eqn.params, "program": new_body, "num_carry": len(keep)}
        return Eqn(scan_p, inputs, params, outputs)


def push_out_accumulations(program: Program) -> Program | None:
    """`program` with accumulating scan carries summed after their loops, or None."""
    eqns, changed = [], False
    for eqn in program.eqns:
        rebuilt = _PushOut(eqn).run() if eqn.prim is scan_p else None
        eqns.extend(rebuilt or [eqn])
        changed = changed or rebuilt is not None
    return Program(program.invars, eqns, program.outvars, program.num_consts) if changed else None


program_rewrites.append(push_out_accumulations)


# ---------------------------------------------------------------- scan inputs and outputs
# Reverse mode stacks a loop's residuals for the backward loop, one per use in the
# linearized body; once the body is simplified two residuals are often the same value
# (the same carry element read by two products), and some are read by nothing.

def prune_scan_outputs(program: Program) -> Program | None:
    """`program` with each scan's per-iteration outputs that nothing reads dropped, one
    stacked twice stacked once, one that is an xs row replaced by the xs array, and
    inputs passed twice passed once; None when no scan changes."""
    used = {id(a) for e in program.eqns for a in e.inputs if isinstance(a, Var)}
    used |= {id(v) for v in program.outvars if isinstance(v, Var)}
    rename: dict[int, Atom] = {}
    eqns, changed = [], False
    for eqn in program.eqns:
        eqn = _renamed_inputs(eqn, rename)
        if eqn.prim is scan_p:
            new = _merge_scan_inputs(_prune_ys(eqn, used, rename) or eqn)
            changed = changed or new is not eqn
            eqn = new
        eqns.append(eqn)
    if not changed:
        return None
    outvars = [rename.get(id(v), v) for v in program.outvars]
    return Program(program.invars, eqns, outvars, program.num_consts)


def _renamed_inputs(eqn: Eqn, rename: dict[int, Atom]) -> Eqn:
    if not rename or not any(id(a) in rename for a in eqn.inputs):
        return eqn
    return Eqn(eqn.prim, [rename.get(id(a), a) for a in eqn.inputs], eqn.params, eqn.outputs)


def _prune_ys(eqn: Eqn, used: set[int], rename: dict[int, Atom]) -> Eqn | None:
    """The scan without unread, repeated or xs-forwarding ys, recording in `rename`
    what stands for each dropped output that is read."""
    body, num_carry, num_consts = eqn.params["program"], eqn.params["num_carry"], eqn.params["num_consts"]
    first_x = num_consts + num_carry
    xs_invars = {id(v): i for i, v in enumerate(body.invars) if i >= first_x}
    keep = list(range(num_carry))
    first: dict[int, int] = {}   # id of a body value -> the output kept for it
    for k in range(num_carry, len(body.outvars)):
        out, value = eqn.outputs[k], body.outvars[k]
        if id(out) not in used:
            continue
        if isinstance(value, Var) and id(value) in xs_invars:   # y_t = x_t: ys is xs
            rename[id(out)] = eqn.inputs[xs_invars[id(value)]]
        elif isinstance(value, Var) and id(value) in first:
            rename[id(out)] = eqn.outputs[first[id(value)]]
        else:
            first[id(value)] = k
            keep.append(k)
    if len(keep) == len(body.outvars):
        return None
    new_body = dce(Program(body.invars, body.eqns, [body.outvars[k] for k in keep],
                           body.num_consts))
    return Eqn(scan_p, eqn.inputs, {**eqn.params, "program": new_body},
               [eqn.outputs[k] for k in keep])


def _merge_scan_inputs(eqn: Eqn) -> Eqn:
    """The scan reading a const or xs operand passed twice through one body input."""
    body, num_consts = eqn.params["program"], eqn.params["num_consts"]
    first_x = num_consts + eqn.params["num_carry"]
    seen: dict[Any, int] = {}
    body_rename: dict[int, Atom] = {}
    drop = set()
    for i, operand in enumerate(eqn.inputs):
        if num_consts <= i < first_x or not isinstance(operand, Var):
            continue
        key = (id(operand), i < num_consts)
        if key in seen:
            body_rename[id(body.invars[i])] = body.invars[seen[key]]
            drop.add(i)
        else:
            seen[key] = i
    if not drop:
        return eqn
    keep = [i for i in range(len(eqn.inputs)) if i not in drop]
    eqns = [_renamed_inputs(e, body_rename) for e in body.eqns]
    outvars = [body_rename.get(id(v), v) for v in body.outvars]
    new_body = Program([body.invars[i] for i in keep], eqns, outvars, body.num_consts)
    n_consts = num_consts - sum(1 for i in drop if i < num_consts)
    return Eqn(scan_p, [eqn.inputs[i] for i in keep],
               {**eqn.params, "program": new_body, "num_consts": n_consts}, eqn.outputs)


program_rewrites.append(prune_scan_outputs)
