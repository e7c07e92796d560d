"""The repeat-call path (fxgrad/jit/dispatch.py): each jitted function's inline cache
of one signature must give the general path's answer for every call it takes, and
hand every other call to the general path."""
import collections
import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fxgrad as fx
import fxgrad.numpy as fnp
from fxgrad.jit import dispatch


def f_eager(x):
    x = fnp.asarray(x)   # a list is a pytree of scalars
    return fnp.sin(x) * 2.0 + x * x


f_jit = fx.jit(f_eager)


def _check(f, x):
    expected = np.asarray(f_eager(np.asarray(x)))
    got = f(x)
    assert type(got) is np.ndarray and got.dtype == expected.dtype
    np.testing.assert_allclose(got, expected, rtol=1e-12 if got.dtype == np.float64 else 1e-6)


def test_first_call_makes_the_hot_call_and_later_calls_take_it(monkeypatch):
    f = fx.jit(f_eager)
    x = np.linspace(0, 1, 5)
    f(x)
    assert f._hot in f._hot_entry.hots.values()
    _only_the_hot_call_from_now_on(f, monkeypatch)
    _check(f, x + 1.0)


def _only_the_hot_call_from_now_on(f, monkeypatch):
    def general_path(*args):
        raise AssertionError("the call missed the hot call")
    monkeypatch.setattr(f, "_call", general_path)
    monkeypatch.setattr(f._hot_entry, "run", general_path)


def test_the_kernel_is_called_through_its_native_entry_point():
    f = fx.jit(f_eager)
    f(np.ones(4))
    entry = f._hot_entry
    call = f._hot.__globals__["call"]
    assert call is not entry.kernel and call is entry.kernel.overloads[
        entry.kernel.signatures[0]].entry_point


ARRAYS = {
    "another shape": lambda: np.linspace(0, 1, 7),
    "float32": lambda: np.linspace(0, 1, 5).astype(np.float32),
    "int64": lambda: np.arange(5),
    "strided view": lambda: np.linspace(0, 1, 10)[::2],
    "reversed": lambda: np.linspace(0, 1, 5)[::-1],
    "read-only": lambda: _readonly(),
    "big-endian": lambda: np.linspace(0, 1, 5).astype(">f8"),
    "subclass": lambda: np.linspace(0, 1, 5).view(_Sub),
    "list": lambda: [0.0, 0.25, 0.5, 0.75, 1.0],
    "0-d": lambda: np.array(0.5),
    "python float": lambda: 0.5,
}


class _Sub(np.ndarray):
    pass


def _readonly():
    x = np.linspace(0, 1, 5)
    x.setflags(write=False)
    return x


@pytest.mark.parametrize("kind", list(ARRAYS))
def test_calls_unlike_the_hot_signature_get_the_general_paths_answer(kind):
    f = fx.jit(f_eager)
    _check(f, np.linspace(0, 1, 5))
    for _ in range(3):      # also once known to the general path
        _check(f, ARRAYS[kind]())
    _check(f, np.linspace(0, 1, 5))
    g = fx.jit(f_eager)     # that kind first
    for _ in range(3):
        _check(g, ARRAYS[kind]())
    _check(g, np.linspace(0, 1, 5))


def test_fortran_ordered_matrix():
    f = fx.jit(f_eager)
    x = np.arange(6.0).reshape(2, 3)
    _check(f, x)
    _check(f, np.asfortranarray(x))
    _check(f, x.T)


def test_outputs_are_fresh_arrays():
    f = fx.jit(f_eager)
    x = np.ones(3)
    a, b = f(x), f(x)
    assert a is not b and not np.shares_memory(a, b) and a.flags.writeable
    identity = fx.jit(lambda x: x)
    y = identity(x)
    assert y is not x and not np.shares_memory(y, x)


def test_wrong_number_of_arguments_reports_as_before():
    f = fx.jit(f_eager)
    f(np.ones(3))
    with pytest.raises(TypeError):
        f(np.ones(3), np.ones(3))
    with pytest.raises(TypeError):
        f()


