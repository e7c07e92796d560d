"""Pytrees: nested containers of arrays that transformations flatten and rebuild.

Tuples, lists, dicts (in sorted key order), None, namedtuples and dataclasses are
pytree nodes out of the box; `register_pytree_node` adds user classes. Everything
else is a leaf. A `PyTreeDef` is hashable and comparable, so it can key caches.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Hashable, Iterable, NamedTuple

from fxgrad.core.errors import FxTypeError


class _NodeType(NamedTuple):
    to_iterable: Callable[[Any], tuple[Iterable[Any], Hashable]]
    from_iterable: Callable[[Hashable, Iterable[Any]], Any]


_registry: dict[type, _NodeType] = {}


def register_pytree_node(nodetype: type, flatten_func: Callable[[Any], tuple[Iterable[Any], Hashable]],
                         unflatten_func: Callable[[Hashable, Iterable[Any]], Any]) -> None:
    """Register `nodetype`: `flatten_func(x) -> (children, aux)`,
    `unflatten_func(aux, children) -> x`.

    >>> class Pair:
    ...     def __init__(self, a, b): self.a, self.b = a, b
    >>> register_pytree_node(Pair, lambda p: ((p.a, p.b), None), lambda _, c: Pair(*c))
    >>> tree_leaves(Pair(1.0, (2.0, 3.0)))
    [1.0, 2.0, 3.0]
    """
    if nodetype in _registry:
        raise ValueError(f"{nodetype.__name__} is already registered as a pytree node")
    _registry[nodetype] = _NodeType(flatten_func, unflatten_func)


register_pytree_node(tuple, lambda t: (t, None), lambda _, c: tuple(c))
register_pytree_node(list, lambda x: (x, None), lambda _, c: list(c))
def sorted_keys(d: dict) -> list[Any]:
    """A dict's keys in pytree order (sorted, as JAX does), or a clear error.

    >>> sorted_keys({"b": 1, "a": 2})
    ['a', 'b']
    """
    try:
        return sorted(d)
    except TypeError:
        kinds = sorted({type(k).__name__ for k in d})
        raise FxTypeError(
            f"a dict in a pytree has keys of types {', '.join(kinds)}, which do not sort; "
            "its leaves are ordered by sorted key, so use keys of one type (all str, say)"
        ) from None


register_pytree_node(
    dict, lambda d: (tuple(d[k] for k in sorted_keys(d)), tuple(sorted_keys(d))),
    lambda keys, c: dict(zip(keys, c)))  # type: ignore[call-overload]
register_pytree_node(type(None), lambda _: ((), None), lambda _, c: None)


def _node_type(x: Any) -> _NodeType | None:
    kind = _registry.get(type(x))
    if kind is not None:
        return kind
    if isinstance(x, tuple) and hasattr(type(x), "_fields"):
        cls = type(x)
        return _NodeType(lambda t: (tuple(t), None), lambda _, c: cls(*c))
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        names = tuple(f.name for f in dataclasses.fields(x))
        dcls = type(x)
        return _NodeType(lambda d: (tuple(getattr(d, n) for n in names), names),
                         lambda _, c: dcls(**dict(zip(names, c))))
    return None


class PyTreeDef:
    """The structure of a pytree, without its leaves: `*` marks where a leaf goes.

    >>> treedef = tree_structure({"w": (1.0, 2.0), "b": 3.0})
    >>> treedef, treedef.num_leaves
    (dict(*, tuple(*, *)), 3)
    >>> treedef.unflatten([10.0, 20.0, 30.0])
    {'b': 10.0, 'w': (20.0, 30.0)}
    """

    __slots__ = ("node_type", "aux", "children", "num_leaves")

    def __init__(self, node_type: Any, aux: Hashable, children: tuple["PyTreeDef", ...]):
        self.node_type = node_type
        self.aux = aux
        self.children = children
        self.num_leaves: int = 1 if node_type is None else sum(c.num_leaves for c in children)

    def _key(self) -> tuple[Any, ...]:
        return (self.node_type, self.aux, self.children)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PyTreeDef) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def unflatten(self, leaves: Iterable[Any]) -> Any:
        it = iter(leaves)
        tree = self._build(it)
        return tree

    def _build(self, it: Any) -> Any:
        if self.node_type is None:
            return next(it)
        children = [c._build(it) for c in self.children]
        kind = _registry.get(self.node_type) or _node_type_for_class(self.node_type)
        return kind.from_iterable(self.aux, children)

    def __repr__(self) -> str:
        if self.node_type is None:
            return "*"
        inner = ", ".join(map(repr, self.children))
        return f"{self.node_type.__name__}({inner})"


def _node_type_for_class(cls: type) -> _NodeType:
    if dataclasses.is_dataclass(cls):
        names = tuple(f.name for f in dataclasses.fields(cls))
        return _NodeType(lambda d: ((), None), lambda _, c: cls(**dict(zip(names, c))))
    return _NodeType(lambda t: ((), None), lambda _, c: cls(*c))


def tree_flatten(tree: Any, is_leaf: Callable[[Any], bool] | None = None) -> tuple[list[Any], PyTreeDef]:
    """Leaves of `tree` in order, and its structure.

    >>> leaves, treedef = tree_flatten({"b": (1.0, 2.0), "a": None})
    >>> leaves
    [1.0, 2.0]
    """
    leaves: list[Any] = []
    return leaves, _flatten(tree, leaves, is_leaf)


def _flatten(x: Any, leaves: list[Any], is_leaf: Callable[[Any], bool] | None) -> PyTreeDef:
    kind = None if (is_leaf is not None and is_leaf(x)) else _node_type(x)
    if kind is None:
        leaves.append(x)
        return PyTreeDef(None, None, ())
    children, aux = kind.to_iterable(x)
    return PyTreeDef(type(x), aux, tuple(_flatten(c, leaves, is_leaf) for c in children))


def tree_unflatten(treedef: PyTreeDef, leaves: Iterable[Any]) -> Any:
    """Rebuild a pytree of structure `treedef` from its leaves.

    >>> leaves, treedef = tree_flatten([1.0, (2.0, 3.0)])
    >>> tree_unflatten(treedef, [x * 10 for x in leaves])
    [10.0, (20.0, 30.0)]
    """
    return treedef.unflatten(leaves)


def tree_leaves(tree: Any) -> list[Any]:
    """The leaves of `tree`, in flattening order (dict keys sorted).

    >>> tree_leaves({"b": [2.0, 3.0], "a": 1.0, "c": None})
    [1.0, 2.0, 3.0]
    """
    return tree_flatten(tree)[0]


def tree_structure(tree: Any) -> PyTreeDef:
    """The structure of `tree` (its `PyTreeDef`), without the leaves.

    >>> tree_structure((1.0, [2.0, 3.0])) == tree_structure((4.0, [5.0, 6.0]))
    True
    """
    return tree_flatten(tree)[1]


def tree_map(f: Callable[..., Any], tree: Any, *rest: Any) -> Any:
    """Apply `f` leafwise to one or more pytrees of the same structure.

    >>> tree_map(lambda x, y: x + y, (1.0, [2.0]), (10.0, [20.0]))
    (11.0, [22.0])
    """
    leaves, treedef = tree_flatten(tree)
    others = [_leaves_like(treedef, r) for r in rest]
    return treedef.unflatten(f(*xs) for xs in zip(leaves, *others))


def _leaves_like(treedef: PyTreeDef, tree: Any) -> list[Any]:
    leaves, other = tree_flatten(tree)
    if other != treedef:
        raise ValueError(f"pytree structures differ: {treedef} vs {other}")
    return leaves
