"""Primitives, tracers and tracing: how Python code becomes a `Program`.

`Primitive.bind` is the single entry point of every operation. Its operands are
concrete arrays or `Tracer`s. With no tracer among them it checks shapes with the
primitive's shape rule and runs the numpy implementation. Otherwise it records an
equation in the *newest* trace among its operands' traces (each trace gets a higher
level than every trace alive when it was made, so newer means inner); operands from
older traces and concrete arrays are captured as constants of that trace.

A trace may know concrete values for its inputs (tracing for `grad` outside `jit`
does). Then `bool(tracer)` and friends evaluate, lazily and only the equations
needed, so Python control flow on values works as in autograd; an abstract trace
(`make_jaxpr`, `jit`, a scan body) raises `ConcretizationError` instead.
"""
from __future__ import annotations

import contextlib
import itertools
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

import numpy as np

from fxgrad.core.errors import (ConcretizationError, FxTypeError, LeakedTracerError,
                                TracerArrayConversionError, at_user_line)
from fxgrad.core.ir import Atom, Eqn, Literal, Program, ShapedArray, Var, aval_of, dce
from fxgrad.interpreters.evaluation import impl_rules

# Shape/dtype rules: (*avals, **params) -> aval, or a list of avals if multiple_results.
shape_rules: dict["Primitive", Callable[..., Any]] = {}


class Primitive:
    """A named operation; its rules live in the tables of the interpreters."""

    def __init__(self, name: str, multiple_results: bool = False):
        self.name = name
        self.multiple_results = multiple_results

    def bind(self, *args: Any, **params: Any) -> Any:
        return bind(self, args, params)

    def __repr__(self) -> str:
        return self.name


def abstract_eval(prim: Primitive, avals: Sequence[ShapedArray], params: dict) -> list[ShapedArray]:
    """Output avals of `prim` applied to `avals`; shape errors name the user's line."""
    rule = shape_rules.get(prim)
    if rule is None:
        raise NotImplementedError(f"primitive '{prim.name}' has no shape rule")
    try:
        out = rule(*avals, **params)
    except FxTypeError as err:
        raise FxTypeError(at_user_line(str(err))) from None
    return list(out) if prim.multiple_results else [out]


def new_eqn(prim: Primitive, inputs: Sequence[Atom], params: dict) -> Eqn:
    """An equation applying `prim` to `inputs`, with fresh output variables (program
    rewrites build their replacements with it)."""
    avals = abstract_eval(prim, [a.aval for a in inputs], params)
    return Eqn(prim, inputs, params, [Var(a) for a in avals])


def bind(prim: Primitive, args: Sequence[Any], params: dict) -> Any:
    top = _newest_trace(args)
    out_avals = abstract_eval(prim, [aval_of(a) for a in args], params)
    outs: list[Any]
    if top is None:
        outs = _apply_impl(prim, args, params, out_avals)
    else:
        outs = top.record(prim, args, params, out_avals)
    return outs if prim.multiple_results else outs[0]


def _newest_trace(args: Sequence[Any]) -> "Trace | None":
    top = None
    for a in args:
        if isinstance(a, Tracer):
            if not a._trace.alive:
                raise LeakedTracerError(at_user_line(
                    f"a traced value {a.aval.str_short()} was used after the transformation "
                    "that created it finished (a leaked tracer). Do not store traced values "
                    "in globals or closures that outlive the transformed call; return them "
                    "as outputs instead."))
            if top is None or a._trace.level > top.level:
                top = a._trace
    return top


def _apply_impl(prim: Primitive, args: Sequence[Any], params: dict,
                out_avals: list[ShapedArray]) -> list[np.ndarray]:
    rule = impl_rules.get(prim)
    if rule is None:
        raise NotImplementedError(f"primitive '{prim.name}' has no numpy implementation")
    outs = rule(*[np.asarray(a) for a in args], **params)
    outs = outs if prim.multiple_results else [outs]
    return [_conform(np.asarray(o), aval, prim) for o, aval in zip(outs, out_avals)]


def _conform(x: np.ndarray, aval: ShapedArray, prim: Primitive) -> np.ndarray:
    if x.shape != aval.shape:
        raise AssertionError(f"impl of '{prim.name}' gave shape {x.shape}, rule said {aval}")
    return x if x.dtype == aval.dtype else x.astype(aval.dtype)


