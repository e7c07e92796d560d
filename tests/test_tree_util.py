"""Pytrees: flattening, rebuilding and mapping over nested containers."""
import collections
import dataclasses

import numpy as np
import pytest

from fxgrad import tree_util
from fxgrad.tree_util import (PyTreeDef, register_pytree_node, tree_flatten, tree_leaves,
                              tree_map, tree_structure, tree_unflatten)

Point = collections.namedtuple("Point", ["x", "y"])


@dataclasses.dataclass
class Params:
    w: object
    b: object


class Box:
    """A user class registered below: its `label` is static structure, `items` are children."""

    def __init__(self, label, *items):
        self.label, self.items = label, items

    def __eq__(self, other):
        return isinstance(other, Box) and (self.label, self.items) == (other.label, other.items)


register_pytree_node(Box, lambda b: (b.items, b.label), lambda label, items: Box(label, *items))


TREES = [
    1.0,
    np.arange(3.0),
    (1.0, 2.0),
    [1.0, [2.0, (3.0,)]],
    {"b": 2.0, "a": 1.0, "c": [3.0]},
    (None, 1.0, {"x": None}),
    Point(1.0, (2.0, 3.0)),
    Params(w=1.0, b=[2.0, 3.0]),
    Box("lbl", 1.0, (2.0, 3.0)),
    {"p": Params(Point(1.0, 2.0), Box("k", 3.0)), "q": ()},
    [],
    {},
]


@pytest.mark.parametrize("tree", TREES, ids=lambda t: type(t).__name__)
def test_flatten_then_unflatten_round_trips(tree):
    leaves, treedef = tree_flatten(tree)
    rebuilt = tree_unflatten(treedef, leaves)
    assert type(rebuilt) is type(tree)
    assert tree_structure(rebuilt) == treedef
    assert all(a is b for a, b in zip(tree_leaves(rebuilt), leaves))
    assert treedef.num_leaves == len(leaves)


def test_leaves_come_in_order_with_dict_keys_sorted():
    assert tree_leaves({"b": 2.0, "a": 1.0, "c": [3.0, 4.0]}) == [1.0, 2.0, 3.0, 4.0]
    assert tree_leaves([1.0, (2.0, {"z": 4.0, "y": 3.0})]) == [1.0, 2.0, 3.0, 4.0]


def test_none_is_an_empty_node_not_a_leaf():
    leaves, treedef = tree_flatten((None, 1.0))
    assert leaves == [1.0]
    assert tree_unflatten(treedef, [5.0]) == (None, 5.0)


def test_arrays_and_scalars_are_leaves():
    x = np.ones((2, 3))
    assert tree_leaves(x)[0] is x
    assert tree_leaves("text") == ["text"]
    assert tree_structure(x).num_leaves == 1


def test_namedtuple_dataclass_and_registered_class_rebuild_their_type():
    assert tree_unflatten(tree_structure(Point(1, 2)), [3, 4]) == Point(3, 4)
    assert tree_unflatten(tree_structure(Params(1, 2)), [3, 4]) == Params(3, 4)
    rebuilt = tree_unflatten(tree_structure(Box("q", 1, 2)), [3, 4])
    assert rebuilt == Box("q", 3, 4)


def test_registered_aux_data_is_part_of_the_structure():
    assert tree_structure(Box("a", 1.0)) != tree_structure(Box("b", 1.0))
    assert tree_structure(Box("a", 1.0)) == tree_structure(Box("a", 7.0))


def test_structures_compare_by_container_type_and_keys():
    assert tree_structure((1, 2)) != tree_structure([1, 2])
    assert tree_structure({"a": 1}) != tree_structure({"b": 1})
    assert tree_structure(Point(1, 2)) != tree_structure((1, 2))
    assert tree_structure((1, (2, 3))) != tree_structure((1, 2, 3))
    assert tree_structure((1, None)) != tree_structure((1,))
    assert tree_structure({"a": 1.0, "b": 2.0}) == tree_structure({"b": "x", "a": "y"})


def test_treedefs_are_hashable_and_printable():
    treedefs = {tree_structure((1, [2])), tree_structure((3, [4])), tree_structure([1, 2])}
    assert len(treedefs) == 2
    assert isinstance(tree_structure(1.0), PyTreeDef)
    assert repr(tree_structure(1.0)) == "*"
    assert repr(tree_structure((1.0, [2.0, 3.0]))) == "tuple(*, list(*, *))"


def test_registering_a_type_twice_is_an_error():
    with pytest.raises(ValueError, match="Box"):
        register_pytree_node(Box, lambda b: ((), None), lambda a, c: Box(a))


def test_is_leaf_stops_flattening():
    tree = {"a": (1.0, 2.0), "b": [3.0]}
    leaves, treedef = tree_flatten(tree, is_leaf=lambda x: isinstance(x, tuple))
    assert leaves == [(1.0, 2.0), 3.0]
    assert tree_unflatten(treedef, ["T", 4.0]) == {"a": "T", "b": [4.0]}


def test_tree_map_over_one_and_several_trees():
    assert tree_map(lambda x: 2 * x, {"a": 1.0, "b": (2.0, None)}) == {"a": 2.0, "b": (4.0, None)}
    out = tree_map(lambda x, y, z: x + y + z, Point(1.0, [2.0]), Point(10.0, [20.0]),
                   Point(100.0, [200.0]))
    assert out == Point(111.0, [222.0])


def test_tree_map_rejects_mismatched_structures():
    with pytest.raises(ValueError, match="structures differ"):
        tree_map(lambda x, y: x + y, (1.0, 2.0), [1.0, 2.0])
    with pytest.raises(ValueError, match="structures differ"):
        tree_map(lambda x, y: x + y, {"a": 1.0}, {"b": 1.0})


def test_module_is_exported_from_the_package():
    import fxgrad
    assert fxgrad.tree_util is tree_util


def test_dict_keys_that_do_not_sort_name_the_mistake():
    import fxgrad as fx
    with pytest.raises(fx.FxTypeError, match="keys of types int, str, which do not sort.*one type"):
        fx.tree_util.tree_flatten({1: 1.0, "a": 2.0})
