"""Custom derivatives and checkpointing: higher-order primitives over closed programs.

Programs hold no callables, so the user's functions are traced into `Program` params
(values they close over are hoisted into leading operands, as for scan bodies). A
custom rule may call the function it belongs to, so rules are `LazyProgram`s: traced
on first use, not at every call.

* `custom_jvp_call(consts, xs; fun, jvp)` runs `fun`; its JVP rule evaluates the
  user's `jvp` program `(primals, tangents) -> (outs, out tangents)`. Reverse mode
  linearizes that rule, so its tangent outputs must be linear in the tangents.
* `custom_vjp_call(consts, xs; fun, fwd, bwd)` runs `fun`; its JVP rule runs `fwd` to
  get the outputs and residuals and emits the tangents as the linear primitive
  `custom_vjp_lin(bwd consts, residuals, tangents; bwd)`, whose transpose is the
  user's `bwd`. Forward mode cannot evaluate it: it raises a clear error.
* `remat_call(xs; program)` runs `program`; its JVP rule emits the tangents as the
  linear primitive `remat_lin(primals, tangents; program)`, which stores only the
  primal inputs. Its transpose re-linearizes `program` at them (recomputing the
  intermediates in the backward pass) and transposes that.

Batching traces batched copies of the programs (every output batched at axis 0);
jit lowers the primal program inline.
"""
from __future__ import annotations

import functools
import threading
from typing import Any, Callable, Sequence

from fxgrad.core.errors import FxTypeError, at_user_line
from fxgrad.core.ir import Program, ShapedArray, aval_of
from fxgrad.core.trace import Primitive, shape_rules, trace_to_program
from fxgrad.interpreters.batching import batch_program, batch_size, def_batch, move_axis
from fxgrad.interpreters.evaluation import def_impl, eval_program
from fxgrad.interpreters.taylor import def_jet, jet_program
from fxgrad.interpreters.jvp import Zero, def_jvp, instantiate, is_zero, jvp_program, tangent_dtype
from fxgrad.interpreters.transpose import def_transpose
from fxgrad.jit.lowering import Ctx, def_lowering

custom_jvp_call_p = Primitive("custom_jvp_call", multiple_results=True)
custom_vjp_call_p = Primitive("custom_vjp_call", multiple_results=True)
custom_vjp_lin_p = Primitive("custom_vjp_lin", multiple_results=True)
remat_call_p = Primitive("remat_call", multiple_results=True)
remat_lin_p = Primitive("remat_lin", multiple_results=True)

FORWARD_MODE_ERROR = ("can't apply forward-mode (jvp) to a custom_vjp function; use "
                      "custom_jvp, or reverse mode (grad, vjp, jacrev) instead")


def trace_closed(fun: Callable[..., Sequence[Any]], in_avals: Sequence[ShapedArray],
                 in_values: Sequence[Any] | None = None) -> tuple[Program, list[Any]]:
    """Trace `fun` into a program whose captured values are its leading inputs.

    Returns the program and the captured values (to pass as leading operands).
    With `in_values` (None entries allowed), Python control flow on those works.
    """
    program, captured = trace_to_program(fun, in_avals, in_values)
    return Program(program.invars, program.eqns, program.outvars), captured


def tangent_aval(aval: ShapedArray) -> ShapedArray:
    return ShapedArray(aval.shape, tangent_dtype(aval.dtype))


def _cut(seq: Sequence[Any], *sizes: int) -> list[list[Any]]:
    """`seq` cut into pieces of the given sizes, then the rest."""
    parts, start = [], 0
    for n in sizes:
        parts.append(list(seq[start:start + n]))
        start += n
    return [*parts, list(seq[start:])]


def _pick(items: Sequence[Any], flags: Sequence[bool]) -> list[Any]:
    return [x for x, keep in zip(items, flags) if keep]


def _check_inputs(name: str, avals: Sequence[ShapedArray], program: Program, what: str) -> None:
    if list(avals) != program.in_avals:
        raise FxTypeError(f"{name}: operands {list(avals)} do not match the inputs "
                          f"{program.in_avals} of its {what} program")


def _closed_over_error(kind: str) -> FxTypeError:
    return FxTypeError(at_user_line(
        f"{kind}: differentiating with respect to a value the function closes over; the "
        f"custom rule only gives derivatives with respect to the explicit arguments. Pass "
        f"that value as an argument of the {kind} function instead."))


def _has_tangent(x: Any, t: Any) -> bool:
    """Whether a tangent must be carried: non-zero, of a floating-point value."""
    return not is_zero(t) and aval_of(x).dtype.kind in "fc"


