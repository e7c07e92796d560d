"""`custom_jvp` and `custom_vjp`: functions with user-defined derivative rules.

The API is JAX's. `@custom_jvp` wraps `f`; `@f.defjvp` gives its rule
`jvp(primals, tangents) -> (out, out_tangent)`. `@custom_vjp` wraps `f`;
`f.defvjp(fwd, bwd)` gives `fwd(*args) -> (out, residuals)` and
`bwd(residuals, out_ct) -> tuple of argument cotangents`. Arguments listed in
`nondiff_argnums` are static Python values (functions, numbers, ...): the function
gets them in place; the rules `jvp` and `bwd` get them first, as in JAX.

Each call traces the function into a program and binds one `custom_jvp_call` or
`custom_vjp_call` primitive, so every transformation sees a single equation. The
rules are traced when first differentiated (see `fxgrad.primitives.custom`); their
outputs are checked against the function's structure and shapes then.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable, Sequence

import numpy as np

from fxgrad.api_util import flatten_args, normalize_argnums
from fxgrad.core.errors import FxTypeError, api_boundary, at_user_line
from fxgrad.core.ir import Program, ShapedArray, aval_of
from fxgrad.primitives.custom import (LazyProgram, custom_jvp_bind, custom_vjp_bind,
                                      tangent_aval, trace_closed)
from fxgrad.primitives.shape import convert_element_type
from fxgrad.tree_util import PyTreeDef, tree_flatten, tree_unflatten


def _positional(fun: Callable[..., Any], args: tuple[Any, ...], kwargs: dict) -> tuple[Any, ...]:
    """The call's arguments as a positional tuple (keywords resolved by the signature)."""
    if not kwargs:
        return args
    bound = inspect.signature(fun).bind(*args, **kwargs)
    bound.apply_defaults()
    if bound.kwargs:
        raise FxTypeError(at_user_line(
            f"{_name(fun)}: keyword-only arguments are not supported by custom derivative "
            "functions; pass them positionally"))
    return tuple(bound.args)


def _name(fun: Callable[..., Any]) -> str:
    return getattr(fun, "__name__", type(fun).__name__)


def _conform(x: Any, aval: ShapedArray, what: str) -> Any:
    """`x` checked to have `aval`'s shape and converted to its dtype."""
    x_aval = aval_of(x)
    if x_aval.shape != aval.shape:
        raise FxTypeError(at_user_line(
            f"{what} has shape {x_aval.shape}, but it must have shape {aval.shape} "
            f"(the shape of the corresponding {aval.str_short()} value)"))
    return x if x_aval.dtype == aval.dtype else convert_element_type(x, aval.dtype)


def _flat_matching(tree_value: Any, tree: PyTreeDef, avals: Sequence[ShapedArray],
                   what: str) -> list[Any]:
    leaves, value_tree = tree_flatten(tree_value)
    if value_tree != tree:
        raise FxTypeError(at_user_line(
            f"{what} has structure {value_tree}, but it must have structure {tree}"))
    return [_conform(x, a, f"{what} leaf {i}") for i, (x, a) in enumerate(zip(leaves, avals))]


class _Call:
    """The signature of one call of a custom function: its static arguments, the
    structure and avals of the differentiable ones, and (once traced) of the output."""

    def __init__(self, fun: Callable[..., Any], nondiff_argnums: tuple[int, ...],
                 args: tuple[Any, ...]):
        self.num_args = len(args)
        self.static = normalize_argnums(nondiff_argnums, len(args), _name(fun)) \
            if nondiff_argnums else ()
        self.nondiff = [args[i] for i in self.static]
        # the trees are set by flatten() and trace_fun(), which come before their uses
        self.in_tree: PyTreeDef = None  # type: ignore[assignment]
        self.avals: list[ShapedArray] = []
        self.out_tree: PyTreeDef = None  # type: ignore[assignment]
        self.out_avals: list[ShapedArray] = []

    def flatten(self, args: tuple[Any, ...]) -> list[Any]:
        leaves, self.in_tree = flatten_args(
            tuple(a for i, a in enumerate(args) if i not in self.static))
        self.avals = [aval_of(x) for x in leaves]
        return leaves

    def full_args(self, leaves: Sequence[Any]) -> list[Any]:
        """All arguments in order from the differentiable leaves, static ones in place."""
        it, static = iter(self.diff_args(leaves)), dict(zip(self.static, self.nondiff))
        return [static[i] if i in static else next(it) for i in range(self.num_args)]

    def diff_args(self, leaves: Sequence[Any]) -> tuple[Any, ...]:
        return tree_unflatten(self.in_tree, leaves)

    def trace_fun(self, fun: Callable[..., Any], leaves: list[Any]) -> tuple[Program, list[Any]]:
        """Trace `fun` on the arguments; remember its output structure and avals."""
        def flat_fun(*xs: Any) -> list[Any]:
            out_leaves, self.out_tree = tree_flatten(fun(*self.full_args(xs)))
            return out_leaves

        # the arguments' values, where known, let Python control flow on them work
        program, captured = trace_closed(flat_fun, self.avals, leaves)
        self.out_avals = program.out_avals[:]
        return program, captured

    def output(self, outs: Sequence[Any]) -> Any:
        return tree_unflatten(self.out_tree, outs)


