"""Taylor mode: `jet`, `derivatives` and `taylor_coefficients`.

`jet` has JAX's signature and conventions: the input series are *derivative*
coefficients along a path, x(t) = x + v_1 t + v_2 t^2/2! + ..., and so are the output
series (the k-th term is the k-th derivative of f(x(t)) at t = 0). Internally the
interpreter (`fxgrad.interpreters.taylor`) works with normalised coefficients v_k / k!,
where the recurrences are simplest; the conversion happens here. All three trace the
function once and run the Taylor interpreter over the program, which binds ordinary
primitives, so they work under `jit`, `vmap` and `grad` like any other function.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np

from fxgrad.api_util import flatten_args, trace_flat
from fxgrad.core.errors import FxTypeError, FxValueError, api_boundary
from fxgrad.core.ir import ShapedArray, aval_of
from fxgrad.interpreters.jvp import Zero, instantiate, tangent_dtype
from fxgrad.interpreters.taylor import jet_program, scale, zero_series
from fxgrad.tree_util import tree_flatten, tree_unflatten


def _term(term: Any, leaf: Any, k: int, where: str) -> Any:
    """One input term as a normalised coefficient of the leaf's dtype (or `Zero`)."""
    aval = aval_of(leaf)
    t_aval = ShapedArray(aval.shape, tangent_dtype(aval.dtype))
    if aval.dtype.kind not in "fc" or (isinstance(term, (int, float)) and term == 0):
        return Zero(t_aval)
    term_aval = aval_of(term)
    if term_aval.shape not in ((), aval.shape):
        raise FxValueError(f"jet: {where} has shape {term_aval.shape}, but its primal has "
                           f"shape {aval.shape}")
    from fxgrad.primitives.shape import broadcast_in_dim, convert_element_type
    if term_aval.dtype != aval.dtype:
        term = convert_element_type(np.asarray(term) if np.ndim(term) == 0 else term, aval.dtype)
    if term_aval.shape != aval.shape:
        term = broadcast_in_dim(term, aval.shape, ())
    return scale(term, 1.0 / math.factorial(k))


def _flatten_series(series: Any, primals: Sequence[Any], flat: Sequence[Any]) -> list[list[Any]]:
    """Per input leaf, its normalised series [x_1, ..., x_K]."""
    if not isinstance(series, (tuple, list)) or len(series) != len(primals):
        raise FxValueError(f"jet: series must be a tuple with one list of terms per primal "
                           f"({len(primals)}), e.g. series=((v, 0.0, 0.0),)")
    orders = {len(s) if isinstance(s, (tuple, list)) else -1 for s in series}
    if len(orders) != 1 or -1 in orders:
        raise FxValueError("jet: each entry of series must be a list of terms, all of the same "
                           f"length (the order); got lengths {sorted(orders)}")
    per_leaf: list[list[Any]] = []
    start = 0
    for i, (x, terms) in enumerate(zip(primals, series)):
        leaves, tree = tree_flatten(x)
        columns = []
        for k, term in enumerate(terms, 1):
            t_leaves = _term_leaves(term, tree, len(leaves), i, k)
            columns.append([_term(t, leaf, k, f"term {k} of series {i}")
                            for t, leaf in zip(t_leaves, flat[start:start + len(leaves)])])
        per_leaf.extend([list(col) for col in zip(*columns)] if columns else
                        [[] for _ in leaves])
        start += len(leaves)
    return per_leaf


def _term_leaves(term: Any, tree: Any, num_leaves: int, i: int, k: int) -> list[Any]:
    if isinstance(term, (int, float)) and not isinstance(term, bool):
        return [term] * num_leaves
    leaves, t_tree = tree_flatten(term)
    if t_tree != tree:
        raise FxValueError(f"jet: term {k} of series {i} has structure {t_tree}, but primal "
                           f"{i} has structure {tree}")
    return leaves


def _derivative_terms(terms: Sequence[Any]) -> list[Any]:
    """Normalised output coefficients back to derivative coefficients, materialised."""
    return [scale(instantiate(t), math.factorial(k)) for k, t in enumerate(terms, 1)]