def test_several_arguments_constants_and_literals():
    A = np.arange(4.0)
    f = fx.jit(lambda x, y: x * A + fnp.exp(y) * 3.0)
    x, y = np.ones(4), np.linspace(0, 1, 4)
    for _ in range(3):
        np.testing.assert_allclose(f(x, y), x * A + np.exp(y) * 3.0, rtol=1e-12)
    assert f._hot_entry is not None
    np.testing.assert_allclose(f(y, x), y * A + np.exp(x) * 3.0, rtol=1e-12)


@pytest.mark.parametrize("fun", [
    lambda x: (x * 2.0, x + 1.0),             # several outputs
    lambda x: fnp.sum(x * 2.0),               # a scalar output, stored into a 0-d `out`
    lambda x: {"y": x * 2.0, "s": x[0]},      # a pytree output with a scalar leaf
    lambda x: x.astype(np.float32)[1] > 0.5,  # a boolean scalar
    lambda x: x @ x.T,                        # BLAS allocates: returned, not written
], ids=["pair", "scalar", "dict", "bool", "matmul"])
def test_any_output_structure_through_the_hot_call(fun, monkeypatch):
    f = fx.jit(fun)
    x = np.linspace(0, 1, 6).reshape(2, 3)
    for _ in range(2):
        got, expected = f(x), fun(x)
        assert fx.tree_util.tree_structure(got) == fx.tree_util.tree_structure(expected)
        fx.tree_util.tree_map(_same_array, got, expected)
        _only_the_hot_call_from_now_on(f, monkeypatch)


def _same_array(got, expected):
    expected = np.asarray(expected)
    assert type(got) is np.ndarray and got.dtype == expected.dtype
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_donated_entries_have_no_hot_call():
    f = fx.jit(lambda x: x * 2.0, donate_argnums=0)
    for _ in range(2):
        x = np.ones(3)
        np.testing.assert_allclose(f(x), 2.0)
    assert f._hot_entry is None


def test_disable_jit_is_honoured_after_a_hot_call_exists():
    calls = []

    def fun(x):
        calls.append(1)
        return x * 2.0
    f = fx.jit(fun)
    x = np.ones(3)
    f(x)
    f(x)
    traced = len(calls)
    fx.config.update("disable_jit", True)
    try:
        f(x)
        assert len(calls) == traced + 1   # ran as Python
    finally:
        fx.config.update("disable_jit", False)
    f(x)
    f(x)
    assert len(calls) == traced + 1


def test_evicting_the_hot_entry_drops_the_hot_call(monkeypatch):
    monkeypatch.setattr(fx.config, "jit_cache_size", 1)
    f = fx.jit(f_eager)
    x3, x4 = np.linspace(0, 1, 3), np.linspace(0, 1, 4)
    for x in (x3, x4, x3, x4):
        _check(f, x)
        assert len(f._entries) == 1 and f._hot_entry is next(iter(f._entries.values()))


def test_clear_cache_drops_the_hot_call():
    f = fx.jit(f_eager)
    f(np.ones(3))
    f.clear_cache()
    assert f._hot_entry is None
    _check(f, np.ones(3))


def test_out_parameter_only_for_one_fused_array_output():
    x = np.ones((2, 3))
    source = lambda fun: fx.jit(fun).lower(x).as_text()   # noqa: E731
    assert ", out):" in source(lambda x: fnp.sin(x) * 2.0) and "return\n" in source(
        lambda x: fnp.sin(x) * 2.0)
    assert ", out)" not in source(lambda x: x.T)                    # a view: copied out
    assert ", out)" not in source(lambda x: x @ x.T)                # BLAS allocates
    assert ", out)" not in source(lambda x: (fnp.sin(x), x * 2.0))  # two outputs


def test_native_entry_falls_back_to_the_dispatcher():
    def plain(*args):
        return args
    assert dispatch.native_entry(plain, [np.ones(2)]) is plain


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 4), st.sampled_from(["f8", "f4", "view", "list"])),
                min_size=1, max_size=8))
def test_any_sequence_of_calls_matches_eager(calls):
    for n, kind in calls:
        base = np.linspace(-1, 1, 2 * n)
        x = {"f8": base[:n].copy(), "f4": base[:n].astype(np.float32),
             "view": base[::2], "list": list(base[:n])}[kind]
        _check(f_jit, x)


