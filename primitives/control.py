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

Batching (vmap) makes one scan over batched values: the body is batched once, with
the batch axis of every batched carry at 0; a batched xs keeps its batch axis unless
it is the scan axis 0, which moves it to 1 (its rows then have it at 0). Which
carries are batched is a fixed point: a carry whose initial value is the same for
every example becomes batched if a step mixes batched values into it.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from fxgrad.core.errors import FxTypeError
from fxgrad.core.ir import Program, ShapedArray, aval_of
from fxgrad.core.trace import Primitive, Tracer, new_trace, shape_rules, trace_to_program
from fxgrad.interpreters.batching import batch_program, batch_size, def_batch, move_axis
from fxgrad.interpreters.evaluation import def_impl, eval_program
from fxgrad.interpreters.jvp import (Zero, add_tangents, def_jvp, instantiate, is_zero,
                                     jvp_program, tangent_dtype)
from fxgrad.interpreters.taylor import (Series, def_jet, flatten_series, jet_program, moving,
                                        unflatten_series)
from fxgrad.interpreters.transpose import UndefinedPrimal, backward_pass, def_transpose
from fxgrad.jit.lowering import Ctx, def_lowering, np_dtype
from fxgrad.jit.scalarize import Elems, is_small_array, load, materialize

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
# The scan is one native loop. Small arrays (carries, consts, xs rows, ys rows; see
# fxgrad.jit.scalarize) are held as scalar locals, so a step on them allocates nothing;
# larger carries are rebound to the arrays the body returns.

def _as_scalar(expr: str, aval: ShapedArray) -> str:
    """A rank-0 value as a numba scalar of exactly its dtype, so a carry keeps one type
    across iterations (literals, float32 promoted by numba); arrays pass through."""
    return _exact(expr, aval.dtype) if aval.shape == () else expr


def _exact(expr: str, dtype: np.dtype) -> str:
    """`expr` cast to `dtype`, except float64, which numba's arithmetic keeps (each cast
    is a statement more for numba to compile, about a millisecond)."""
    return expr if dtype == np.float64 else f"{np_dtype(dtype)}({expr})"


def _hoist_const(ctx: Ctx, expr: str, aval: ShapedArray, bound: dict[str, Any]) -> Any:
    """A const read once before the loop: typed scalar, small array's elements, or array."""
    if expr not in bound:
        if aval.shape == ():
            bound[expr] = ctx.fresh("k")
            ctx.emit(f"{bound[expr]} = {_as_scalar(expr, aval)}")
        elif is_small_array(aval):
            bound[expr] = load(ctx.builder, expr, aval)
            bound[expr].invariant = True   # read before the loop: may be laid out there too
        else:
            bound[expr] = expr
    return bound[expr]


def _carry_init(ctx: Ctx, value: str, aval: ShapedArray) -> Any:
    if is_small_array(aval):
        elems = load(ctx.builder, value, aval)
        names = [ctx.fresh("c") for _ in elems.exprs]
        for n, e in zip(names, elems.exprs):
            ctx.emit(f"{n} = {_exact(e, aval.dtype)}")
        return Elems(aval, names)
    name = ctx.fresh("c")
    ctx.emit(f"{name} = {_as_scalar(value, aval)}")
    return name


def _flat_view(ctx: Ctx, name: str, aval: ShapedArray) -> str:
    """`name` (stacked, leading axis = steps) viewed as (steps, row size), made before the loop."""
    view = ctx.fresh("sv")
    ctx.emit(f"{view} = {name}.reshape({aval.shape[0]}, {int(np.prod(aval.shape[1:]))})")
    return view


@def_lowering(scan_p)
def _scan_lowering(ctx: Ctx, *operands: str, program: Program, num_consts: int,
                   num_carry: int, length: int, reverse: bool) -> None:
    consts, init, xs = _split3(operands, num_consts, num_carry)
    const_avals, carry_avals, xs_avals = _split3(ctx.in_avals, num_consts, num_carry)
    bound: dict[str, Any] = {}
    consts = [_hoist_const(ctx, c, a, bound) for c, a in zip(consts, const_avals)]
    carries = [_carry_init(ctx, v, a) for v, a in zip(init, carry_avals)]
    ys, ys_avals = ctx.outs[num_carry:], ctx.out_avals[num_carry:]
    for name, aval in zip(ys, ys_avals):
        ctx.emit(f"{name} = np.empty({aval.shape!r}, {np_dtype(aval.dtype)})")
    if length > 0:
        x_views = [_flat_view(ctx, x, a) if is_small_array(ShapedArray(a.shape[1:], a.dtype))
                   else None for x, a in zip(xs, xs_avals)]
        y_views = [_flat_view(ctx, y, a) if is_small_array(ShapedArray(a.shape[1:], a.dtype))
                   else None for y, a in zip(ys, ys_avals)]
        it = ctx.fresh("it")
        with ctx.builder.loop():
            ctx.emit(f"for {it} in {f'range({length - 1}, -1, -1)' if reverse else f'range({length})'}:")
            with ctx.indented():
                rows = [_row(ctx, x, v, a, it) for x, v, a in zip(xs, x_views, xs_avals)]
                outs = ctx.lower_program(program, [*consts, *carries, *rows], scalarize=True)
                _store_ys(ctx, ys, y_views, outs[num_carry:], program.out_avals[num_carry:], it)
                _update_carries(ctx, carries, outs[:num_carry], carry_avals)
    _finish_carries(ctx, program, carries, carry_avals, length)


