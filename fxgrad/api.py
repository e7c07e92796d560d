"""The differentiation transformations: grad, value_and_grad, vjp, jvp, linearize,
make_jaxpr, and Theano's Lop/Rop.

Each traces the user's function into a program (knowing the concrete inputs, so
Python control flow on values works) and runs an interpreter over it: `jvp` runs
the forward-mode interpreter; `vjp` linearizes (forward mode with the tangents
staged into a linear program) and transposes that program. Because interpreters
bind primitives, a transformation applied to traced inputs records into the outer
trace, so transformations nest to any depth.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from fxgrad.api_util import (check_float_inputs, flatten_args, linearize_program,
                             normalize_argnums, split_args, trace_flat)
from fxgrad.core.errors import FxTypeError, FxValueError, api_boundary
from fxgrad.core.ir import ClosedProgram, aval_of
from fxgrad.interpreters.jvp import Zero, instantiate, jvp_program
from fxgrad.tree_util import tree_flatten, tree_unflatten


@api_boundary
def vjp(fun: Callable[..., Any], *primals: Any, has_aux: bool = False) -> Any:
    """`(fun(*primals), vjp_fun)` where `vjp_fun(ct)` pulls a cotangent back to the inputs.

    >>> import fxgrad as fx, fxgrad.numpy as fnp
    >>> y, pullback = fx.vjp(fnp.sin, 0.0)
    >>> pullback(2.0)
    (array(2.),)
    """
    flat, in_tree = flatten_args(primals)
    program, consts, store = trace_flat(fun, flat, in_tree, has_aux)
    outs, lin = linearize_program(program, consts, flat, store.num_main)
    out_avals = [aval_of(o) for o in outs[:store.num_main]]

    def vjp_fun(ct: Any) -> tuple[Any, ...]:
        ct_flat, ct_tree = tree_flatten(ct)
        if ct_tree != store.tree:
            raise FxValueError(f"vjp: the cotangent has structure {ct_tree}, but the "
                               f"function's output has structure {store.tree}")
        ct_flat = [_check_cotangent(c, a, i) for i, (c, a) in enumerate(zip(ct_flat, out_avals))]
        return tree_unflatten(in_tree, lin.transpose(ct_flat))

    out = tree_unflatten(store.tree, outs[:store.num_main])
    if has_aux:
        return out, vjp_fun, tree_unflatten(store.aux_tree, outs[store.num_main:])
    return out, vjp_fun


def _check_cotangent(ct: Any, aval: Any, i: int) -> Any:
    ct_aval = aval_of(ct)
    if ct_aval.shape != aval.shape:
        raise FxValueError(f"vjp: cotangent {i} has shape {ct_aval.shape}, but the output it "
                           f"belongs to has shape {aval.shape}")
    return ct if ct_aval.dtype == aval.dtype or aval.dtype.kind not in "fc" else _cast(ct, aval)


def _cast(x: Any, aval: Any) -> Any:
    from fxgrad.primitives.shape import convert_element_type
    return convert_element_type(x, aval.dtype)


@api_boundary
def jvp(fun: Callable[..., Any], primals: Sequence[Any], tangents: Sequence[Any]) -> Any:
    """`(fun(*primals), J @ tangents)`: forward-mode derivative along `tangents`.

    >>> import fxgrad as fx, fxgrad.numpy as fnp
    >>> fx.jvp(fnp.sin, (0.0,), (3.0,))
    (array(0.), array(3.))
    """
    if not isinstance(primals, (tuple, list)) or not isinstance(tangents, (tuple, list)):
        raise FxValueError("jvp: primals and tangents must be tuples (or lists) of arguments, "
                           "e.g. fx.jvp(f, (x,), (v,))")
    flat, in_tree = flatten_args(primals)
    t_flat, t_tree = flatten_args(tangents, "a tangent")
    if t_tree != in_tree:
        raise FxValueError(f"jvp: tangents have structure {t_tree}, primals have {in_tree}")
    t_flat = [_check_tangent(t, x, i) for i, (t, x) in enumerate(zip(t_flat, flat))]
    program, consts, store = trace_flat(fun, flat, in_tree)
    outs, t_outs = jvp_program(program, [*consts, *flat],
                               [*(Zero(aval_of(c)) for c in consts), *t_flat])
    return (tree_unflatten(store.tree, outs),
            tree_unflatten(store.tree, [instantiate(t) for t in t_outs]))


def _check_tangent(t: Any, x: Any, i: int) -> Any:
    t_aval, x_aval = aval_of(t), aval_of(x)
    if t_aval.shape != x_aval.shape:
        raise FxValueError(f"jvp: tangent {i} has shape {t_aval.shape}, but its primal has "
                           f"shape {x_aval.shape}")
    if x_aval.dtype.kind not in "fc":
        return Zero(x_aval)
    return t if t_aval.dtype == x_aval.dtype else _cast(t, x_aval)


@api_boundary
def linearize(fun: Callable[..., Any], *primals: Any) -> tuple[Any, Callable[..., Any]]:
    """`(fun(*primals), f_jvp)` where `f_jvp(*tangents)` applies the linearized function.

    >>> import fxgrad as fx
    >>> y, f_jvp = fx.linearize(lambda x: x ** 3, 2.0)
    >>> f_jvp(1.0)
    array(12.)
    """
    flat, in_tree = flatten_args(primals)
    program, consts, store = trace_flat(fun, flat, in_tree)
    outs, lin = linearize_program(program, consts, flat, store.num_main)

    def f_jvp(*tangents: Any) -> Any:
        t_flat, t_tree = flatten_args(tangents, "a tangent")
        if t_tree != in_tree:
            raise FxValueError(f"linearize: tangents have structure {t_tree}, "
                               f"primals have {in_tree}")
        t_flat = [_check_tangent(t, x, i) for i, (t, x) in enumerate(zip(t_flat, flat))]
        return tree_unflatten(store.tree, lin.apply(t_flat))

    return tree_unflatten(store.tree, outs), f_jvp


def value_and_grad(fun: Callable[..., Any], argnums: int | Sequence[int] = 0,
                   has_aux: bool = False) -> Callable[..., Any]:
    """Like `grad`, but returns `(fun(*args), gradient)` (`((value, aux), gradient)` with aux).

    >>> import fxgrad as fx
    >>> fx.value_and_grad(lambda x: x ** 2)(3.0)
    (array(9.), array(6.))
    """
    @api_boundary
    def value_and_grad_fun(*args: Any, **kwargs: Any) -> Any:
        nums = normalize_argnums(argnums, len(args), "grad")
        partial_fun, dyn = split_args(fun, args, kwargs, nums)
        check_float_inputs(tree_flatten(dyn)[0], "grad")
        result = vjp(partial_fun, *dyn, has_aux=has_aux)
        out, pullback = result[0], result[1]
        ct = _scalar_cotangent(out)
        grads = pullback(ct)
        g = grads[0] if isinstance(argnums, int) else tuple(grads)
        return ((out, result[2]) if has_aux else out), g

    return value_and_grad_fun


def _scalar_cotangent(out: Any) -> np.ndarray:
    leaves = tree_flatten(out)[0]
    aval = aval_of(leaves[0]) if len(leaves) == 1 else None
    if aval is None or aval.shape != ():
        shape = aval.shape if aval else f"a pytree of {len(leaves)} arrays"
        raise FxTypeError(
            f"grad requires a function with a scalar output, but the output has shape "
            f"{shape}. For a vector output use fx.jacrev (the full Jacobian) or fx.vjp "
            "(a vector-Jacobian product), or reduce the output, e.g. with fnp.sum.")
    if aval.dtype.kind != "f":
        raise FxTypeError(f"grad requires a real floating-point output, got {aval.dtype.name}")
    return np.ones((), aval.dtype)


def grad(fun: Callable[..., Any], argnums: int | Sequence[int] = 0,
         has_aux: bool = False) -> Callable[..., Any]:
    """The gradient of a scalar function with respect to argument(s) `argnums`.

    With a tuple `argnums` the gradient is a tuple, in the same order.

    >>> import fxgrad as fx
    >>> fx.grad(lambda x: x ** 2)(4.0)
    array(8.)
    >>> fx.grad(lambda x, y: x * y, argnums=(0, 1))(2.0, 5.0)
    (array(5.), array(2.))
    """
    vg = value_and_grad(fun, argnums, has_aux)

    @api_boundary
    def grad_fun(*args: Any, **kwargs: Any) -> Any:
        (out, g) = vg(*args, **kwargs)
        return (g, out[1]) if has_aux else g

    return grad_fun


def Lop(fun: Callable[..., Any], primals: Sequence[Any], cotangents: Any) -> Any:
    """Theano's L-operator: the vector-Jacobian product `uᵀJ` (a tuple, one per primal).

    >>> import fxgrad as fx, fxgrad.numpy as fnp
    >>> fx.Lop(lambda W: fnp.dot(fnp.array([0., 1.]), W), (fnp.ones((2, 2)),), fnp.array([2., 2.]))
    (array([[0., 0.],
           [2., 2.]]),)
    """
    if not isinstance(primals, (tuple, list)):
        raise FxValueError("Lop: primals must be a tuple of arguments, e.g. fx.Lop(f, (W,), u)")
    return vjp(fun, *primals)[1](cotangents)


def Rop(fun: Callable[..., Any], primals: Sequence[Any], tangents: Sequence[Any]) -> Any:
    """Theano's R-operator: the Jacobian-vector product `J v`.

    >>> import fxgrad as fx, fxgrad.numpy as fnp
    >>> fx.Rop(lambda W: fnp.dot(fnp.array([0., 1.]), W), (fnp.ones((2, 2)),), (fnp.full((2, 2), 2.),))
    array([2., 2.])
    """
    return jvp(fun, primals, tangents)[1]


def hvp(fun: Callable[..., Any], primals: Sequence[Any], tangents: Sequence[Any]) -> Any:
    """Hessian-vector product `H v` of a scalar function, forward-over-reverse.

    >>> import fxgrad as fx, fxgrad.numpy as fnp
    >>> fx.hvp(lambda x: fnp.sum(x ** 2), (fnp.array([4., 4.]),), (fnp.array([2., 2.]),))
    array([4., 4.])
    """
    if not isinstance(primals, (tuple, list)):
        raise FxValueError("hvp: primals must be a tuple of arguments, e.g. fx.hvp(f, (x,), (v,))")
    argnums = 0 if len(primals) == 1 else tuple(range(len(primals)))
    return jvp(grad(fun, argnums), primals, tangents)[1]


def make_jaxpr(fun: Callable[..., Any], static_argnums: int | Sequence[int] = (),
               optimize: bool = False) -> Callable[..., ClosedProgram]:
    """A function returning the typed program `fun` traces to for given example arguments.

    >>> import fxgrad as fx, fxgrad.numpy as fnp
    >>> print(fx.make_jaxpr(lambda x: fnp.sum(fnp.sin(x)))(fnp.zeros(3)))
    { lambda ; a:f64[3]. let
        b:f64[3] = sin a
        c:f64[] = reduce_sum[axes=(0,)] b
      in (c,) }
    """
    static = (static_argnums,) if isinstance(static_argnums, int) else tuple(static_argnums)

    @api_boundary
    def make(*args: Any, **kwargs: Any) -> ClosedProgram:
        nums = normalize_argnums(static, len(args), "make_jaxpr") if static else ()
        dyn_nums = tuple(i for i in range(len(args)) if i not in nums)
        partial_fun, dyn = split_args(fun, args, kwargs, dyn_nums)
        flat, in_tree = flatten_args(dyn)
        program, consts, _ = trace_flat(partial_fun, flat, in_tree, concrete=False)
        closed = ClosedProgram(program, consts)
        if optimize:
            from fxgrad.simplify import simplify
            closed = simplify(closed)
        return closed

    return make
