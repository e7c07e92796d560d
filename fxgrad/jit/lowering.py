"""Lowering: a program becomes the Python source of one numba-compiled function.

`lowering_rules` (owned here) maps each primitive to one of two kinds of rule:

* `Elementwise(expr)`: `expr(ctx, *operand_exprs, **params) -> str`, a scalar
  expression. Runs of elementwise equations over one shape are *fused*: they become
  a single loop over the flat index, and only values needed outside the run are
  stored to arrays.
* `Statement(emit)`: `emit(ctx, *operand_names, **params)` writes statements that
  assign `ctx.outs` using numba-supported numpy (and loops). `scan` lowers this way,
  its body lowered recursively inside a native `for` loop.

Rank-0 values are numba scalars; arrays are always C-contiguous. Float literals are
hoisted into kernel parameters, so programs differing only in constant values
produce the same source and share compiled code.
"""
from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator, NamedTuple, Sequence

import numpy as np

from fxgrad.core.errors import FxTypeError
from fxgrad.core.ir import Eqn, Literal, Program, ShapedArray, Var
from fxgrad.jit import runtime, vecmath


class Elementwise(NamedTuple):
    expr: Callable[..., str]


class Statement(NamedTuple):
    emit: Callable[..., None]


lowering_rules: dict[Any, Elementwise | Statement] = {}

# Scalar helper functions a rule may call by name (`ctx.helper(name)`); the kernel
# module defines the ones it uses.
HELPERS: dict[str, str] = {
    # tanh in two libm calls' time: expm1 near 0 (accuracy), exp elsewhere; <= 2 ulp.
    "fx_tanh": """
@njit(cache=True, nogil=True)
def fx_tanh(x):
    a = abs(x)
    if a < 0.55:
        e = math.expm1(2.0 * x)
        return e / (e + 2.0)
    if a > 22.0:
        return math.copysign(1.0, x)
    return math.copysign(1.0 - 2.0 / (math.exp(2.0 * a) + 1.0), x)
""",
    # SIMD libm functions (see fxgrad.jit.vecmath), imported rather than defined
    **{helper: f"from fxgrad.jit.vecmath import {helper}"
       for name in vecmath.UNARY for helper in (f"vm_{name}", f"vm_{name}f", f"vmx_{name}")},
}


def def_elementwise_lowering(prim: Any) -> Callable[[Callable[..., str]], Callable[..., str]]:
    """Register `rule(ctx, *operand_exprs, **params) -> scalar expression` for `prim`."""
    def register(rule: Callable[..., str]) -> Callable[..., str]:
        lowering_rules[prim] = Elementwise(rule)
        return rule
    return register


