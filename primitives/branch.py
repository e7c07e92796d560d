"""Branching: the `cond` primitive and its rules.

`cond` evaluates one of several branch programs, chosen by an integer index operand
clamped to [0, len(branches) - 1]. Its operands are `index, *operands`; every branch
is a `Program` taking exactly the same operands and returning the same avals. The
values each user function closed over were hoisted out when it was traced and padded
into one shared operand list (`share_consts`): a branch ignores the others' consts.

Differentiation follows scan's split. The JVP rule traces each branch's JVP with
primal arithmetic in one trace and tangent arithmetic in a newer one. The primal
cond returns the outputs and every branch's residuals (a branch returns zeros for
the residuals of the others); the tangent cond is linear in the tangents and reads
the residuals, so linearize stages out only the tangent cond. Its transpose is a
cond of the transposed branches; the index is never linear.

Batching with an unbatched index batches every branch; with a batched index every
branch is computed and the results are picked per example with `select`. Under jit a
cond is a native `if`/`elif` chain with each branch lowered inside its block.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from fxgrad.core.errors import FxTypeError
from fxgrad.core.ir import Eqn, Literal, Program, ShapedArray, Var, aval_of
from fxgrad.core.trace import Primitive, Trace, Tracer, new_trace, shape_rules
from fxgrad.interpreters.batching import batch_program, batch_size, def_batch, move_axis
from fxgrad.interpreters.evaluation import def_impl, eval_program
from fxgrad.interpreters.jvp import Zero, def_jvp, is_zero, jvp_program, tangent_dtype
from fxgrad.interpreters.taylor import (def_jet, flatten_series, jet_program, moving,
                                        unflatten_series)
from fxgrad.interpreters.transpose import (UndefinedPrimal, backward_pass, def_transpose,
                                           is_undefined)
from fxgrad.jit.lowering import Ctx, def_lowering, np_dtype
from fxgrad.jit.scalarize import Elems, materialize
from fxgrad.primitives.logic import ge, select
from fxgrad.primitives.shape import broadcast_in_dim, broadcast_in_dim_p

cond_p = Primitive("cond", multiple_results=True)


def cond_bind(index: Any, consts: Sequence[Any], operands: Sequence[Any],
              branches: Sequence[Program]) -> list[Any]:
    """Bind `cond_p`: the branch `index` (clamped) applied to shared consts + operands."""
    return cond_p.bind(index, *consts, *operands, branches=tuple(branches))


def clamp_index(index: int, num_branches: int) -> int:
    return min(max(int(index), 0), num_branches - 1)


# ---------------------------------------------------------------- tracing branches

def _zero_atom(aval: ShapedArray, eqns: list[Eqn]) -> Any:
    """An atom holding zeros of `aval`: a literal, or a broadcast equation appended."""
    zero = Literal(np.zeros((), aval.dtype))
    if aval.shape == ():
        return zero
    out = Var(aval)
    eqns.append(Eqn(broadcast_in_dim_p, [zero],
                    {"shape": aval.shape, "broadcast_dimensions": ()}, [out]))
    return out


def build_with_zeros(trace: Trace, outs: Sequence[Any]) -> tuple[Program, list[Any]]:
    """`trace.build(outs)` where symbolic `Zero` outputs become zeros made in the program
    (never constants, which would be passed in as operands)."""
    program, captured = trace.build([o for o in outs if not is_zero(o)])
    real, eqns = iter(program.outvars), list(program.eqns)
    outvars = [_zero_atom(o.aval, eqns) if is_zero(o) else next(real) for o in outs]
    return Program(program.invars, eqns, outvars, program.num_consts), captured


def trace_branch(fun: Callable[..., Sequence[Any]],
                 in_avals: Sequence[ShapedArray]) -> tuple[Program, list[Any]]:
    """Trace `fun` abstractly; the program's first `num_consts` inputs are its captures."""
    with new_trace() as trace:
        args = [trace.new_arg(aval) for aval in in_avals]
        return build_with_zeros(trace, list(fun(*args)))


