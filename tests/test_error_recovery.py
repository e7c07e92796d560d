"""Bad input never corrupts state: after any error the next call works and the caches
are intact, for jit, grad, vmap and scan.

Errors come from wrong shapes, failing user functions, and KeyboardInterrupt raised
(by monkeypatching) while tracing, lowering, loading or compiling a kernel.
"""
import numpy as np
import pytest
from numba.core.dispatcher import Dispatcher

import fxgrad as fx
import fxgrad.numpy as fnp
from fxgrad.jit import api as jit_api
from fxgrad.jit import cache


class Counted:
    """A function counting its traces, failing with `error` while that is set."""

    def __init__(self, fun):
        self.fun, self.traces, self.error = fun, 0, None

    def __call__(self, *args):
        self.traces += 1
        if self.error is not None:
            raise self.error
        return self.fun(*args)


def model(w, x):
    return fnp.sum(fnp.tanh(x @ w) ** 2)


W, X = np.full((3, 2), 0.1), np.ones((4, 3))
EXPECTED = float(np.sum(np.tanh(X @ W) ** 2))


def check_recovered(f, entries_before):
    """The cached signature still runs (through the fast path, without retracing)."""
    traces = f.fun.traces if isinstance(f.fun, Counted) else None
    np.testing.assert_allclose(f(W, X), EXPECTED)
    assert len(f._entries) == entries_before
    if traces is not None:
        assert f.fun.traces == traces


# ---------------------------------------------------------------- jit

BAD_CALLS = [
    ("wrong_shapes", lambda f: f(np.ones((2, 2)), X), fx.FxValueError),
    ("non_array_leaf", lambda f: f(W, {"x": object()}), fx.FxTypeError),
    ("string_argument", lambda f: f("w", X), fx.FxTypeError),
    ("missing_argument", lambda f: f(W), TypeError),
]


@pytest.mark.parametrize("name,call,error", BAD_CALLS, ids=[c[0] for c in BAD_CALLS])
def test_jit_works_after_bad_arguments(name, call, error):
    f = fx.jit(Counted(model))
    f(W, X)
    with pytest.raises(error):
        call(f)
    check_recovered(f, 1)


def test_jit_works_after_the_user_function_fails():
    fun = Counted(model)
    f = fx.jit(fun)
    fun.error = ZeroDivisionError("user bug")
    with pytest.raises(ZeroDivisionError):
        f(W, X)
    assert not f._entries
    fun.error = None
    np.testing.assert_allclose(f(W, X), EXPECTED)
    assert fun.traces == 2 and len(f._entries) == 1


def interrupt(*args, **kwargs):
    raise KeyboardInterrupt


STAGES = [
    ("tracing", jit_api, "trace_flat", interrupt),
    ("lowering", jit_api, "lower_program", interrupt),
    ("loading", jit_api, "load_kernel", interrupt),
    ("writing_source", cache, "_write_atomic", interrupt),
    ("compiling", Dispatcher, "_compile_for_args", interrupt),   # numba, at the first call
    ("first_call", jit_api, "load_kernel", lambda source: interrupt),
]


@pytest.mark.parametrize("stage,module,name,replacement", STAGES, ids=[s[0] for s in STAGES])
def test_keyboard_interrupt_during_compile_leaves_jit_usable(monkeypatch, tmp_path, stage,
                                                             module, name, replacement):
    f = fx.jit(Counted(lambda w, x: model(w, x) * 2.0))
    if stage == "writing_source":
        monkeypatch.setattr(fx.config, "cache_dir", str(tmp_path))   # no source file yet
    cache.clear_memory_cache()   # a new dispatcher, which compiles (or loads) at its first call
    with monkeypatch.context() as patch:
        patch.setattr(module, name, replacement)
        with pytest.raises(KeyboardInterrupt):
            f(W, X)
    np.testing.assert_allclose(f(W, X), 2 * EXPECTED)
    np.testing.assert_allclose(f(W, X), 2 * EXPECTED)   # and through the fast path
    assert len(f._entries) == 1
    assert f.fun.traces == 1   # an entry traced before the interrupt is kept


