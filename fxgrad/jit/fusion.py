"""Fused loops: a run of elementwise equations over one shape, and the full
reductions of values it computes, lowered to one loop over the flat elements.

Operands defined outside the run are read through flat views, one element per
iteration; a broadcast scalar (`Fill`) is the scalar itself; values used after the run
are stored. Loops over at least PARALLEL_MIN elements run on all cores (numba's
`prange`).
"""
from __future__ import annotations

import numpy as np

from fxgrad.core.ir import Eqn, Var
from fxgrad.jit.lowering import Builder, Ctx, Fill, _read, _rule, np_dtype

_REDUCTIONS = ("reduce_sum", "reduce_max", "reduce_min")


def joins_as_reduction(eqn: Eqn, run: list[tuple[int, Eqn]]) -> bool:
    """A full reduction of a value the run computes: accumulate it inside the loop."""
    if eqn.prim.name not in _REDUCTIONS or not isinstance(eqn.inputs[0], Var):
        return False
    x = eqn.inputs[0]
    return (len(eqn.params["axes"]) == x.aval.ndim and x.aval.dtype.kind in "fiu"
            and x.aval.shape == run[0][1].outputs[0].aval.shape
            and any(e.outputs[0] is x for _, e in run))


def reads_reduction(eqn: Eqn, run: list[tuple[int, Eqn]]) -> bool:
    """Whether `eqn` uses a reduction of the run, which is final only after the loop."""
    partial = {id(e.outputs[0]) for _, e in run if e.prim.name in _REDUCTIONS}
    return any(id(a) in partial for a in eqn.inputs)


def flush(builder: Builder, run: list[tuple[int, Eqn]], env: dict[int, str],
          uses: dict[int, int]) -> None:
    """Emit one fused loop for a run of elementwise equations of one shape."""
    if not run:
        return
    last_index = run[-1][0]
    shape = run[0][1].outputs[0].aval.shape
    size = int(np.prod(shape))
    reductions = [eqn for _, eqn in run if eqn.prim.name in _REDUCTIONS]
    run = [(i, eqn) for i, eqn in run if eqn.prim.name not in _REDUCTIONS]
    stored = [eqn.outputs[0] for _, eqn in run if uses.get(id(eqn.outputs[0]), -1) > last_index]
    flat: dict[int, str] = {}
    for v in stored:
        env[id(v)] = _output_buffer(builder, v, last_index)
    local = dict(env)
    loads = _loop_inputs(builder, run, local, flat, shape)
    for v in stored:
        flat[id(v)] = builder.fresh("f")
        builder.emit(f"{flat[id(v)]} = {builder.flat(env[id(v)], shape)}")
    accumulators = [_start_accumulator(builder, eqn) for eqn in reductions]
    i = builder.fresh("i")
    builder.emit(f"for {i} in {_loop_range(builder, size, parallel_ok=not reductions)}:")
    with builder.indented():
        for name, src in loads:
            builder.emit(f"{name} = {src}[{i}]")
        for _, eqn in run:
            _emit_fused(builder, eqn, local)
        for v in stored:
            builder.emit(f"{flat[id(v)]}[{i}] = {local[id(v)]}")
        for acc, eqn in zip(accumulators, reductions):
            builder.emit(f"{acc} = {_accumulate(acc, local[id(eqn.inputs[0])], eqn.prim.name)}")
    for acc, eqn in zip(accumulators, reductions):
        env[id(eqn.outputs[0])] = acc


PARALLEL_MIN = 1 << 17   # elements: below this, threads cost more than they save


def _loop_range(builder: Builder, size: int, parallel_ok: bool) -> str:
    """A `prange` over both cores for large fused loops (numba's own threads)."""
    from fxgrad.config import config
    if parallel_ok and config.jit_parallel and size >= PARALLEL_MIN:
        builder.parallel = True
        return f"numba.prange({size})"
    return f"range({size})"


def _start_accumulator(builder: Builder, eqn: Eqn) -> str:
    dtype = eqn.outputs[0].aval.dtype
    start: int | str
    if eqn.prim.name == "reduce_sum":
        start = 0
    elif dtype.kind == "f":
        start = "-np.inf" if eqn.prim.name == "reduce_max" else "np.inf"
    else:
        info = np.iinfo(dtype)
        start = info.min if eqn.prim.name == "reduce_max" else info.max
    acc = builder.fresh("acc")
    builder.emit(f"{acc} = {np_dtype(dtype)}({start})")
    return acc


def _accumulate(acc: str, x: str, name: str) -> str:
    if name == "reduce_sum":
        return f"{acc} + {x}"
    op = ">" if name == "reduce_max" else "<"
    return f"{x} if {x} {op} {acc} or {x} != {x} else {acc}"


def _output_buffer(builder: Builder, v: Var, last_index: int) -> str:
    """A donated input to write `v` into in place if it is dead by now, else a new array."""
    donated = builder.buffers.get(id(v))
    if donated is not None and donated[1] <= last_index:
        del builder.buffers[id(v)]
        return donated[0]
    name = builder.fresh()
    builder.emit(f"{name} = np.empty({v.aval.shape!r}, {np_dtype(v.aval.dtype)})")
    return name


def _loop_inputs(builder: Builder, run: list[tuple[int, Eqn]], local: dict[int, str],
                 flat: dict[int, str], shape: tuple[int, ...]) -> list[tuple[str, str]]:
    """Flat views of array operands defined outside the run; their per-element names."""
    produced = {id(eqn.outputs[0]) for _, eqn in run}
    loads = []
    for _, eqn in run:
        for a in eqn.inputs:
            if isinstance(a, Var) and isinstance(local.get(id(a)), Fill):
                local[id(a)] = local[id(a)].expr   # the same scalar at every element
                produced.add(id(a))
            elif isinstance(a, Var) and a.aval.shape == shape and id(a) not in produced \
                    and id(a) not in flat:
                view, elem = builder.fresh("f"), builder.fresh("e")
                builder.emit(f"{view} = {builder.flat(_read(builder, local, a), shape)}")
                flat[id(a)] = view
                loads.append((elem, view))
                local[id(a)] = elem
    return loads


def _emit_fused(builder: Builder, eqn: Eqn, local: dict[int, str]) -> None:
    rule = _rule(eqn)
    name = builder.fresh("s")
    ins = [_read(builder, local, a) for a in eqn.inputs]
    ctx = Ctx(builder, eqn, [name])
    builder.emit(f"{name} = {rule.expr(ctx, *ins, **eqn.params)}")  # type: ignore[union-attr]
    local[id(eqn.outputs[0])] = name
