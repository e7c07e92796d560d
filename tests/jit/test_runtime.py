"""Kernels flush subnormals to zero (as JAX on CPU), restore the caller's floating-point
mode when they return or raise, and keep IEEE subnormals with flush_denormals off; the
malloc thresholds are pinned once."""
import numpy as np
import pytest

import fxgrad as fx
import fxgrad.numpy as fnp
from fxgrad.config import config
from fxgrad.jit import runtime

TINY = 1e-310   # subnormal in float64


def _ieee_here():
    """numpy on this thread still produces subnormals (FTZ/DAZ are clear)."""
    return np.array([1e-300])[0] * 1e-15 != 0.0


@pytest.mark.skipif(not runtime.SUPPORTED, reason="MXCSR is x86-64 only")
def test_kernels_flush_subnormals_and_restore_the_callers_mode():
    f = fx.jit(lambda x: x * 0.5)
    assert f(np.array([TINY, 1.0])).tolist() == [0.0, 0.5]
    assert _ieee_here()              # and eager numpy keeps them
    assert (np.array([TINY]) * 0.5)[0] == TINY * 0.5 != 0.0


@pytest.mark.skipif(not runtime.SUPPORTED, reason="MXCSR is x86-64 only")
def test_inputs_below_the_normal_range_read_as_zero():
    f = fx.jit(lambda x: x * 1e300)
    np.testing.assert_array_equal(f(np.array([TINY, -TINY, 1e-300])), [0.0, -0.0, 1.0])
    assert _ieee_here()


def test_parallel_kernels_keep_ieee_subnormals():
    f = fx.jit(lambda x: x * 0.5)
    x = np.full(1 << 17, TINY)
    assert "prange" in f.lower(x).as_text() and "flush_enter" not in f.lower(x).as_text()
    assert np.all(f(x) == TINY * 0.5)
    assert _ieee_here()


def test_flush_denormals_off_keeps_ieee_subnormals():
    config.update("flush_denormals", False)
    try:
        f = fx.jit(lambda x: x * 0.5)
        assert "flush_enter" not in f.lower(np.ones(2)).as_text()
        assert f(np.array([TINY]))[0] == TINY * 0.5
    finally:
        config.update("flush_denormals", True)
    assert ("flush_enter" in fx.jit(lambda x: x * 0.25).lower(np.ones(2)).as_text()) == \
        runtime.SUPPORTED


@pytest.mark.skipif(not runtime.SUPPORTED, reason="MXCSR is x86-64 only")
def test_reset_clears_the_mode_a_raising_kernel_left_set():
    runtime.set_flush_bits()         # what a kernel does first; its exit never ran
    assert not _ieee_here()
    runtime.reset()
    assert _ieee_here()


@pytest.mark.skipif(not runtime.SUPPORTED, reason="MXCSR is x86-64 only")
def test_failing_kernel_call_leaves_ieee_mode(monkeypatch):
    f = fx.jit(lambda x: fnp.sin(x) * 2.0)
    x = np.ones(3)
    f(x)
    entry = next(iter(f._entries.values()))

    def kernel_that_raises(*args):
        runtime.set_flush_bits()
        raise FloatingPointError("from inside a kernel")
    monkeypatch.setattr(entry, "kernel", kernel_that_raises)
    monkeypatch.setattr(entry, "hots", {})   # the next call makes one around it
    f._reset_hot()
    for _ in range(2):   # through the general path, then through the hot call
        with pytest.raises(FloatingPointError):
            f(x)
        assert _ieee_here()
    assert f._hot in entry.hots.values()


def test_vanishing_rnn_gradient_matches_eager_away_from_subnormals():
    W = np.random.default_rng(2).normal(size=(8, 8)) * 0.3
    xs = np.random.default_rng(3).normal(size=(3000, 8)) * 0.5

    def loss(W):
        h, _ = fx.scan(lambda h, x: (fnp.tanh(W @ h + x), None), fnp.zeros(8), xs)
        return fnp.sum(h ** 2)
    np.testing.assert_allclose(fx.jit(fx.grad(loss))(W), fx.grad(loss)(W), rtol=1e-10,
                               atol=1e-300)


def test_malloc_thresholds_pinned_once(monkeypatch):
    monkeypatch.setattr(runtime, "_malloc_tuned", False)
    calls = []

    class FakeLibc:
        def mallopt(self, option, value):
            calls.append((option, value))
            return 1
    monkeypatch.setattr(runtime.ctypes, "CDLL", lambda name: FakeLibc())
    expected = runtime.sys.platform.startswith("linux")
    assert runtime.tune_malloc() == expected
    assert runtime.tune_malloc() is False          # once per process
    assert calls == ([(runtime.M_MMAP_THRESHOLD, 32 << 20), (runtime.M_TRIM_THRESHOLD, 64 << 20)]
                     if expected else [])
    monkeypatch.setattr(runtime, "_malloc_tuned", False)
    monkeypatch.setattr(config, "tune_malloc", False)
    assert runtime.tune_malloc() is False
