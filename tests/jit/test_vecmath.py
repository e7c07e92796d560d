"""fxgrad.jit.vecmath: SIMD libm functions in fused loops and scan bodies — available
where glibc ships them, within a few ulp of libm everywhere (special values included),
actually vectorized, and switchable off with FXGRAD_VECTOR_MATH=0."""
import math
import os
import platform
import re
import subprocess
import sys

import numba
import numpy as np
import pytest

import fxgrad as fx
import fxgrad.numpy as fnp
from fxgrad.jit import runtime, vecmath
from fxgrad.scipy.special import expit

ON_GLIBC_X86 = (sys.platform.startswith("linux") and platform.machine() == "x86_64"
                and platform.libc_ver()[0] == "glibc"
                and tuple(map(int, platform.libc_ver()[1].split(".")[:2])) >= (2, 35))
FUNCTIONS = {name: getattr(math, name) for name in vecmath.UNARY}
DOMAIN = {"log": (1e-300, 1e6), "log1p": (-0.999, 1e6)}
SPECIAL = [0.0, -0.0, np.inf, -np.inf, np.nan, 1e-310, -1e-310, 1e-300, 700.0, 710.0,
           -745.0, 1e5, -1e5, 1e22, 0.5, -0.5, 20.0, -20.0]


def test_available_exactly_where_glibc_has_the_vector_functions():
    wanted = os.environ.get("FXGRAD_VECTOR_MATH") != "0" and runtime.opaque_pointers()
    assert vecmath.AVAILABLE == (ON_GLIBC_X86 and wanted)


def _inputs(name):
    rng = np.random.default_rng(len(name))
    low, high = DOMAIN.get(name, (-30.0, 30.0))
    x = np.concatenate([rng.uniform(max(low, -3), min(high, 3), 4000),
                        rng.uniform(low, high, 1000), np.array(SPECIAL)])
    return x


def _ulps(got, want):
    same = (got == want) | (np.isnan(got) & np.isnan(want))
    with np.errstate(invalid="ignore"):   # inf - inf where both are inf: `same` covers it
        err = np.abs(got - want) / np.spacing(np.abs(want))
    return np.where(same, 0.0, err)


def _loop_kernel(fn):
    @numba.njit
    def loop(x, out):
        for i in range(x.shape[0]):
            out[i] = fn(x[i])
    return loop


@pytest.mark.skipif(not vecmath.AVAILABLE, reason="no libmvec on this platform")
@pytest.mark.parametrize("name", vecmath.UNARY)
def test_vectorized_loop_within_4_ulp_of_libm(name):
    x = _inputs(name)
    want = np.array([_libm(name, v) for v in x])
    loop, out = _loop_kernel(getattr(vecmath, f"vm_{name}")), np.empty_like(x)
    loop(x, out)
    assert np.max(_ulps(out, want)) <= 4
    assert re.search(r"_ZGV\w+_" + name + r"\b", loop.inspect_asm(loop.signatures[0]))