@api_boundary
def jet(fun: Callable[..., Any], primals: Sequence[Any], series: Sequence[Any]) -> Any:
    """Taylor-mode derivatives: `(fun(*primals), series_out)`, as `jax.experimental.jet`.

    `series[i]` is a list `[v_1, ..., v_K]` for `primals[i]`: the path x(t) = x + v_1 t +
    v_2 t^2/2! + ...; `series_out` holds the derivatives d^k/dt^k fun(x(t)) at t = 0,
    k = 1..K, with the output's structure (each leaf a list of K arrays). Terms may be
    the scalar 0.0. The cost grows quadratically with K (nesting `jvp` K times grows
    exponentially).

    >>> import fxgrad as fx, fxgrad.numpy as fnp
    >>> y, (d1, d2, d3) = fx.jet(fnp.exp, (0.0,), ((1.0, 0.0, 0.0),))
    >>> float(y), float(d1), float(d2), float(d3)
    (1.0, 1.0, 1.0, 1.0)
    """
    if not isinstance(primals, (tuple, list)):
        raise FxValueError("jet: primals must be a tuple of arguments, e.g. fx.jet(f, (x,), "
                           "((v, 0.0),))")
    flat, in_tree = flatten_args(primals)
    flat_series = _flatten_series(series, primals, flat)
    program, consts, store = trace_flat(fun, flat, in_tree)
    order = len(flat_series[0]) if flat_series else 0
    outs, out_series = jet_program(program, [*consts, *flat],
                                   [*(zero_series(c, order) for c in consts), *flat_series])
    out_terms = [_derivative_terms(s) for s in out_series]
    return tree_unflatten(store.tree, outs), tree_unflatten(store.tree, out_terms)


def _check_order(order: Any, name: str) -> int:
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or order < 0:
        raise FxValueError(f"{name}: order must be a non-negative int, got {order!r}")
    return int(order)


def derivatives(fun: Callable[..., Any], order: int, argnums: int = 0) -> Callable[..., Any]:
    """A function returning `[f(x), f'(x), ..., f^(order)(x)]`, stacked on a new first axis.

    For scalar-to-scalar `fun` (differentiated in argument `argnums`) in one Taylor-mode
    pass, at cost quadratic in `order`; an array argument is moved along all-ones, which
    for an elementwise `fun` gives the derivatives of every element.

    >>> import fxgrad as fx, fxgrad.numpy as fnp
    >>> fx.derivatives(fnp.sin, order=4)(0.0)
    array([ 0.,  1.,  0., -1.,  0.])
    """
    order = _check_order(order, "derivatives")
    if not isinstance(argnums, int):
        raise FxValueError(f"derivatives: argnums must be an int, got {argnums!r}")

    @api_boundary
    def derivatives_fun(*args: Any) -> Any:
        import fxgrad.numpy as fnp
        if not -len(args) <= argnums < len(args):
            raise FxValueError(f"derivatives: argnums={argnums} is out of range for a call "
                               f"with {len(args)} positional arguments")
        i = argnums % len(args)
        x = args[i]
        if aval_of(x).dtype.kind not in "fc":
            raise FxTypeError(f"derivatives differentiates with respect to a floating-point "
                              f"input, but argument {i} has dtype {aval_of(x).dtype.name}; "
                              "pass a float (e.g. 1.0, not 1)")
        partial = lambda xi: fun(*args[:i], xi, *args[i + 1:])  # noqa: E731
        y, terms = jet(partial, (x,), ((1.0,) + (0.0,) * (order - 1),) if order else ((),))
        return fnp.stack([y, *terms])

    return derivatives_fun


def taylor_coefficients(fun: Callable[..., Any], order: int) -> Callable[..., Any]:
    """Taylor coefficients of the solution of the ODE x'(t) = fun(x(t), *args), x(0) = x0.

    Returns a function of `(x0, *args)` giving `[x_0, x_1, ..., x_order]` stacked on a new
    first axis, with x(t) = sum_k x_k t^k (normalised coefficients, x_k = x^(k)(0) / k!),
    as Taylor-series ODE integrators need. Coefficient k+1 comes from the order-k series of
    `fun` along the first k coefficients: x_{k+1} = fun(x(t))_k / (k + 1).

    >>> import fxgrad as fx, fxgrad.numpy as fnp
    >>> fx.taylor_coefficients(lambda x: x, order=3)(1.0)   # x(t) = exp(t)
    array([1.        , 1.        , 0.5       , 0.16666667])
    """
    order = _check_order(order, "taylor_coefficients")

    @api_boundary
    def coefficients_fun(x0: Any, *args: Any) -> Any:
        import fxgrad.numpy as fnp
        flat, in_tree = flatten_args((x0, *args))
        program, consts, store = trace_flat(fun, flat, in_tree)
        if store.tree is None or store.tree.num_leaves != 1 or \
                aval_of(flat[0]).shape != program.outvars[0].aval.shape:
            raise FxValueError("taylor_coefficients: fun(x, *args) must return one array of "
                               "the shape of x (the ODE's right-hand side)")
        x = [flat[0]]
        for k in range(order):
            const_series = [zero_series(c, k) for c in [*consts, *flat[1:]]]
            outs, out_series = jet_program(
                program, [*consts, *flat],
                [*const_series[:len(consts)], x[1:], *const_series[len(consts):]])
            x.append(fnp.asarray(scale(instantiate(([outs[0]] + out_series[0])[k]),
                                        1.0 / (k + 1))))
        return fnp.stack(x)

    return coefficients_fun