def def_lowering(prim: Any) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Register `rule(ctx, *operand_names, **params)` emitting statements for `prim`."""
    def register(rule: Callable[..., None]) -> Callable[..., None]:
        lowering_rules[prim] = Statement(rule)
        return rule
    return register


def np_dtype(dtype: Any) -> str:
    """The numba-visible spelling of a dtype, e.g. 'np.float64'."""
    return f"np.{np.dtype(dtype).name}"


class Kernel(NamedTuple):
    source: str          # module source defining `kernel`
    num_literals: int
    literals: list[Any]  # hoisted float literal values, in parameter order
    out_param: bool = False   # takes the output array as its last parameter, returns None


# At the top level only arrays this small are scalarized: there, moving and padding
# them (as a gradient gathered from a few scalars is) costs numba far more to compile
# as loops than as renamed scalars, while larger arrays compile faster as loops.
TOP_SCALAR_LIMIT = 4


class Builder:
    """Accumulates the lines of the kernel; names values; hoists literals."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.indent = 1
        self.counter = 0
        self.literals: list[Any] = []
        self.literal_names: list[str] = []
        self.literal_index: dict[tuple[str, bytes], str] = {}
        self.zero_literals: set[str] = set()
        self.helpers: set[str] = set()
        self.parallel = False             # some loop is a prange: compile with parallel=True
        self.scalarize = False            # inside scan bodies: small arrays as scalars
        # arrays of at most this many elements are held as scalars (see jit.scalarize):
        # tiny ones everywhere, up to scalarize.LIMIT inside scan bodies
        self.scalar_limit = TOP_SCALAR_LIMIT
        self.materialized: dict[int, tuple[str, Any]] = {}
        self.loaded: dict[str, Any] = {}
        # id(output var) -> (donated input name, index of that input's last use)
        self.buffers: dict[int, tuple[str, int]] = {}
        self.preambles: list[dict[str, Any]] = []   # the scan loops being lowered, innermost last

    def fresh(self, prefix: str = "v") -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    @contextlib.contextmanager
    def loop(self) -> Iterator[None]:
        """Around the emission of a loop: `before_loop` may add statements ahead of it."""
        self.preambles.append({"index": len(self.lines), "indent": self.indent, "names": {}})
        try:
            yield
        finally:
            self.preambles.pop()

    def before_loop(self, key: Any, statements: Callable[[str], list[str]]) -> str | None:
        """A value computed once ahead of the innermost loop being lowered (None outside
        one): `statements(name)` define `name`, emitted on the first request for `key`."""
        if not self.preambles:
            return None
        preamble = self.preambles[-1]
        if key not in preamble["names"]:
            name = self.fresh("p")
            lines = ["    " * preamble["indent"] + line for line in statements(name)]
            self.lines[preamble["index"]:preamble["index"]] = lines
            preamble["index"] += len(lines)
            preamble["names"][key] = name
        return str(preamble["names"][key])

    def emit(self, line: str) -> None:
        self.lines.append("    " * self.indent + line)

    @staticmethod
    def flat(name: str, shape: Sequence[int]) -> str:
        """A flat view of C-contiguous array `name` (itself when already flat: numba
        compiles a helper for the first `reshape` in a process)."""
        return name if len(shape) == 1 else f"{name}.reshape({int(np.prod(shape))})"

    @contextlib.contextmanager
    def indented(self) -> Iterator[None]:
        self.indent += 1
        try:
            yield
        finally:
            self.indent -= 1

    def is_zero(self, expr: str) -> bool:
        """Whether `expr` names a hoisted float literal equal to zero."""
        return expr in self.zero_literals

    def literal(self, lit: Literal) -> str:
        value = lit.val
        if value.dtype.kind == "f":
            key = (value.dtype.str, value.tobytes())
            if key not in self.literal_index:
                self.literal_index[key] = f"lit{len(self.literals)}"
                self.literals.append(value[()])   # a numpy scalar: numba types it as one
                self.literal_names.append(self.literal_index[key])
                if value == 0:
                    self.zero_literals.add(self.literal_index[key])
            return self.literal_index[key]
        if value.dtype.kind == "b":
            return "True" if bool(value) else "False"
        return f"{np_dtype(value.dtype)}({value.item()!r})"


class Ctx:
    """What a lowering rule sees: operand/output avals, output names, the builder."""

    def __init__(self, builder: Builder, eqn: Eqn, outs: list[str]):
        self.builder = builder
        self.in_avals = [a.aval for a in eqn.inputs]
        self.out_avals = [v.aval for v in eqn.outputs]
        self.outs = outs

    @property
    def out_aval(self) -> ShapedArray:
        return self.out_avals[0]

    def emit(self, line: str) -> None:
        self.builder.emit(line)

    def fresh(self, prefix: str = "t") -> str:
        return self.builder.fresh(prefix)

    def indented(self) -> Any:
        return self.builder.indented()

    def helper(self, name: str) -> str:
        """The name of scalar helper function `name` (see HELPERS), defined in the kernel."""
        self.builder.helpers.add(name)
        return name

    def math_call(self, name: str, x: str, scalar_module: str = "np") -> str:
        """`name(x)` for a libm function: the vectorizable `vm_<name>` (float64) or
        `vm_<name>f` (float32) where fxgrad.jit.vecmath is available, numba's scalar
        `np.<name>` otherwise."""
        vector = vecmath.lowering_name(name, self.in_avals[0].dtype)
        return f"{self.helper(vector)}({x})" if vector else f"{scalar_module}.{name}({x})"

    def cast(self, expr: str, dtype: Any = None) -> str:
        """`expr` converted to the output dtype (numba may promote float32 to float64)."""
        return f"{np_dtype(dtype or self.out_aval.dtype)}({expr})"

    def const(self, value: Any, dtype: Any) -> str:
        """A typed scalar constant expression."""
        return f"{np_dtype(dtype)}({np.asarray(value).item()!r})"

    def lower_program(self, program: Program, in_names: Sequence[Any],
                      scalarize: bool = False) -> list[Any]:
        """Emit `program` inline. With `scalarize`, small arrays may be passed and come
        back as `scalarize.Elems` (scalars per element) instead of array names."""
        from fxgrad.jit.scalarize import LIMIT
        builder = self.builder
        saved = builder.scalarize, builder.scalar_limit
        builder.scalarize = scalarize
        builder.scalar_limit = LIMIT if scalarize else builder.scalar_limit
        try:
            return lower_into(builder, program, in_names, raw=scalarize)
        finally:
            builder.scalarize, builder.scalar_limit = saved