def _lower_inline(ctx: Ctx, program: Program, names: Sequence[str]) -> None:
    """Emit `program` inline; outputs that are inputs are copied (never hand one out)."""
    outs = ctx.lower_program(program, names)
    for name, out, v in zip(ctx.outs, outs, program.outvars):
        passed_through = any(v is u for u in program.invars) and v.aval.shape != ()
        ctx.emit(f"{name} = {'np.copy(' + out + ')' if passed_through else out}")


# ---------------------------------------------------------------- batching helpers

def _place(x: Any, dim: int | None, target: int | None, size: int) -> Any:
    """`x` with its batch axis at `target`; target None sums over the batch axis (the
    cotangent of a value shared by every example)."""
    from fxgrad.primitives.reduce import reduce_sum
    if target is None:
        return x if dim is None else reduce_sum(x, (dim,))
    return move_axis(x, dim, target, size)


def batch_traced(program: Program, in_avals: Sequence[ShapedArray],
                 in_dims: Sequence[int | None], size: int,
                 out_dims: Sequence[int | None] | None = None) -> tuple[Program, list[Any]]:
    """`program` batched for `in_dims`, traced into a program (see `trace_closed`).
    Outputs go to `out_dims` (default: all at axis 0; None entries are summed)."""
    targets = list(out_dims) if out_dims is not None else [0] * len(program.outvars)

    def run(*args: Any) -> list[Any]:
        outs, dims = batch_program(program, args, in_dims)
        return [_place(o, d, t, size) for o, d, t in zip(outs, dims, targets)]

    return trace_closed(run, in_avals)


def _batched_avals(values: Sequence[Any]) -> list[ShapedArray]:
    return [aval_of(v) for v in values]


# ---------------------------------------------------------------- lazy rule programs

class LazyProgram:
    """A rule's program, traced on first use by `make() -> (program, captured)`.

    A rule may call the very function it belongs to (a JVP rule computing the primal
    output with it), so tracing rules eagerly, at each call, would never end. The
    program's first inputs take the captured values.
    """

    def __init__(self, name: str, make: Callable[[], tuple[Program, list[Any]]]):
        self.name = name
        self._make: Callable[[], tuple[Program, list[Any]]] | None = make
        self._traced: tuple[Program, list[Any]] | None = None
        self._lock = threading.RLock()   # threads tracing one rule wait for the first

    def get(self) -> tuple[Program, list[Any]]:
        if self._traced is None:
            with self._lock:
                if self._traced is None:
                    assert self._make is not None
                    self._traced, self._make = self._make(), None
        return self._traced

    def run(self, args: Sequence[Any]) -> list[Any]:
        program, captured = self.get()
        return eval_program(program, [*captured, *args])

    def batched(self, in_avals: Sequence[ShapedArray], in_dims: Sequence[int | None],
                size: int, out_dims: Sequence[int | None] | None = None) -> "LazyProgram":
        """This program batched for `in_dims` (of its non-captured inputs), also lazy."""
        def make() -> tuple[Program, list[Any]]:
            program, captured = self.get()
            new, new_captured = batch_traced(program, [*map(aval_of, captured), *in_avals],
                                             [*[None] * len(captured), *in_dims], size, out_dims)
            return new, [*new_captured, *captured]
        return LazyProgram(f"batched {self.name}", make)

    def __repr__(self) -> str:
        return f"<{self.name}{'' if self._traced else ' (not traced yet)'}>"


# ---------------------------------------------------------------- custom_jvp_call

def custom_jvp_bind(fun_consts: Sequence[Any], xs: Sequence[Any], fun: Program,
                    jvp: LazyProgram) -> list[Any]:
    return custom_jvp_call_p.bind(*fun_consts, *xs, fun=fun, jvp=jvp,
                                  num_consts=len(fun_consts))


@def_impl(custom_jvp_call_p)
def _custom_jvp_impl(*operands: Any, fun: Program, jvp: LazyProgram,
                     num_consts: int) -> list[Any]:
    return eval_program(fun, operands)


def _custom_jvp_shape(*avals: ShapedArray, fun: Program, jvp: LazyProgram,
                      num_consts: int) -> list[ShapedArray]:
    _check_inputs("custom_jvp_call", avals, fun, "fun")
    return fun.out_avals


shape_rules[custom_jvp_call_p] = _custom_jvp_shape