def _start(wrapper: Any, rules: Sequence[Any], define: str, args: tuple[Any, ...],
           kwargs: dict) -> tuple[_Call, list[Any], Program, list[Any]]:
    """Check the rules are defined; trace the function. Returns (call, leaves, fun program,
    its captured values)."""
    if any(rule is None for rule in rules):
        raise FxTypeError(at_user_line(
            f"{type(wrapper).__name__} function '{wrapper.__name__}' has no derivative "
            f"rule; define it with {define} before calling the function"))
    args = _positional(wrapper.fun, args, kwargs)
    call = _Call(wrapper.fun, wrapper.nondiff_argnums, args)
    leaves = call.flatten(args)
    fun, captured = call.trace_fun(wrapper.fun, leaves)
    return call, leaves, fun, captured


class custom_jvp:
    """A function whose JVP (and so its gradient) is given by a rule.

    >>> import fxgrad as fx, fxgrad.numpy as fnp
    >>> @fx.custom_jvp
    ... def f(x):
    ...     return fnp.sin(x)
    >>> @f.defjvp
    ... def f_jvp(primals, tangents):
    ...     (x,), (x_dot,) = primals, tangents
    ...     return f(x), 2.0 * fnp.cos(x) * x_dot
    >>> fx.grad(f)(0.0)
    array(2.)
    """

    def __init__(self, fun: Callable[..., Any], nondiff_argnums: Sequence[int] = ()):
        self.fun = fun
        self.nondiff_argnums = tuple(nondiff_argnums)
        self.jvp: Callable[..., Any] | None = None
        self.__name__ = _name(fun)
        self.__doc__ = getattr(fun, "__doc__", None)

    def defjvp(self, jvp: Callable[..., Any]) -> Callable[..., Any]:
        """Set the rule `jvp(*nondiff_args, primals, tangents) -> (out, out_tangent)`."""
        self.jvp = jvp
        return jvp

    @api_boundary
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        call, leaves, fun, captured = _start(self, [self.jvp], f"@{self.__name__}.defjvp",
                                             args, kwargs)
        avals = [*call.avals, *map(tangent_aval, call.avals)]
        jvp = LazyProgram(f"jvp of {self.__name__}",
                          lambda: trace_closed(self._flat_jvp(call), avals))
        return call.output(custom_jvp_bind(captured, leaves, fun, jvp))

    def _flat_jvp(self, call: _Call) -> Callable[..., list[Any]]:
        num = len(call.avals)
        what = f"the JVP rule of '{self.__name__}'"

        def flat_jvp(*leaves: Any) -> list[Any]:
            primals, tangents = call.diff_args(leaves[:num]), call.diff_args(leaves[num:])
            assert self.jvp is not None   # _start checked that the rule is defined
            out = self.jvp(*call.nondiff, primals, tangents)
            if not (isinstance(out, (tuple, list)) and len(out) == 2):
                raise FxTypeError(at_user_line(
                    f"{what} must return a pair (primal_out, tangent_out), got "
                    f"{type(out).__name__}"))
            outs = _flat_matching(out[0], call.out_tree, call.out_avals,
                                  f"the primal output of {what}")
            out_dots = _flat_matching(out[1], call.out_tree,
                                      list(map(tangent_aval, call.out_avals)),
                                      f"the tangent output of {what}")
            return [*outs, *out_dots]

        return flat_jvp