def test_hot_hits_count_as_uses_for_eviction(monkeypatch):
    monkeypatch.setattr(fx.config, "jit_cache_size", 2)
    f = fx.jit(f_eager)
    for n in (1, 2, 1, 1, 1):           # the last calls of n == 1 are hot hits
        f(np.ones(n))
    f(np.ones(3))                       # evicts n == 2, used longest ago
    assert sorted(e.program.invars[0].aval.shape[0] for e in f._entries.values()) == [1, 3]


SCALARS = {
    "float": 0.75, "int": 3, "big int": 2 ** 63, "bool": True, "complex": 0.5 + 2j,
    "float32 scalar": np.float32(0.75), "float64 scalar": np.float64(-1.5),
    "int8 scalar": np.int8(-3), "0-d float": np.array(0.75), "0-d float32": np.array(0.5, np.float32),
    "0-d int": np.array(7), "0-d complex": np.array(1 - 1j),
}


def scalar_fun(x, y):
    return x * 2.0 + y * y


@pytest.mark.parametrize("kind", list(SCALARS))
def test_scalar_arguments_of_every_kind(kind, monkeypatch):
    f = fx.jit(scalar_fun)
    x, y = SCALARS[kind], np.linspace(0, 1, 3)
    for _ in range(3):
        _same_array(f(x, y), scalar_fun(np.asarray(x), y))
    if kind != "big int":   # a uint64 for numpy: always the general path
        _only_the_hot_call_from_now_on(f, monkeypatch)
        _same_array(f(x, y), scalar_fun(np.asarray(x), y))


def test_scalar_kinds_alternating_share_one_entry_each_with_its_hot_call():
    f = fx.jit(scalar_fun)
    y = np.ones(2)
    for _ in range(2):
        for x in (0.5, np.array(0.5), np.float64(0.5)):
            _same_array(f(x, y), scalar_fun(0.5, y))
    assert len(f._entries) == 1 and len(next(iter(f._entries.values())).hots) == 3


@pytest.mark.parametrize("fun", [lambda: np.float64(1.5) * 2.0, lambda: np.ones(3) * 2.0,
                                 lambda: (np.ones(2), 1.0)], ids=["scalar", "array", "pair"])
def test_functions_of_no_arguments(fun, monkeypatch):
    f = fx.jit(fun)
    f()
    _only_the_hot_call_from_now_on(f, monkeypatch)
    fx.tree_util.tree_map(_same_array, f(), fun())


def tree_fun(tree, y):
    leaves = fx.tree_util.tree_leaves(tree)
    return sum(fnp.sum(fnp.asarray(leaf) * (k + 1.0)) for k, leaf in enumerate(leaves)) * y


PYTREES = {
    "dict": lambda: {"W": np.ones((2, 3)), "b": np.arange(3.0)},
    "nested": lambda: {"layers": [(np.ones(2), 0.5), (np.full(2, 3.0), np.array(2.0))],
                       "scale": np.float64(2.0), "unused": None},
    "int keys": lambda: {2: np.ones(2), 1: np.zeros(3), 10: 1.5},
    "tuple of lists": lambda: ([np.ones(2)], [np.ones(1), 2.0]),
    "empty": lambda: {"a": (), "b": []},
    "namedtuple": lambda: Params(np.ones(2), (1.5, np.zeros(3))),
    "dataclass": lambda: Layer(np.ones((2, 2)), Params(0.5, np.arange(2.0))),
}


Params = collections.namedtuple("Params", "w b")


@dataclasses.dataclass
class Layer:
    weight: np.ndarray
    rest: Params


class Pair:   # a registered node: its flattening is the user's code
    def __init__(self, a, b):
        self.a, self.b = a, b


fx.tree_util.register_pytree_node(Pair, lambda p: ((p.a, p.b), None), lambda _, c: Pair(*c))

LIKE_BUT_NOT = {   # each against the "dict" tree: must miss the hot call, still be right
    "other key": {"W": np.ones((2, 3)), "c": np.arange(3.0)},
    "extra key": {"W": np.ones((2, 3)), "b": np.arange(3.0), "c": 1.0},
    "other shape": {"W": np.ones((3, 3)), "b": np.arange(3.0)},
    "a list leaf": {"W": np.ones((2, 3)), "b": [0.0, 1.0, 2.0]},
    "a view": {"W": np.ones((3, 2)).T, "b": np.arange(3.0)},
    "a namedtuple": Params(np.ones((2, 3)), np.arange(3.0)),
    "a registered node": Pair(np.ones((2, 3)), np.arange(3.0)),
}


