"""Errors name the mistake and the fix, point at the user's line, and their tracebacks
hide fxgrad's internal frames."""
import os
import traceback

import numpy as np
import pytest

import fxgrad as fx
import fxgrad.numpy as fnp
from fxgrad.primitives.arith import add

THIS_FILE = os.path.basename(__file__)
FXGRAD_DIR = os.path.dirname(os.path.abspath(fx.__file__))
PRIMITIVES_DIR = os.path.dirname(os.path.abspath(fx.primitives.__file__))


def internal_frames(excinfo):
    """Frames of the traceback inside fxgrad or its primitive catalogue."""
    return [f for f in traceback.extract_tb(excinfo.tb)
            if os.path.abspath(f.filename).startswith((FXGRAD_DIR + os.sep, PRIMITIVES_DIR + os.sep))]


def assert_filtered(excinfo):
    """Only the api_boundary re-raise itself may remain (a raising Python frame always
    records itself); no frame of the machinery below it."""
    frames = internal_frames(excinfo)
    assert len(frames) <= 1, [f"{f.filename}:{f.lineno} {f.name}" for f in frames]
    for f in frames:
        assert f.filename.endswith(os.path.join("core", "errors.py")), f


# ---------------------------------------------------------------- grad misuse

def test_grad_of_a_non_scalar_output():
    with pytest.raises(fx.FxTypeError) as excinfo:
        fx.grad(lambda x: fnp.sin(x))(np.ones(3))
    message = str(excinfo.value)
    assert "scalar" in message and "(3,)" in message
    assert "jacrev" in message and "vjp" in message
    assert_filtered(excinfo)


def test_grad_of_a_shape_one_output_is_not_scalar():
    with pytest.raises(fx.FxTypeError, match=r"\(1,\)"):
        fx.grad(lambda x: x * 2.0)(np.ones(1))


def test_grad_of_a_pytree_output():
    with pytest.raises(fx.FxTypeError, match="scalar"):
        fx.grad(lambda x: (x, x))(1.0)


def test_grad_of_an_integer_output():
    with pytest.raises(fx.FxTypeError, match="float"):
        fx.grad(lambda x: fnp.ones((), dtype=np.int64))(1.0)


@pytest.mark.parametrize("transform", [fx.grad, fx.jacfwd, fx.jacrev, fx.hessian],
                         ids=["grad", "jacfwd", "jacrev", "hessian"])
def test_differentiating_an_integer_input(transform):
    with pytest.raises(fx.FxTypeError) as excinfo:
        transform(lambda x: fnp.sum(x * 2))(np.array([4, 5]))
    message = str(excinfo.value)
    assert "int64" in message and "float" in message and "argnums" in message
    assert_filtered(excinfo)


def test_differentiating_a_python_int():
    with pytest.raises(fx.FxTypeError, match="4.0"):
        fx.grad(lambda x: x ** 2)(4)


@pytest.mark.parametrize("transform", [fx.grad, fx.value_and_grad, fx.jacfwd, fx.jacrev],
                         ids=["grad", "value_and_grad", "jacfwd", "jacrev"])
@pytest.mark.parametrize("argnums", [2, -3, (0, 5)])
def test_argnums_out_of_range(transform, argnums):
    with pytest.raises(fx.FxValueError) as excinfo:
        transform(lambda x, y: x * y, argnums=argnums)(1.0, 2.0)
    message = str(excinfo.value)
    assert "argnums" in message and "0..1" in message and "2 positional arguments" in message
    assert_filtered(excinfo)


@pytest.mark.parametrize("argnums", [(), 1.0, "0", (0, None)])
def test_argnums_of_the_wrong_type(argnums):
    with pytest.raises(fx.FxValueError, match="argnums must be an int"):
        fx.grad(lambda x, y: x * y, argnums=argnums)(1.0, 2.0)


def test_has_aux_with_a_non_pair_output():
    with pytest.raises(fx.FxValueError) as excinfo:
        fx.grad(lambda x: x ** 2, has_aux=True)(1.0)
    assert "has_aux" in str(excinfo.value) and "pair" in str(excinfo.value)
    assert_filtered(excinfo)
    with pytest.raises(fx.FxValueError, match="pair"):
        fx.jacrev(lambda x: (x, x, x), has_aux=True)(np.ones(2))


