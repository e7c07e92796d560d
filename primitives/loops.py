"""Loops with a data-dependent trip count: the `while` primitive and its rules.

`while` runs `carry = body(body_consts, carry)` as long as `cond(cond_consts, carry)`
is true. Its operands are `cond consts + body consts + initial carry`; the cond and
body are closed `Program` params (values the user's functions captured were hoisted
into the consts when they were traced), as for `scan`.

Forward mode is one `while` over the primal and tangent carries jointly: its body
is the JVP of the original body, so a tangent is pushed through each step as the
step runs. When the tangents are traced in a newer trace than the primals
(linearize, the tangent half of a scan's JVP), the joint loop is recorded there and
the primal outputs come from a second, primal-only loop. Which carries need a
tangent is a fixed point, as for scan: a carry whose tangent starts as a symbolic
zero gets one if a step mixes a tangent into it.
Reverse mode is not supported: the number of steps is unknown until the loop has
run, so there is no static program to run backwards (`fori_loop` with static bounds
is a scan instead, which is reverse-differentiable).

Taylor mode (jet) is, like forward mode, one `while` over the carries and their series.

Batching (vmap) batches the body and cond once. While the predicate is the same for
every example, the loop is unchanged; when it is batched, the loop runs while any
example's predicate holds and a `select` keeps finished examples' carries fixed.
Under jit the loop is a native `while` inside the kernel, its carries locals as in
scan's loop.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from fxgrad.core.errors import FxTypeError, at_user_line
from fxgrad.core.ir import Program, ShapedArray, Var, aval_of
from fxgrad.core.trace import Primitive, Tracer, shape_rules
from fxgrad.interpreters.batching import batch_program, batch_size, def_batch, move_axis
from fxgrad.interpreters.evaluation import def_impl, eval_program
from fxgrad.interpreters.jvp import Zero, def_jvp, instantiate, jvp_program
from fxgrad.interpreters.taylor import (def_jet, flatten_series, jet_program, moving,
                                        unflatten_series)
from fxgrad.interpreters.transpose import def_transpose
from fxgrad.jit.lowering import Ctx, def_lowering
from fxgrad.jit.scalarize import Elems, materialize
from fxgrad.primitives.control import (_carry_init, _cut, _finish_carries, _has_tangent,
                                       _hoist_const, _merge, _pick, _split3, _tangent_aval,
                                       _update_carries, trace_body)

while_p = Primitive("while", multiple_results=True)

REVERSE_MODE_MESSAGE = (
    "reverse-mode differentiation of while_loop is not supported (the number of "
    "iterations is not known in advance); use fx.scan, or fx.fori_loop with static bounds")


def while_bind(cond_consts: Sequence[Any], body_consts: Sequence[Any], init: Sequence[Any],
               cond_program: Program, body_program: Program) -> list[Any]:
    """Bind `while_p` on flat operands; returns the final carry."""
    return while_p.bind(*cond_consts, *body_consts, *init, cond_program=cond_program,
                        body_program=body_program, cond_nconsts=len(cond_consts),
                        body_nconsts=len(body_consts))


# ---------------------------------------------------------------- impl and shape rule

@def_impl(while_p)
def _while_impl(*operands: np.ndarray, cond_program: Program, body_program: Program,
                cond_nconsts: int, body_nconsts: int) -> list[np.ndarray]:
    cond_consts, body_consts, carry = _split3(operands, cond_nconsts, body_nconsts)
    while bool(eval_program(cond_program, [*cond_consts, *carry])[0]):
        carry = eval_program(body_program, [*body_consts, *carry])
    return list(carry)


_BOOL_SCALAR = ShapedArray((), np.bool_)


def _while_shape(*avals: ShapedArray, cond_program: Program, body_program: Program,
                 cond_nconsts: int, body_nconsts: int) -> list[ShapedArray]:
    cond_consts, body_consts, carry = _split3(avals, cond_nconsts, body_nconsts)
    if [*cond_consts, *carry] != cond_program.in_avals:
        raise FxTypeError(f"while: cond operands {[*cond_consts, *carry]} do not match the "
                          f"cond program's inputs {cond_program.in_avals}")
    if cond_program.out_avals != [_BOOL_SCALAR]:
        raise FxTypeError(f"while: the cond program must return one bool scalar, got "
                          f"{cond_program.out_avals}")
    if [*body_consts, *carry] != body_program.in_avals:
        raise FxTypeError(f"while: body operands {[*body_consts, *carry]} do not match the "
                          f"body program's inputs {body_program.in_avals}")
    if body_program.out_avals != list(carry):
        raise FxTypeError(f"while: the body returns {body_program.out_avals}, but the carry "
                          f"is {list(carry)}; it must keep its shapes and dtypes")
    return list(carry)


shape_rules[while_p] = _while_shape


# ---------------------------------------------------------------- JVP

class _JvpBody:
    """The body's JVP traced into a program over
    (body consts, their non-zero tangents, carry, non-zero carry tangents) ->
    (carry, tangents of the carries flagged in `carry_nonzero`)."""

    def __init__(self, body: Program, num_consts: int, const_nonzero: list[bool],
                 carry_nonzero: list[bool]):
        self.body, self.num_consts = body, num_consts
        self.const_nonzero, self.carry_nonzero = const_nonzero, carry_nonzero
        self.out_nonzero: list[bool] = []
        c_avals, h_avals = _cut(body.in_avals, [num_consts, len(body.in_avals)])
        in_avals = [*c_avals, *map(_tangent_aval, _pick(c_avals, const_nonzero)),
                    *h_avals, *map(_tangent_aval, _pick(h_avals, carry_nonzero))]
        self.program, self.captured = trace_body(self._run, in_avals)

    def _run(self, *args: Tracer) -> list[Any]:
        num_carry = len(self.carry_nonzero)
        consts, c_dot, carry, h_dot = _cut(args, [self.num_consts, sum(self.const_nonzero),
                                                  num_carry, sum(self.carry_nonzero)])
        tangents = [*_with_zeros(self.const_nonzero, c_dot, consts),
                    *_with_zeros(self.carry_nonzero, h_dot, carry)]
        outs, t_outs = jvp_program(self.body, [*consts, *carry], tangents)
        self.out_nonzero = [_has_tangent(t, v.aval) for t, v in zip(t_outs, self.body.outvars)]
        return [*outs, *map(instantiate, _pick(t_outs, self.carry_nonzero))]


def _with_zeros(nonzero: Sequence[bool], tangents: Sequence[Any],
                primals: Sequence[Any]) -> list[Any]:
    zeros = [Zero(aval_of(x)) for x, nz in zip(primals, nonzero) if not nz]
    return _merge(nonzero, tangents, zeros)


def _jvp_body(body: Program, num_consts: int, const_nonzero: list[bool],
              carry_nonzero: list[bool]) -> _JvpBody:
    """The body's JVP with the set of carries with a tangent grown to a fixed point."""
    while True:
        jvp_body = _JvpBody(body, num_consts, const_nonzero, carry_nonzero)
        grown = [i or o for i, o in zip(carry_nonzero, jvp_body.out_nonzero)]
        if grown == carry_nonzero:
            return jvp_body
        carry_nonzero = grown