_levels = itertools.count()


class Trace:
    """Records equations; captures outside values as constants; evaluates lazily."""

    def __init__(self) -> None:
        self.level = next(_levels)
        self.alive = True
        self.invars: list[Var] = []
        self.eqns: list[Eqn] = []
        self.const_vars: list[Var] = []
        self.const_vals: list[Any] = []
        self._const_ids: dict[int, Var] = {}
        self._producer: dict[int, int] = {}   # id(var) -> index of its equation
        self._values: dict[int, Any] = {}     # id(var) -> known concrete value

    def new_arg(self, aval: ShapedArray, value: Any = None) -> "Tracer":
        var = Var(aval)
        self.invars.append(var)
        if value is not None:
            self._values[id(var)] = value
        return Tracer(self, var)

    def atom(self, x: Any) -> Atom:
        """The atom standing for `x` in this trace, capturing it as a constant if needed."""
        if isinstance(x, Tracer):
            if x._trace is self:
                return x._var
        elif np.ndim(x) == 0:
            return Literal(_as_array(x))
        else:
            x = _as_array(x)
        var = self._const_ids.get(id(x))
        if var is None:
            var = Var(aval_of(x))
            self._const_ids[id(x)] = var
            self.const_vars.append(var)
            self.const_vals.append(x)
            self._values[id(var)] = x
        return var

    def record(self, prim: Primitive, args: Sequence[Any], params: dict,
               out_avals: list[ShapedArray]) -> list["Tracer"]:
        inputs = [self.atom(a) for a in args]
        outputs = [Var(aval) for aval in out_avals]
        for v in outputs:
            self._producer[id(v)] = len(self.eqns)
        self.eqns.append(Eqn(prim, inputs, params, outputs))
        return [Tracer(self, v) for v in outputs]

    def build(self, outs: Sequence[Any]) -> tuple[Program, list[Any]]:
        """The program from the inputs to `outs`, dead code removed, and its constants."""
        out_atoms = [self.atom(_check_output(o)) for o in outs]
        program = dce(Program([*self.const_vars, *self.invars], self.eqns, out_atoms,
                              num_consts=len(self.const_vars)))
        return _drop_unused_consts(program, self.const_vals)

    def concrete_value(self, var: Var, why: str) -> Any:
        """The value of `var` at this trace's concrete inputs, evaluating what it needs."""
        if id(var) in self._values:
            return self._values[id(var)]
        index = self._producer.get(id(var))
        if index is None:
            raise _concretization_error(var.aval, why)
        for eqn in self._needed_eqns(var, index):
            ins = [self._known(a, why) for a in eqn.inputs]
            outs = eqn.prim.bind(*ins, **eqn.params)
            outs = outs if eqn.prim.multiple_results else [outs]
            self._values.update((id(v), o) for v, o in zip(eqn.outputs, outs))
        return self._values[id(var)]

    def _needed_eqns(self, var: Var, index: int) -> list[Eqn]:
        needed, todo = {id(var)}, []
        for eqn in reversed(self.eqns[:index + 1]):
            if any(id(o) in needed and id(o) not in self._values for o in eqn.outputs):
                todo.append(eqn)
                needed.update(id(a) for a in eqn.inputs if isinstance(a, Var))
        return todo[::-1]

    def _known(self, atom: Atom, why: str) -> Any:
        if isinstance(atom, Literal):
            return atom.val
        if id(atom) not in self._values:
            raise _concretization_error(atom.aval, why)
        return self._values[id(atom)]

    def close(self) -> None:
        self.alive = False
        self._values = {}


def _as_array(x: Any) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype == object or arr.dtype.kind in "USV":
        raise FxTypeError(at_user_line(
            f"expected an array or number, got {type(x).__name__} ({arr.dtype})"))
    return arr


def _check_output(x: Any) -> Any:
    if isinstance(x, Tracer):
        return x
    try:
        return _as_array(x)
    except FxTypeError:
        raise FxTypeError(at_user_line(
            f"a transformed function must return arrays (or pytrees of arrays); "
            f"it returned a {type(x).__name__}")) from None