class custom_vjp:
    """A function whose reverse-mode derivative is given by a forward and a backward rule.

    >>> import fxgrad as fx, fxgrad.numpy as fnp
    >>> @fx.custom_vjp
    ... def f(x):
    ...     return fnp.sin(x)
    >>> def f_fwd(x):
    ...     return f(x), fnp.cos(x)
    >>> def f_bwd(cos_x, ct):
    ...     return (3.0 * cos_x * ct,)
    >>> f.defvjp(f_fwd, f_bwd)
    >>> fx.grad(f)(0.0)
    array(3.)
    """

    def __init__(self, fun: Callable[..., Any], nondiff_argnums: Sequence[int] = ()):
        self.fun = fun
        self.nondiff_argnums = tuple(nondiff_argnums)
        self.fwd: Callable[..., Any] | None = None
        self.bwd: Callable[..., Any] | None = None
        self.__name__ = _name(fun)
        self.__doc__ = getattr(fun, "__doc__", None)

    def defvjp(self, fwd: Callable[..., Any], bwd: Callable[..., Any]) -> None:
        """Set `fwd(*args) -> (out, residuals)` and
        `bwd(*nondiff_args, residuals, out_ct) -> tuple of cotangents of the other args`."""
        self.fwd, self.bwd = fwd, bwd

    @api_boundary
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        call, leaves, fun, captured = _start(self, [self.fwd, self.bwd],
                                             f"{self.__name__}.defvjp(fwd, bwd)", args, kwargs)
        res_tree: list[PyTreeDef] = []
        fwd = LazyProgram(f"fwd of {self.__name__}",
                          lambda: trace_closed(self._flat_fwd(call, res_tree), call.avals))

        def trace_bwd() -> tuple[Program, list[Any]]:
            res_avals = fwd.get()[0].out_avals[len(call.out_avals):]
            return trace_closed(self._flat_bwd(call, res_tree[0]),
                                [*res_avals, *map(tangent_aval, call.out_avals)])

        bwd = LazyProgram(f"bwd of {self.__name__}", trace_bwd)
        return call.output(custom_vjp_bind(captured, leaves, fun, fwd, bwd))

    def _flat_fwd(self, call: _Call, res_tree: list[PyTreeDef]) -> Callable[..., list[Any]]:
        def flat_fwd(*leaves: Any) -> list[Any]:
            assert self.fwd is not None
            out = self.fwd(*call.full_args(leaves))
            if not (isinstance(out, (tuple, list)) and len(out) == 2):
                raise FxTypeError(at_user_line(
                    f"the fwd rule of '{self.__name__}' must return a pair (output, "
                    f"residuals), got {type(out).__name__}"))
            outs = _flat_matching(out[0], call.out_tree, call.out_avals,
                                  f"the output of the fwd rule of '{self.__name__}'")
            res, tree = tree_flatten(out[1])
            res_tree.append(tree)
            return [*outs, *res]

        return flat_fwd

    def _flat_bwd(self, call: _Call, res_tree: PyTreeDef) -> Callable[..., list[Any]]:
        def flat_bwd(*leaves: Any) -> list[Any]:
            n = res_tree.num_leaves
            res = tree_unflatten(res_tree, leaves[:n])
            assert self.bwd is not None
            cts = self.bwd(*call.nondiff, res, call.output(leaves[n:]))
            return self._flat_cts(call, cts)

        return flat_bwd

    def _flat_cts(self, call: _Call, cts: Any) -> list[Any]:
        """The bwd rule's cotangents, one per argument leaf (None means zero)."""
        avals = call.diff_args([tangent_aval(a) for a in call.avals])
        what = f"the bwd rule of '{self.__name__}'"
        if not (isinstance(cts, (tuple, list)) and len(cts) == len(avals)):
            got = f"a {type(cts).__name__}" + (
                f" of length {len(cts)}" if isinstance(cts, (tuple, list)) else "")
            raise FxTypeError(at_user_line(
                f"{what} must return a tuple with one cotangent per differentiable argument "
                f"({len(avals)}), got {got}"))
        flat = []
        for i, (ct, arg_avals) in enumerate(zip(cts, avals)):
            leaf_avals, arg_tree = tree_flatten(arg_avals)
            if ct is None:
                flat += [_zeros(a) for a in leaf_avals]
                continue
            ct_leaves, ct_tree = tree_flatten(ct, is_leaf=lambda x: x is None)
            if ct_tree != arg_tree:
                raise FxTypeError(at_user_line(
                    f"{what}: the cotangent of argument {i} has structure {ct_tree}, but the "
                    f"argument has structure {arg_tree}"))
            flat += [_zeros(a) if c is None else
                     _conform(c, a, f"{what}: the cotangent of argument {i} (leaf {j})")
                     for j, (c, a) in enumerate(zip(ct_leaves, leaf_avals))]
        return flat


def _zeros(aval: ShapedArray) -> Any:
    return np.zeros(aval.shape, aval.dtype)