def _with_unused_inputs(program: Program, avals: Sequence[ShapedArray]) -> Program:
    """`program` taking extra trailing inputs it ignores."""
    return Program([*program.invars, *(Var(a) for a in avals)], program.eqns, program.outvars)


def _newest_level(values: Sequence[Any]) -> int:
    return max((x._trace.level for x in values if isinstance(x, Tracer)), default=-1)


@def_jvp(while_p)
def _while_jvp(primals: Sequence[Any], tangents: Sequence[Any], **params: Any) -> Any:
    cond_nconsts, body_nconsts = params["cond_nconsts"], params["body_nconsts"]
    cond_consts, body_consts, init = _split3(primals, cond_nconsts, body_nconsts)
    _, c_dot, h_dot = _split3(tangents, cond_nconsts, body_nconsts)
    const_nonzero = [_has_tangent(t, aval_of(x)) for x, t in zip(body_consts, c_dot)]
    carry_nonzero = [_has_tangent(t, aval_of(x)) for x, t in zip(init, h_dot)]
    jvp_body = _jvp_body(params["body_program"], body_nconsts, const_nonzero, carry_nonzero)
    carry_nonzero = jvp_body.carry_nonzero
    if not any(carry_nonzero):
        outs = while_p.bind(*primals, **params)
        return outs, [Zero(aval_of(o)) for o in outs]
    t_init = [instantiate(t) for t in _pick(h_dot, carry_nonzero)]
    cond = _with_unused_inputs(params["cond_program"], [aval_of(t) for t in t_init])
    outs = while_bind(cond_consts, [*jvp_body.captured, *body_consts, *_pick(c_dot, const_nonzero)],
                      [*init, *t_init], cond, jvp_body.program)
    primal_outs, t_outs = outs[:len(init)], outs[len(init):]
    if _newest_level(tangents) > _newest_level(primals):
        # the joint loop lives in the tangents' trace (linearize, a scan's tangent body):
        # primal outputs recorded there could not be used by the primals' own trace
        primal_outs = while_p.bind(*primals, **params)
    zeros = [Zero(aval_of(o)) for o, nz in zip(primal_outs, carry_nonzero) if not nz]
    return primal_outs, _merge(carry_nonzero, t_outs, zeros)