def test_interrupted_compile_keeps_other_signatures_and_kernels(monkeypatch):
    f = fx.jit(Counted(model))
    f(W, X)
    kernels = cache.memory_cache_size()
    monkeypatch.setattr(jit_api, "load_kernel", interrupt)
    with pytest.raises(KeyboardInterrupt):
        f(W[:2], X[:, :2])
    monkeypatch.undo()
    check_recovered(f, 2)
    assert cache.memory_cache_size() >= kernels
    np.testing.assert_allclose(f(W[:2], X[:, :2]), np.sum(np.tanh(X[:, :2] @ W[:2]) ** 2))


def test_interrupted_source_write_leaves_no_partial_file(monkeypatch, tmp_path):
    monkeypatch.setattr(fx.config, "cache_dir", str(tmp_path))
    cache.clear_memory_cache()
    with monkeypatch.context() as patch:
        patch.setattr(cache.os, "replace", interrupt)
        with pytest.raises(KeyboardInterrupt):
            fx.jit(lambda x: fnp.cos(x) * 3.5 - 2.0)(np.ones(2))
    assert not list((tmp_path / "kernels").iterdir())
    np.testing.assert_allclose(fx.jit(lambda x: fnp.cos(x) * 3.5 - 2.0)(np.ones(2)),
                               np.cos(1.0) * 3.5 - 2.0)


# ---------------------------------------------------------------- grad, vmap, scan

def _grad_bad_dtype():
    fx.grad(lambda x: fnp.sum(x ** 2))(np.arange(3))


def _grad_vector_output():
    fx.grad(lambda x: x ** 2)(np.ones(3))


def _grad_user_error():
    def f(x):
        raise RuntimeError("inside grad")
    fx.grad(f)(1.0)


def _grad_interrupted():
    def f(x):
        fnp.sin(x)   # an equation recorded before the interrupt
        raise KeyboardInterrupt
    fx.grad(f)(1.0)


def _vmap_sizes():
    fx.vmap(lambda a, b: a + b)(np.ones((3, 2)), np.ones((4, 2)))


def _vmap_user_error():
    fx.vmap(lambda a: a @ np.ones((5, 5)))(np.ones((3, 2)))


def _scan_carry_shape():
    fx.scan(lambda c, x: (fnp.ones(3), x), 0.0, np.ones(4))


def _scan_interrupted():
    def body(c, x):
        raise KeyboardInterrupt
    fx.jit(lambda xs: fx.scan(body, 0.0, xs))(np.ones(4))


def _jit_under_grad_error():
    fx.grad(fx.jit(lambda x: fnp.sum(x @ np.ones((5, 2)))))(np.ones(3))


FAILURES = [
    ("grad_bad_dtype", _grad_bad_dtype, fx.FxTypeError),
    ("grad_vector_output", _grad_vector_output, fx.FxTypeError),
    ("grad_user_error", _grad_user_error, RuntimeError),
    ("grad_interrupted", _grad_interrupted, KeyboardInterrupt),
    ("vmap_sizes", _vmap_sizes, fx.FxValueError),
    ("vmap_user_error", _vmap_user_error, fx.FxgradError),
    ("scan_carry_shape", _scan_carry_shape, fx.FxTypeError),
    ("scan_interrupted", _scan_interrupted, KeyboardInterrupt),
    ("jit_under_grad", _jit_under_grad_error, fx.FxgradError),
]


def _all_transformations_work(step):
    x = np.linspace(0.1, 1.0, 3)
    np.testing.assert_allclose(fx.grad(lambda v: fnp.sum(fnp.sin(v) ** 2))(x),
                               np.sin(2 * x), rtol=1e-12)
    np.testing.assert_allclose(fx.vmap(lambda v: v @ np.ones((3, 2)))(np.ones((4, 3))),
                               np.full((4, 2), 3.0))
    carry, ys = fx.scan(lambda c, v: (c + v, c * v), 0.0, x)
    np.testing.assert_allclose(carry, x.sum())
    np.testing.assert_allclose(step(W, X), EXPECTED)
    np.testing.assert_allclose(fx.grad(step)(W, X), fx.grad(model)(W, X), rtol=1e-12)


@pytest.mark.parametrize("name,fail,error", FAILURES, ids=[c[0] for c in FAILURES])
def test_transformations_work_after_an_error(name, fail, error):
    step = fx.jit(Counted(model))
    _all_transformations_work(step)
    traces, kernels = step.fun.traces, cache.memory_cache_size()
    with pytest.raises(error):
        fail()
    _all_transformations_work(step)
    assert step.fun.traces == traces and len(step._entries) == 1
    assert cache.memory_cache_size() >= min(kernels, fx.config.kernel_cache_size)