def share_consts(traced: Sequence[tuple[Program, list[Any]]]) -> tuple[tuple[Program, ...], list]:
    """Branches taking their own captures first -> branches taking one shared list of
    captures (each value once) and then the operands; returns them and that list."""
    slots: dict[int, int] = {}
    shared: list[Any] = []
    for _, captured in traced:
        for value in captured:
            if id(value) not in slots:
                slots[id(value)] = len(shared)
                shared.append(value)
    branches = []
    for program, captured in traced:
        own = {slots[id(c)]: v for c, v in zip(captured, program.invars[:program.num_consts])}
        invars = [own[i] if i in own else Var(aval_of(c)) for i, c in enumerate(shared)]
        branches.append(Program([*invars, *program.invars[program.num_consts:]],
                                program.eqns, program.outvars))
    return tuple(branches), shared


def trace_branches(funs: Sequence[Callable[..., Sequence[Any]]],
                   in_avals: Sequence[ShapedArray]) -> tuple[tuple[Program, ...], list[Any]]:
    """Trace each function on `in_avals` into branches sharing one list of captures."""
    return share_consts([trace_branch(f, in_avals) for f in funs])


def _pick(items: Sequence[Any], flags: Sequence[bool]) -> list[Any]:
    return [x for x, keep in zip(items, flags) if keep]


def _merge(flags: Sequence[bool], when_true: Sequence[Any], when_false: Sequence[Any]) -> list:
    """The next of `when_true` where a flag is set, else the next of `when_false`."""
    true_it, false_it = iter(when_true), iter(when_false)
    return [next(true_it) if flag else next(false_it) for flag in flags]


# ---------------------------------------------------------------- impl and shape rule

@def_impl(cond_p)
def _cond_impl(index: np.ndarray, *operands: np.ndarray,
               branches: tuple[Program, ...]) -> list[np.ndarray]:
    return eval_program(branches[clamp_index(index, len(branches))], operands)


def _cond_shape(index: ShapedArray, *operands: ShapedArray,
                branches: tuple[Program, ...]) -> list[ShapedArray]:
    if index.shape != () or index.dtype.kind not in "iu":
        raise FxTypeError(f"cond: the branch index must be an integer scalar, got "
                          f"{index.str_short()}")
    for k, branch in enumerate(branches):
        if branch.in_avals != list(operands):
            raise FxTypeError(f"cond: operands {list(operands)} do not match the inputs "
                              f"{branch.in_avals} of branch {k}")
        if branch.out_avals != branches[0].out_avals:
            raise FxTypeError(f"cond: branch {k} returns {branch.out_avals}, but branch 0 "
                              f"returns {branches[0].out_avals}; all branches must return "
                              "the same shapes and dtypes")
    return branches[0].out_avals


shape_rules[cond_p] = _cond_shape


# ---------------------------------------------------------------- JVP

def _has_tangent(t: Any, aval: ShapedArray) -> bool:
    return not is_zero(t) and aval.dtype.kind in "fc"


class _BranchJvp:
    """The JVP of one branch split into a primal program (operands -> outputs,
    residuals) and a tangent program (captured values, tangents -> output tangents).

    `nonzero` flags the operands with a tangent; `keep` the output tangents to return
    (default: this branch's non-zero ones). Each input the tangent program captured
    has a source: ("operand", j), ("residual", r) or ("value", array).
    """

    def __init__(self, branch: Program, nonzero: list[bool], keep: list[bool] | None = None):
        self.branch, self.nonzero, self.keep = branch, nonzero, keep
        self.sources: list[tuple[str, Any]] = []
        self.out_nonzero: list[bool] = []
        self.residual_avals: list[ShapedArray] = []
        self.tangent: Program | None = None
        self.primal, self.captured = trace_branch(self._primal, branch.in_avals)

    def _primal(self, *args: Tracer) -> list[Any]:
        with new_trace() as tangent_trace:
            tangents = [tangent_trace.new_arg(ShapedArray(a.shape, tangent_dtype(a.dtype)))
                        if nz else Zero(a.aval) for a, nz in zip(args, self.nonzero)]
            outs, t_outs = jvp_program(self.branch, args, tangents)
            self.out_nonzero = [_has_tangent(t, v.aval)
                                for t, v in zip(t_outs, self.branch.outvars)]
            kept = _pick(t_outs, self.keep or self.out_nonzero)
            self.tangent, t_captured = build_with_zeros(tangent_trace, kept)
        return [*outs, *self._classify(t_captured, args)]

    def _classify(self, t_captured: list[Any], args: Sequence[Tracer]) -> list[Tracer]:
        """Record where each value the tangent program captured comes from; the residuals."""
        where = {id(a._var): j for j, a in enumerate(args)}
        residuals: list[Tracer] = []
        for value in t_captured:
            if not isinstance(value, Tracer):
                self.sources.append(("value", value))
            elif id(value._var) in where:
                self.sources.append(("operand", where[id(value._var)]))
            else:
                self.sources.append(("residual", len(residuals)))
                residuals.append(value)
        self.residual_avals = [r.aval for r in residuals]
        return residuals

    def padded_primal(self, before: list[ShapedArray],
                      after: list[ShapedArray]) -> tuple[Program, list[Any]]:
        """The primal program returning zeros for the other branches' residuals."""
        num_out = len(self.branch.outvars)
        eqns = list(self.primal.eqns)
        outs, residuals = self.primal.outvars[:num_out], self.primal.outvars[num_out:]
        zeros = [[_zero_atom(a, eqns) for a in avals] for avals in (before, after)]
        program = Program(self.primal.invars, eqns, [*outs, *zeros[0], *residuals, *zeros[1]],
                          self.primal.num_consts)
        return program, self.captured


