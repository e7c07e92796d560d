"""fx.jit: caching per signature, static and donated arguments, composition with the
other transformations, debugging switches and the errors it raises."""
import numpy as np
import pytest

import fxgrad as fx
import fxgrad.numpy as fnp
from fxgrad.test_util import check_jit


def loss(w, x):
    return fnp.sum(fnp.tanh(x @ w) ** 2)


def test_first_call_compiles_later_calls_reuse():
    f = fx.jit(lambda x: fnp.sin(x) * 2.0 + x)
    x = np.linspace(0, 1, 5)
    np.testing.assert_allclose(f(x), np.sin(x) * 2.0 + x, rtol=1e-12)
    f(x + 1.0)
    assert len(f._entries) == 1
    f(np.ones(3))
    f(np.ones(3, np.float32))
    assert len(f._entries) == 3


def test_grad_of_jit_and_jit_of_grad_agree():
    w, x = np.full((3, 2), 0.3), np.arange(12.0).reshape(4, 3) / 10
    expected = fx.grad(loss)(w, x)
    np.testing.assert_allclose(fx.jit(fx.grad(loss))(w, x), expected, rtol=1e-12)
    np.testing.assert_allclose(fx.grad(fx.jit(loss))(w, x), expected, rtol=1e-12)
    np.testing.assert_allclose(fx.jit(fx.jit(loss))(w, x), loss(w, x), rtol=1e-12)


def test_jit_of_hessian_and_nested_grads():
    f = lambda x: fnp.sum(fnp.sin(x) * x) + fnp.sum(fnp.exp(-x * x)) ** 2
    x = np.linspace(-1, 1, 4)
    np.testing.assert_allclose(fx.jit(fx.hessian(f))(x), fx.hessian(f)(x), rtol=1e-10)
    g3 = fx.grad(fx.grad(fx.grad(fnp.tanh)))
    np.testing.assert_allclose(fx.jit(g3)(0.3), g3(0.3), rtol=1e-12)


def test_static_argnums_and_argnames():
    def power(x, n, scale=1.0):
        return scale * x ** n
    f = fx.jit(power, static_argnums=1, static_argnames="scale")
    assert f(np.float64(2.0), 3) == 8.0
    assert f(np.float64(2.0), 2, scale=3.0) == 12.0
    assert len(f._entries) == 2
    with pytest.raises(fx.FxValueError, match="hashable"):
        fx.jit(lambda x, s: x, static_argnums=1)(1.0, [1, 2])


def sized(x, n, scale=1.0):
    return scale * x * float(len(range(n)))   # needs a concrete n


@pytest.mark.parametrize("kw", [{"static_argnums": 1}, {"static_argnames": "n"},
                                {"static_argnums": -2}], ids=["argnums", "argnames", "negative"])
def test_static_arguments_by_position_or_keyword_as_in_jax(kw):
    f = fx.jit(sized, **kw)
    assert (f.static_argnums, f.static_argnames) == ((1,), ("n",))
    x = np.ones(2)
    for got, scale in [(f(x, 3), 1.0), (f(x, n=3), 1.0), (f(x, 3, 2.0), 2.0),
                       (f(x, scale=2.0, n=3), 2.0)]:
        np.testing.assert_allclose(got, sized(x, 3, scale))


def test_static_argnums_and_argnames_both_given_are_taken_as_they_are():
    f = fx.jit(sized, static_argnums=1, static_argnames="scale")
    assert (f.static_argnums, f.static_argnames) == ((1,), ("scale",))
    with pytest.raises(fx.ConcretizationError):
        f(np.ones(2), n=3)   # n by keyword is dynamic: not inferred when both are given


@pytest.mark.parametrize("kw,message", [
    ({"static_argnums": 3}, r"static_argnums=\(3,\), but the function takes 3 positional "
                            r"arguments; valid positions are 0..2"),
    ({"static_argnums": -4}, "valid positions are 0..2"),
    ({"static_argnames": ("n", "m")}, r"static_argnames names 'm', which the function does "
                                      r"not take by keyword; its parameters are x, n, scale"),
    ({"static_argnums": 1.0}, r"static_argnums must be ints, got \(1.0,\)"),
    ({"static_argnames": 1}, r"static_argnames must be strings"),
])
def test_static_arguments_the_function_cannot_take_are_errors_at_jit(kw, message):
    with pytest.raises(fx.FxValueError, match=message):
        fx.jit(sized, **kw)