@pytest.mark.parametrize("kind", list(PYTREES))
def test_pytree_arguments_through_the_hot_call(kind, monkeypatch):
    f = fx.jit(tree_fun)
    tree, y = PYTREES[kind](), np.linspace(1, 2, 2)
    for _ in range(2):
        _same_array(f(tree, y), tree_fun(tree, y))
        _only_the_hot_call_from_now_on(f, monkeypatch)
    _same_array(f(PYTREES[kind](), y * 2), tree_fun(tree, y * 2))


@pytest.mark.parametrize("kind", list(LIKE_BUT_NOT))
def test_pytrees_unlike_the_hot_one_take_the_general_path(kind):
    f = fx.jit(tree_fun)
    y = np.ones(2)
    for tree in [PYTREES["dict"](), LIKE_BUT_NOT[kind], LIKE_BUT_NOT[kind], PYTREES["dict"]()]:
        _same_array(f(tree, y), tree_fun(tree, y))


def test_dict_subclasses_and_unsortable_keys_take_the_general_path():
    f = fx.jit(tree_fun)
    f(PYTREES["dict"](), 1.0)
    with pytest.raises(fx.FxTypeError, match="OrderedDict"):   # not a pytree node
        f(collections.OrderedDict(PYTREES["dict"]()), 1.0)
    with pytest.raises(fx.FxTypeError, match="keys of types int, str, which do not sort"):
        f({1: 1.0, "a": 2.0}, 1.0)


class Scaled:   # a registered node with aux data: its scale is static
    def __init__(self, values, scale):
        self.values, self.scale = values, scale


fx.tree_util.register_pytree_node(Scaled, lambda s: (s.values, s.scale),
                                  lambda scale, c: Scaled(list(c), scale))


def scaled_fun(s, y):
    return sum(fnp.sum(v) for v in s.values) * s.scale * y


def test_registered_nodes_through_the_hot_call(monkeypatch):
    f = fx.jit(scaled_fun)
    y = np.ones(2)
    calls = [Scaled([np.ones(2), 2.0], 3.0), Scaled([np.ones(2), 2.0], 4.0),   # other aux
             Scaled([np.ones(2)], 3.0), Scaled([np.ones(2), 2.0], 3.0)]         # other arity
    for s in calls:
        _same_array(f(s, y), scaled_fun(s, y))
    assert len(f._entries) == 3
    _only_the_hot_call_from_now_on(f, monkeypatch)
    s = Scaled([np.full(2, 5.0), 1.5], 3.0)
    _same_array(f(s, y), scaled_fun(s, y))


def test_registered_nodes_with_unhashable_aux_are_a_clear_error():
    f = fx.jit(scaled_fun)
    with pytest.raises(fx.FxTypeError, match=r"node Scaled has aux data \[3.0\], which is "
                       "not hashable.*a tuple rather than a list"):
        f(Scaled([np.ones(2)], [3.0]), 1.0)
    assert float(f(Scaled([np.ones(2)], 3.0), 1.0)) == 6.0


leaf_strategy = st.one_of(
    st.floats(-2, 2, allow_subnormal=False).map(float),   # jit flushes subnormals
    st.integers(1, 3).map(lambda n: np.linspace(-1, 1, n)),
    st.just(np.array(0.25)))
tree_strategy = st.recursive(
    leaf_strategy,
    lambda children: st.one_of(st.lists(children, max_size=3), st.tuples(children, children),
                               st.dictionaries(st.sampled_from("abc"), children, max_size=3)),
    max_leaves=6)


@settings(max_examples=40, deadline=None)
@given(st.lists(tree_strategy, min_size=1, max_size=4))
def test_any_sequence_of_pytree_calls_matches_eager(trees):
    for tree in trees:
        _same_array(tree_jit(tree, 1.5), tree_fun(tree, 1.5))


tree_jit = fx.jit(tree_fun)


