"""Thread safety: threads sharing jitted functions, tracing and compiling at once.

Every test runs a bounded number of threads and iterations with a tiny switch
interval, so the interpreter swaps threads every few bytecodes and races show up.
Results are checked against numpy in each thread.
"""
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import fxgrad as fx
import fxgrad.numpy as fnp

THREADS = 8
ITERATIONS = 40


@pytest.fixture(autouse=True)
def fast_switching():
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(old)


def run_threads(work, count=THREADS):
    """Run `work(i)` in `count` threads released together; their results in order."""
    barrier = threading.Barrier(count)

    def start(i):
        barrier.wait()
        return work(i)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(start, range(count)))


def test_first_call_from_many_threads_traces_one_entry():
    f = fx.jit(lambda x: fnp.tanh(x) * 3.0 + 0.5)
    x = np.linspace(-1, 1, 5)
    outs = run_threads(lambda i: f(x))
    for out in outs:
        np.testing.assert_allclose(out, np.tanh(x) * 3.0 + 0.5)
    assert len(f._entries) == 1


def _shared_function_work(f, i):
    rng = np.random.default_rng(i)
    for k in range(ITERATIONS):
        n = 2 + (i + k) % 4          # four signatures, compiled by whichever thread is first
        x = rng.normal(size=n)
        np.testing.assert_allclose(f(x, x[::-1].copy()), np.sum(np.sin(x) * x[::-1]) + n)
    return True


def test_threads_share_a_jitted_function_across_signatures():
    f = fx.jit(lambda x, y: fnp.sum(fnp.sin(x) * y) + x.shape[0])
    assert all(run_threads(lambda i: _shared_function_work(f, i)))
    assert len(f._entries) == 4


def _own_function_work(i):
    scale = float(i + 1)
    f = fx.jit(lambda x: fnp.exp(x) * scale)   # same structure: one shared kernel
    g = fx.jit(fx.grad(lambda x: fnp.sum(fnp.cos(x) * scale)))
    for k in range(ITERATIONS // 4):
        x = np.full(3, 0.1 * k)
        np.testing.assert_allclose(f(x), np.exp(x) * scale)
        np.testing.assert_allclose(g(x), -np.sin(x) * scale)
    return True


def test_threads_jit_their_own_functions():
    assert all(run_threads(_own_function_work))


def _branchy(x):
    return x ** 3 if x > 0 else fnp.sin(x)   # Python control flow on a traced value


def _tracing_work(i):
    for k in range(ITERATIONS):
        x = (i - THREADS / 2 + k / ITERATIONS) / 2
        want = 3 * x ** 2 if x > 0 else np.cos(x)
        np.testing.assert_allclose(fx.grad(_branchy)(x), want, rtol=1e-12)
        xs = np.linspace(-1, 1, 3) + k
        np.testing.assert_allclose(fx.vmap(fx.grad(lambda v: v * fnp.exp(v)))(xs),
                                   np.exp(xs) * (1 + xs), rtol=1e-12)
    return True


def test_tracing_in_many_threads_at_once():
    assert all(run_threads(_tracing_work))


def _nested_work(outer, i):
    x = np.arange(3.0) + i
    for _ in range(ITERATIONS // 4):
        np.testing.assert_allclose(outer(x), 2 * np.sum(np.sin(x) ** 2) + 1.0)
    return True


def test_jitted_functions_calling_jitted_functions_do_not_deadlock():
    inner = fx.jit(lambda x: fnp.sum(fnp.sin(x) ** 2))
    outer = fx.jit(lambda x: inner(x) * 2.0 + 1.0)
    assert all(run_threads(lambda i: _nested_work(outer, i)))


def _custom_rule_work(f, i):
    x = np.linspace(0.1, 1.0, 3)
    np.testing.assert_allclose(fx.grad(f)(x), 2 * x, rtol=1e-12)
    return True


def test_custom_jvp_rules_traced_lazily_from_many_threads():
    @fx.custom_jvp
    def square(x):
        return x * x

    @square.defjvp
    def square_jvp(primals, tangents):
        (x,), (t,) = primals, tangents
        return square(x), 2.0 * x * t

    f = fx.jit(lambda v: fnp.sum(square(v)))
    f.lower(np.ones(3))   # one cached program: its lazy JVP rule is shared by the threads
    assert all(run_threads(lambda i: _custom_rule_work(f, i)))


def _clearing_work(f, i):
    x = np.full(4, float(i))
    for k in range(ITERATIONS // 2):
        if i == 0 and k % 5 == 0:
            fx.clear_caches()
        np.testing.assert_allclose(f(x), x * 2.0 - 1.0)
    return True


def test_clearing_caches_while_other_threads_call():
    f = fx.jit(lambda x: x * 2.0 - 1.0)
    assert all(run_threads(lambda i: _clearing_work(f, i)))


def _scan_work(i):
    def cumulative(xs):
        return fx.scan(lambda c, x: (c + x, c * x), 0.0, xs)

    xs = np.arange(5.0) + i
    for _ in range(ITERATIONS // 8):
        carry, ys = fx.jit(cumulative)(xs)
        np.testing.assert_allclose(carry, xs.sum())
        np.testing.assert_allclose(ys, np.concatenate([[0.0], np.cumsum(xs)[:-1]]) * xs)
    return True


def test_scan_traced_and_compiled_in_threads():
    assert all(run_threads(_scan_work))


def _many_signatures_work(f, i):
    for k in range(ITERATIONS):
        n = 1 + i * ITERATIONS + k   # a new signature every time: the miss path
        assert f.lower(np.ones(n)).program.program.in_avals[0].shape == (n,)
        assert "compile" in fx.explain_cache_miss(f, np.ones(n + 1))
    return True


def test_many_threads_adding_signatures_to_one_function():
    f = fx.jit(lambda x: x * 2.0)
    assert all(run_threads(lambda i: _many_signatures_work(f, i)))
    assert len(f._entries) == THREADS * ITERATIONS