def _drop_unused_consts(program: Program, consts: list[Any]) -> tuple[Program, list[Any]]:
    used = {id(a) for e in program.eqns for a in e.inputs}
    used.update(id(v) for v in program.outvars)
    keep = [i for i, v in enumerate(program.invars[:program.num_consts]) if id(v) in used]
    const_vars = [program.invars[i] for i in keep]
    invars = const_vars + program.invars[program.num_consts:]
    return Program(invars, program.eqns, program.outvars, len(keep)), [consts[i] for i in keep]


def _concretization_error(aval: ShapedArray, why: str) -> ConcretizationError:
    return ConcretizationError(at_user_line(
        f"{why} needs a concrete value, but got an abstract traced value {aval.str_short()}. "
        "Inside jit, vmap, make_jaxpr or a scan body, values are abstract: use fx.cond (or "
        "fx.switch) to branch on a traced value, fnp.where to choose per element, fx.scan "
        "for data-dependent loops, or mark the argument static with static_argnums if it "
        "is a Python constant."))


@contextlib.contextmanager
def new_trace() -> Iterator[Trace]:
    trace = Trace()
    try:
        yield trace
    finally:
        trace.close()


def trace_to_program(fun: Callable[..., Sequence[Any]], in_avals: Sequence[ShapedArray],
                     in_values: Sequence[Any] | None = None) -> tuple[Program, list[Any]]:
    """Trace `fun` (flat arrays in, flat list out) to a program and its constants.

    With `in_values`, the trace knows the concrete inputs, so Python control flow
    on traced values works; without, the trace is abstract.
    """
    values = in_values if in_values is not None else [None] * len(in_avals)
    with new_trace() as trace:
        args = [trace.new_arg(aval, v) for aval, v in zip(in_avals, values)]
        return trace.build(list(fun(*args)))


class Tracer:
    """A value being traced: a variable of a trace. Operators come from fxgrad.numpy."""

    __slots__ = ("_trace", "_var")
    __array_priority__ = 1000

    if TYPE_CHECKING:  # installed by fxgrad.numpy.array_methods
        def __getitem__(self, index: Any) -> Any: ...

    def __init__(self, trace: Trace, var: Var):
        self._trace = trace
        self._var = var

    @property
    def aval(self) -> ShapedArray:
        return self._var.aval

    @property
    def shape(self) -> tuple[int, ...]:
        return self._var.aval.shape

    @property
    def dtype(self) -> np.dtype:
        return self._var.aval.dtype

    @property
    def ndim(self) -> int:
        return self._var.aval.ndim

    @property
    def size(self) -> int:
        return self._var.aval.size

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d traced array")
        return self.shape[0]

    def __iter__(self) -> Iterator[Any]:
        if not self.shape:
            raise TypeError("iteration over a 0-d traced array")
        return (self[i] for i in range(self.shape[0]))

    def concrete(self, why: str) -> Any:
        """This value as a concrete array, evaluating through older traces if needed."""
        if not self._trace.alive:
            raise LeakedTracerError(at_user_line(
                f"{why} on a traced value whose transformation has finished (a leaked tracer)"))
        value = self._trace.concrete_value(self._var, why)
        return value.concrete(why) if isinstance(value, Tracer) else value

    def __bool__(self) -> bool:
        return bool(self.concrete("a Python `if`/`while`/`and`/`or`/bool() on a traced value"))

    def __float__(self) -> float:
        return float(self.concrete("float() of a traced value"))

    def __int__(self) -> int:
        return int(self.concrete("int() of a traced value"))

    def __complex__(self) -> complex:
        return complex(self.concrete("complex() of a traced value"))

    def __index__(self) -> int:
        if self.dtype.kind not in "iub":
            raise TypeError(f"only integer arrays can be used as an index, got {self.dtype}")
        return int(self.concrete("using a traced value as a Python index"))

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        raise TracerArrayConversionError(at_user_line(
            f"a traced value {self.aval.str_short()} was passed to plain numpy "
            "(np.asarray or a numpy function fxgrad does not know). Plain numpy cannot see "
            "through transformations: use the same function from fxgrad.numpy "
            "(import fxgrad.numpy as fnp)."))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Traced<{self.aval.str_short()}>"
