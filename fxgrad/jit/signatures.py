"""Argument signatures of jitted functions: which arguments are static (inferred
from the function's parameters, as JAX does), how a call's signature is described, and
why a call misses the cache, in words.

`static_argnums` alone also makes the parameters at those positions static when they
are passed by keyword, and `static_argnames` alone the named parameters when passed by
position; given both, neither is inferred. Negative positions count from the last
parameter. Positions past the function's parameters, and names it does not have, are
errors when `jit` is applied. (A function taking *args keeps positions as given,
negative ones counted from the end of each call's arguments.)
"""
from __future__ import annotations

import inspect
import itertools
from typing import Any, Callable, Sequence

import numpy as np

from fxgrad.api_util import as_input
from fxgrad.core.errors import FxValueError
from fxgrad.tree_util import PyTreeDef, tree_flatten

_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def infer_statics(fun: Callable[..., Any], argnums: Sequence[Any], argnames: Sequence[Any]
                  ) -> tuple[tuple[int, ...], tuple[str, ...]]:
    """(static_argnums, static_argnames) for `fun`, each completed from the other when
    only one is given; errors for positions and names `fun` cannot take."""
    if not all(isinstance(i, int) and not isinstance(i, bool) for i in argnums):
        raise FxValueError(f"jit: static_argnums must be ints, got {tuple(argnums)!r}")
    if not all(isinstance(k, str) for k in argnames):
        raise FxValueError(f"jit: static_argnames must be strings, got {tuple(argnames)!r}")
    try:
        params = list(inspect.signature(fun).parameters.values())
    except (TypeError, ValueError):   # a builtin or extension: nothing to infer or check
        return tuple(argnums), tuple(argnames)
    _check(params, argnums, argnames)
    by_position = [p for p in params if p.kind in _POSITIONAL]
    if all(p.kind is not inspect.Parameter.VAR_POSITIONAL for p in params):
        argnums = [i % len(by_position) for i in argnums]   # -1: the last parameter
    if argnums and not argnames:
        argnames = [p.name for i, p in enumerate(by_position)
                    if i in argnums and p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
    elif argnames and not argnums:
        argnums = [i for i, p in enumerate(by_position) if p.name in argnames
                   and p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
    return tuple(argnums), tuple(argnames)


def _check(params: list[inspect.Parameter], argnums: Sequence[int],
           argnames: Sequence[str]) -> None:
    kinds = {p.kind for p in params}
    positional = sum(p.kind in _POSITIONAL for p in params)
    if inspect.Parameter.VAR_POSITIONAL not in kinds:
        bad = [i for i in argnums if not -positional <= i < positional]
        if bad:
            raise FxValueError(
                f"jit: static_argnums={tuple(argnums)!r}, but the function takes "
                f"{positional} positional argument{'s' if positional != 1 else ''}; "
                f"valid positions are 0..{positional - 1} (or negative from the end)")
    if inspect.Parameter.VAR_KEYWORD not in kinds:
        named = {p.name for p in params if p.kind is not inspect.Parameter.POSITIONAL_ONLY}
        bad_names = sorted(set(argnames) - named)
        if bad_names:
            raise FxValueError(
                f"jit: static_argnames names {', '.join(map(repr, bad_names))}, which the "
                f"function does not take by keyword; its parameters are "
                f"{', '.join(p.name for p in params) or 'none'}")


def static_positions(argnums: Sequence[int], num_args: int) -> tuple[int, ...]:
    """The positions of a call with `num_args` positional arguments that are static: a
    static parameter passed by keyword, or left to its default, is not among them."""
    return tuple(sorted({i % num_args for i in argnums if -num_args <= i < num_args}))


def describe(fun: Callable[..., Any], args: tuple[Any, ...], kwargs: dict,
             statics: tuple[int, ...], static_argnames: Sequence[str]) -> dict[str, Any]:
    """Per argument (named as the user knows it): its static value, or its pytree
    structure and leaf shapes and dtypes. Cache misses are explained from these."""
    names = _parameter_names(fun)
    labelled = [(f"argument {i}" + (f" ({names[i]})" if i < len(names) else ""), a,
                 i in statics) for i, a in enumerate(args)]
    labelled += [(f"keyword argument {k!r}", v, k in static_argnames)
                 for k, v in sorted(kwargs.items())]
    return {label: _describe(value, static) for label, value, static in labelled}


def _parameter_names(fun: Callable[..., Any]) -> list[str]:
    """Names of `fun`'s positional parameters, to name arguments in explanations."""
    try:
        params = inspect.signature(fun).parameters.values()
    except (TypeError, ValueError):
        return []
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return [p.name for p in itertools.takewhile(lambda p: p.kind in kinds, params)]


def _describe(value: Any, static: bool) -> tuple[Any, ...]:
    if static:
        return ("static", value, type(value))
    leaves, tree = tree_flatten(value)
    leaves = [as_input(x, "a jit argument") for x in leaves]
    return ("dynamic", tree, tuple((tuple(x.shape), np.dtype(x.dtype)) for x in leaves))


def _compare(label: str, old: tuple[Any, ...], new: tuple[Any, ...]) -> list[str]:
    """What changed in one argument, in words (empty when nothing did)."""
    if old == new:
        return []
    if old[0] != new[0]:
        return [f"{label} changed from {old[0]} to {new[0]}"]
    if old[0] == "static":
        return [f"static {label} changed from {old[1]!r} to {new[1]!r}"]
    if old[1] != new[1]:
        return [(f"{label} changed pytree structure from {_tree_text(old[1])} "
                 f"to {_tree_text(new[1])}")]
    changes = []
    for i, ((old_shape, old_dtype), (shape, dtype)) in enumerate(zip(old[2], new[2])):
        parts = [f"shape from {old_shape} to {shape}"] if old_shape != shape else []
        parts += [f"dtype from {old_dtype} to {dtype}"] if old_dtype != dtype else []
        if parts:
            where = label if len(new[2]) == 1 else f"{label} leaf {i}"
            changes.append(f"{where} changed {' and '.join(parts)}")
    return changes


def _tree_text(tree: PyTreeDef) -> str:
    """A pytree structure with its node data (dict keys, field names) shown."""
    if tree.node_type is None:
        return "*"
    inner = ", ".join(_tree_text(c) for c in tree.children)
    aux = f"{tree.aux!r}: " if tree.aux is not None else ""
    return f"{tree.node_type.__name__}({aux}{inner})"


def _differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    found = [f"{label} was not passed before" for label in new if label not in old]
    found += [f"{label} is no longer passed" for label in old if label not in new]
    for label, described in new.items():
        if label in old:
            found += _compare(label, old[label], described)
    return found


def miss_cause(signature: dict[str, Any], cached: list[dict[str, Any]]) -> str:
    """Why `signature` misses the cache: "first call", or what changed relative to the
    closest cached signature (the fewest differences; the latest of equally close)."""
    if not cached:
        return "first call"
    closest = min((_differences(old, signature) for old in reversed(cached)), key=len)
    return "; ".join(closest) or "the arguments match a cached signature"
