"""Control flow: the `scan` primitive and its rules.

`scan` runs a body program `(consts, carry, x) -> (carry, y)` once per slice of its
xs along their leading axis, threading the carry and stacking the ys. Its operands
are `consts + init carry + xs`; the body is a closed `Program` param (values the
user's function closed over were hoisted into the consts when it was traced).

Differentiation splits the body in two. The JVP rule traces the body's JVP with the
primal arithmetic recorded in one trace and the tangent arithmetic in a newer one;
the older trace becomes a primal body that also emits, per step, the residuals the
tangent arithmetic reads, the newer one a body linear in the tangents that takes
those residuals as extra xs. Binding a primal scan and then a tangent scan means
linearize stages out only the tangent scan. Its transpose is a scan running the
other way whose carry holds the cotangents of the carry and of the linear consts.

Under jit a scan becomes one native `for` loop inside the kernel: the carries are
loop-carried locals (numba scalars when rank-0, so a scalar body allocates nothing),
the body's statements are emitted inside the loop, and each step's ys are stored
into arrays allocated once before it.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from fxgrad.core.errors import FxTypeError
from fxgrad.core.ir import Program, ShapedArray, aval_of
from fxgrad.core.trace import Primitive, Tracer, new_trace, shape_rules, trace_to_program
from fxgrad.interpreters.evaluation import def_impl, eval_program
from fxgrad.interpreters.jvp import (Zero, add_tangents, def_jvp, instantiate, is_zero,
                                     jvp_program, tangent_dtype)
from fxgrad.interpreters.transpose import UndefinedPrimal, backward_pass, def_transpose
from fxgrad.jit.lowering import Ctx, def_lowering, np_dtype

scan_p = Primitive("scan", multiple_results=True)


def scan_bind(consts: Sequence[Any], init: Sequence[Any], xs: Sequence[Any],
              program: Program, length: int, reverse: bool) -> list[Any]:
    """Bind `scan_p` on flat consts, initial carry and xs; returns carry + stacked ys."""
    return scan_p.bind(*consts, *init, *xs, program=program, num_consts=len(consts),
                       num_carry=len(init), length=length, reverse=reverse)


def trace_body(fun: Callable[..., Sequence[Any]],
               in_avals: Sequence[ShapedArray]) -> tuple[Program, list[Any]]:
    """Trace `fun` abstractly into a closed body program.

    Values it captured (outer tracers, arrays) come back as a list to pass as extra
    leading consts operands; they are the first inputs of the returned program.
    """
    program, captured = trace_to_program(fun, in_avals)
    return Program(program.invars, program.eqns, program.outvars), captured


def _split3(seq: Sequence[Any], num_consts: int, num_carry: int) -> tuple[list, list, list]:
    """`seq` cut into (consts, carry, xs)."""
    end = num_consts + num_carry
    return list(seq[:num_consts]), list(seq[num_consts:end]), list(seq[end:])


def _cut(seq: Sequence[Any], sizes: Sequence[int]) -> list[list[Any]]:
    parts, start = [], 0
    for n in sizes:
        parts.append(list(seq[start:start + n]))
        start += n
    return parts


def _pick(items: Sequence[Any], flags: Sequence[bool]) -> list[Any]:
    return [x for x, keep in zip(items, flags) if keep]


def _merge(flags: Sequence[bool], when_true: Sequence[Any], when_false: Sequence[Any]) -> list:
    """Interleave two lists: the next of `when_true` where a flag is set, else of the other."""
    true_it, false_it = iter(when_true), iter(when_false)
    return [next(true_it) if flag else next(false_it) for flag in flags]


def _not(flags: Sequence[bool]) -> list[bool]:
    return [not f for f in flags]


def _slice_aval(aval: ShapedArray) -> ShapedArray:
    return ShapedArray(aval.shape[1:], aval.dtype)


# ---------------------------------------------------------------- impl and shape rule

@def_impl(scan_p)
def _scan_impl(*operands: np.ndarray, program: Program, num_consts: int, num_carry: int,
               length: int, reverse: bool) -> list[np.ndarray]:
    consts, carry, xs = _split3(operands, num_consts, num_carry)
    steps: list[Any] = [None] * length
    for i in (reversed(range(length)) if reverse else range(length)):
        outs = eval_program(program, [*consts, *carry, *(x[i] for x in xs)])
        carry, steps[i] = outs[:num_carry], outs[num_carry:]
    y_avals = program.out_avals[num_carry:]
    if length == 0:
        return [*carry, *(np.zeros((0, *a.shape), a.dtype) for a in y_avals)]
    return [*carry, *(np.stack([step[j] for step in steps]) for j in range(len(y_avals)))]


def _scan_shape(*avals: ShapedArray, program: Program, num_consts: int, num_carry: int,
                length: int, reverse: bool) -> list[ShapedArray]:
    consts, carry, xs = _split3(avals, num_consts, num_carry)
    for i, x in enumerate(xs):
        if x.shape[:1] != (length,):
            raise FxTypeError(f"scan: xs operand {i} has shape {x.shape}, but the scan has "
                              f"length {length}; every xs needs a leading axis of that size")
    in_avals = [*consts, *carry, *map(_slice_aval, xs)]
    if in_avals != program.in_avals:
        raise FxTypeError(f"scan: operands {in_avals} (xs sliced) do not match the body's "
                          f"inputs {program.in_avals}")
    out_avals = program.out_avals
    if out_avals[:num_carry] != carry:
        raise FxTypeError(f"scan: the body returns carry {out_avals[:num_carry]}, but the "
                          f"carry going in is {carry}; it must keep its shapes and dtypes")
    return [*carry, *(ShapedArray((length, *a.shape), a.dtype) for a in out_avals[num_carry:])]


shape_rules[scan_p] = _scan_shape


# ---------------------------------------------------------------- JVP

def _has_tangent(t: Any, aval: ShapedArray) -> bool:
    """Whether a tangent must be carried: non-zero, of a floating-point value."""
    return not is_zero(t) and aval.dtype.kind in "fc"


def _tangent_aval(aval: ShapedArray) -> ShapedArray:
    return ShapedArray(aval.shape, tangent_dtype(aval.dtype))


class _JvpSplit:
    """The JVP of a scan body split into a primal body and a tangent body.

    `nonzero` flags the body inputs with a tangent. The primal body maps
    (captured, consts, carry, x) to (carry, y, residuals); the tangent body maps
    (tangent consts, const tangents, carry tangents, x tangents, residual xs) to
    (carry tangents, non-zero y tangents). Each tangent-body input that is not a
    tangent has a source: ("value", array), ("const", j) or ("x", j) of the scan's
    operands, ("y", j), a stacked y, or ("residual", k), the k-th residual output of
    the primal scan.
    """

    def __init__(self, body: Program, num_consts: int, num_carry: int, nonzero: list[bool]):
        self.body, self.num_consts, self.num_carry = body, num_consts, num_carry
        self.nonzero = nonzero
        self.sources: list[tuple[str, Any]] = []
        self.out_nonzero: list[bool] = []
        self.raw_tangent: Program | None = None
        self.primal, self.captured = trace_body(self._primal_body, body.in_avals)
        self.tangent = self._reorder_tangent_inputs()

    @property
    def carry_nonzero(self) -> list[bool]:
        return self.nonzero[self.num_consts:self.num_consts + self.num_carry]

    def _primal_body(self, *args: Tracer) -> list[Any]:
        with new_trace() as tangent_trace:
            tangents = [tangent_trace.new_arg(_tangent_aval(a.aval)) if nz else Zero(a.aval)
                        for a, nz in zip(args, self.nonzero)]
            outs, t_outs = jvp_program(self.body, args, tangents)
            self.out_nonzero = [_has_tangent(t, v.aval)
                                for t, v in zip(t_outs, self.body.outvars)]
            keep = [*self.carry_nonzero, *self.out_nonzero[self.num_carry:]]
            t_outs = [instantiate(t) for t in _pick(t_outs, keep)]
            t_program, t_captured = tangent_trace.build(t_outs)
        self.raw_tangent = t_program
        return [*outs, *self._classify(t_captured, args, outs)]

    def _classify(self, t_captured: list[Any], args: Sequence[Tracer],
                  outs: Sequence[Any]) -> list[Tracer]:
        """Record where each value the tangent body captured comes from; the residuals."""
        first_x = self.num_consts + self.num_carry
        where = {id(y._var): ("y", j) for j, y in enumerate(outs[self.num_carry:])
                 if isinstance(y, Tracer)}
        where.update((id(a._var), ("const", i)) for i, a in enumerate(args[:self.num_consts]))
        where.update((id(a._var), ("x", i)) for i, a in enumerate(args[first_x:]))
        residuals: list[Tracer] = []
        for value in t_captured:
            if not isinstance(value, Tracer):
                self.sources.append(("value", value))
            elif id(value._var) in where:
                self.sources.append(where[id(value._var)])
            else:
                self.sources.append(("residual", len(residuals)))
                residuals.append(value)
        return residuals

    def _per_step(self) -> list[bool]:
        return [kind in ("x", "y", "residual") for kind, _ in self.sources]

    def _reorder_tangent_inputs(self) -> Program:
        """Tangent body with inputs ordered as scan operands: consts, carry, xs."""
        raw = self.raw_tangent
        captured, tangent_args = _cut(raw.invars, [len(self.sources), len(raw.invars)])
        per_step = self._per_step()
        t_consts, t_carry, t_xs = _split3(tangent_args, *self._tangent_counts())
        invars = [*_pick(captured, _not(per_step)), *t_consts, *t_carry, *t_xs,
                  *_pick(captured, per_step)]
        return Program(invars, raw.eqns, raw.outvars)

    def _tangent_counts(self) -> tuple[int, int]:
        consts, carry, _ = _split3(self.nonzero, self.num_consts, self.num_carry)
        return sum(consts), sum(carry)

    def bind_primal(self, primals: Sequence[Any], length: int, reverse: bool) -> list[Any]:
        consts, init, xs = _split3(primals, self.num_consts, self.num_carry)
        return scan_bind([*self.captured, *consts], init, xs, self.primal, length, reverse)

    def tangent_operands(self, primals: Sequence[Any], tangents: Sequence[Any],
                         ys: Sequence[Any], residuals: Sequence[Any]) -> tuple[list, list, list]:
        consts, _, xs = _split3(primals, self.num_consts, self.num_carry)
        pools = {"value": None, "const": consts, "x": xs, "y": ys, "residual": residuals}
        values = [v if kind == "value" else pools[kind][v] for kind, v in self.sources]
        per_step = self._per_step()
        c_dot, h_dot, x_dot = _split3(_pick(tangents, self.nonzero), *self._tangent_counts())
        return ([*_pick(values, _not(per_step)), *c_dot], list(map(instantiate, h_dot)),
                [*x_dot, *_pick(values, per_step)])


def _jvp_split(body: Program, num_consts: int, num_carry: int,
               nonzero: list[bool]) -> _JvpSplit:
    """Split the body's JVP, growing the set of carries with a tangent to a fixed point:
    a carry whose tangent starts zero but becomes non-zero after a step needs one."""
    while True:
        split = _JvpSplit(body, num_consts, num_carry, nonzero)
        carry_in, carry_out = split.carry_nonzero, split.out_nonzero[:num_carry]
        if all(i or not o for i, o in zip(carry_in, carry_out)):
            return split
        grown = [i or o for i, o in zip(carry_in, carry_out)]
        nonzero = [*nonzero[:num_consts], *grown, *nonzero[num_consts + num_carry:]]


@def_jvp(scan_p)
def _scan_jvp(primals: Sequence[Any], tangents: Sequence[Any], **params: Any) -> Any:
    num_consts, num_carry = params["num_consts"], params["num_carry"]
    nonzero = [_has_tangent(t, aval_of(x)) for x, t in zip(primals, tangents)]
    split = _jvp_split(params["program"], num_consts, num_carry, nonzero)
    out_nonzero = [*split.carry_nonzero, *split.out_nonzero[num_carry:]]
    if not any(out_nonzero):
        outs = scan_p.bind(*primals, **params)
        return outs, [Zero(aval_of(o)) for o in outs]
    length, reverse = params["length"], params["reverse"]
    primal_outs = split.bind_primal(primals, length, reverse)
    outs, residuals = _cut(primal_outs, [len(out_nonzero), len(primal_outs)])
    t_consts, t_init, t_xs = split.tangent_operands(primals, tangents, outs[num_carry:],
                                                    residuals)
    t_outs = scan_bind(t_consts, t_init, t_xs, split.tangent, length, reverse)
    zeros = [Zero(aval_of(o)) for o, nz in zip(outs, out_nonzero) if not nz]
    return outs, _merge(out_nonzero, t_outs, zeros)


# ---------------------------------------------------------------- transpose

class _BackwardStep:
    """One step of a transposed scan, traced into its body.

    (known consts; ct acc, ct carry; ct ys, known xs) -> (ct acc + this step's cts
    of the linear consts, ct of the carry going in, cts of the linear xs). Every
    carry is treated as linear: a known initial carry (instantiated zeros) is known
    only at the first step.
    """

    def __init__(self, body: Program, num_consts: int, num_carry: int, linear: list[bool],
                 ct_ys_nonzero: list[bool]):
        self.body, self.num_consts, self.num_carry = body, num_consts, num_carry
        self.lin_c, _, self.lin_x = _split3(linear, num_consts, num_carry)
        self.ct_ys_nonzero = ct_ys_nonzero

    def in_avals(self) -> list[ShapedArray]:
        c_avals, h_avals, x_avals = _split3(self.body.in_avals, self.num_consts, self.num_carry)
        y_avals = self.body.out_avals[self.num_carry:]
        return [*_pick(c_avals, _not(self.lin_c)), *_pick(c_avals, self.lin_c), *h_avals,
                *_pick(y_avals, self.ct_ys_nonzero), *_pick(x_avals, _not(self.lin_x))]

    def __call__(self, *args: Any) -> list[Any]:
        sizes = [len(self.lin_c) - sum(self.lin_c), sum(self.lin_c), self.num_carry,
                 sum(self.ct_ys_nonzero), len(args)]
        known_c, acc, ct_h, ct_y, known_x = _cut(args, sizes)
        y_avals = self.body.out_avals[self.num_carry:]
        zero_ys = [Zero(a) for a in _pick(y_avals, _not(self.ct_ys_nonzero))]
        cts_out = [*ct_h, *_merge(self.ct_ys_nonzero, ct_y, zero_ys)]
        cts_in = backward_pass(self.body, self._body_args(known_c, known_x), cts_out)
        ct_c, ct_h_in, ct_x = _split3(cts_in, self.num_consts, self.num_carry)
        acc = [add_tangents(a, ct) for a, ct in zip(acc, _pick(ct_c, self.lin_c))]
        return [*acc, *map(instantiate, ct_h_in), *map(instantiate, _pick(ct_x, self.lin_x))]

    def _body_args(self, known_c: list[Any], known_x: list[Any]) -> list[Any]:
        undefined = [UndefinedPrimal(a) for a in self.body.in_avals]
        u_c, u_h, u_x = _split3(undefined, self.num_consts, self.num_carry)
        return [*_merge(self.lin_c, _pick(u_c, self.lin_c), known_c), *u_h,
                *_merge(self.lin_x, _pick(u_x, self.lin_x), known_x)]


@def_transpose(scan_p)
def _scan_transpose(cts: Sequence[Any], *operands: Any, program: Program, num_consts: int,
                    num_carry: int, length: int, reverse: bool) -> list[Any]:
    linear = [isinstance(x, UndefinedPrimal) for x in operands]
    lin_c, lin_h, lin_x = _split3(linear, num_consts, num_carry)
    consts, _, xs = _split3(operands, num_consts, num_carry)
    ct_ys_nonzero = [not is_zero(ct) for ct in cts[num_carry:]]
    step = _BackwardStep(program, num_consts, num_carry, linear, ct_ys_nonzero)
    body, captured = trace_body(step, step.in_avals())
    acc0 = [instantiate(Zero(c.aval)) for c in _pick(consts, lin_c)]
    ct_h = [instantiate(ct) for ct in cts[:num_carry]]
    outs = scan_bind([*captured, *_pick(consts, _not(lin_c))], [*acc0, *ct_h],
                     [*_pick(cts[num_carry:], ct_ys_nonzero), *_pick(xs, _not(lin_x))],
                     body, length, not reverse)
    ct_c, ct_init, ct_xs = _split3(outs, len(acc0), num_carry)
    nones = [None] * len(operands)
    return [*_merge(lin_c, ct_c, nones), *(ct if lin else None for ct, lin in zip(ct_init, lin_h)),
            *_merge(lin_x, ct_xs, nones)]


# ---------------------------------------------------------------- numba lowering

def _as_scalar(expr: str, aval: ShapedArray) -> str:
    """A rank-0 value as a numba scalar of exactly its dtype, so a carry keeps one type
    across iterations (literals, float32 promoted by numba); arrays pass through."""
    return f"{np_dtype(aval.dtype)}({expr})" if aval.shape == () else expr


def _bind_scalars(ctx: Ctx, exprs: Sequence[str], avals: Sequence[ShapedArray]) -> list[str]:
    """Rank-0 consts bound once, typed, to locals (one per distinct value); arrays pass
    through."""
    bound: dict[str, str] = {}
    for expr, aval in zip(exprs, avals):
        if aval.shape == () and expr not in bound:
            bound[expr] = ctx.fresh("k")
            ctx.emit(f"{bound[expr]} = {_as_scalar(expr, aval)}")
    return [bound.get(expr, expr) for expr in exprs]


@def_lowering(scan_p)
def _scan_lowering(ctx: Ctx, *operands: str, program: Program, num_consts: int,
                   num_carry: int, length: int, reverse: bool) -> None:
    consts, init, xs = _split3(operands, num_consts, num_carry)
    const_avals, carry_avals, _ = _split3(ctx.in_avals, num_consts, num_carry)
    consts = _bind_scalars(ctx, consts, const_avals)
    for name, value, aval in zip(ctx.outs, init, carry_avals):
        ctx.emit(f"{name} = {_as_scalar(value, aval)}")
    for name, aval in zip(ctx.outs[num_carry:], ctx.out_avals[num_carry:]):
        ctx.emit(f"{name} = np.empty({aval.shape!r}, {np_dtype(aval.dtype)})")
    if length > 0:
        _emit_loop(ctx, program, consts, xs, length, reverse, num_carry)
    _copy_passed_through(ctx, program, carry_avals, length)


def _emit_loop(ctx: Ctx, program: Program, consts: list[str], xs: Sequence[str],
               length: int, reverse: bool, num_carry: int) -> None:
    it = ctx.fresh("it")
    steps = f"range({length - 1}, -1, -1)" if reverse else f"range({length})"
    ctx.emit(f"for {it} in {steps}:")
    with ctx.indented():
        _emit_step(ctx, program, consts, xs, it, num_carry)


def _copy_passed_through(ctx: Ctx, program: Program, carry_avals: Sequence[ShapedArray],
                         length: int) -> None:
    """Copy array carries that may still be an operand (never hand out the caller's array)."""
    for k, (name, aval) in enumerate(zip(ctx.outs, carry_avals)):
        passed_through = length == 0 or any(program.outvars[k] is v for v in program.invars)
        if passed_through and aval.shape != ():
            ctx.emit(f"{name} = np.copy({name})")


def _emit_step(ctx: Ctx, program: Program, consts: list[str], xs: Sequence[str], it: str,
               num_carry: int) -> None:
    """One iteration: slice the xs, run the body, store the ys, rebind all carries at once."""
    rows = [ctx.fresh("x") for _ in xs]
    for row, x in zip(rows, xs):
        ctx.emit(f"{row} = {x}[{it}]")
    carry, ys = ctx.outs[:num_carry], ctx.outs[num_carry:]
    outs = ctx.lower_program(program, [*consts, *carry, *rows])
    avals = program.out_avals
    for name, y, aval in zip(ys, outs[num_carry:], avals[num_carry:]):
        ctx.emit(f"{name}[{it}] = {_as_scalar(y, aval)}")
    if carry:
        new = [_as_scalar(c, a) for c, a in zip(outs[:num_carry], avals)]
        ctx.emit(f"{', '.join(carry)} = {', '.join(new)}")