@pytest.mark.parametrize("values", [(3, 2 ** 63, 3), (2 ** 63 - 1, 2 ** 63, -2 ** 63, 5)],
                         ids=["around a big int", "at int64's bounds"])
def test_python_ints_beyond_int64_miss_the_hot_call(values):
    f = fx.jit(lambda n, y: (n, y + 1.0))
    for n in values * 2:
        got, _ = f(n, np.ones(2))
        assert got == n and got.dtype == np.asarray(n).dtype


def static_fun(x, n, scale=1.0):
    return x * float(len(range(n))) * scale


@pytest.mark.parametrize("values", [(3, 3, 4, 3), (0, 2, 0)], ids=["repeats", "alternating"])
def test_static_arguments_through_the_hot_call(values, monkeypatch):
    f = fx.jit(static_fun, static_argnums=1)
    x = np.linspace(0, 1, 3)
    for n in values:
        _same_array(f(x, n), static_fun(x, n))
    _only_the_hot_call_from_now_on(f, monkeypatch)
    _same_array(f(x * 2, values[-1]), static_fun(x * 2, values[-1]))


def test_equal_static_values_of_other_types_trace_anew():
    f = fx.jit(lambda x, flag: x * (3.0 if isinstance(flag, bool) else 2.0), static_argnums=1)
    x = np.ones(2)
    for flag, expected in [(1, 2.0), (True, 3.0), (1, 2.0), (1.0, 2.0), (True, 3.0)]:
        np.testing.assert_array_equal(f(x, flag), expected)
    assert len(f._entries) == 3
    g = fx.jit(f.fun, static_argnums=1)
    g(x, 1)
    assert "static argument 1 (flag) changed from 1 to True" in fx.explain_cache_miss(g, x, True)


def test_static_objects_are_compared_by_identity_in_the_hot_call(monkeypatch):
    f = fx.jit(lambda x, act: act(x), static_argnums=1)
    x = np.linspace(-1, 1, 4)
    for act in (fnp.tanh, fnp.sin, fnp.tanh, fnp.tanh):
        _same_array(f(x, act), act(x))
    _only_the_hot_call_from_now_on(f, monkeypatch)
    _same_array(f(x, fnp.tanh), np.tanh(x))


def keyword_fun(x, n, scale=1.0):
    return x * n * scale


def test_keyword_arguments_through_the_hot_call(monkeypatch):
    f = fx.jit(keyword_fun)
    x = np.linspace(0, 1, 3)
    _same_array(f(x, 2, scale=0.5), keyword_fun(x, 2, 0.5))   # n: a traced Python int
    _same_array(f(x, scale=3.0, n=2), keyword_fun(x, 2, 3.0))
    _only_the_hot_call_from_now_on(f, monkeypatch)
    _same_array(f(x, n=2, scale=0.25), keyword_fun(x, 2, 0.25))   # any keyword order


def test_static_keyword_arguments_through_the_hot_call(monkeypatch):
    f = fx.jit(static_fun, static_argnames="n")
    x = np.linspace(0, 1, 3)
    for n in (2, 3, 2):
        _same_array(f(x, n=n, scale=2.0), static_fun(x, n, 2.0))
    _only_the_hot_call_from_now_on(f, monkeypatch)
    _same_array(f(x, scale=1.5, n=2), static_fun(x, 2, 1.5))


CALLS = {   # each a way to call static_fun(x, 2, 0.5) or close to it
    "positional": lambda f, x: f(x, 2, 0.5),
    "keywords": lambda f, x: f(x, n=2, scale=0.5),
    "one keyword": lambda f, x: f(x, 2, scale=0.5),
    "default": lambda f, x: f(x, 2),
    "float n keyword": lambda f, x: f(x, n=2.0, scale=0.5),
    "big n": lambda f, x: f(x, 2 ** 63, scale=0.0),
}


@settings(max_examples=30, deadline=None)
@given(st.lists(st.sampled_from(list(CALLS)), min_size=1, max_size=8))
def test_any_sequence_of_keyword_calls_matches_eager(calls):
    for name in calls:
        expected = CALLS[name](keyword_fun, np.ones(2))
        _same_array(CALLS[name](keyword_jit, np.ones(2)), expected)


keyword_jit = fx.jit(keyword_fun)