@def_transpose(while_p)
def _while_transpose(cts: Sequence[Any], *operands: Any, **params: Any) -> list[Any]:
    # Linearize records the joint (primal, tangent) loop in the linear program; it is
    # linear in the tangents but cannot be run backwards without the trip count.
    raise FxTypeError(at_user_line(REVERSE_MODE_MESSAGE))


# ---------------------------------------------------------------- batching

class _BatchedProgram:
    """`program` batched for given input batch dims, traced into a program.

    Outputs come back with their batch axis at 0 where batched; those flagged in
    `force` are batched (broadcast) even when the program leaves them unbatched.
    `out_batched` says which outputs the program itself makes batched.
    """

    def __init__(self, program: Program, in_avals: list[ShapedArray],
                 in_dims: list[int | None], force: list[bool], size: int):
        self.source, self.in_dims, self.force, self.size = program, in_dims, force, size
        self.out_batched: list[bool] = []
        self.program, self.captured = trace_body(self._run, in_avals)

    def _run(self, *args: Tracer) -> list[Any]:
        outs, dims = batch_program(self.source, args, self.in_dims)
        self.out_batched = [d is not None for d in dims]
        return [move_axis(o, d, 0, self.size) if d is not None or f else o
                for o, d, f in zip(outs, dims, self.force)]


class _BatchedLoop:
    """The cond and body batched, the batched carries grown to a fixed point: a carry
    is batched if it starts batched, a step makes it batched, or the predicate is."""

    def __init__(self, params: dict, args: Sequence[Any], dims: Sequence[int | None]):
        self.size = batch_size(args, dims)
        self.cond_consts, self.body_consts, init = _split3(args, params["cond_nconsts"],
                                                           params["body_nconsts"])
        self.cond_dims, self.body_dims, h_dims = _split3(dims, params["cond_nconsts"],
                                                         params["body_nconsts"])
        self.carry_batched = [d is not None for d in h_dims]
        while True:
            self.init = [move_axis(h, d, 0, self.size) if b else h
                         for h, d, b in zip(init, h_dims, self.carry_batched)]
            self._batch(params["cond_program"], params["body_program"])
            grown = [b or o or self.pred_batched
                     for b, o in zip(self.carry_batched, self.body.out_batched)]
            if grown == self.carry_batched:
                return
            self.carry_batched = grown

    def _batch(self, cond_program: Program, body_program: Program) -> None:
        carry_avals = [aval_of(h) for h in self.init]
        carry_dims = [0 if b else None for b in self.carry_batched]
        self.cond = _BatchedProgram(cond_program, [*map(aval_of, self.cond_consts), *carry_avals],
                                    [*self.cond_dims, *carry_dims], [False], self.size)
        self.body = _BatchedProgram(body_program, [*map(aval_of, self.body_consts), *carry_avals],
                                    [*self.body_dims, *carry_dims], self.carry_batched, self.size)
        self.pred_batched = self.cond.out_batched[0]

    @property
    def cond_operands(self) -> list[Any]:
        return [*self.cond.captured, *self.cond_consts]

    @property
    def body_operands(self) -> list[Any]:
        return [*self.body.captured, *self.body_consts]