def _jvp_splits(branches: Sequence[Program],
                nonzero: list[bool]) -> tuple[list[_BranchJvp], list[bool]]:
    """Split every branch, all returning the tangents non-zero in any branch."""
    splits = [_BranchJvp(b, nonzero) for b in branches]
    keep = [any(flags) for flags in zip(*(s.out_nonzero for s in splits))]
    return [s if s.out_nonzero == keep else _BranchJvp(s.branch, nonzero, keep)
            for s in splits], keep


def _primal_branches(splits: list[_BranchJvp]) -> tuple[tuple[Program, ...], list[Any]]:
    def residuals_of(others: Sequence[_BranchJvp]) -> list[ShapedArray]:
        return [a for s in others for a in s.residual_avals]
    traced = [s.padded_primal(residuals_of(splits[:k]), residuals_of(splits[k + 1:]))
              for k, s in enumerate(splits)]
    return share_consts(traced)


class _TangentOperands:
    """The tangent cond's operand list: residuals of every branch, the primal operands
    some branch reads, every branch's constant values, then the tangents."""

    def __init__(self, splits: list[_BranchJvp], operands: Sequence[Any],
                 residuals: Sequence[Any]):
        self.splits = splits
        self.operand_slots = sorted({j for s in splits for kind, j in s.sources
                                     if kind == "operand"})
        values = {id(v): v for s in splits for kind, v in s.sources if kind == "value"}
        self.values = list(values.values())
        self.known = [*residuals, *(operands[j] for j in self.operand_slots), *self.values]

    def branch(self, k: int) -> Program:
        """Branch k's tangent program taking the shared operands."""
        tangent = self.splits[k].tangent
        captured = tangent.invars[:tangent.num_consts]
        own = {_source_key(*source): var for source, var in zip(self.splits[k].sources, captured)}
        return Program([*self._known_vars(k, own), *tangent.invars[tangent.num_consts:]],
                       tangent.eqns, tangent.outvars)

    def _known_vars(self, k: int, own: dict[tuple[str, Any], Var]) -> list[Var]:
        """One variable per shared known operand: branch k's own where it reads it."""
        slots: list[tuple[Any, ShapedArray]] = []
        for j, split in enumerate(self.splits):
            slots += [(("residual", r) if j == k else None, a)
                      for r, a in enumerate(split.residual_avals)]
        in_avals = self.splits[k].branch.in_avals
        slots += [(("operand", j), in_avals[j]) for j in self.operand_slots]
        slots += [(_source_key("value", v), aval_of(v)) for v in self.values]
        return [own[key] if key in own else Var(aval) for key, aval in slots]


def _source_key(kind: str, source: Any) -> tuple[str, Any]:
    return (kind, id(source)) if kind == "value" else (kind, source)


@def_jvp(cond_p)
def _cond_jvp(primals: Sequence[Any], tangents: Sequence[Any], *,
              branches: tuple[Program, ...]) -> Any:
    index, operands = primals[0], list(primals[1:])
    nonzero = [_has_tangent(t, aval_of(x)) for x, t in zip(operands, tangents[1:])]
    splits, keep = _jvp_splits(branches, nonzero)
    if not any(keep):
        outs = cond_p.bind(*primals, branches=branches)
        return outs, [Zero(aval_of(o)) for o in outs]
    primal_branches, consts = _primal_branches(splits)
    num_out = len(branches[0].outvars)
    primal_outs = cond_bind(index, consts, operands, primal_branches)
    outs, residuals = primal_outs[:num_out], primal_outs[num_out:]
    shared = _TangentOperands(splits, operands, residuals)
    t_branches = [shared.branch(k) for k in range(len(splits))]
    t_outs = cond_bind(index, shared.known, _pick(tangents[1:], nonzero), t_branches)
    zeros = [Zero(aval_of(o)) for o, kept in zip(outs, keep) if not kept]
    return outs, _merge(keep, t_outs, zeros)


