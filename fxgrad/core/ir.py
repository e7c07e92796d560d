"""Typed programs: the IR that every transformation reads and writes.

A `Program` is a list of equations `outs = primitive[params](ins)` over typed
variables (`Var`, each with a `ShapedArray` aval) and scalar `Literal`s. Its first
`num_consts` inputs are constants captured while tracing; a `ClosedProgram` pairs a
program with their values. Programs print in a jaxpr-like syntax, e.g.
`{ lambda ; a:f64[3]. let b:f64[3] = sin a; c:f64[] = reduce_sum[axes=(0,)] b in (c,) }`.
Programs hold no Python callables: sub-programs (a scan body) are `Program` params.
"""
from __future__ import annotations

import itertools
from typing import Any, Iterable, Sequence

import numpy as np

_DTYPE_NAMES = {
    "float64": "f64", "float32": "f32", "float16": "f16", "int64": "i64", "int32": "i32",
    "int16": "i16", "int8": "i8", "uint8": "u8", "uint32": "u32", "uint64": "u64",
    "bool": "bool", "complex128": "c128", "complex64": "c64",
}


class ShapedArray:
    """Abstract value: what is known of an array while tracing (shape and dtype).

    >>> import numpy as np
    >>> aval = ShapedArray((2, 3), np.float32)
    >>> aval, aval.ndim, aval.size
    (f32[2,3], 2, 6)
    """

    __slots__ = ("shape", "dtype")

    def __init__(self, shape: Iterable[int], dtype: Any):
        self.shape = tuple(int(d) for d in shape)
        self.dtype = np.dtype(dtype)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, ShapedArray) and self.shape == other.shape
                and self.dtype == other.dtype)

    def __hash__(self) -> int:
        return hash((self.shape, self.dtype))

    def str_short(self) -> str:
        name = _DTYPE_NAMES.get(self.dtype.name, self.dtype.name)
        return f"{name}[{','.join(map(str, self.shape))}]"

    __repr__ = str_short


def aval_of(x: Any) -> ShapedArray:
    """The abstract value of a concrete array, Python number or tracer."""
    aval = getattr(x, "aval", None)
    if isinstance(aval, ShapedArray):
        return aval
    arr = np.asarray(x)
    return ShapedArray(arr.shape, arr.dtype)


_var_ids = itertools.count()


class Var:
    """A program variable; identity is the variable."""

    __slots__ = ("aval", "id")

    def __init__(self, aval: ShapedArray):
        self.aval = aval
        self.id = next(_var_ids)

    def __repr__(self) -> str:
        return f"Var({self.id}:{self.aval.str_short()})"


class Literal:
    """A scalar constant written inline in an equation."""

    __slots__ = ("val", "aval")

    def __init__(self, val: Any):
        self.val = np.asarray(val)
        self.aval = ShapedArray((), self.val.dtype)

    def __repr__(self) -> str:
        v = self.val.item()
        return repr(float(v)) if isinstance(v, float) else repr(v)


Atom = Var | Literal


class Eqn:
    """One equation: `outputs = prim[params](inputs)`."""

    __slots__ = ("prim", "inputs", "params", "outputs")

    def __init__(self, prim: Any, inputs: Sequence[Atom], params: dict, outputs: Sequence[Var]):
        self.prim = prim
        self.inputs = list(inputs)
        self.params = dict(params)
        self.outputs = list(outputs)


class Program:
    """A typed straight-line program; the first `num_consts` invars are constants.

    >>> import fxgrad as fx, fxgrad.numpy as fnp
    >>> program = fx.make_jaxpr(lambda x: fnp.sin(x) * 2.0)(1.0).program
    >>> [eqn.prim.name for eqn in program.eqns], program.in_avals, program.out_avals
    (['sin', 'mul'], [f64[]], [f64[]])
    """

    __slots__ = ("invars", "eqns", "outvars", "num_consts")

    def __init__(self, invars: Sequence[Var], eqns: Sequence[Eqn],
                 outvars: Sequence[Atom], num_consts: int = 0):
        self.invars = list(invars)
        self.eqns = list(eqns)
        self.outvars = list(outvars)
        self.num_consts = num_consts

    @property
    def in_avals(self) -> list[ShapedArray]:
        return [v.aval for v in self.invars]

    @property
    def out_avals(self) -> list[ShapedArray]:
        return [v.aval for v in self.outvars]

    def __str__(self) -> str:
        return _Printer().program(self, indent=0)

    __repr__ = __str__


