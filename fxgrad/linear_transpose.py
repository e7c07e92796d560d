"""`linear_transpose`: the transpose of a linear function, as `jax.linear_transpose`.

`linear_transpose(f, *primals)` traces `f` abstractly at the primals' shapes and
dtypes, with its inputs as the linear variables, and traces the backward pass of
that program once into a transposed program. The returned function evaluates it,
mapping an output cotangent to a tuple of input cotangents. Nothing is linearized:
`f` must already be linear, so a primitive without a transpose rule (`sin`), a
product of two inputs, or a constant offset (`x + 1`) is reported as the error.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from fxgrad.api_util import check_float_inputs, flatten_args, trace_flat
from fxgrad.core.errors import FxTypeError, FxValueError, api_boundary, at_user_line
from fxgrad.core.ir import Program, ShapedArray, aval_of
from fxgrad.core.trace import Tracer, trace_to_program
from fxgrad.interpreters.evaluation import eval_program
from fxgrad.interpreters.jvp import instantiate
from fxgrad.interpreters.transpose import UndefinedPrimal, backward_pass, transpose_rules
from fxgrad.tree_util import PyTreeDef, tree_flatten, tree_unflatten


@api_boundary
def linear_transpose(fun: Callable[..., Any], *primals: Any) -> Callable[[Any], tuple]:
    """The transpose of the linear function `fun`, for inputs shaped like `primals`.

    Returns `f_t(ct)`, mapping a cotangent shaped like `fun`'s output to a tuple of
    cotangents shaped like `primals` (only their shapes and dtypes matter).

    >>> import fxgrad as fx, fxgrad.numpy as fnp, numpy as np
    >>> A = np.array([[1., 2.], [3., 4.], [5., 6.]])
    >>> f_t = fx.linear_transpose(lambda x: fnp.dot(A, x), np.zeros(2))
    >>> f_t(np.array([1., 0., 1.]))
    (array([6., 8.]),)
    """
    flat, in_tree = flatten_args(primals)
    check_float_inputs(flat, "linear_transpose")
    program, consts, store = trace_flat(fun, flat, in_tree, concrete=False)
    _check_no_offset(program, consts)
    transposed, t_consts = _trace_transpose(program, consts)
    out_avals = program.out_avals

    def transpose_fun(ct: Any) -> tuple:
        ct_flat = _check_cotangent(ct, store.tree, out_avals)
        cts_in = eval_program(transposed, [*t_consts, *ct_flat])
        return tree_unflatten(in_tree, cts_in)

    return api_boundary(transpose_fun)


def _nonlinear_error(detail: str) -> FxTypeError:
    return FxTypeError(at_user_line(
        f"linear_transpose: the function is not linear in its inputs ({detail}). Only "
        "linear functions can be transposed: sums, scalings by constants, dot products "
        "with constants, slicing, reshaping. For the derivative of a non-linear function "
        "use fx.vjp."))


def _trace_transpose(program: Program, consts: Sequence[Any]) -> tuple[Program, list[Any]]:
    """The backward pass of `program` traced once into a program from output cotangents
    to input cotangents; a non-linear equation is reported here."""
    lin_avals = program.in_avals[program.num_consts:]
    _check_transposable(program)

    def backward(*cts: Any) -> list[Any]:
        args = [*consts, *map(UndefinedPrimal, lin_avals)]
        cts_in = backward_pass(program, args, list(cts))
        return [instantiate(ct) for ct in cts_in[program.num_consts:]]

    try:
        return trace_to_program(backward, program.out_avals)
    except TypeError as err:   # a transpose rule refusing a non-linear use (x * x)
        raise _nonlinear_error(str(err).split("\n")[0]) from None


def _check_transposable(program: Program) -> None:
    """Every equation reading a value that depends on the inputs must have a transpose."""
    linear = {id(v) for v in program.invars[program.num_consts:]}
    for eqn in program.eqns:
        if not any(id(a) in linear for a in eqn.inputs):
            continue
        if eqn.prim not in transpose_rules:
            raise _nonlinear_error(f"it applies '{eqn.prim.name}' to a value that depends "
                                   "on the inputs")
        linear.update(id(v) for v in eqn.outputs)


def _check_no_offset(program: Program, consts: Sequence[Any]) -> None:
    """A linear function maps zero to zero: catch affine functions such as x + 1.

    Checked when the constants are concrete (not under an enclosing transformation)."""
    if any(isinstance(c, Tracer) for c in consts):
        return
    zeros = [np.zeros(a.shape, a.dtype) for a in program.in_avals[program.num_consts:]]
    with np.errstate(all="ignore"):
        outs = eval_program(program, [*consts, *zeros])
    for i, out in enumerate(outs):
        if np.any(np.abs(np.asarray(out)) > 0):
            raise _nonlinear_error(f"output {i} is not zero when every input is zero: "
                                   "it has a constant offset")


def _check_cotangent(ct: Any, tree: PyTreeDef, avals: list[ShapedArray]) -> list[Any]:
    ct_flat, ct_tree = tree_flatten(ct)
    if ct_tree != tree:
        raise FxValueError(f"linear_transpose: the cotangent has structure {ct_tree}, but "
                           f"the function's output has structure {tree}")
    checked = []
    for i, (c, aval) in enumerate(zip(ct_flat, avals)):
        c_aval = aval_of(c)
        if c_aval.shape != aval.shape:
            raise FxValueError(f"linear_transpose: cotangent {i} has shape {c_aval.shape}, "
                               f"but the output it belongs to has shape {aval.shape}")
        checked.append(c if c_aval.dtype == aval.dtype else _cast(c, aval.dtype))
    return checked


def _cast(x: Any, dtype: np.dtype) -> Any:
    from fxgrad.primitives.shape import convert_element_type
    return convert_element_type(x, dtype)