def _row(ctx: Ctx, xs: str, view: str | None, aval: ShapedArray, it: str) -> Any:
    row_aval = ShapedArray(aval.shape[1:], aval.dtype)
    if view is None:
        row = ctx.fresh("x")
        ctx.emit(f"{row} = {xs}[{it}]")
        return row
    names = [ctx.fresh("x") for _ in range(row_aval.size)]
    for k, n in enumerate(names):
        ctx.emit(f"{n} = {view}[{it}, {k}]")
    return Elems(row_aval, names)


def _store_ys(ctx: Ctx, ys: Sequence[str], views: Sequence[str | None], values: Sequence[Any],
              avals: Sequence[ShapedArray], it: str) -> None:
    for name, view, value, aval in zip(ys, views, values, avals):
        if isinstance(value, Elems) and view is not None:
            for k, e in enumerate(value.exprs):
                ctx.emit(f"{view}[{it}, {k}] = {e}")
        else:
            value = materialize(ctx.builder, value) if isinstance(value, Elems) else value
            ctx.emit(f"{name}[{it}] = {_as_scalar(value, aval)}")


def _update_carries(ctx: Ctx, carries: Sequence[Any], outs: Sequence[Any],
                    avals: Sequence[ShapedArray]) -> None:
    """Rebind every carry at once (a tuple assignment), so bodies may swap carries."""
    targets, values = [], []
    for carry, out, aval in zip(carries, outs, avals):
        if isinstance(carry, Elems):
            new = out if isinstance(out, Elems) else load(ctx.builder, out, aval)
            targets += carry.exprs
            values += [_exact(e, aval.dtype) for e in new.exprs]
        else:
            out = materialize(ctx.builder, out) if isinstance(out, Elems) else out
            targets.append(carry)
            values.append(_as_scalar(out, aval))
    if targets:
        ctx.emit(f"{', '.join(targets)} = {', '.join(values)}")


def _finish_carries(ctx: Ctx, program: Program, carries: Sequence[Any],
                    avals: Sequence[ShapedArray], length: int) -> None:
    """Final carries into the outputs; never hand out an operand's own array."""
    for k, (name, carry, aval) in enumerate(zip(ctx.outs, carries, avals)):
        if isinstance(carry, Elems):
            ctx.emit(f"{name} = {materialize(ctx.builder, Elems(aval, list(carry.exprs)))}")
            continue
        passed_through = length == 0 or any(program.outvars[k] is v for v in program.invars)
        copy = passed_through and aval.shape != ()
        ctx.emit(f"{name} = {'np.copy(' + carry + ')' if copy else carry}")


# ---------------------------------------------------------------- batching

class _BatchedBody:
    """The body batched for given batch dims of its inputs, traced into a program.

    Inputs are the consts (batch dims as they come), the carries (batched at 0 where
    `carry_batched`) and the xs rows (`row_dims`). Outputs are the carries, batched at
    0 where `carry_batched`, then the ys, batched at 0 where `y_batched`.
    `carry_out_batched` says which carries a step returns batched.
    """

    def __init__(self, body: Program, in_avals: list[ShapedArray], in_dims: list[int | None],
                 carry_batched: list[bool], size: int):
        self.body, self.in_dims, self.size = body, in_dims, size
        self.carry_batched = carry_batched
        self.carry_out_batched: list[bool] = []
        self.y_batched: list[bool] = []
        self.program, self.captured = trace_body(self._run, in_avals)

    def _run(self, *args: Tracer) -> list[Any]:
        outs, dims = batch_program(self.body, args, self.in_dims)
        num_carry = len(self.carry_batched)
        self.carry_out_batched = [d is not None for d in dims[:num_carry]]
        self.y_batched = [d is not None for d in dims[num_carry:]]
        carry = [move_axis(c, d, 0, self.size) if batched else c for c, d, batched
                 in zip(outs, dims, self.carry_batched)]
        ys = [y if d is None else move_axis(y, d, 0, self.size)
              for y, d in zip(outs[num_carry:], dims[num_carry:])]
        return [*carry, *ys]


def _batched_xs(xs: Sequence[Any], dims: Sequence[int | None],
                size: int) -> tuple[list[Any], list[int | None]]:
    """xs with no batch axis on the scan axis 0, and the batch dims of their rows."""
    moved = [move_axis(x, 0, 1, size) if d == 0 else x for x, d in zip(xs, dims)]
    return moved, [None if d is None else max(d - 1, 0) for d in dims]