def _any_example(loop: _BatchedLoop) -> tuple[Program, list[Any]]:
    """A cond true while the batched predicate holds for some example."""
    from fxgrad.primitives.reduce import reduce_max

    def cond(*args: Tracer) -> list[Any]:
        return [reduce_max(eval_program(loop.cond.program, args)[0], (0,))]

    return trace_body(cond, [aval_of(x) for x in [*loop.cond_operands, *loop.init]])


def _masked_body(loop: _BatchedLoop) -> tuple[Program, list[Any]]:
    """A body updating only the examples whose predicate holds (others keep their carry)."""
    from fxgrad.primitives.logic import select
    from fxgrad.primitives.shape import broadcast_in_dim
    num_cond, num_body = len(loop.cond_operands), len(loop.body_operands)

    def body(*args: Tracer) -> list[Any]:
        cond_consts, body_consts, carry = _split3(args, num_cond, num_body)
        pred = eval_program(loop.cond.program, [*cond_consts, *carry])[0]
        new = eval_program(loop.body.program, [*body_consts, *carry])
        return [select(broadcast_in_dim(pred, aval_of(h).shape, (0,)), n, h)
                for n, h in zip(new, carry)]

    operands = [*loop.cond_operands, *loop.body_operands, *loop.init]
    return trace_body(body, [aval_of(x) for x in operands])


@def_batch(while_p)
def _while_batch(args: Sequence[Any], dims: Sequence[int | None],
                 **params: Any) -> tuple[list[Any], list[int | None]]:
    loop = _BatchedLoop(params, args, dims)
    out_dims = [0 if b else None for b in loop.carry_batched]
    if not loop.pred_batched:
        outs = while_bind(loop.cond_operands, loop.body_operands, loop.init,
                          loop.cond.program, loop.body.program)
        return outs, out_dims
    cond, cond_captured = _any_example(loop)
    body, body_captured = _masked_body(loop)
    outs = while_bind([*cond_captured, *loop.cond_operands],
                      [*body_captured, *loop.cond_operands, *loop.body_operands],
                      loop.init, cond, body)
    return outs, out_dims


# ---------------------------------------------------------------- numba lowering
# `while True:` evaluating the cond first, so the cond is lowered once and the values
# it computes from the carry can be reused by the body of the same iteration.

def _fresh_elems(values: Sequence[Any]) -> list[Any]:
    """Carries as new `Elems` objects, so no array materialised for an older iteration
    (cached by object) is reused after the carries were rebound."""
    return [Elems(v.aval, list(v.exprs)) if isinstance(v, Elems) else v for v in values]


def _as_bool(ctx: Ctx, value: Any) -> str:
    return materialize(ctx.builder, value) if isinstance(value, Elems) else value


