"""Jacobians and Hessians: jacfwd, jacrev, hessian.

Both Jacobians linearize the function once and then apply its linear map to basis
vectors: `jacfwd` pushes one tangent per input element through the linear program,
`jacrev` pulls one cotangent per output element back through its transpose. The
linear map is `vmap`ped over the rows of an identity matrix, so the traced (and
jitted) program does not grow with the dimension. The
result has, for each output leaf, a pytree like the differentiated arguments whose
leaves have shape `out.shape + in.shape`. `hessian` is `jacfwd(jacrev(f))`.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from fxgrad.api_util import (LinearMap, check_float_inputs, flatten_args, linearize_program,
                             normalize_argnums, split_args, trace_flat)
from fxgrad.core.errors import api_boundary
from fxgrad.core.ir import ShapedArray, aval_of
from fxgrad.interpreters.jvp import Zero
from fxgrad.tree_util import tree_structure, tree_unflatten

Blocks = list[list[Any]]  # blocks[o][k]: d out_o / d in_k, shape out_o.shape + in_k.shape


def _basis(aval: ShapedArray, j: int) -> np.ndarray:
    e = np.zeros(aval.size, aval.dtype)
    e[j] = 1
    return e.reshape(aval.shape)


def _map_basis(linear: Callable[..., list[Any]], aval: ShapedArray) -> list[Any]:
    """`linear` applied to each basis vector of `aval`, results stacked on a new axis 0.

    One application is traced and `vmap`ped over the rows of the identity, so the
    program stays the same size whatever the dimension and matrix-vector products
    become matrix-matrix products."""
    import fxgrad.numpy as fnp
    from fxgrad.batching_api import vmap
    if aval.size == 1:
        return [fnp.expand_dims(r, 0) for r in linear(_basis(aval, 0))]
    eye = np.eye(aval.size, dtype=aval.dtype).reshape((aval.size,) + aval.shape)
    return list(vmap(lambda e: tuple(linear(e)))(eye))


def _to_block(stacked: Any, out_aval: ShapedArray, in_aval: ShapedArray, rows_are_outputs: bool) -> Any:
    """Rows stacked per basis vector -> a block of shape out.shape + in.shape."""
    import fxgrad.numpy as fnp
    shape = out_aval.shape + in_aval.shape
    if rows_are_outputs:   # (out.size, *in.shape)
        return fnp.reshape(stacked, shape)
    rows = fnp.reshape(stacked, (in_aval.size, out_aval.size))   # (in.size, *out.shape)
    return fnp.reshape(fnp.transpose(rows), shape)


def _forward_blocks(lin: LinearMap, out_avals: list[ShapedArray]) -> Blocks:
    zeros = [Zero(a) for a in lin.in_avals]
    blocks: list[list[Any]] = [[None] * len(lin.in_avals) for _ in out_avals]
    for k, aval in enumerate(lin.in_avals):
        if aval.size == 0:
            cols = [np.zeros((0,) + o.shape, o.dtype) for o in out_avals]
        else:
            cols = _map_basis(lambda e, k=k: lin.apply([*zeros[:k], e, *zeros[k + 1:]]), aval)
        for o, out_aval in enumerate(out_avals):
            blocks[o][k] = _to_block(cols[o], out_aval, aval, rows_are_outputs=False)
    return blocks


def _reverse_blocks(lin: LinearMap, out_avals: list[ShapedArray]) -> Blocks:
    zeros = [Zero(a) for a in out_avals]
    blocks = []
    for o, out_aval in enumerate(out_avals):
        if out_aval.size == 0:
            rows = [np.zeros((0,) + a.shape, a.dtype) for a in lin.in_avals]
        else:
            rows = _map_basis(lambda e, o=o: lin.transpose([*zeros[:o], e, *zeros[o + 1:]]),
                              out_aval)
        blocks.append([_to_block(rows[k], out_aval, in_aval, rows_are_outputs=True)
                       for k, in_aval in enumerate(lin.in_avals)])
    return blocks


def _jacobian(fun: Callable[..., Any], argnums: int | Sequence[int], has_aux: bool,
              name: str, blocks_of: Callable[[LinearMap, list[ShapedArray]], Blocks]) -> Callable[..., Any]:
    @api_boundary
    def jac_fun(*args: Any, **kwargs: Any) -> Any:
        nums = normalize_argnums(argnums, len(args), name)
        partial_fun, dyn = split_args(fun, args, kwargs, nums)
        dyn_arg = dyn[0] if isinstance(argnums, int) else dyn
        one_arg = (lambda d: partial_fun(d)) if isinstance(argnums, int) else (lambda d: partial_fun(*d))
        flat, in_tree = flatten_args((dyn_arg,))
        check_float_inputs(flat, name)
        program, consts, store = trace_flat(one_arg, flat, in_tree, has_aux)
        outs, lin = linearize_program(program, consts, flat, store.num_main)
        blocks = blocks_of(lin, [aval_of(y) for y in outs[:store.num_main]])
        arg_tree = tree_structure(dyn_arg)
        jac = tree_unflatten(store.tree, [tree_unflatten(arg_tree, row) for row in blocks])
        if has_aux:
            return jac, tree_unflatten(store.aux_tree, outs[store.num_main:])
        return jac

    return jac_fun


def jacfwd(fun: Callable[..., Any], argnums: int | Sequence[int] = 0,
           has_aux: bool = False) -> Callable[..., Any]:
    """The Jacobian of `fun` by forward mode (one tangent per input element).

    >>> import fxgrad as fx, fxgrad.numpy as fnp
    >>> fx.jacfwd(lambda x: x ** 2)(fnp.array([4., 4.]))
    array([[8., 0.],
           [0., 8.]])
    """
    return _jacobian(fun, argnums, has_aux, "jacfwd", _forward_blocks)


def jacrev(fun: Callable[..., Any], argnums: int | Sequence[int] = 0,
           has_aux: bool = False) -> Callable[..., Any]:
    """The Jacobian of `fun` by reverse mode (one cotangent per output element).

    >>> import fxgrad as fx, fxgrad.numpy as fnp
    >>> fx.jacrev(lambda x: fnp.sin(x))(fnp.array([0., 0.]))
    array([[1., 0.],
           [0., 1.]])
    """
    return _jacobian(fun, argnums, has_aux, "jacrev", _reverse_blocks)


def hessian(fun: Callable[..., Any], argnums: int | Sequence[int] = 0,
            has_aux: bool = False) -> Callable[..., Any]:
    """The Hessian of a scalar function: `jacfwd(jacrev(fun))` (forward-over-reverse).

    >>> import fxgrad as fx, fxgrad.numpy as fnp
    >>> fx.hessian(lambda x: fnp.sum(x ** 2))(fnp.array([4., 4.]))
    array([[2., 0.],
           [0., 2.]])
    """
    return jacfwd(jacrev(fun, argnums, has_aux), argnums, has_aux)
