"""The repeat-call path of a jitted function: from `f(x)` to native code in well
under a microsecond.

Each jitted function keeps an inline cache of one signature, its *hot call* (as
CPython's and JAX's C++ dispatch do): a small function generated for the signature
it last ran, that tests each argument's type, dtype, shape and strides against it
with identity and tuple comparisons, allocates the output, and calls the kernel's
compiled entry point directly. numba's dispatcher would type the arguments again,
and those tests already pin down the numba type the kernel was compiled for. Any
other call (another signature, a list, a view, a kernel that raises) goes to `miss`,
the general path, which finds the signature's entry and makes it the hot one.

Only signatures of arguments (positional or keyword) made of tuples, lists, dicts,
None, namedtuples, dataclasses and registered nodes (their flatten function is called,
its aux data compared) around `passable` leaves (C-contiguous arrays, 0-d
arrays, Python floats, complex numbers, bools and ints in int64's range, numpy
scalars), and static arguments (compared by type and value, or by identity), with no
donated inputs, get a hot call; everything else goes through `Entry.run`.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Collection, NamedTuple, Sequence

import numpy as np

from fxgrad import tree_util
from fxgrad.jit import runtime

_TEMPLATE = """\
def hot(args, kwargs):
    if len(args) == {n} and {kw_test}:
        {unpack}
        if ({structure}):
            {leaves}
            if ({tests}):
{body}
    return miss(args, kwargs)
"""

_INTO_OUT = """\
                out = empty(out_shape, out_dtype)
                try:
                    call({call_args})
                except Exception:
                    return fail(args, kwargs)
                return out"""

_RETURNED = """\
                try:
                    outs = call({call_args})
                except Exception:
                    return fail(args, kwargs)
                return finish(outs)"""


class CallArgs(NamedTuple):
    """A call's arguments, and which are static: positions of `args`, names of `kwargs`."""
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    static_positions: Collection[int] = ()
    static_names: Collection[str] = ()

    def tops(self) -> list[tuple[str, Any, bool]]:
        """The arguments in tree_flatten's order (positional, then keywords by name),
        as (their expression in a hot call, value, whether static)."""
        tops = [(f"a{i}", a, i in self.static_positions) for i, a in enumerate(self.args)]
        return tops + [(f"kwargs[{k!r}]", self.kwargs[k], k in self.static_names)
                       for k in sorted(self.kwargs)]

    def dynamic(self) -> Sequence[Any]:
        """The non-static arguments in tree_flatten's order."""
        if not self.kwargs and not self.static_positions:
            return self.args
        return [value for _, value, static in self.tops() if not static]


def native_entry(kernel: Callable[..., Any], args: Sequence[Any]) -> Callable[..., Any]:
    """The compiled entry point of `kernel` for `args`' numba types; `kernel` itself
    (numba's dispatcher) if numba does not expose one."""
    try:
        import numba
        signature = tuple(numba.typeof(a) for a in args)
        return kernel.overloads[signature].entry_point  # type: ignore[attr-defined]
    except (AttributeError, KeyError, ValueError, TypeError):
        return kernel


def hot_call(call: Callable[..., Any], arguments: CallArgs, before: Sequence[Any],
             after: Sequence[Any], out: np.ndarray | None,
             miss: Callable[[tuple[Any, ...], dict[str, Any]], Any], owner: Any = None,
             finish: Callable[[Any], Any] | None = None) -> Callable[..., Any]:
    """The inline cache for calls with arguments like `arguments` (its dynamic leaves
    all `passable`; its static arguments compared by value).

    `call(*before, *leaves, *after[, out])` runs the kernel: into a new array like `out`
    when given, else returning a tuple that `finish` turns into the user's outputs. A
    kernel that raises is called again through `miss`, which reports the error as the
    general path does. `owner` (the numba dispatcher) is kept alive with the entry
    point, as it owns the machine code."""
    n = len(arguments.args)
    names = [f"a{i}" for i in range(n)]
    env: dict[str, Any] = {"ndarray": np.ndarray, "empty": np.empty, "call": call,
                           "miss": miss, "fail": _fail(miss), "owner": owner,
                           "finish": finish, "flat_node": flat_node}
    kw_test = (f"kwargs.keys() == {_const(env, set(arguments.kwargs))}" if arguments.kwargs
               else "not kwargs")
    structure: list[str] = []
    leaves: list[tuple[str, Any]] = []
    for expr, value, static in arguments.tops():
        if static:
            structure.append(_static_test(expr, value, env))
        else:
            leaves += _walk(expr, value, structure, env)
    checked = [_leaf_test(i, leaf, env) for i, (_, leaf) in enumerate(leaves)]
    env.update({f"B{i}": b for i, b in enumerate(before)})
    env.update({f"L{i}": v for i, v in enumerate(after)})
    call_args = ", ".join([f"B{i}" for i in range(len(before))] + [p for _, p in checked]
                          + [f"L{i}" for i in range(len(after))]
                          + (["out"] if out is not None else []))
    if out is not None:
        env.update(out_shape=out.shape, out_dtype=out.dtype)
    body = (_INTO_OUT if out is not None else _RETURNED).format(call_args=call_args)
    bind = "; ".join(f"x{i} = {expr}" for i, (expr, _) in enumerate(leaves)) or "pass"
    source = _TEMPLATE.format(
        n=n, kw_test=kw_test, unpack=f"{', '.join(names)}, = args" if names else "pass",
        structure="\n            and ".join(structure) or "True", leaves=bind,
        tests="\n                and ".join(t for t, _ in checked) or "True", body=body)
    exec(compile(source, "<fxgrad.jit hot call>", "exec"), env)
    return env["hot"]


