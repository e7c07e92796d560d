"""Plumbing shared by the public transformations: pytree flattening of functions,
argument checking (`argnums`, dtypes, tangent shapes) and the linearize step that
every reverse-mode transformation is built on.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from fxgrad.core.errors import FxTypeError, FxValueError
from fxgrad.core.ir import Program, ShapedArray, aval_of
from fxgrad.core.trace import Tracer, new_trace, trace_to_program
from fxgrad.interpreters.evaluation import eval_program
from fxgrad.interpreters.jvp import Zero, instantiate, jvp_program, tangent_dtype
from fxgrad.interpreters.transpose import UndefinedPrimal, backward_pass
from fxgrad.tree_util import PyTreeDef, tree_flatten, tree_unflatten


def as_input(x: Any, what: str) -> Any:
    """A leaf argument as a tracer or a numpy array; rejects non-numeric leaves."""
    if isinstance(x, Tracer):
        return x
    arr = np.asarray(x)
    if arr.dtype == object or arr.dtype.kind in "USVMm":
        raise FxTypeError(f"{what} must be an array or number, got {type(x).__name__}")
    if not arr.dtype.isnative:   # byte-swapped data (e.g. read from a file): same values
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return arr


def flatten_args(args: Sequence[Any], what: str = "argument") -> tuple[list[Any], PyTreeDef]:
    leaves, tree = tree_flatten(tuple(args))
    return [as_input(x, what) for x in leaves], tree


class OutStore:
    """Remembers the output pytree structure of a traced function."""

    def __init__(self) -> None:
        # set when the function is traced, which every user of a store does first
        self.tree: PyTreeDef = None  # type: ignore[assignment]
        self.aux_tree: PyTreeDef = None  # type: ignore[assignment]
        self.num_main = 0


def flatten_fun(fun: Callable[..., Any], in_tree: PyTreeDef,
                has_aux: bool = False) -> tuple[Callable[..., list[Any]], OutStore]:
    """`fun` as a function of flat leaves returning flat leaves (main outputs first)."""
    store = OutStore()

    def flat_fun(*leaves: Any) -> list[Any]:
        out = fun(*tree_unflatten(in_tree, leaves))
        if has_aux:
            if not (isinstance(out, (tuple, list)) and len(out) == 2):
                raise FxValueError("has_aux=True needs the function to return a pair (output, aux)")
            out, aux = out
            aux_leaves, store.aux_tree = tree_flatten(aux)
        else:
            aux_leaves = []
        out_leaves, store.tree = tree_flatten(out)
        store.num_main = len(out_leaves)
        return [*out_leaves, *aux_leaves]

    return flat_fun, store


def normalize_argnums(argnums: int | Sequence[int], nargs: int, name: str) -> tuple[int, ...]:
    nums = (argnums,) if isinstance(argnums, int) else (
        tuple(argnums) if isinstance(argnums, (tuple, list)) else ())
    if not nums or not all(isinstance(i, int) for i in nums):
        raise FxValueError(f"{name}: argnums must be an int or a non-empty tuple of ints, "
                           f"got {argnums!r}")
    for i in nums:
        if not -nargs <= i < nargs:
            raise FxValueError(
                f"{name}: argnums={argnums!r} is out of range for a call with {nargs} "
                f"positional argument{'s' if nargs != 1 else ''}; valid values are "
                f"0..{nargs - 1} (or negative from the end)")
    return tuple(i % nargs for i in nums)


def split_args(fun: Callable[..., Any], args: Sequence[Any], kwargs: dict,
               argnums: tuple[int, ...]) -> tuple[Callable[..., Any], tuple[Any, ...]]:
    """`fun` as a function of the argnums arguments only, the others fixed."""
    dyn = tuple(args[i] for i in argnums)

    def partial_fun(*dyn_args: Any) -> Any:
        full = list(args)
        for i, a in zip(argnums, dyn_args):
            full[i] = a
        return fun(*full, **kwargs)

    return partial_fun, dyn


def check_float_inputs(leaves: Sequence[Any], name: str) -> None:
    for i, x in enumerate(leaves):
        dtype = aval_of(x).dtype
        if dtype.kind not in "fc":
            raise FxTypeError(
                f"{name} differentiates with respect to real or complex floating-point "
                f"inputs, but input leaf {i} has dtype {dtype.name}. Pass floats (e.g. 4.0, "
                f"not 4, or x.astype(float)), or leave that argument out of argnums.")


def trace_flat(fun: Callable[..., Any], flat_args: Sequence[Any], in_tree: PyTreeDef,
               has_aux: bool = False, concrete: bool = True) -> tuple[Program, list[Any], OutStore]:
    flat_fun, store = flatten_fun(fun, in_tree, has_aux)
    avals = [aval_of(x) for x in flat_args]
    program, consts = trace_to_program(flat_fun, avals, flat_args if concrete else None)
    return program, consts, store


class LinearMap:
    """The linear part of a function at a point: a program over tangents, with residuals."""

    def __init__(self, program: Program, consts: list[Any], in_avals: list[ShapedArray],
                 diff_mask: list[bool]):
        self.program = program
        self.consts = consts
        self.in_avals = in_avals
        self.diff_mask = diff_mask

    def apply(self, tangents: Sequence[Any]) -> list[Any]:
        diff = [instantiate(t) for t, d in zip(tangents, self.diff_mask) if d]
        return eval_program(self.program, [*self.consts, *diff])

    def transpose(self, cts: Sequence[Any]) -> list[Any]:
        """Cotangents of all inputs (zeros for non-differentiable ones)."""
        lin_in = [UndefinedPrimal(v.aval) for v in self.program.invars[self.program.num_consts:]]
        cts_in = backward_pass(self.program, [*self.consts, *lin_in], cts)
        it = iter(cts_in[self.program.num_consts:])
        return [instantiate(next(it)) if d else instantiate(Zero(a))
                for a, d in zip(self.in_avals, self.diff_mask)]


def linearize_program(program: Program, consts: Sequence[Any], args: Sequence[Any],
                      num_main: int) -> tuple[list[Any], LinearMap]:
    """Evaluate `program` and stage out the linear map of its first `num_main` outputs.

    The tangents are the inputs of a fresh trace, so the JVP rules' tangent arithmetic
    is recorded while their primal arithmetic runs (or records in older traces).
    """
    avals = [aval_of(a) for a in args]
    diff_mask = [a.dtype.kind in "fc" for a in avals]
    with new_trace() as lin:
        tangents = [lin.new_arg(ShapedArray(a.shape, tangent_dtype(a.dtype))) if d else Zero(a)
                    for a, d in zip(avals, diff_mask)]
        outs, t_outs = jvp_program(program, [*consts, *args],
                                   [*(Zero(aval_of(c)) for c in consts), *tangents])
        lin_program, lin_consts = lin.build([instantiate(t) for t in t_outs[:num_main]])
    return outs, LinearMap(lin_program, lin_consts, avals, diff_mask)
