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

Only signatures of positional arguments made of tuples, lists, dicts, None,
namedtuples and dataclasses around `passable` leaves (C-contiguous arrays, 0-d arrays, Python floats, complex numbers and
bools, numpy scalars), with no donated inputs and no static arguments, get a hot call;
everything else goes through `Entry.run`.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Sequence

import numpy as np

from fxgrad import tree_util
from fxgrad.jit import runtime

_TEMPLATE = """\
def hot(args):
    if len(args) == {n}:
        {unpack}
        if ({structure}):
            {leaves}
            if ({tests}):
{body}
    return miss(args)
"""

_INTO_OUT = """\
                out = empty(out_shape, out_dtype)
                try:
                    call({call_args})
                except Exception:
                    return fail(args)
                return out"""

_RETURNED = """\
                try:
                    outs = call({call_args})
                except Exception:
                    return fail(args)
                return finish(outs)"""

def native_entry(kernel: Callable[..., Any], args: Sequence[Any]) -> Callable[..., Any]:
    """The compiled entry point of `kernel` for `args`' numba types; `kernel` itself
    (numba's dispatcher) if numba does not expose one."""
    try:
        import numba
        signature = tuple(numba.typeof(a) for a in args)
        return kernel.overloads[signature].entry_point  # type: ignore[attr-defined]
    except (AttributeError, KeyError, ValueError, TypeError):
        return kernel


def hot_call(call: Callable[..., Any], args: Sequence[Any], before: Sequence[Any],
             after: Sequence[Any], out: np.ndarray | None,
             miss: Callable[[tuple[Any, ...]], Any], owner: Any = None,
             finish: Callable[[Any], Any] | None = None) -> Callable[[tuple[Any, ...]], Any]:
    """The inline cache for calls with arguments like `args` (all `passable`).

    `call(*before, *args, *after[, out])` runs the kernel: into a new array like `out`
    when given, else returning a tuple that `finish` turns into the user's outputs. A
    kernel that raises is called again through `miss`, which reports the error as the
    general path does. `owner` (the numba dispatcher) is kept alive with the entry
    point, as it owns the machine code."""
    n = len(args)
    names = [f"a{i}" for i in range(n)]
    env: dict[str, Any] = {"ndarray": np.ndarray, "empty": np.empty, "call": call,
                           "miss": miss, "fail": _fail(miss), "owner": owner,
                           "finish": finish}
    structure: list[str] = []
    leaves = [leaf for i, a in enumerate(args)
              for leaf in _walk(f"a{i}", a, structure, env)]
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
        n=n, unpack=f"{', '.join(names)}, = args" if names else "pass",
        structure="\n            and ".join(structure) or "True", leaves=bind,
        tests="\n                and ".join(t for t, _ in checked) or "True", body=body)
    exec(compile(source, "<fxgrad.jit hot call>", "exec"), env)
    return env["hot"]


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
    return []


class Unsupported(Exception):
    """A pytree node the hot call does not take apart (a registered custom node)."""


def _node(x: Any) -> tuple[str, Any] | None:
    """How tree_flatten takes `x` apart, if the hot call can do the same: ("seq", None)
    for tuples, lists and namedtuples, ("dict", sorted keys), ("fields", dataclass
    field names), ("none", None); None for a leaf. Raises Unsupported for other nodes."""
    kind = type(x)
    if kind in (tuple, list):
        return ("seq", None)
    if kind is dict:
        return ("dict", tuple(tree_util.sorted_keys(x)))
    if x is None:
        return ("none", None)
    if kind in tree_util._registry:
        raise Unsupported(kind)
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
    if type(a) is not np.ndarray:   # a Python or numpy scalar: its type fixes its dtype
        env[f"K{i}"] = type(a)
        return f"type({name}) is K{i}", name
    env.update({f"D{i}": a.dtype, f"S{i}": a.shape, f"T{i}": a.strides})
    test = f"type({name}) is ndarray and {name}.dtype is D{i} and {name}.shape == S{i}"
    if a.ndim == 0:
        return test, f"{name}[()]"
    return f"{test} and {name}.strides == T{i}", name


_SCALARS = (float, complex, bool)   # numba types them as their numpy arrays' scalars


def passable(leaf: np.ndarray, arg: Any) -> bool:
    """Whether calls may hand leaf `arg` (which flattened to `leaf`) to the kernel
    without flattening: a C-contiguous array used as is, a 0-d array (its element is
    passed), a Python float, complex or bool, or a numpy scalar. Not Python ints: one
    too large for int64 is a uint64 or an error, depending on its value."""
    if type(arg) is np.ndarray:
        return leaf is arg and (arg.ndim == 0 or arg.flags.c_contiguous)
    if type(arg) in _SCALARS:
        return True
    return isinstance(arg, np.generic) and type(arg) is leaf.dtype.type and leaf.dtype.isnative


def raw_leaves(args: Sequence[Any]) -> list[Any] | None:
    """The leaves of `args` in tree_flatten's order if every node in them is one the hot
    call takes apart (see `_node`); None otherwise."""
    leaves: list[Any] = []
    stack = list(reversed(args))
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


def fast_key(args: Sequence[Any]) -> Any:
    """The dictionary key of arguments: each array's shape, strides and dtype, each
    scalar's type, and the containers' types and keys; None for unsupported nodes."""
    try:
        if len(args) == 1:
            return _key(args[0])
        return tuple([_key(a) for a in args])
    except Unsupported:
        return None


def _key(a: Any) -> Any:
    kind = type(a)
    if kind is np.ndarray:
        return (a.shape, a.strides, a.dtype)
    node = _node(a)
    if node is None:
        return kind
    return (kind, node[1] if node[0] == "dict" else None, *[_key(c) for c in _values(a, node)])


def kernel_arguments(args: Sequence[Any]) -> list[Any]:
    """The leaves of `passable` arguments as the kernel takes them: 0-d arrays as
    their element."""
    if not all(type(a) is np.ndarray or type(a) in _SCALARS for a in args):
        args = raw_leaves(args) or []
    return [a[()] if type(a) is np.ndarray and a.ndim == 0 else a for a in args]


def _fail(miss: Callable[[tuple[Any, ...]], Any]) -> Callable[[tuple[Any, ...]], Any]:
    def fail(args: tuple[Any, ...]) -> Any:
        runtime.reset()   # the kernel's exit, which restores the caller's MXCSR, was skipped
        return miss(args)
    return fail