class Fill(NamedTuple):
    """A rank-0 value broadcast to an array (the 0.0 of `where(c, x, 0.0)`): inside
    fused loops each element is `expr` itself; an array is filled only where a
    statement needs one (see `_read`)."""
    expr: str
    aval: ShapedArray


def _is_fill(eqn: Eqn) -> bool:
    return eqn.prim.name == "broadcast_in_dim" and eqn.inputs[0].aval.shape == () and \
        eqn.outputs[0].aval.shape != ()


def _is_scalar(eqn: Eqn) -> bool:
    """An elementwise equation on rank-0 values: one scalar statement."""
    return eqn.outputs[0].aval.shape == () and isinstance(_rule(eqn), Elementwise) and \
        all(a.aval.shape == () for a in eqn.inputs)


def _rule(eqn: Eqn) -> Elementwise | Statement:
    rule = lowering_rules.get(eqn.prim)
    if rule is None:
        raise FxTypeError(f"jit: primitive '{eqn.prim.name}' has no numba lowering yet; "
                          "call the function without fx.jit")
    return rule


def _fusible(eqn: Eqn) -> bool:
    if not isinstance(_rule(eqn), Elementwise):
        return False
    shape = eqn.outputs[0].aval.shape
    return shape != () and all(a.aval.shape in (shape, ()) for a in eqn.inputs)


def lower_into(builder: Builder, program: Program, in_names: Sequence[Any],
               raw: bool = False) -> list[Any]:
    """Emit statements computing `program`; return the names/exprs of its outputs
    (`Elems` stay unmaterialized with `raw`)."""
    env: dict[int, Any] = {id(v): n for v, n in zip(program.invars, in_names)}
    lowering = _Lowering(builder, env, _uses_after(program))
    for index, eqn in enumerate(program.eqns):
        lowering.add(index, eqn)
    lowering.flush()
    if raw:
        return [builder.literal(v) if isinstance(v, Literal) else
                _read(builder, env, v) if isinstance(env[id(v)], Fill) else env[id(v)]
                for v in program.outvars]
    return [_read(builder, env, v) for v in program.outvars]