# ---------------------------------------------------------------- transpose

def _transposed_branch(branch: Program, linear: list[bool],
                       ct_nonzero: list[bool]) -> Callable[..., list[Any]]:
    """(known operands, non-zero output cts) -> cts of the linear operands."""
    num_known = len(linear) - sum(linear)
    undefined = [UndefinedPrimal(a) for a in _pick(branch.in_avals, linear)]
    zero_cts = [Zero(a) for a in _pick(branch.out_avals, [not nz for nz in ct_nonzero])]

    def run(*args: Any) -> list[Any]:
        known, cts = args[:num_known], args[num_known:]
        ins = _merge(linear, undefined, known)
        cts_in = backward_pass(branch, ins, _merge(ct_nonzero, cts, zero_cts))
        return _pick(cts_in, linear)
    return run


@def_transpose(cond_p)
def _cond_transpose(cts: Sequence[Any], index: Any, *operands: Any,
                    branches: tuple[Program, ...]) -> list[Any]:
    if is_undefined(index):
        raise TypeError("cond is not linear in its index")
    linear = [is_undefined(x) for x in operands]
    ct_nonzero = [not is_zero(ct) for ct in cts]
    known = _pick(operands, [not lin for lin in linear])
    ct_avals = [aval_of(ct) for ct in _pick(cts, ct_nonzero)]
    funs = [_transposed_branch(b, linear, ct_nonzero) for b in branches]
    t_branches, consts = trace_branches(funs, [*map(aval_of, known), *ct_avals])
    cts_in = cond_bind(index, consts, [*known, *_pick(cts, ct_nonzero)], t_branches)
    return [None, *_merge(linear, cts_in, [None] * len(operands))]


# ---------------------------------------------------------------- batching

def _batched_branch(branch: Program, in_dims: Sequence[int | None], size: int,
                    out_batched: list[bool], seen: list[list[bool]]) -> Callable[..., list]:
    """The branch on batched operands; outputs at axis 0 where `out_batched`."""
    def run(*args: Any) -> list[Any]:
        outs, dims = batch_program(branch, args, in_dims)
        seen.append([d is not None for d in dims])
        return [move_axis(o, d, 0, size) if b else o for o, d, b in zip(outs, dims, out_batched)]
    return run


def _batch_branches(branches: Sequence[Program], operands: Sequence[Any],
                    dims: Sequence[int | None],
                    size: int) -> tuple[tuple[Program, ...], list[Any], list[bool]]:
    """Batched branches, an output batched if any branch batches it (a fixed point)."""
    out_batched = [False] * len(branches[0].outvars)
    avals = [aval_of(x) for x in operands]
    while True:
        seen: list[list[bool]] = []
        funs = [_batched_branch(b, dims, size, out_batched, seen) for b in branches]
        programs, consts = trace_branches(funs, avals)
        grown = [any(flags) for flags in zip(out_batched, *seen)]
        if grown == out_batched:
            return programs, consts, out_batched
        out_batched = grown


def _select_rows(pred: Any, on_true: Any, on_false: Any) -> Any:
    """`on_true` for the examples (rows along axis 0) where `pred` holds."""
    shape = aval_of(on_true).shape
    return select(broadcast_in_dim(pred, shape, (0,)), on_true, on_false)


def _select_batch(index: Any, operands: Sequence[Any], dims: Sequence[int | None],
                  branches: Sequence[Program], size: int) -> list[Any]:
    """Every branch computed; example i takes branch clamp(index[i])."""
    results = []
    for branch in branches:
        outs, out_dims = batch_program(branch, operands, dims)
        results.append([move_axis(o, d, 0, size) for o, d in zip(outs, out_dims)])
    chosen = results[0]
    for k in range(1, len(branches)):
        past_k = ge(index, np.asarray(k, aval_of(index).dtype))
        chosen = [_select_rows(past_k, r, c) for r, c in zip(results[k], chosen)]
    return chosen