class ClosedProgram:
    """A program together with the values of its constant inputs.

    `fx.make_jaxpr` returns one; it prints as the program it closes over.

    >>> import fxgrad as fx, fxgrad.numpy as fnp
    >>> closed = fx.make_jaxpr(lambda x: fnp.sin(x) * 2.0)(1.0)
    >>> print(closed)
    { lambda ; a:f64[]. let
        b:f64[] = sin a
        c:f64[] = mul b 2.0
      in (c,) }
    >>> closed.consts
    []
    """

    __slots__ = ("program", "consts")

    def __init__(self, program: Program, consts: Sequence[Any]):
        assert len(consts) == program.num_consts
        self.program = program
        self.consts = list(consts)

    @property
    def eqns(self) -> list[Eqn]:
        return self.program.eqns

    @property
    def in_avals(self) -> list[ShapedArray]:
        return self.program.in_avals[self.program.num_consts:]

    @property
    def out_avals(self) -> list[ShapedArray]:
        return self.program.out_avals

    def __call__(self, *args: Any) -> list[Any]:
        from fxgrad.interpreters.evaluation import eval_program
        return eval_program(self.program, [*self.consts, *args])

    def __str__(self) -> str:
        return str(self.program)

    __repr__ = __str__


def dce(program: Program) -> Program:
    """Dead-code elimination: drop equations whose outputs are never used."""
    live = {id(v) for v in program.outvars if isinstance(v, Var)}
    kept = []
    for eqn in reversed(program.eqns):
        if any(id(v) in live for v in eqn.outputs):
            kept.append(eqn)
            live.update(id(a) for a in eqn.inputs if isinstance(a, Var))
    kept.reverse()
    return Program(program.invars, kept, program.outvars, program.num_consts)


def _var_name(n: int) -> str:
    letters = "abcdefghijklmnopqrstuvwxyz"
    name = ""
    while True:
        name = letters[n % 26] + name
        n = n // 26
        if n == 0:
            return name
        n -= 1


class _Printer:
    """Names variables a, b, c, ... in order of appearance and prints programs."""

    def __init__(self) -> None:
        self.names: dict[int, str] = {}

    def name(self, atom: Atom) -> str:
        if isinstance(atom, Literal):
            return repr(atom)
        if id(atom) not in self.names:
            self.names[id(atom)] = _var_name(len(self.names))
        return self.names[id(atom)]

    def binder(self, v: Var) -> str:
        return f"{self.name(v)}:{v.aval.str_short()}"

    def param(self, value: Any, indent: int) -> str:
        if isinstance(value, Program):
            return _Printer().program(value, indent + 4)
        if isinstance(value, tuple) and value and all(isinstance(v, Program) for v in value):
            return "(" + ", ".join(_Printer().program(v, indent + 4) for v in value) + ")"
        if isinstance(value, np.dtype) or isinstance(value, type):
            return np.dtype(value).name
        return repr(value)

    def eqn(self, eqn: Eqn, indent: int) -> str:
        outs = " ".join(self.binder(v) for v in eqn.outputs) or "_"
        params = ""
        if eqn.params:
            items = ", ".join(f"{k}={self.param(v, indent)}" for k, v in eqn.params.items())
            params = f"[{items}]"
        ins = " ".join(self.name(a) for a in eqn.inputs)
        return f"{outs} = {eqn.prim.name}{params} {ins}".rstrip()

    def program(self, p: Program, indent: int) -> str:
        consts = " ".join(self.binder(v) for v in p.invars[:p.num_consts])
        args = " ".join(self.binder(v) for v in p.invars[p.num_consts:])
        pad = " " * indent
        lines = [f"{{ lambda {consts}{' ' if consts else ''}; {args}. let"]
        lines += [f"{pad}    {self.eqn(e, indent)}" for e in p.eqns]
        outs = ", ".join(self.name(v) for v in p.outvars)
        lines.append(f"{pad}  in ({outs}{',' if len(p.outvars) == 1 else ''}) }}")
        return "\n".join(lines)