# static values compared with ==, as the general path's dictionary does; others by identity
_VALUE_STATICS = (int, float, complex, bool, str, bytes, type(None), tuple, frozenset)


def _static_test(expr: str, value: Any, env: dict[str, Any]) -> str:
    """The test that static argument `expr` is `value` (of the same type)."""
    if type(value) in _VALUE_STATICS:
        return f"type({expr}) is {_const(env, type(value))} and {expr} == {_const(env, value)}"
    return f"{expr} is {_const(env, value)}"


def _walk(expr: str, x: Any, structure: list[str], env: dict[str, Any]) -> list[tuple[str, Any]]:
    """The leaves of `x` in tree_flatten's order as (expression, leaf), appending to
    `structure` the tests that `expr` has `x`'s containers (parents first)."""
    node = _node(x)
    if node is None:
        return [(expr, x)]
    structure.append(_node_test(expr, x, node, env))
    return [leaf for child, value in zip(_child_exprs(expr, x, node, env), _values(x, node))
            for leaf in _walk(child, value, structure, env)]


def _node_test(expr: str, x: Any, node: tuple[str, Any], env: dict[str, Any]) -> str:
    kind, parts = node
    if kind == "none":
        return f"{expr} is None"
    if kind == "dict":
        return f"type({expr}) is dict and {expr}.keys() == {_const(env, set(parts))}"
    test = f"type({expr}) is {_const(env, type(x))}"
    if kind == "registered":   # the user's flatten function, then its aux data and arity
        flatten, aux, children = parts
        flat = _node_var(expr, env)
        return (f"{test} and ({flat} := flat_node({_const(env, flatten)}, {expr}))[1] == "
                f"{_const(env, aux)} and len({flat}[0]) == {len(children)}")
    # a namedtuple's or dataclass's class fixes its length; a tuple's or list's does not
    return f"{test} and len({expr}) == {len(x)}" if type(x) in (tuple, list) else test


def _child_exprs(expr: str, x: Any, node: tuple[str, Any], env: dict[str, Any]) -> list[str]:
    kind, parts = node
    if kind == "seq":
        return [f"{expr}[{i}]" for i in range(len(x))]
    if kind == "dict":
        return [f"{expr}[{_const(env, k)}]" for k in parts]
    if kind == "fields":
        return [f"{expr}.{name}" for name in parts]
    if kind == "registered":
        return [f"{_node_var(expr, env)}[0][{i}]" for i in range(len(parts[2]))]
    return []


def _node_var(expr: str, env: dict[str, Any]) -> str:
    """The local holding the flattened registered node at `expr`: (children, aux)."""
    names = env.setdefault("_node_vars", {})
    return names.setdefault(expr, f"n{len(names)}")


def flat_node(flatten: Callable[[Any], Any], x: Any) -> tuple[tuple[Any, ...], Any]:
    children, aux = flatten(x)
    return tuple(children), aux


class Unsupported(Exception):
    """An argument the hot call does not take: a registered node whose aux data is not
    hashable, a Python int beyond int64."""


def _node(x: Any) -> tuple[str, Any] | None:
    """How tree_flatten takes `x` apart, as the hot call does: ("seq", None) for tuples,
    lists and namedtuples, ("dict", sorted keys), ("fields", dataclass field names),
    ("none", None), ("registered", (flatten function, aux data, children)) for nodes
    registered by the user; None for a leaf. Raises Unsupported for a registered node
    whose aux data is not hashable."""
    kind = type(x)
    if kind in (tuple, list):
        return ("seq", None)
    if kind is dict:
        return ("dict", tuple(tree_util.sorted_keys(x)))
    if x is None:
        return ("none", None)
    registered = tree_util._registry.get(kind)
    if registered is not None:
        children, aux = flat_node(registered.to_iterable, x)
        try:
            hash(aux)
        except TypeError:
            raise Unsupported(kind) from None
        return ("registered", (registered.to_iterable, aux, children))
    if isinstance(x, tuple) and hasattr(kind, "_fields"):
        return ("seq", None)
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return ("fields", tuple(f.name for f in dataclasses.fields(x)))
    return None