def test_non_array_arguments_and_outputs():
    with pytest.raises(fx.FxTypeError, match="str"):
        fx.grad(lambda x: 1.0)("one")
    with pytest.raises(fx.FxTypeError, match="return arrays"):
        fx.grad(lambda x: "not an array")(1.0)


# ---------------------------------------------------------------- shape errors

def test_shape_mismatch_names_primitive_shapes_and_user_line():
    with pytest.raises(fx.FxTypeError) as excinfo:
        fx.grad(lambda x: fnp.sum(add(x, np.ones(3))))(np.ones(2))
    message = str(excinfo.value)
    assert "add" in message and "(2,)" in message and "(3,)" in message
    assert f"{THIS_FILE}:" in message and "add(x, np.ones(3))" in message
    assert_filtered(excinfo)


def test_shape_mismatch_through_fxgrad_numpy_names_the_user_line():
    def f(x):
        return fnp.sum(x + fnp.ones(3))
    with pytest.raises(fx.FxTypeError) as excinfo:
        fx.grad(f)(np.ones(2))
    message = str(excinfo.value)
    assert "add" in message and "(2,)" in message and "(3,)" in message
    assert f"{THIS_FILE}:" in message and "x + fnp.ones(3)" in message
    assert_filtered(excinfo)
    # the user's frame where the bad operation happened stays in the traceback
    assert any(f.name == "f" and f.filename.endswith(THIS_FILE)
               for f in traceback.extract_tb(excinfo.tb))


def test_dot_shape_mismatch():
    # numpy raises ValueError for unaligned dot shapes; fxgrad.numpy follows it
    with pytest.raises((fx.FxTypeError, fx.FxValueError)) as excinfo:
        fx.jacrev(lambda w: fnp.dot(w, np.ones(4)))(np.ones((2, 3)))
    message = str(excinfo.value)
    assert "dot" in message and "(2, 3)" in message and "(4,)" in message
    assert THIS_FILE in message
    assert_filtered(excinfo)


def test_shape_errors_deep_in_nested_transformations_point_at_the_user():
    def f(x):
        return fnp.sum(add(x, np.ones(5)))
    with pytest.raises(fx.FxTypeError) as excinfo:
        fx.hessian(f)(np.ones(4))
    assert "(4,)" in str(excinfo.value) and "(5,)" in str(excinfo.value)
    assert f"{THIS_FILE}:" in str(excinfo.value)
    assert_filtered(excinfo)


def test_filtering_can_be_turned_off(monkeypatch):
    monkeypatch.setenv("FXGRAD_TRACEBACK_FILTERING", "off")
    with pytest.raises(fx.FxTypeError) as excinfo:
        fx.grad(lambda x: fnp.sin(x))(np.ones(3))
    assert len(internal_frames(excinfo)) > 1


# ---------------------------------------------------------------- tracers escaping

def test_leaked_tracer():
    leaked = []

    def f(x):
        leaked.append(x)
        return x * 2.0
    fx.grad(f)(1.0)
    with pytest.raises(fx.LeakedTracerError) as excinfo:
        leaked[0] + 1.0
    message = str(excinfo.value)
    assert "leaked" in message and THIS_FILE in message
    assert "outputs" in message         # says how to fix it: return them instead
    with pytest.raises(fx.LeakedTracerError):
        fnp.sin(leaked[0])
    with pytest.raises(fx.LeakedTracerError):
        fx.grad(lambda y: y * leaked[0])(2.0)


def test_leaked_tracer_used_in_python_control_flow():
    leaked = []
    fx.grad(lambda x: leaked.append(x) or x)(1.0)
    with pytest.raises(fx.LeakedTracerError):
        if leaked[0] > 0:
            pass


def test_traced_bool_under_make_jaxpr():
    def f(x):
        if x > 0:
            return x
        return -x
    with pytest.raises(fx.ConcretizationError) as excinfo:
        fx.make_jaxpr(f)(1.0)
    message = str(excinfo.value)
    assert "static_argnums" in message and "f64[]" in message
    assert f"{THIS_FILE}:" in message and "if x > 0" in message
    assert_filtered(excinfo)


def test_traced_loop_bound_under_make_jaxpr_and_static_fix():
    def f(x, n):
        for _ in range(int(n)):
            x = x * 2.0
        return x
    with pytest.raises(fx.ConcretizationError, match="static_argnums"):
        fx.make_jaxpr(f)(1.0, 3)
    assert len(fx.make_jaxpr(f, static_argnums=1)(1.0, 3).eqns) == 3


