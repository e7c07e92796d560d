"""Bounded memory: the compile caches have size bounds and can be cleared, a loop
jitting fresh closures stays within a fixed bound, and calling a compiled function
allocates nothing per call beyond its outputs (measured with tracemalloc).

The default suite runs shortened loops; the full ones (10,000 closures, 10^6 calls)
are marked slow.
"""
import gc
import sys
import tracemalloc

import numpy as np
import pytest

import fxgrad as fx
import fxgrad.numpy as fnp
from fxgrad.jit import cache


@pytest.fixture
def small_caches(monkeypatch):
    monkeypatch.setattr(fx.config, "jit_cache_size", 3)
    monkeypatch.setattr(fx.config, "kernel_cache_size", 2)


def kernel_modules():
    return sum(name.startswith("fxgrad_kernel_") for name in list(sys.modules))


def test_signatures_per_function_are_bounded_least_recently_used_first(small_caches):
    f = fx.jit(lambda x: fnp.sum(x * x))
    for n in (1, 2, 3):
        f(np.ones(n))
    f(np.ones(1))                      # most recently used: survives the next miss
    f(np.ones(4))                      # evicts n == 2, the least recently used
    assert sorted(k[1][0][0][0] for k in f._entries) == [1, 3, 4]
    assert all(any(e is entry for entry in f._entries.values()) for e in f._fast.values())
    for n in (2, 5):                   # an evicted signature retraces; all still work
        assert f(np.ones(n)) == n
    assert len(f._entries) == 3


def test_compiled_kernels_in_memory_are_bounded(small_caches):
    cache.clear_memory_cache()
    functions = [fx.jit(lambda x: fnp.sin(x)), fx.jit(lambda x: fnp.cos(x)),
                 fx.jit(lambda x: fnp.tanh(x)), fx.jit(lambda x: fnp.exp(x))]
    x = np.linspace(0, 1, 5)
    for f in functions:
        f(x)
        assert cache.memory_cache_size() <= 2
    assert kernel_modules() <= 2      # evicted kernels leave sys.modules too
    for f, ref in zip(functions, (np.sin, np.cos, np.tanh, np.exp)):
        np.testing.assert_allclose(f(x), ref(x))   # entries keep their own kernels


def test_clear_caches_and_clear_cache():
    f, g = fx.jit(lambda x: x + 1.0), fx.jit(lambda x: x * 3.0)
    x = np.ones(2)
    f(x), g(x), g(np.ones(3))
    g.clear_cache()
    assert not g._entries and not g._fast and len(f._entries) == 1
    fx.clear_caches()
    assert not f._entries and not f._fast and cache.memory_cache_size() == 0
    assert kernel_modules() == 0
    np.testing.assert_allclose(f(x), 2.0)
    np.testing.assert_allclose(g(x), 3.0)
    assert len(f._entries) == 1 and cache.memory_cache_size() >= 1


def test_kernel_cache_bound_of_one_still_runs(monkeypatch):
    monkeypatch.setattr(fx.config, "kernel_cache_size", 1)
    monkeypatch.setattr(fx.config, "jit_cache_size", 1)
    f = fx.jit(lambda x, y: x * y + 2.0)
    for n in (2, 3, 2, 3):
        np.testing.assert_allclose(f(np.ones(n), np.ones(n)), 3.0)
    assert len(f._entries) == 1 and cache.memory_cache_size() == 1


# ---------------------------------------------------------------- fresh closures

def jit_fresh_closures(count):
    """Jit and call `count` new closures (one structure: they share one kernel)."""
    x = np.ones(8)
    for i in range(count):
        c = float(i)
        out = fx.jit(lambda x: fnp.sin(x) * c + 1.0)(x)
        assert out[0] == np.sin(1.0) * c + 1.0


def traced_growth(work, *args):
    """Bytes still allocated (by Python) after `work(*args)` and a collection."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        work(*args)
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


CLOSURE_BOUND = 256 * 1024   # bytes; measured growth is about 25 KB, flat in the count


@pytest.mark.parametrize("count", [
    300, pytest.param(10_000, marks=pytest.mark.slow)])
def test_jitting_fresh_closures_stays_bounded(count):
    jit_fresh_closures(50)   # warm up: the shared kernel, interned strings, lru caches
    kernels, modules = cache.memory_cache_size(), kernel_modules()
    assert traced_growth(jit_fresh_closures, count) < CLOSURE_BOUND
    assert cache.memory_cache_size() == kernels and kernel_modules() == modules


# ---------------------------------------------------------------- repeated calls

def call_many(f, args, count, kwargs=None):
    kwargs = kwargs or {}
    for _ in range(count):
        f(*args, **kwargs)


class Node:   # a registered pytree node
    def __init__(self, value):
        self.value = value


fx.tree_util.register_pytree_node(Node, lambda n: ((n.value,), "aux"), lambda _, c: Node(*c))


CALL_BOUND = 4 * 1024   # bytes; measured growth over 10^5 calls is under 100 bytes

CALLS = [   # name, function, positional arguments, keyword arguments, calls
    ("fast_path", lambda x, y: fnp.sum(x * y), (np.ones(8), np.ones(8)), {}, 20_000),
    ("pytree_and_scalars", lambda p: {"a": p["a"] * 2.0, "b": p["b"] + 1.0},
     ({"a": np.ones(3), "b": 2.0},), {}, 2_000),
    ("grad_kernel", fx.grad(lambda w: fnp.sum(fnp.tanh(w) ** 2)), (np.ones(4),), {}, 20_000),
    ("registered_node_and_keyword", lambda node, scale: node.value * scale,
     (Node(np.ones(3)),), {"scale": 2.0}, 2_000),
    ("general_path", lambda x, n: x * n, (np.ones(6)[::2], 3), {}, 2_000),   # a strided view
]


@pytest.mark.parametrize("name,fun,args,kwargs,count", CALLS, ids=[c[0] for c in CALLS])
def test_calls_allocate_nothing_that_stays(name, fun, args, kwargs, count):
    f = fx.jit(fun)
    call_many(f, args, 100, kwargs)
    assert traced_growth(call_many, f, args, count, kwargs) < CALL_BOUND


@pytest.mark.slow
def test_a_million_calls_allocate_nothing_that_stays():
    f = fx.jit(lambda x, y: fnp.sum(x * y))
    x = np.ones(8)
    call_many(f, (x, x), 100)
    assert traced_growth(call_many, f, (x, x), 1_000_000) < CALL_BOUND
