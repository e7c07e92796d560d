"""Fused loops: a run of elementwise equations over one shape, and the full
reductions of values it computes, lowered to one loop over the flat elements.

Operands defined outside the run are read through flat views, one element per
iteration; a broadcast scalar (`Fill`) is the scalar itself; values used after the run
are stored. Loops over at least PARALLEL_MIN elements run on all cores (numba's
`prange`).

A run with reductions over at least 2 * BLOCK elements (or a full reduction of an
array of at least STANDALONE_MIN elements, a run of its own) is cut into blocks: each
block computes its elements in a loop with no loop-carried dependence, which LLVM
vectorizes, SIMD libm calls included, staging the values to reduce in a scratch row;
LANES accumulators fold the row into the block's partial result, and the partials are
folded in block order after the loop. Blocks run in parallel; the result does not
depend on the thread count.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from fxgrad.core.ir import Eqn, Var
from fxgrad.jit.lowering import Builder, Ctx, Fill, _read, _rule, np_dtype

_REDUCTIONS = ("reduce_sum", "reduce_max", "reduce_min")
BLOCK = 1024   # elements per block of a loop with reductions: its scratch rows stay in L1
LANES = 4      # independent accumulators folding a block (the adds' latency overlaps)


def run_shape(run: list[tuple[int, Eqn]]) -> tuple[int, ...]:
    """The shape a run loops over (a run may start with a reduction of an array)."""
    first = run[0][1]
    return (first.inputs[0] if first.prim.name in _REDUCTIONS else first.outputs[0]).aval.shape


def _full_reduction(eqn: Eqn) -> bool:
    x = eqn.inputs[0]
    return eqn.prim.name in _REDUCTIONS and isinstance(x, Var) and x.aval.dtype.kind in "fiu" \
        and len(eqn.params["axes"]) == x.aval.ndim > 0


def joins_as_reduction(eqn: Eqn, run: list[tuple[int, Eqn]]) -> bool:
    """A full reduction of a value the run computes: accumulate it inside the loop."""
    return _full_reduction(eqn) and eqn.inputs[0].aval.shape == run_shape(run) and \
        any(e.outputs[0] is eqn.inputs[0] for _, e in run)


# A full reduction of an array defined before the run takes blocks from this size on
# (below it, one sequential loop is fast enough and compiles in fewer statements).
STANDALONE_MIN = 1 << 15


def starts_reduction(eqn: Eqn) -> bool:
    """A full reduction of a large array defined before: a run of its own, in blocks."""
    return _full_reduction(eqn) and eqn.inputs[0].aval.size >= STANDALONE_MIN


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
    shape = run_shape(run)
    size = int(np.prod(shape))
    reductions = [eqn for _, eqn in run if eqn.prim.name in _REDUCTIONS]
    elementwise = [(i, eqn) for i, eqn in run if eqn.prim.name not in _REDUCTIONS]
    stored = [eqn.outputs[0] for _, eqn in elementwise
              if uses.get(id(eqn.outputs[0]), -1) > last_index]
    flat: dict[int, str] = {}
    for v in stored:
        env[id(v)] = _output_buffer(builder, v, last_index)
    local = dict(env)
    loads = _loop_inputs(builder, run, local, flat, shape)
    for v in stored:
        flat[id(v)] = builder.fresh("f")
        builder.emit(f"{flat[id(v)]} = {builder.flat(env[id(v)], shape)}")
    body = _Body(elementwise, loads, stored, flat, local)
    if reductions and size >= 2 * BLOCK:
        results = _emit_blocks(builder, body, reductions, size)
    else:
        results = [_start_accumulator(builder, eqn) for eqn in reductions]
        i = builder.fresh("i")
        builder.emit(f"for {i} in {_loop_range(builder, size, parallel_ok=not reductions)}:")
        with builder.indented():
            body.emit(builder, i)
            for acc, eqn in zip(results, reductions):
                builder.emit(f"{acc} = {_accumulate(acc, local[id(eqn.inputs[0])], eqn.prim.name)}")
    for result, eqn in zip(results, reductions):
        env[id(eqn.outputs[0])] = result


class _Body(NamedTuple):
    """What one iteration of a fused loop does: load, compute, store."""
    run: list[tuple[int, Eqn]]
    loads: list[tuple[str, str]]
    stored: list[Var]
    flat: dict[int, str]
    local: dict[int, Any]

    def emit(self, builder: Builder, i: str) -> None:
        for name, src in self.loads:
            builder.emit(f"{name} = {src}[{i}]")
        for _, eqn in self.run:
            _emit_fused(builder, eqn, self.local)
        for v in self.stored:
            builder.emit(f"{self.flat[id(v)]}[{i}] = {self.local[id(v)]}")


def _emit_blocks(builder: Builder, body: _Body, reductions: list[Eqn], size: int) -> list[str]:
    """The loop over blocks of BLOCK elements: each block computes its elements and
    stages the values to reduce (a loop LLVM vectorizes: no loop-carried dependence),
    then folds them into its partial results; the partials, in block order, into the
    results, which are returned. The same bits with one thread or many. float32 sums
    accumulate in float64, as numpy's pairwise sums lose little more."""
    blocks = -(-size // BLOCK)
    dtypes = [np_dtype(_accumulator_dtype(eqn)) for eqn in reductions]
    parts = _fresh_arrays(builder, "part", blocks, dtypes)
    # a reduction of an operand folds its flat view directly; others stage their values
    views = {elem: view for elem, view in body.loads}
    direct = [views.get(body.local.get(id(eqn.inputs[0]), "")) for eqn in reductions]
    staged = [eqn for eqn, view in zip(reductions, direct) if view is None]
    b, lo, n, j = (builder.fresh(p) for p in ("b", "lo", "n", "j"))
    builder.emit(f"for {b} in {_loop_range(builder, size, parallel_ok=True, count=blocks)}:")
    with builder.indented():
        builder.emit(f"{lo} = {b} * {BLOCK}")
        builder.emit(f"{n} = min({BLOCK}, {size} - {lo})")
        rows = dict(zip(map(id, staged), _fresh_arrays(   # per block: any thread
            builder, "row", BLOCK, [d for d, view in zip(dtypes, direct) if view is None])))
        if body.run or body.stored or staged:
            builder.emit(f"for {j} in range({n}):")
            with builder.indented():
                i = builder.fresh("i")
                builder.emit(f"{i} = {lo} + {j}")
                body.emit(builder, i)
                for eqn in staged:
                    builder.emit(f"{rows[id(eqn)]}[{j}] = {body.local[id(eqn.inputs[0])]}")
        for part, view, eqn in zip(parts, direct, reductions):
            fold = _emit_lanes_fold(builder, eqn, rows[id(eqn)], n) if view is None else \
                _emit_lanes_fold(builder, eqn, view, n, offset=lo)
            builder.emit(f"{part}[{b}] = {fold}")
    results = []
    for part, eqn in zip(parts, reductions):
        total = _emit_lanes_fold(builder, eqn, part, blocks, lanes=1)
        if _accumulator_dtype(eqn) != eqn.outputs[0].aval.dtype:
            builder.emit(f"{total} = {np_dtype(eqn.outputs[0].aval.dtype)}({total})")
        results.append(total)
    return results


def _accumulator_dtype(eqn: Eqn) -> np.dtype:
    dtype = eqn.outputs[0].aval.dtype
    return np.dtype(np.float64) if eqn.prim.name == "reduce_sum" and dtype == np.float32 \
        else dtype


def _fresh_arrays(builder: Builder, prefix: str, shape: Any, dtypes: list[str]) -> list[str]:
    names = [builder.fresh(prefix) for _ in dtypes]
    for name, dtype in zip(names, dtypes):
        builder.emit(f"{name} = np.empty({shape}, {dtype})")
    return names


def _emit_lanes_fold(builder: Builder, eqn: Eqn, array: str, count: Any,
                     offset: str = "", lanes: int = LANES) -> str:
    """The fold of `array[offset:offset + count]` by `lanes` accumulators taking every
    lanes-th element, then combined pairwise; the name of the result."""
    at = f"{offset} + " if offset else ""
    dtype = _accumulator_dtype(eqn)
    accumulators = [_start_accumulator(builder, eqn, dtype) for _ in range(lanes)]
    whole, k, e = builder.fresh("w"), builder.fresh("k"), builder.fresh("e")
    if lanes > 1:
        builder.emit(f"{whole} = {count} - {count} % {lanes}")
    builder.emit(f"for {k} in range(0, {whole if lanes > 1 else count}, {lanes}):")
    with builder.indented():
        for lane, acc in enumerate(accumulators):
            builder.emit(f"{e} = {array}[{at}{k}{f' + {lane}' if lane else ''}]")
            builder.emit(f"{acc} = {_accumulate(acc, e, eqn.prim.name)}")
    if lanes == 1:
        return accumulators[0]
    builder.emit(f"for {k} in range({whole}, {count}):")
    with builder.indented():
        builder.emit(f"{e} = {array}[{at}{k}]")
        builder.emit(f"{accumulators[0]} = {_accumulate(accumulators[0], e, eqn.prim.name)}")
    while len(accumulators) > 1:
        for a, c in zip(accumulators[::2], accumulators[1::2]):
            builder.emit(f"{a} = {_accumulate(a, c, eqn.prim.name)}")
        accumulators = accumulators[::2]
    return accumulators[0]


PARALLEL_MIN = 1 << 17   # elements: below this, threads cost more than they save


def _loop_range(builder: Builder, size: int, parallel_ok: bool, count: int | None = None) -> str:
    """A `prange` over both cores for large fused loops (numba's own threads), over
    `count` iterations (default `size`)."""
    from fxgrad.config import config
    count = size if count is None else count
    if parallel_ok and config.jit_parallel and size >= PARALLEL_MIN:
        builder.parallel = True
        return f"numba.prange({count})"
    return f"range({count})"


def _start_accumulator(builder: Builder, eqn: Eqn, as_dtype: np.dtype | None = None) -> str:
    """A new accumulator holding the reduction's neutral element."""
    from fxgrad.primitives.reduce import identity_expr
    kind = eqn.prim.name.removeprefix("reduce_")
    acc = builder.fresh("acc")
    builder.emit(f"{acc} = {identity_expr(kind, as_dtype or eqn.outputs[0].aval.dtype)}")
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


def _loop_inputs(builder: Builder, run: list[tuple[int, Eqn]], local: dict[int, Any],
                 flat: dict[int, str], shape: tuple[int, ...]) -> list[tuple[str, str]]:
    """Flat views of array operands defined outside the run; their per-element names."""
    produced = {id(eqn.outputs[0]) for _, eqn in run}
    loads = []
    for _, eqn in run:
        for a in eqn.inputs:
            fill = local.get(id(a)) if isinstance(a, Var) else None
            if isinstance(fill, Fill):
                local[id(a)] = fill.expr   # the same scalar at every element
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
