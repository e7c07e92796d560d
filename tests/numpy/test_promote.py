"""Dtype promotion (numpy's rules, weak Python scalars), broadcasting of operands, and
the size of the programs they produce."""
from __future__ import annotations

import numpy as np
import pytest

import fxgrad as fx
import fxgrad.numpy as fnp
from fxgrad.numpy import _promote


def prim_names(program) -> list[str]:
    return [e.prim.name for e in program.eqns]


@pytest.mark.parametrize("x,y", [
    (np.ones(2, np.float32), 2.0), (np.ones(2, np.float32), 2), (np.ones(2, np.int32), 2),
    (np.ones(2, np.int32), 2.5), (np.ones(2, np.int64), np.ones(2)),
    (np.ones(2, np.float32), np.ones(2)), (np.ones(2, np.int8), np.ones(2, np.uint8)),
    (np.ones(2, bool), 1), (2, 3.0), (np.ones(2, np.float16), np.ones(2, np.int16)),
])
def test_result_type_matches_numpy(x, y):
    assert fnp.result_type(x, y) == np.result_type(x, y)
    assert fnp.add(x, y).dtype == np.add(x, y).dtype


def test_result_type_of_traced_values():
    def check(x):
        assert fnp.result_type(x, 1.0) == np.float32
        assert fnp.result_type(x, np.ones(1)) == np.float64
        return x
    fx.make_jaxpr(check)(np.ones(2, np.float32))


def test_python_scalar_operand_stays_a_literal():
    program = fx.make_jaxpr(lambda x: x * 2.0)(np.ones(3, np.float32))
    assert str(program).splitlines()[1].strip() == "b:f32[3] = mul a 2.0"


def test_scalar_operands_are_not_broadcast():
    program = fx.make_jaxpr(lambda x, s: fnp.add(x, s) * fnp.sin(s))(np.ones(3), 1.0)
    assert prim_names(program) == ["add", "sin", "mul"]


def test_grad_of_square_traces_integer_pow():
    forward = fx.make_jaxpr(lambda x: x ** 2)(3.0)
    assert prim_names(forward) == ["integer_pow"]
    assert forward.eqns[0].params == {"y": 2}
    np.testing.assert_allclose(fx.grad(lambda x: x ** 2)(3.0), 6.0)


def test_int_plus_float_array_converts_before_binding():
    program = fx.make_jaxpr(lambda i, x: i + x)(np.arange(3), np.ones(3))
    assert prim_names(program) == ["convert_element_type", "add"]
    assert program.out_avals[0].dtype == np.float64


def test_broadcasting_uses_broadcast_in_dim():
    program = fx.make_jaxpr(lambda x, y: x * y)(np.ones((3, 1)), np.ones(4))
    assert prim_names(program) == ["broadcast_in_dim", "broadcast_in_dim", "mul"]
    assert program.out_avals[0].shape == (3, 4)


def test_incompatible_shapes_raise():
    with pytest.raises(fx.FxTypeError, match=r"could not be broadcast together with shapes"):
        fnp.add(np.ones(3), np.ones(4))


def test_canonical_axes_errors():
    with pytest.raises(fx.FxTypeError, match="out of bounds for an array of dimension 2"):
        fnp.sum(np.ones((2, 2)), axis=2)
    with pytest.raises(fx.FxTypeError, match="repeated axis"):
        fnp.sum(np.ones((2, 2)), axis=(0, -2))


def test_non_numeric_operand_raises():
    with pytest.raises(fx.FxTypeError, match="expected an array or number"):
        fnp.add(np.ones(2), "a")


def test_weak_scalars_in_traced_arithmetic_keep_float32():
    def f(x):
        y = 2 * x + 1.5 - x / 3 + x ** 2
        assert y.dtype == np.float32
        return fnp.sum(y)
    assert fx.grad(f)(np.ones(3, np.float32)).dtype == np.float32


def test_ufunc_dtypes_resolves_like_numpy():
    ins, res = _promote.ufunc_dtypes(np.sin, np.ones(1, np.int8))
    assert ins == (np.dtype(np.float16),) and res == np.dtype(np.float16)
    ins, res = _promote.ufunc_dtypes(np.less, np.ones(1, np.int32), 1.5)
    assert ins == (np.dtype(np.float64), np.dtype(np.float64)) and res == np.dtype(bool)


def test_concrete_results_are_ndarrays_even_when_nothing_is_bound(matches_numpy):
    matches_numpy(fnp.positive(2.0), np.positive(2.0))
    matches_numpy(fnp.add(1, 2), np.add(1, 2))
    matches_numpy(fnp.reshape(np.float32(3.0), ()), np.reshape(np.float32(3.0), ()))
    matches_numpy(fnp.floor(np.arange(3)), np.floor(np.arange(3)))


def test_lists_are_operands(matches_numpy):
    matches_numpy(fnp.multiply([1.0, 2.0], [[3], [4]]), np.multiply([1.0, 2.0], [[3], [4]]))
    out = fx.jvp(lambda x: fnp.add([x, 1.0], 2.0), (np.float32(1.5),), (np.float32(1.0),))
    matches_numpy(out[0], np.array([3.5, 3.0], np.float32))
    matches_numpy(out[1], np.array([1.0, 0.0], np.float32))


@pytest.mark.parametrize("x", [np.ones(3, np.uint8), np.ones(3, np.int16), np.ones(3, np.float16)])
def test_weak_scalars_keep_small_dtypes(x, matches_numpy):
    matches_numpy(fnp.multiply(x, 2), np.multiply(x, 2))
    assert fnp.multiply(x, 2).dtype == x.dtype
    matches_numpy(fnp.multiply(x, 3.5), np.multiply(x, 3.5))   # integers become float64


def test_python_int_out_of_range_for_the_array_dtype_raises_like_numpy():
    with pytest.raises(OverflowError):
        np.add(np.ones(2, np.uint8), 300)
    with pytest.raises(OverflowError):
        fnp.add(np.ones(2, np.uint8), 300)