def _batch_body(program: Program, consts: list[Any], c_dims: list[int | None],
                init: list[Any], h_dims: list[int | None], rows: list[ShapedArray],
                row_dims: list[int | None], size: int) -> tuple[_BatchedBody, list[Any]]:
    """The batched body and initial carries, the batched carries grown to a fixed point."""
    carry_batched = [d is not None for d in h_dims]
    while True:
        init_moved = [move_axis(h, d, 0, size) if batched else h
                      for h, d, batched in zip(init, h_dims, carry_batched)]
        in_avals = [*map(aval_of, consts), *map(aval_of, init_moved), *rows]
        in_dims = [*c_dims, *(0 if b else None for b in carry_batched), *row_dims]
        body = _BatchedBody(program, in_avals, in_dims, carry_batched, size)
        grown = [b or out for b, out in zip(carry_batched, body.carry_out_batched)]
        if grown == carry_batched:
            return body, init_moved
        carry_batched = grown


@def_batch(scan_p)
def _scan_batch(args: Sequence[Any], dims: Sequence[int | None], *, program: Program,
                num_consts: int, num_carry: int, length: int,
                reverse: bool) -> tuple[list[Any], list[int | None]]:
    size = batch_size(args, dims)
    consts, init, xs = _split3(args, num_consts, num_carry)
    c_dims, h_dims, x_dims = _split3(dims, num_consts, num_carry)
    xs, row_dims = _batched_xs(xs, x_dims, size)
    rows = [_slice_aval(aval_of(x)) for x in xs]
    body, init = _batch_body(program, consts, c_dims, init, h_dims, rows, row_dims, size)
    outs = scan_bind([*body.captured, *consts], init, xs, body.program, length, reverse)
    return outs, [*(0 if b else None for b in body.carry_batched),
                  *(1 if b else None for b in body.y_batched)]


# ---------------------------------------------------------------- Taylor (jet)

class _JetBody:
    """The scan body mapped to its Taylor-mode body: each group of inputs (consts,
    carry, xs) is followed by the flat series of its moving members, and so are the
    outputs (carry, ys); `carry_out` and `y_out` record which outputs move."""

    def __init__(self, body: Program, num_consts: int, num_carry: int,
                 flags: list[bool], order: int):
        self.body, self.num_consts, self.num_carry = body, num_consts, num_carry
        self.moving, self.order = flags, order
        self.carry_out: list[bool] = []
        self.y_out: list[bool] = []
        in_avals: list[ShapedArray] = []
        for avals, group_flags in zip(*(_split3(x, num_consts, num_carry)
                                        for x in (body.in_avals, flags))):
            in_avals += avals
            in_avals += [_tangent_aval(a) for a in _pick(avals, group_flags) for _ in range(order)]
        self.program, self.captured = trace_body(self._run, in_avals)

    def _run(self, *args: Tracer) -> list[Any]:
        primals, series, rest = [], [], list(args)
        for flags in _split3(self.moving, self.num_consts, self.num_carry):
            values, count = rest[:len(flags)], sum(flags) * self.order
            primals += values
            series += unflatten_series(values, rest[len(flags):len(flags) + count], flags,
                                       self.order)
            rest = rest[len(flags) + count:]
        outs, out_series = jet_program(self.body, primals, series)
        out_moving = moving(outs, out_series)
        self.carry_out, self.y_out = out_moving[:self.num_carry], out_moving[self.num_carry:]
        carry_keep = self.moving[self.num_consts:self.num_consts + self.num_carry]
        h = self.num_carry
        return [*outs[:h], *flatten_series(out_series[:h], carry_keep),
                *outs[h:], *flatten_series(out_series[h:], self.y_out)]


@def_jet(scan_p)
def _scan_jet(primals: Sequence[Any], series: Sequence[Series], *, program: Program,
              num_consts: int, num_carry: int, length: int, reverse: bool) -> Any:
    order = len(series[0])
    flags = moving(primals, series)
    while True:   # grow the moving carries to a fixed point, as the JVP rule does
        body = _JetBody(program, num_consts, num_carry, flags, order)
        carry_in = flags[num_consts:num_consts + num_carry]
        grown = [i or o for i, o in zip(carry_in, body.carry_out)]
        if grown == carry_in:
            break
        flags = [*flags[:num_consts], *grown, *flags[num_consts + num_carry:]]
    groups = [_split3(x, num_consts, num_carry) for x in (primals, series, flags)]
    consts, init, xs = ([*p, *flatten_series(s, m)] for p, s, m in zip(*groups))
    outs = scan_bind([*body.captured, *consts], init, xs, body.program, length, reverse)
    h, carry_in = num_carry, flags[num_consts:num_consts + num_carry]
    carry, rest = outs[:h], outs[h:]
    carry_series = unflatten_series(carry, rest[:sum(carry_in) * order], carry_in, order)
    rest = rest[sum(carry_in) * order:]
    num_ys = len(program.outvars) - h
    ys, y_terms = rest[:num_ys], rest[num_ys:]
    y_series = unflatten_series(ys, y_terms, body.y_out, order)
    return [*carry, *ys], [*carry_series, *y_series]