def _values(x: Any, node: tuple[str, Any]) -> list[Any]:
    kind, parts = node
    if kind == "seq":
        return list(x)
    if kind == "dict":
        return [x[k] for k in parts]
    if kind == "fields":
        return [getattr(x, name) for name in parts]
    if kind == "registered":
        return list(parts[2])
    return []


def _const(env: dict[str, Any], value: Any) -> str:
    """A name for `value` in the generated code's globals."""
    name = f"C{env.setdefault('_count', [0])[0]}"
    env["_count"][0] += 1
    env[name] = value
    return name


def _leaf_test(i: int, a: Any, env: dict[str, Any]) -> tuple[str, str]:
    """The test that leaf `x{i}` is like `a`, and what the kernel is passed for it."""
    name = f"x{i}"
    if type(a) is int:
        return f"type({name}) is int and {_INT64[0]} <= {name} <= {_INT64[1]}", name
    if type(a) is not np.ndarray:   # a Python or numpy scalar: its type fixes its dtype
        env[f"K{i}"] = type(a)
        return f"type({name}) is K{i}", name
    env.update({f"D{i}": a.dtype, f"S{i}": a.shape, f"T{i}": a.strides})
    test = f"type({name}) is ndarray and {name}.dtype is D{i} and {name}.shape == S{i}"
    if a.ndim == 0:
        return test, f"{name}[()]"
    return f"{test} and {name}.strides == T{i}", name


_SCALARS = (float, complex, bool)   # numba types them as their numpy arrays' scalars
_DIRECT = (float, complex, bool, int)   # passed to the kernel as they are
_INT64 = (-2 ** 63, 2 ** 63 - 1)   # Python ints numba and numpy both make int64


def passable(leaf: np.ndarray, arg: Any) -> bool:
    """Whether calls may hand leaf `arg` (which flattened to `leaf`) to the kernel
    without flattening: a C-contiguous array used as is, a 0-d array (its element is
    passed), a Python float, complex or bool, a Python int that numpy made an int64
    (one too large is a uint64 or an error), or a numpy scalar."""
    if type(arg) is np.ndarray:
        return leaf is arg and (arg.ndim == 0 or arg.flags.c_contiguous)
    if type(arg) in _SCALARS:
        return True
    if type(arg) is int:
        return leaf.dtype == np.int64
    return isinstance(arg, np.generic) and type(arg) is leaf.dtype.type and leaf.dtype.isnative


def raw_leaves(arguments: CallArgs) -> list[Any] | None:
    """The leaves of the dynamic arguments in tree_flatten's order if every node in them
    is one the hot call takes apart (see `_node`); None otherwise."""
    leaves: list[Any] = []
    stack = list(reversed(arguments.dynamic()))
    try:
        while stack:
            x = stack.pop()
            node = _node(x)
            if node is None:
                leaves.append(x)
            else:
                stack.extend(reversed(_values(x, node)))
    except Unsupported:
        return None
    return leaves


def fast_key(arguments: CallArgs) -> Any:
    """The dictionary key of a call: each array's shape, strides and dtype, each
    scalar's type, the containers' types and keys, each static argument's type and
    value, the keywords' names; None for unsupported nodes."""
    args = arguments.args
    try:
        if not arguments.kwargs and not arguments.static_positions:
            return _key(args[0]) if len(args) == 1 else tuple([_key(a) for a in args])
        key = tuple([("static", type(value), value) if static else _key(value)
                     for _, value, static in arguments.tops()])
        return ("kw", tuple(sorted(arguments.kwargs)), key) if arguments.kwargs else key
    except Unsupported:
        return None


def _key(a: Any) -> Any:
    kind = type(a)
    if kind is np.ndarray:
        return (a.shape, a.strides, a.dtype)
    if kind is int and not _INT64[0] <= a <= _INT64[1]:
        raise Unsupported(kind)
    node = _node(a)
    if node is None:
        return kind
    aux = node[1] if node[0] == "dict" else node[1][1] if node[0] == "registered" else None
    return (kind, aux, *[_key(c) for c in _values(a, node)])


def kernel_arguments(arguments: CallArgs) -> list[Any]:
    """The leaves of the dynamic arguments (all `passable`) as the kernel takes them:
    0-d arrays as their element."""
    leaves = []
    for a in arguments.dynamic():
        if type(a) is np.ndarray:
            leaves.append(a if a.ndim else a[()])
        elif type(a) in _DIRECT:
            leaves.append(a)
        else:   # containers
            return [a[()] if type(a) is np.ndarray and a.ndim == 0 else a
                    for a in raw_leaves(arguments) or []]
    return leaves


def _fail(miss: Callable[[tuple[Any, ...], dict[str, Any]], Any]) -> Callable[..., Any]:
    def fail(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        runtime.reset()   # the kernel's exit, which restores the caller's MXCSR, was skipped
        return miss(args, kwargs)
    return fail