@def_lowering(while_p)
def _while_lowering(ctx: Ctx, *operands: str, cond_program: Program, body_program: Program,
                    cond_nconsts: int, body_nconsts: int) -> None:
    cond_consts, body_consts, init = _split3(operands, cond_nconsts, body_nconsts)
    c_avals, b_avals, carry_avals = _split3(ctx.in_avals, cond_nconsts, body_nconsts)
    bound: dict[str, Any] = {}
    cond_consts = [_hoist_const(ctx, c, a, bound) for c, a in zip(cond_consts, c_avals)]
    body_consts = [_hoist_const(ctx, c, a, bound) for c, a in zip(body_consts, b_avals)]
    carries = [_carry_init(ctx, v, a) for v, a in zip(init, carry_avals)]
    builder = ctx.builder
    saved = dict(builder.loaded), dict(builder.materialized)
    ctx.emit("while True:")
    with ctx.indented():
        pred = ctx.lower_program(cond_program, [*cond_consts, *_fresh_elems(carries)],
                                 scalarize=True)[0]
        ctx.emit(f"if not {_as_bool(ctx, pred)}:")
        with ctx.indented():
            ctx.emit("break")
        outs = ctx.lower_program(body_program, [*body_consts, *_fresh_elems(carries)],
                                 scalarize=True)
        _update_carries(ctx, carries, outs, carry_avals)
    # values loaded or materialised inside the loop are not defined after it
    builder.loaded, builder.materialized = saved
    _finish_carries(ctx, body_program, carries, carry_avals, length=0)


# ---------------------------------------------------------------- Taylor (jet)

class _JetBody:
    """The body's Taylor-mode version over (body consts, flat series of the moving ones,
    carry, flat series of the moving carries) -> (carry, series of the moving carries)."""

    def __init__(self, body: Program, num_consts: int, flags: list[bool], order: int):
        self.body, self.num_consts, self.moving, self.order = body, num_consts, flags, order
        self.out_moving: list[bool] = []
        c_avals, h_avals = _cut(body.in_avals, [num_consts, len(body.in_avals)])
        c_moving, h_moving = flags[:num_consts], flags[num_consts:]
        series_avals = lambda avals, flags: [_tangent_aval(a) for a in _pick(avals, flags)  # noqa: E731
                                             for _ in range(order)]
        in_avals = [*c_avals, *series_avals(c_avals, c_moving),
                    *h_avals, *series_avals(h_avals, h_moving)]
        self.program, self.captured = trace_body(self._run, in_avals)

    def _run(self, *args: Tracer) -> list[Any]:
        n, k = self.num_consts, self.order
        c_moving, h_moving = self.moving[:n], self.moving[n:]
        consts, c_terms, carry, h_terms = _cut(args, [n, sum(c_moving) * k, len(h_moving),
                                                      sum(h_moving) * k])
        series = [*unflatten_series(consts, c_terms, c_moving, k),
                  *unflatten_series(carry, h_terms, h_moving, k)]
        outs, out_series = jet_program(self.body, [*consts, *carry], series)
        self.out_moving = moving(outs, out_series)
        return [*outs, *flatten_series(out_series, h_moving)]


@def_jet(while_p)
def _while_jet(primals: Sequence[Any], series: Sequence[Any], **params: Any) -> Any:
    order = len(series[0])
    cond_nconsts, body_nconsts = params["cond_nconsts"], params["body_nconsts"]
    cond_consts, body_consts, init = _split3(primals, cond_nconsts, body_nconsts)
    _, c_series, h_series = _split3(series, cond_nconsts, body_nconsts)
    flags = moving([*body_consts, *init], [*c_series, *h_series])
    while True:   # grow the moving carries to a fixed point, as the JVP rule does
        body = _JetBody(params["body_program"], body_nconsts, flags, order)
        grown = [i or o for i, o in zip(flags[body_nconsts:], body.out_moving)]
        if grown == flags[body_nconsts:]:
            break
        flags = [*flags[:body_nconsts], *grown]
    c_moving, h_moving = flags[:body_nconsts], flags[body_nconsts:]
    h_terms = flatten_series(h_series, h_moving)
    cond = _with_unused_inputs(params["cond_program"], [aval_of(t) for t in h_terms])
    outs = while_bind(cond_consts,
                      [*body.captured, *body_consts, *flatten_series(c_series, c_moving)],
                      [*init, *h_terms], cond, body.program)
    return outs[:len(init)], unflatten_series(outs[:len(init)], outs[len(init):], h_moving, order)