@pytest.mark.skipif(not vecmath.AVAILABLE, reason="no libmvec on this platform")
@pytest.mark.parametrize("name", vecmath.UNARY)
def test_explicit_lane_calls_within_4_ulp_of_libm(name):
    lanes, fn = vecmath.LANES, getattr(vecmath, f"vmx_{name}")
    call = numba.njit(lambda *a: fn(*a))
    x = _inputs(name)
    specials = x[-len(SPECIAL):][: len(SPECIAL) // lanes * lanes]
    rows = np.concatenate([x[:300 * lanes], specials]).reshape(-1, lanes)
    got = np.array([call(*row) for row in rows])
    want = np.array([[_libm(name, v) for v in row] for row in rows])
    assert np.max(_ulps(got, want)) <= 4


def _libm(name, v):
    try:
        return FUNCTIONS[name](v)
    except (ValueError, OverflowError):   # math raises where libm returns inf / nan
        with np.errstate(all="ignore"):
            return float(getattr(np, name)(v))


def test_fused_elementwise_kernel_uses_vector_math_and_agrees_with_eager():
    f = lambda x: fnp.tanh(x) * fnp.sin(x) ** 2 + fnp.exp(-x * x) + expit(x)
    x = np.linspace(-6, 6, 1001)
    source = fx.jit(f).lower(x).as_text()
    assert ("vm_tanh" in source) == vecmath.AVAILABLE
    np.testing.assert_allclose(fx.jit(f)(x), f(x), rtol=1e-13)
    np.testing.assert_allclose(fx.jit(fx.grad(lambda x: fnp.sum(f(x))))(x),
                               fx.grad(lambda x: fnp.sum(f(x)))(x), rtol=1e-12, atol=1e-15)


@pytest.mark.skipif(not vecmath.AVAILABLE, reason="no libmvec on this platform")
@pytest.mark.parametrize("name", vecmath.UNARY)
def test_float32_vectorized_loop_within_4_ulp(name):
    x = np.concatenate([_inputs(name), [1e-40, -1e-40, 88.0, 89.0, -103.0, 3e38]])
    x = x[(x >= DOMAIN.get(name, (-np.inf,))[0]) | np.isnan(x)].astype(np.float32)
    with np.errstate(all="ignore"):   # correctly rounded: float64 libm, then float32
        want = np.array([_libm(name, float(v)) for v in x]).astype(np.float32)
    loop, out = _loop_kernel(getattr(vecmath, f"vm_{name}f")), np.empty_like(x)
    loop(x, out)
    assert out.dtype == np.float32 and np.max(_ulps(out, want)) <= 4
    assert re.search(r"_ZGV\w+_" + name + r"f\b", loop.inspect_asm(loop.signatures[0]))


def test_float32_fused_kernel_uses_float32_vector_math():
    f = lambda x: fnp.tanh(x) * fnp.sin(x) ** 2 + fnp.exp(-x * x) + expit(x)
    x = np.linspace(-6, 6, 1001, dtype=np.float32)
    source = fx.jit(f).lower(x).as_text()
    assert ("vm_tanhf" in source and "vm_expf" in source) == vecmath.AVAILABLE
    got = fx.jit(f)(x)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, f(x.astype(np.float64)), rtol=2e-6, atol=2e-6)
    g = fx.grad(lambda x: fnp.sum(f(x)))
    np.testing.assert_allclose(fx.jit(g)(x), g(x.astype(np.float64)), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("state", [1, 3, 4, 5, 8])
def test_scan_body_calls_lanes_at_a_time(state):
    W = np.random.default_rng(state).normal(size=(state, state)) * 0.4
    xs = np.random.default_rng(1).normal(size=(50, state))

    def loss(W):
        h, _ = fx.scan(lambda h, x: (fnp.tanh(W @ h + x), None), fnp.zeros(state), xs)
        return fnp.sum(h ** 2)
    source = fx.jit(fx.grad(loss)).lower(W).as_text()
    assert ("vmx_tanh" in source) == (vecmath.AVAILABLE and state > 1)
    np.testing.assert_allclose(fx.jit(fx.grad(loss))(W), fx.grad(loss)(W), rtol=1e-12)


def test_switched_off_by_environment_variable():
    code = ("import numpy as np, fxgrad as fx, fxgrad.numpy as fnp\n"
            "from fxgrad.jit import vecmath\n"
            "src = fx.jit(fnp.exp).lower(np.ones(4)).as_text()\n"
            "print(vecmath.AVAILABLE, 'vm_exp' in src, fx.jit(fnp.exp)(np.zeros(2))[0])")
    env = dict(os.environ, FXGRAD_VECTOR_MATH="0")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True).stdout.split()
    assert out == ["False", "False", "1.0"]


def _matvec_loss(W, V, xs, transposed, reverse):
    def step(h, x):   # h (k) -> rows -> k, through two matrix-vector products
        mid = h @ W if transposed else W @ h
        return fnp.tanh(x + (mid @ V if transposed else V @ mid)), fnp.sum(mid)
    h, ys = fx.scan(step, fnp.zeros(xs.shape[1]), xs, reverse=reverse)
    return fnp.sum(h ** 2) + fnp.sum(ys)


@pytest.mark.parametrize("rows, k", [(8, 8), (4, 4), (3, 3), (5, 5), (2, 7), (6, 3)])
@pytest.mark.parametrize("transposed", [False, True], ids=["W@h", "h@W"])
def test_scan_matvec_in_simd_equals_the_scalar_code(monkeypatch, rows, k, transposed):
    from fxgrad.jit import scalarize
    shape = (k, rows) if transposed else (rows, k)
    W = np.random.default_rng(rows * k).normal(size=shape) * 0.4
    V = np.random.default_rng(rows + k).normal(size=shape[::-1]) * 0.4
    xs = np.random.default_rng(1).normal(size=(30, k))
    loss = lambda W: _matvec_loss(W, V, xs, transposed, reverse=rows % 2 == 1)  # noqa: E731
    grad = fx.jit(fx.grad(loss))
    source = grad.lower(W).as_text()
    assert ("matvec_" in source) == (rows >= 2 and k >= 2)
    simd = grad(W)
    monkeypatch.setattr(scalarize, "_matvec", lambda *args: None)
    scalar = fx.jit(fx.grad(loss))
    assert "matvec_" not in scalar.lower(W).as_text()
    np.testing.assert_array_equal(simd, scalar(W))
    eager = fx.grad(loss)(W)   # entries cancel: compare on the gradient's scale
    np.testing.assert_allclose(simd, eager, rtol=1e-12, atol=1e-12 * np.max(np.abs(eager)))


def test_matvec_layout_is_hoisted_out_of_nested_loops():
    W = np.random.default_rng(0).normal(size=(4, 4)) * 0.3
    xss = np.random.default_rng(1).normal(size=(3, 5, 4))

    def outer(W):
        def inner(h, xs):
            return fx.scan(lambda g, x: (fnp.tanh(W @ g + x), None), h, xs)[0], None
        return fnp.sum(fx.scan(inner, fnp.zeros(4), xss)[0])
    source = fx.jit(fx.grad(outer)).lower(W).as_text()
    layouts = [line for line in source.splitlines() if "np.zeros((4, 4)" in line]
    assert layouts and all(not line.startswith(" " * 12) for line in layouts)
    np.testing.assert_allclose(fx.jit(fx.grad(outer))(W), fx.grad(outer)(W), rtol=1e-12)