@def_jvp(custom_jvp_call_p)
def _custom_jvp_jvp(primals: Sequence[Any], tangents: Sequence[Any], *, fun: Program,
                    jvp: LazyProgram, num_consts: int) -> Any:
    if not all(is_zero(t) for t in tangents[:num_consts]):
        raise _closed_over_error("custom_jvp")
    x_dots = [instantiate(t) for t in tangents[num_consts:]]
    outs = jvp.run([*primals[num_consts:], *x_dots])
    return outs[:len(fun.outvars)], outs[len(fun.outvars):]


@def_batch(custom_jvp_call_p)
def _custom_jvp_batch(args: Sequence[Any], dims: Sequence[int | None], *, fun: Program,
                      jvp: LazyProgram, num_consts: int) -> Any:
    size = batch_size(args, dims)
    x_avals, x_dims = _batched_avals(args[num_consts:]), list(dims[num_consts:])
    new_fun, captured = batch_traced(fun, _batched_avals(args), dims, size)
    new_jvp = jvp.batched([*x_avals, *map(tangent_aval, x_avals)], [*x_dims, *x_dims], size)
    outs = custom_jvp_bind([*captured, *args[:num_consts]], args[num_consts:], new_fun, new_jvp)
    return outs, [0] * len(outs)


@def_lowering(custom_jvp_call_p)
def _custom_jvp_lowering(ctx: Ctx, *operands: str, fun: Program, jvp: LazyProgram,
                         num_consts: int) -> None:
    _lower_inline(ctx, fun, operands)


# ---------------------------------------------------------------- custom_vjp_call

def custom_vjp_bind(fun_consts: Sequence[Any], xs: Sequence[Any], fun: Program,
                    fwd: LazyProgram, bwd: LazyProgram) -> list[Any]:
    """Bind `custom_vjp_call`: fwd maps xs to (outs, residuals), bwd maps
    (residuals, output cts) to one ct per x."""
    return custom_vjp_call_p.bind(*fun_consts, *xs, fun=fun, fwd=fwd, bwd=bwd,
                                  num_consts=len(fun_consts))


@def_impl(custom_vjp_call_p)
def _custom_vjp_impl(*operands: Any, fun: Program, **params: Any) -> list[Any]:
    return eval_program(fun, operands)


def _custom_vjp_shape(*avals: ShapedArray, fun: Program, **params: Any) -> list[ShapedArray]:
    _check_inputs("custom_vjp_call", avals, fun, "fun")
    return fun.out_avals


shape_rules[custom_vjp_call_p] = _custom_vjp_shape


@def_jvp(custom_vjp_call_p)
def _custom_vjp_jvp(primals: Sequence[Any], tangents: Sequence[Any], *, fun: Program,
                    fwd: LazyProgram, bwd: LazyProgram, num_consts: int) -> Any:
    if not all(is_zero(t) for t in tangents[:num_consts]):
        raise _closed_over_error("custom_vjp")
    xs, x_dots = primals[num_consts:], tangents[num_consts:]
    outs = fwd.run(xs)
    bwd_program, bwd_consts = bwd.get()
    num_out = len(fun.outvars)
    nonzero = tuple(_has_tangent(x, t) for x, t in zip(xs, x_dots))
    out_dots = custom_vjp_lin_p.bind(
        *bwd_consts, *outs[num_out:], *_pick(x_dots, nonzero), bwd=bwd_program,
        num_consts=len(bwd_consts), num_res=len(outs) - num_out, nonzero=nonzero,
        out_avals=tuple(tangent_aval(a) for a in fun.out_avals))
    return outs[:num_out], out_dots


@def_jet(custom_vjp_call_p)
def _custom_vjp_jet(primals: Sequence[Any], series: Sequence[Any], *, fun: Program,
                    **params: Any) -> Any:
    """Taylor mode has no use for a reverse-mode rule: it runs through `fun`, as JAX's jet."""
    return jet_program(fun, primals, series)


@def_batch(custom_vjp_call_p)
def _custom_vjp_batch(args: Sequence[Any], dims: Sequence[int | None], *, fun: Program,
                      fwd: LazyProgram, bwd: LazyProgram, num_consts: int) -> Any:
    size = batch_size(args, dims)
    x_avals, x_dims = _batched_avals(args[num_consts:]), list(dims[num_consts:])
    new_fun, captured = batch_traced(fun, _batched_avals(args), dims, size)
    new_fwd = fwd.batched(x_avals, x_dims, size)
    num_out = len(fun.outvars)

    def make_bwd() -> tuple[Program, list[Any]]:
        res_and_cts = [*new_fwd.get()[0].out_avals[num_out:],
                       *map(tangent_aval, new_fun.out_avals)]
        return bwd.batched(res_and_cts, [0] * len(res_and_cts), size, x_dims).get()

    outs = custom_vjp_bind([*captured, *args[:num_consts]], args[num_consts:], new_fun,
                           new_fwd, LazyProgram(f"batched {bwd.name}", make_bwd))
    return outs, [0] * len(outs)