def test_plain_numpy_on_a_tracer():
    with pytest.raises(fx.TracerArrayConversionError) as excinfo:
        fx.grad(lambda x: np.sum(np.asarray(x)))(np.ones(3))
    message = str(excinfo.value)
    assert "fxgrad.numpy" in message and "np.asarray" in message
    assert THIS_FILE in message
    assert_filtered(excinfo)


def test_unknown_numpy_function_on_a_tracer():
    with pytest.raises(fx.FxgradError) as excinfo:
        fx.grad(lambda x: np.sum(np.fft.fft(x).real))(np.ones(4))
    assert isinstance(excinfo.value, TypeError)
    assert "fft" in str(excinfo.value) and "fxgrad.numpy" in str(excinfo.value)
    assert_filtered(excinfo)


def test_numpy_function_on_a_tracer_under_make_jaxpr():
    with pytest.raises(fx.TracerArrayConversionError, match="fxgrad.numpy"):
        fx.make_jaxpr(lambda x: np.linalg.norm(x))(np.ones(3))


# ---------------------------------------------------------------- jvp / vjp arguments

def test_jvp_tangent_of_the_wrong_shape():
    with pytest.raises(fx.FxValueError) as excinfo:
        fx.jvp(fnp.sin, (np.ones(3),), (np.ones(2),))
    message = str(excinfo.value)
    assert "tangent" in message and "(2,)" in message and "(3,)" in message
    assert_filtered(excinfo)


def test_jvp_tangents_of_the_wrong_structure():
    with pytest.raises(fx.FxValueError) as excinfo:
        fx.jvp(lambda x, y: x * y, (1.0, 2.0), (1.0,))
    assert "structure" in str(excinfo.value)
    with pytest.raises(fx.FxValueError, match="structure"):
        fx.jvp(lambda p: p["a"], ({"a": 1.0},), ({"b": 1.0},))


def test_jvp_with_primals_not_in_a_tuple():
    with pytest.raises(fx.FxValueError) as excinfo:
        fx.jvp(fnp.sin, np.ones(3), np.ones(3))
    assert "tuple" in str(excinfo.value) and "fx.jvp(f, (x,), (v,))" in str(excinfo.value)


def test_linearize_tangent_errors():
    _, f_jvp = fx.linearize(fnp.sin, np.ones(3))
    with pytest.raises(fx.FxValueError, match=r"\(2,\)"):
        f_jvp(np.ones(2))
    with pytest.raises(fx.FxValueError, match="structure"):
        f_jvp(np.ones(3), np.ones(3))


def test_vjp_cotangent_of_the_wrong_structure():
    _, pullback = fx.vjp(fnp.sin, np.ones(3))
    with pytest.raises(fx.FxValueError) as excinfo:
        pullback((np.ones(3), np.ones(3)))
    assert "cotangent" in str(excinfo.value) and "structure" in str(excinfo.value)
    _, pullback2 = fx.vjp(lambda x: {"a": x, "b": x}, 1.0)
    with pytest.raises(fx.FxValueError, match="structure"):
        pullback2({"a": 1.0})


def test_vjp_cotangent_of_the_wrong_shape():
    _, pullback = fx.vjp(fnp.sin, np.ones(3))
    with pytest.raises(fx.FxValueError) as excinfo:
        pullback(np.ones(4))
    assert "(4,)" in str(excinfo.value) and "(3,)" in str(excinfo.value)


def test_lop_and_hvp_need_tuples_of_primals():
    with pytest.raises(fx.FxValueError, match="tuple"):
        fx.Lop(fnp.sin, np.ones(2), np.ones(2))
    with pytest.raises(fx.FxValueError, match="tuple"):
        fx.hvp(lambda x: fnp.sum(x), np.ones(2), np.ones(2))


def test_every_error_is_an_fxgrad_error_and_a_builtin_error():
    assert issubclass(fx.FxTypeError, (fx.FxgradError, TypeError))
    assert issubclass(fx.FxValueError, ValueError)
    assert issubclass(fx.ConcretizationError, TypeError)
    assert issubclass(fx.TracerArrayConversionError, TypeError)
    assert issubclass(fx.LeakedTracerError, RuntimeError)
    for cls in (fx.FxTypeError, fx.FxValueError, fx.ConcretizationError,
                fx.TracerArrayConversionError, fx.LeakedTracerError):
        assert issubclass(cls, fx.FxgradError)