def test_static_arguments_of_functions_taking_star_args():
    f = fx.jit(lambda *args, **kw: args[0] * len(range(args[1])) * kw.get("s", 1.0),
               static_argnums=1, static_argnames="s")
    np.testing.assert_allclose(f(np.ones(2), 3, s=2.0), 6.0)
    np.testing.assert_allclose(fx.jit(lambda *a: a[0] * 2.0, static_argnums=5)(1.0), 2.0)
    assert fx.jit(np.sin, static_argnums=None).static_argnums == ()   # no signature


def test_pytrees_kwargs_scalars_and_dtypes():
    f = fx.jit(lambda p, x, bias=0.0: {"y": p["w"] * x + bias, "n": fnp.sum(x)})
    out = f({"w": np.float32(2.0)}, np.ones(3, np.float32), bias=np.float32(1.0))
    assert out["y"].dtype == np.float32 and out["n"].dtype == np.float32
    np.testing.assert_allclose(out["y"], 3.0)
    assert isinstance(fx.jit(lambda x: x * 2.0)(3.0), np.ndarray)


@pytest.mark.parametrize("n", [3, 100], ids=["scalarized", "fused loop"])
def test_donated_argument_is_updated_in_place(n):
    step = fx.jit(lambda p, g: p - 0.1 * g, donate_argnums=0)
    p, g = np.ones(n), np.full(n, 2.0)
    out = step(p, g)
    assert out is p
    np.testing.assert_allclose(p, 0.8)


def test_programs_differing_in_constants_share_compiled_code():
    x = np.ones(3)
    a = fx.jit(lambda x: x * 2.0 + 1.0).lower(x)
    b = fx.jit(lambda x: x * 5.0 + 7.0).lower(x)
    assert a.as_text() == b.as_text()
    assert a.entry.kernel is b.entry.kernel
    np.testing.assert_allclose(fx.jit(lambda x: x * 5.0 + 7.0)(x), 12.0)


def test_lower_shows_program_and_source():
    lowered = fx.jit(lambda x: fnp.sum(fnp.sin(x) ** 2)).lower(np.ones(3))
    assert "def kernel" in lowered.as_text()
    assert "sin" in str(lowered.program)


def test_traced_if_under_jit_names_line_and_fixes():
    def f(x):
        if x > 0:
            return x
        return -x
    with pytest.raises(fx.ConcretizationError) as info:
        fx.jit(f)(1.0)
    message = str(info.value)
    assert "test_jit_api.py" in message and "static_argnums" in message
    assert "fx.scan" in message and "fnp.where" in message


def test_disable_jit_runs_python(monkeypatch):
    seen = []
    f = fx.jit(lambda x: seen.append(type(x)) or x * 2.0)
    fx.config.update("disable_jit", True)
    try:
        f(np.ones(2))
    finally:
        fx.config.update("disable_jit", False)
    assert seen == [np.ndarray]


def test_disable_jit_from_environment():
    import subprocess
    import sys
    code = ("import fxgrad as fx, numpy as np; "
            "f = fx.jit(lambda x: print(type(x).__name__) or x); f(np.ones(2))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**__import__("os").environ, "FXGRAD_DISABLE_JIT": "1"}, check=True)
    assert out.stdout.strip() == "ndarray"


def test_scan_is_one_native_loop():
    def f(w, xs):
        return fx.scan(lambda h, x: (fnp.tanh(w * h + x), h), 0.0, xs)
    lowered = fx.jit(f).lower(0.5, np.ones(7))
    assert lowered.as_text().count("for ") >= 1
    check_jit(f, (0.5, np.linspace(0, 1, 7)))


def test_jit_of_vector_output_jacobian():
    f = lambda x: fnp.stack([x[0] * x[1], fnp.sin(x[2])])
    x = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(fx.jit(fx.jacrev(f))(x), fx.jacrev(f)(x), rtol=1e-12)
    np.testing.assert_allclose(fx.jit(fx.jacfwd(f))(x), fx.jacfwd(f)(x), rtol=1e-12)


def test_non_callable_rejected():
    with pytest.raises(fx.FxValueError, match="expects a function"):
        fx.jit(3)