class _Lowering:
    """The equations of one program in order, elementwise ones gathered into the pending
    fused run (fxgrad.jit.fusion). Small statements (scalar arithmetic, scalarized
    small arrays, fills) that read one of the run's reductions, final only after its
    loop, wait for the loop (`deferred`), so that equations after them that do not read
    them still join the run; small statements that read nothing of the run are emitted
    before its loop."""

    def __init__(self, builder: Builder, env: dict[int, Any], uses: dict[int, int]):
        self.builder, self.env, self.uses = builder, env, uses
        self.run: list[tuple[int, Eqn]] = []
        self.deferred: list[tuple[int, Eqn]] = []

    def add(self, index: int, eqn: Eqn) -> None:
        from fxgrad.jit import fusion, scalarize
        late = self._late(eqn)
        handler = scalarize.scalar_handler(eqn, lowering_rules, self.builder.scalar_limit)
        if (handler is not None or _is_fill(eqn) or _is_scalar(eqn)) and late:
            self.deferred.append((index, eqn))
        elif handler is not None:
            scalarize.lower_scalarized(self.builder, eqn, self.env, handler)
        elif _is_scalar(eqn):
            _lower_eqn(self.builder, eqn, self.env)
        elif _is_fill(eqn):
            self.env[id(eqn.outputs[0])] = Fill(_read(self.builder, self.env, eqn.inputs[0]),
                                                eqn.outputs[0].aval)
        elif self._joins(index, eqn, late):
            self.run.append((index, eqn))
        else:
            self.flush()
            if _fusible(eqn) or fusion.starts_reduction(eqn):
                self.run = [(index, eqn)]
            else:
                _lower_eqn(self.builder, eqn, self.env)

    def _late(self, eqn: Eqn) -> bool:
        """Whether `eqn` reads a value known only after the pending run's loop: one of
        its reductions, a statement waiting for it, or (not being elementwise) one of
        its arrays."""
        if not self.run:
            return False
        from fxgrad.jit.fusion import reads_reduction
        waiting = {id(v) for _, e in self.deferred for v in e.outputs}
        produced = {id(e.outputs[0]) for _, e in self.run}
        return reads_reduction(eqn, self.run) or any(id(a) in waiting for a in eqn.inputs) \
            or (not _fusible(eqn) and any(id(a) in produced for a in eqn.inputs))

    def _joins(self, index: int, eqn: Eqn, late: bool) -> bool:
        from fxgrad.jit.fusion import joins_as_reduction, run_shape, starts_reduction
        if not self.run:
            return False
        if joins_as_reduction(eqn, self.run):
            return True
        loops = _fusible(eqn) or starts_reduction(eqn)
        return loops and not late and run_shape(self.run) == run_shape([(index, eqn)])

    def flush(self) -> None:
        """Emit the pending run's loop, then the statements that waited for it."""
        from fxgrad.jit.fusion import flush
        flush(self.builder, self.run, self.env, self.uses)
        self.run = []
        deferred, self.deferred = self.deferred, []
        for index, eqn in deferred:
            self.add(index, eqn)


def _uses_after(program: Program) -> dict[int, int]:
    """id(var) -> index of its last use (len(eqns) for program outputs)."""
    last: dict[int, int] = {}
    for index, eqn in enumerate(program.eqns):
        for a in eqn.inputs:
            if isinstance(a, Var):
                last[id(a)] = index
    for v in program.outvars:
        if isinstance(v, Var):
            last[id(v)] = len(program.eqns)
    return last


def _read(builder: Builder, env: dict[int, Any], atom: Any) -> str:
    if isinstance(atom, Literal):
        return builder.literal(atom)
    value = env[id(atom)]
    if isinstance(value, Fill):   # a statement needs the array: fill it once
        name = builder.fresh("v")
        builder.emit(f"{name} = np.full({value.aval.shape!r}, {value.expr}, "
                     f"{np_dtype(value.aval.dtype)})")
        value = env[id(atom)] = name
    if isinstance(value, str):
        return value
    from fxgrad.jit.scalarize import materialize
    return materialize(builder, value)


def _lower_eqn(builder: Builder, eqn: Eqn, env: dict[int, str]) -> None:
    rule = _rule(eqn)
    outs = [builder.fresh() for _ in eqn.outputs]
    ins = [_read(builder, env, a) for a in eqn.inputs]
    ctx = Ctx(builder, eqn, outs)
    if isinstance(rule, Elementwise):   # rank-0: a plain scalar statement
        builder.emit(f"{outs[0]} = {rule.expr(ctx, *ins, **eqn.params)}")
    else:
        rule.emit(ctx, *ins, **eqn.params)
    env.update((id(v), n) for v, n in zip(eqn.outputs, outs))