@def_lowering(custom_vjp_call_p)
def _custom_vjp_lowering(ctx: Ctx, *operands: str, fun: Program, **params: Any) -> None:
    _lower_inline(ctx, fun, operands)


# ---------------------------------------------------------------- custom_vjp_lin

@def_impl(custom_vjp_lin_p)
def _custom_vjp_lin_impl(*operands: Any, **params: Any) -> list[Any]:
    raise FxTypeError(at_user_line(FORWARD_MODE_ERROR))


def _custom_vjp_lin_shape(*avals: ShapedArray, bwd: Program, num_consts: int, num_res: int,
                          nonzero: tuple[bool, ...],
                          out_avals: tuple[ShapedArray, ...]) -> list[ShapedArray]:
    consts, res, x_dots = _cut(avals, num_consts, num_res)
    expected = [*consts, *res, *out_avals]
    if bwd.in_avals != expected or _pick(bwd.out_avals, nonzero) != x_dots:
        raise FxTypeError(f"custom_vjp_lin: operands {list(avals)} do not fit the bwd program "
                          f"{bwd.in_avals} -> {bwd.out_avals}")
    return list(out_avals)


shape_rules[custom_vjp_lin_p] = _custom_vjp_lin_shape


@def_jvp(custom_vjp_lin_p)
def _custom_vjp_lin_jvp(primals: Sequence[Any], tangents: Sequence[Any], **params: Any) -> Any:
    raise FxTypeError(at_user_line(FORWARD_MODE_ERROR))


@def_transpose(custom_vjp_lin_p)
def _custom_vjp_lin_transpose(cts: Sequence[Any], *operands: Any, bwd: Program,
                              num_consts: int, num_res: int, nonzero: tuple[bool, ...],
                              out_avals: tuple[ShapedArray, ...]) -> list[Any]:
    known = operands[:num_consts + num_res]
    cts_in = eval_program(bwd, [*known, *map(instantiate, cts)])
    return [*[None] * len(known), *_pick(cts_in, nonzero)]


@def_batch(custom_vjp_lin_p)
def _custom_vjp_lin_batch(args: Sequence[Any], dims: Sequence[int | None], *, bwd: Program,
                          num_consts: int, num_res: int, nonzero: tuple[bool, ...],
                          out_avals: tuple[ShapedArray, ...]) -> Any:
    size = batch_size(args, dims)
    known, x_dots = args[:num_consts + num_res], args[num_consts + num_res:]
    known_dims, dot_dims = _cut(dims, num_consts + num_res)
    batched_outs = [ShapedArray((size, *a.shape), a.dtype) for a in out_avals]
    # bwd outputs without a tangent operand are dropped by the transpose: just sum them
    it = iter(dot_dims)
    ct_targets = [next(it) if nz else None for nz in nonzero]
    new_bwd, captured = batch_traced(bwd, [*_batched_avals(known), *batched_outs],
                                     [*known_dims, *[0] * len(out_avals)], size, ct_targets)
    outs = custom_vjp_lin_p.bind(*captured, *known, *x_dots, bwd=new_bwd,
                                 num_consts=len(captured) + num_consts, num_res=num_res,
                                 nonzero=nonzero, out_avals=tuple(batched_outs))
    return outs, [0] * len(outs)


@def_lowering(custom_vjp_lin_p)
def _custom_vjp_lin_lowering(ctx: Ctx, *operands: str, **params: Any) -> None:
    raise FxTypeError(at_user_line(FORWARD_MODE_ERROR))


# ---------------------------------------------------------------- remat_call

@def_impl(remat_call_p)
def _remat_impl(*xs: Any, program: Program) -> list[Any]:
    return eval_program(program, xs)


def _remat_shape(*avals: ShapedArray, program: Program) -> list[ShapedArray]:
    _check_inputs("remat_call", avals, program, "checkpointed")
    return program.out_avals


shape_rules[remat_call_p] = _remat_shape


@def_jvp(remat_call_p)
def _remat_jvp(primals: Sequence[Any], tangents: Sequence[Any], *, program: Program) -> Any:
    outs = remat_call_p.bind(*primals, program=program)
    nonzero = tuple(_has_tangent(x, t) for x, t in zip(primals, tangents))
    out_dots = remat_lin_p.bind(*primals, *_pick(tangents, nonzero), program=program,
                                nonzero=nonzero)
    return outs, out_dots


