"""Why did jit compile? FXGRAD_LOG_COMPILES logs each new signature with its cause
and times; fx.explain_cache_miss answers the question for a call not yet made."""
import logging

import numpy as np
import pytest

import fxgrad as fx
import fxgrad.numpy as fnp


@pytest.fixture
def log_compiles(caplog):
    fx.config.update("log_compiles", True)
    caplog.set_level(logging.WARNING, logger="fxgrad.jit")
    yield caplog
    fx.config.update("log_compiles", False)


def causes(caplog):
    return [r.getMessage().split("; cause: ", 1)[1] for r in caplog.records
            if "; cause: " in r.getMessage()]


def scale(x, n):
    return x * float(n)


def test_log_names_the_cause_of_each_new_signature(log_compiles):
    f = fx.jit(scale, static_argnums=1)
    f(np.ones(3), 2)
    f(np.ones(3), 2)                       # cache hit: logs nothing
    f(np.ones(4), 2)
    f(np.ones(4, np.float32), 2)
    f(np.ones(3), 5)
    assert causes(log_compiles) == [
        "first call",
        "argument 0 (x) changed shape from (3,) to (4,)",
        "argument 0 (x) changed dtype from float64 to float32",
        "static argument 1 (n) changed from 2 to 5",
    ]


def test_log_reports_trace_lower_and_compile_times(log_compiles):
    f = fx.jit(lambda x: fnp.sin(x) + 1.0)
    f(np.ones(2))
    messages = [r.getMessage() for r in log_compiles.records]
    assert len(messages) == 3
    assert messages[0].startswith("fxgrad.jit: traced <lambda> for new signature ['float64[2]'] in ")
    assert messages[1].startswith("fxgrad.jit: lowered a program of 2 equations in ")
    assert messages[2].startswith("fxgrad.jit: compiled (or loaded from a cache) and ran the kernel in ")
    assert all(m.endswith(" s") or "; cause: " in m for m in messages)
    f(np.ones(2))
    assert len(log_compiles.records) == 3


def test_nothing_is_logged_when_log_compiles_is_off(caplog):
    caplog.set_level(logging.DEBUG, logger="fxgrad.jit")
    fx.jit(lambda x: x * 3.0)(np.ones(2))
    assert caplog.records == []


def test_log_compares_with_the_closest_cached_signature(log_compiles):
    f = fx.jit(lambda x, y, z: fnp.sum(x) * fnp.sum(y) * fnp.sum(z))
    f(np.ones(3), np.ones(3), np.ones(3))
    f(np.ones(5), np.ones(5), np.ones(5))
    f(np.ones(5), np.ones(5), np.ones(3))  # two changes from the first, one from the second
    assert causes(log_compiles)[-1] == "argument 2 (z) changed shape from (5,) to (3,)"


def test_pytree_structure_and_leaf_changes(log_compiles):
    f = fx.jit(lambda p: p["w"] * 2.0)
    f({"w": np.ones(2), "b": np.ones(2)})
    f({"w": np.ones(2), "c": np.ones(2)})
    f({"w": np.ones(2), "c": np.ones(4)})
    assert causes(log_compiles)[1] == ("argument 0 (p) changed pytree structure from "
                                       "dict(('b', 'w'): *, *) to dict(('c', 'w'): *, *)")
    assert causes(log_compiles)[2] == "argument 0 (p) leaf 0 changed shape from (2,) to (4,)"


def test_explain_cache_miss_before_and_after_calls():
    f = fx.jit(scale, static_argnums=1)
    assert fx.explain_cache_miss(f, np.ones(3), 2) == (
        "scale: this call would compile a new signature: first call")
    f(np.ones(3), 2)
    assert fx.explain_cache_miss(f, np.ones(3), 2) == (
        "scale: this call would hit the cache (its signature is one of the 1 compiled)")
    assert fx.explain_cache_miss(f, np.ones(3, np.float32), 7) == (
        "scale: this call would compile a new signature: argument 0 (x) changed dtype from "
        "float64 to float32; static argument 1 (n) changed from 2 to 7")
    assert len(f._entries) == 1            # explaining compiles nothing


def test_explain_cache_miss_keywords_and_python_scalars():
    f = fx.jit(lambda x, *, mode: x * 2.0 if mode == "double" else x, static_argnames="mode")
    f(1.0, mode="double")
    assert "hit the cache" in fx.explain_cache_miss(f, 3.0, mode="double")
    assert fx.explain_cache_miss(f, 3, mode="double").endswith(
        "argument 0 (x) changed dtype from float64 to int64")
    assert fx.explain_cache_miss(f, 1.0, mode="same").endswith(
        "static keyword argument 'mode' changed from 'double' to 'same'")
    assert fx.explain_cache_miss(f, x=1.0, mode="double").endswith(
        "keyword argument 'x' was not passed before; argument 0 (x) is no longer passed")


def test_explain_cache_miss_rejects_plain_functions():
    with pytest.raises(fx.FxValueError, match="made by fx.jit"):
        fx.explain_cache_miss(scale, np.ones(3), 2)


def test_signatures_recorded_under_transformations_too():
    f = fx.jit(lambda x: fnp.sum(fnp.sin(x)))
    fx.grad(f)(np.ones(3))                 # inlined: traced, never compiled
    assert "hit the cache" in fx.explain_cache_miss(f, np.ones(3))
    assert "changed shape from (3,) to (2,)" in fx.explain_cache_miss(f, np.ones(2))