def lower_program(program: Program, donated: Sequence[int] = (),
                  out_param: bool = False) -> Kernel:
    """The source of `kernel(*inputs, *literals)` computing `program`'s outputs.

    Outputs computed by a fused loop are written in place into the donated inputs
    (indices into `program.invars`) of the same type, once nothing reads them any more.
    With `out_param`, a single output that is rank-0, or that a fused loop or scalarized
    code computes (into no donated input), is written into a last parameter `out` the
    caller allocates; the kernel then returns None, which numba boxes far faster than
    a new array.
    """
    builder = Builder()
    in_names = [f"in{i}" for i in range(len(program.invars))]
    builder.buffers = _match_donations(program, donated, in_names)
    out_var = program.outvars[0] if len(program.outvars) == 1 else None
    if out_param and isinstance(out_var, Var) and out_var.aval.shape \
            and id(out_var) not in builder.buffers and out_var not in program.invars:
        builder.buffers[id(out_var)] = ("out", -1)
    scalar_out = out_param and len(program.outvars) == 1 and not program.outvars[0].aval.shape
    written = {name for name, _ in builder.buffers.values()}
    outs = _arrays_out(builder, program, lower_into(builder, program, in_names, raw=True))
    written -= {name for name, _ in builder.buffers.values()}
    aliased = {id(a) for v in program.invars for a in _views_of(program, v)}
    outs = [f"np.copy({o})" if isinstance(v, Var) and id(v) in aliased and o not in written
            and v.aval.shape else o for o, v in zip(outs, program.outvars)]
    # subnormals flushed to zero inside the kernel (see fxgrad.jit.runtime); not where
    # numba's worker threads run loops: they would inherit the mode if started here
    flush = runtime.enabled() and not builder.parallel
    if flush:
        builder.lines.insert(0, "    fpenv0 = flush_enter()")
        builder.emit("flush_exit(fpenv0)")
    if scalar_out:   # a rank-0 output is stored into a 0-d `out`
        builder.emit(f"out[()] = {outs[0]}")
        outs = ["out"]
    into_out = outs == ["out"]
    builder.emit("return" if into_out else
                 f"return ({', '.join(outs)}{',' if len(outs) == 1 else ''})")
    params = ", ".join(in_names + builder.literal_names + (["out"] if into_out else []))
    helpers = [HELPERS[name] for name in sorted(builder.helpers)]
    if flush:
        helpers.append("from fxgrad.jit.runtime import flush_enter, flush_exit")
    options = "cache=True, nogil=True" + (", parallel=True" if builder.parallel else "")
    header = ["import math", "import numba", "import numpy as np", "from numba import njit", "",
              *helpers, "", f"@njit({options})", f"def kernel({params}):"]
    source = "\n".join(header + builder.lines) + "\n"
    return Kernel(source, len(builder.literals), builder.literals, into_out)


def _arrays_out(builder: Builder, program: Program, outs: list[Any]) -> list[str]:
    """The output names, scalarized outputs stored to arrays: into their buffer (`out`
    or a donated input: their elements are all in locals by now) if they have one."""
    from fxgrad.jit.scalarize import Elems, materialize
    names = []
    for v, value in zip(program.outvars, outs):
        if isinstance(value, Elems) and id(v) in builder.buffers:
            buffer, _ = builder.buffers.pop(id(v))
            flat = builder.fresh("f")
            builder.emit(f"{flat} = {builder.flat(buffer, v.aval.shape)}")
            for k, expr in enumerate(value.exprs):
                builder.emit(f"{flat}[{k}] = {expr}")
            value = buffer
        names.append(materialize(builder, value) if isinstance(value, Elems) else value)
    return names


_VIEWS = {"reshape", "squeeze", "expand_dims"}   # lowerings that may return views


def _views_of(program: Program, var: Var) -> list[Var]:
    """`var` and the values its lowering may share memory with (reshapes of it)."""
    views, ids = [var], {id(var)}
    for eqn in program.eqns:
        if eqn.prim.name in _VIEWS and id(eqn.inputs[0]) in ids:
            views.append(eqn.outputs[0])
            ids.add(id(eqn.outputs[0]))
    return views


def _match_donations(program: Program, donated: Sequence[int],
                     in_names: list[str]) -> dict[int, tuple[str, int]]:
    last_use = _uses_after(program)
    free = [program.invars[i] for i in donated]
    matches = {}
    for v in program.outvars:
        match = next((d for d in free if isinstance(v, Var) and d.aval == v.aval
                      and v not in program.invars), None)
        if match is not None and match.aval.shape:
            free.remove(match)
            name = in_names[program.invars.index(match)]
            dead_after = max(last_use.get(id(a), -1) for a in _views_of(program, match))
            matches[id(v)] = (name, dead_after)
    return matches