@def_batch(cond_p)
def _cond_batch(args: Sequence[Any], dims: Sequence[int | None], *,
                branches: tuple[Program, ...]) -> tuple[list[Any], list[int | None]]:
    size = batch_size(args, dims)
    index, operands, op_dims = args[0], list(args[1:]), list(dims[1:])
    if dims[0] is not None:
        index = move_axis(index, dims[0], 0, size)
        outs = _select_batch(index, operands, op_dims, branches, size)
        return outs, [0] * len(outs)
    programs, consts, out_batched = _batch_branches(branches, operands, op_dims, size)
    outs = cond_bind(index, consts, operands, programs)
    return outs, [0 if b else None for b in out_batched]


# ---------------------------------------------------------------- numba lowering

_VIEWS = ("reshape", "squeeze", "expand_dims")   # lowerings that may return views


def _aliases_input(branch: Program, var: Any) -> bool:
    """Whether output `var` may share memory with a branch input (it or a view of it)."""
    inputs = {id(v) for v in branch.invars}
    for eqn in branch.eqns:
        if eqn.prim.name in _VIEWS and id(eqn.inputs[0]) in inputs:
            inputs.add(id(eqn.outputs[0]))
    return id(var) in inputs


def _branch_result(ctx: Ctx, value: Any, var: Any, branch: Program) -> str:
    """A branch's output as a value of one type in every branch: rank-0 values cast to
    their dtype (numba would unify literals and float32 differently), inputs copied."""
    if isinstance(value, Elems):
        value = materialize(ctx.builder, value)
    if var.aval.shape == ():
        return f"{np_dtype(var.aval.dtype)}({value})"
    return f"np.copy({value})" if _aliases_input(branch, var) else value


def _branch_test(index: str, k: int, num_branches: int) -> str:
    if k == 0:
        return f"if {index} <= 0:"
    return "else:" if k == num_branches - 1 else f"elif {index} == {k}:"


def _lower_branch(ctx: Ctx, branch: Program, operands: Sequence[str]) -> None:
    """Emit one branch assigning the cond's outputs. Values cached while lowering it
    (loaded or materialized arrays) exist only inside its block, so the caches are
    restored afterwards."""
    builder = ctx.builder
    saved = dict(builder.materialized), dict(builder.loaded)
    outs = ctx.lower_program(branch, operands, scalarize=builder.scalarize)
    for name, value, var in zip(ctx.outs, outs, branch.outvars):
        ctx.emit(f"{name} = {_branch_result(ctx, value, var, branch)}")
    builder.materialized, builder.loaded = saved


@def_lowering(cond_p)
def _cond_lowering(ctx: Ctx, index: str, *operands: str,
                   branches: tuple[Program, ...]) -> None:
    if len(branches) == 1:
        _lower_branch(ctx, branches[0], operands)
        return
    for k, branch in enumerate(branches):
        ctx.emit(_branch_test(index, k, len(branches)))
        with ctx.indented():
            _lower_branch(ctx, branch, operands)


# ---------------------------------------------------------------- Taylor (jet)

def _jet_branch(branch: Program, flags: Sequence[bool], order: int) -> Callable[..., list]:
    """A branch mapped to (operands, their flat moving series) -> (outs, flat out series);
    every floating-point output carries its series, so all branches agree."""
    avals = branch.in_avals

    def run(*args: Any) -> list[Any]:
        primals = args[:len(avals)]
        outs, out_series = jet_program(
            branch, primals, unflatten_series(primals, args[len(avals):], flags, order))
        floats = [o.aval.dtype.kind in "fc" for o in branch.outvars]
        return [*outs, *flatten_series(out_series, floats)]
    return run


@def_jet(cond_p)
def _cond_jet(primals: Sequence[Any], series: Sequence[Any], *,
              branches: tuple[Program, ...]) -> Any:
    order = len(series[0])
    index, operands, op_series = primals[0], primals[1:], series[1:]
    flags = moving(operands, op_series)
    flat = flatten_series(op_series, flags)
    in_avals = [*map(aval_of, operands), *map(aval_of, flat)]
    new_branches, captured = trace_branches(
        [_jet_branch(b, flags, order) for b in branches], in_avals)
    outs = cond_bind(index, captured, [*operands, *flat], new_branches)
    out_avals = branches[0].out_avals
    primal_outs = outs[:len(out_avals)]
    floats = [a.dtype.kind in "fc" for a in out_avals]
    return primal_outs, unflatten_series(primal_outs, outs[len(out_avals):], floats, order)
