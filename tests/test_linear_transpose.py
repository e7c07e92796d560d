"""linear_transpose: against explicit transposes (dot, sum, slicing, several inputs,
pytree outputs, float32), the dot-product identity <ct, f(x)> = <f_t(ct), x>, use
under jit, and the errors for non-linear functions and bad cotangents."""
import numpy as np
import pytest

import fxgrad as fx
import fxgrad.numpy as fnp
from fxgrad.core.errors import FxTypeError, FxValueError

RNG = np.random.default_rng(1)
A = RNG.standard_normal((3, 4))
X = RNG.standard_normal(4)
M = RNG.standard_normal((5, 4))


def _slice_transpose(ct):
    out = np.zeros((5, 4))
    out[1:4:2, ::2] = ct
    return out


CASES = [
    ("dot", lambda x: fnp.dot(A, x), X, lambda ct: A.T @ ct, (3,)),
    ("sum", lambda m: fnp.sum(m, axis=0), M, lambda ct: np.broadcast_to(ct, (5, 4)), (4,)),
    ("slice", lambda m: m[1:4:2, ::2], M, _slice_transpose, (2, 2)),
    ("scale and reshape", lambda m: fnp.reshape(3.0 * m, (20,)), M,
     lambda ct: 3.0 * ct.reshape(5, 4), (20,)),
]


@pytest.mark.parametrize("name,fun,primal,explicit,ct_shape", CASES, ids=[c[0] for c in CASES])
def test_matches_explicit_transpose(name, fun, primal, explicit, ct_shape):
    ct = RNG.standard_normal(ct_shape)
    (ct_in,) = fx.linear_transpose(fun, primal)(ct)
    np.testing.assert_allclose(ct_in, explicit(ct), rtol=1e-12, atol=1e-12)
    x = RNG.standard_normal(np.shape(primal))
    np.testing.assert_allclose(np.vdot(ct, fun(x)), np.vdot(ct_in, x), rtol=1e-10)


def test_several_inputs_and_a_pytree_output():
    def f(x, y):
        return {"a": x + 2.0 * y, "b": fnp.sum(x)}
    f_t = fx.linear_transpose(f, np.zeros(3), np.zeros(3))
    ct_x, ct_y = f_t({"a": np.array([1.0, 2.0, 3.0]), "b": np.array(10.0)})
    np.testing.assert_allclose(ct_x, [11.0, 12.0, 13.0])
    np.testing.assert_allclose(ct_y, [2.0, 4.0, 6.0])


def test_unused_input_gets_zeros_and_float32_is_kept():
    f_t = fx.linear_transpose(lambda x, y: x * np.float32(2.0), np.zeros(2, np.float32),
                              np.zeros(3, np.float32))
    ct_x, ct_y = f_t(np.ones(2, np.float32))
    assert ct_x.dtype == np.float32 and ct_y.dtype == np.float32
    np.testing.assert_allclose(ct_x, [2.0, 2.0])
    np.testing.assert_allclose(ct_y, np.zeros(3))


def test_under_jit_with_a_traced_matrix():
    def apply_transpose(a, ct):
        return fx.linear_transpose(lambda x: fnp.dot(a, x), np.zeros(4))(ct)[0]
    ct = RNG.standard_normal(3)
    np.testing.assert_allclose(fx.jit(apply_transpose)(A, ct), A.T @ ct, rtol=1e-12)


@pytest.mark.parametrize("fun,detail", [
    (fnp.sin, "it applies 'sin' to a value that depends on the inputs"),
    (lambda x: x * x, "mul is not linear in both operands"),
    (lambda x: x + 1.0, "constant offset"),
], ids=["sin", "product of inputs", "affine"])
def test_non_linear_function_is_a_clear_error(fun, detail):
    with pytest.raises(FxTypeError, match="linear_transpose: the function is not linear") as info:
        fx.linear_transpose(fun, np.zeros(3))
    assert detail in str(info.value)


def test_bad_cotangents_and_inputs():
    f_t = fx.linear_transpose(lambda x: 2.0 * x, np.zeros(3))
    with pytest.raises(FxValueError, match=r"cotangent 0 has shape \(2,\)"):
        f_t(np.zeros(2))
    with pytest.raises(FxValueError, match="the cotangent has structure"):
        f_t((np.zeros(3), np.zeros(3)))
    with pytest.raises(FxTypeError, match="linear_transpose differentiates with respect to"):
        fx.linear_transpose(lambda n: n, np.zeros(3, np.int64))