@def_jet(remat_call_p)
def _remat_jet(primals: Sequence[Any], series: Sequence[Any], *, program: Program) -> Any:
    return jet_program(program, primals, series)   # rematerialisation is a reverse-mode matter


@def_batch(remat_call_p)
def _remat_batch(args: Sequence[Any], dims: Sequence[int | None], *, program: Program) -> Any:
    new_program, captured = batch_traced(program, _batched_avals(args), dims,
                                         batch_size(args, dims))
    outs = remat_call_p.bind(*captured, *args, program=new_program)
    return outs, [0] * len(outs)


@def_lowering(remat_call_p)
def _remat_lowering(ctx: Ctx, *xs: str, program: Program) -> None:
    _lower_inline(ctx, program, xs)


# ---------------------------------------------------------------- remat_lin

@functools.lru_cache(maxsize=256)
def tangent_program(program: Program, nonzero: tuple[bool, ...]) -> Program:
    """The program (primals, non-zero tangents) -> output tangents of `program`."""
    avals = program.in_avals
    num = len(avals)

    def fun(*args: Any) -> list[Any]:
        dots = iter(args[num:])
        x_dots = [next(dots) if nz else Zero(a) for a, nz in zip(avals, nonzero)]
        _, out_dots = jvp_program(program, args[:num], x_dots)
        return [instantiate(t) for t in out_dots]

    lin, captured = trace_closed(fun, [*avals, *map(tangent_aval, _pick(avals, nonzero))])
    assert not captured, "a tangent program captures nothing: its program is closed"
    return lin


@def_impl(remat_lin_p)
def _remat_lin_impl(*operands: Any, program: Program, nonzero: tuple[bool, ...]) -> list[Any]:
    return eval_program(tangent_program(program, nonzero), operands)


def _remat_lin_shape(*avals: ShapedArray, program: Program,
                     nonzero: tuple[bool, ...]) -> list[ShapedArray]:
    _check_inputs("remat_lin", avals, tangent_program(program, nonzero), "tangent")
    return [tangent_aval(a) for a in program.out_avals]


shape_rules[remat_lin_p] = _remat_lin_shape


@def_jvp(remat_lin_p)
def _remat_lin_jvp(primals: Sequence[Any], tangents: Sequence[Any], *, program: Program,
                   nonzero: tuple[bool, ...]) -> Any:
    # remat_lin(p, t) is remat_call(p, t) of the tangent program: differentiate that
    return _remat_jvp(primals, tangents, program=tangent_program(program, nonzero))


@def_transpose(remat_lin_p)
def _remat_lin_transpose(cts: Sequence[Any], *operands: Any, program: Program,
                         nonzero: tuple[bool, ...]) -> list[Any]:
    from fxgrad.api_util import linearize_program
    primals = operands[:len(program.invars)]
    _, linear_map = linearize_program(program, [], primals, len(program.outvars))
    cts_in = linear_map.transpose(list(cts))
    return [*[None] * len(primals), *_pick(cts_in, nonzero)]


@def_batch(remat_lin_p)
def _remat_lin_batch(args: Sequence[Any], dims: Sequence[int | None], *, program: Program,
                     nonzero: tuple[bool, ...]) -> Any:
    size = batch_size(args, dims)
    num = len(program.invars)
    primals, p_dims = list(args[:num]), list(dims[:num])
    dots, d_dims = iter(args[num:]), iter(dims[num:])
    new_dots = []
    for i, nz in enumerate(nonzero):
        if not nz:
            continue
        # a primal and its tangent must share one batch axis: broadcast the unbatched one
        dot, d_dim = next(dots), next(d_dims)
        if p_dims[i] is not None or d_dim is not None:
            primals[i], p_dims[i] = move_axis(primals[i], p_dims[i], 0, size), 0
            dot = move_axis(dot, d_dim, 0, size)
        new_dots.append(dot)
    new_program, captured = batch_traced(program, _batched_avals(primals), p_dims, size)
    outs = remat_lin_p.bind(*captured, *primals, *new_dots, program=new_program,
                            nonzero=(False,) * len(captured) + nonzero)
    return outs, [0] * len(outs)


@def_lowering(remat_lin_p)
def _remat_lin_lowering(ctx: Ctx, *operands: str, program: Program,
                        nonzero: tuple[bool, ...]) -> None:
    _lower_inline(ctx, tangent_program(program, nonzero), operands)
