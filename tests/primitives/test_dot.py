"""Tests of dot_general: values against an independent np.einsum, derivatives to second
order in both modes (w.r.t. each operand and both), float32 preservation and the
shape-error messages."""
import numpy as np
import pytest

import fxgrad as fx
from fxgrad.primitives.dot import dot_general, dot_general_p
from fxgrad.test_util import check_grads

NO_BATCH = ((), ())

# name, lhs shape, rhs shape, dimension_numbers, the same contraction as an einsum.
CASES = [
    ("vector.vector", (3,), (3,), (((0,), (0,)), NO_BATCH), "i,i->"),
    ("matrix.vector", (2, 3), (3,), (((1,), (0,)), NO_BATCH), "ij,j->i"),
    ("vector.matrix", (3,), (3, 4), (((0,), (0,)), NO_BATCH), "i,ij->j"),
    ("matrix.matrix", (2, 3), (3, 4), (((1,), (0,)), NO_BATCH), "ij,jk->ik"),
    ("matrixT.matrix", (3, 2), (3, 4), (((0,), (0,)), NO_BATCH), "ji,jk->ik"),
    ("matrix.matrixT", (2, 3), (4, 3), (((1,), (1,)), NO_BATCH), "ij,kj->ik"),
    ("outer", (2,), (3,), (((), ()), NO_BATCH), "i,j->ij"),
    ("scalar.matrix", (), (2, 3), (((), ()), NO_BATCH), ",ij->ij"),
    ("batched matmul", (5, 2, 3), (5, 3, 4), (((2,), (1,)), ((0,), (0,))), "bij,bjk->bik"),
    ("batched matvec", (5, 2, 3), (5, 3), (((2,), (1,)), ((0,), (0,))), "bij,bj->bi"),
    ("two contracting dims", (2, 3, 4), (4, 3, 5), (((1, 2), (1, 0)), NO_BATCH),
     "ijk,kjl->il"),
    ("two contracting dims, same order", (2, 3, 4), (3, 4, 5), (((1, 2), (0, 1)), NO_BATCH),
     "ijk,jkl->il"),
    ("batch not leading", (3, 5, 2), (4, 3, 5), (((0,), (1,)), ((1,), (2,))),
     "jbi,kjb->bik"),
    ("two batch dims, permuted", (2, 3, 4, 5), (5, 4, 6, 2), (((3,), (0,)), ((2, 0), (1, 3))),
     "piqk,kqjp->qpij"),
    ("batch only", (2, 3), (3, 2), (((), ()), ((0, 1), (1, 0))), "ij,ji->ij"),
    ("free dims on both sides", (2, 6, 3), (4, 6, 5), (((1,), (1,)), NO_BATCH),
     "ikj,lkm->ijlm"),
]


def rand(shape, seed, dtype=np.float64):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def operands(lhs_shape, rhs_shape, dtype=np.float64):
    return rand(lhs_shape, 1, dtype), rand(rhs_shape, 2, dtype)


def params(table):
    return [pytest.param(*row[1:], id=row[0]) for row in table]


@pytest.mark.parametrize("lhs_shape, rhs_shape, dims, subscripts", params(CASES))
def test_values_match_einsum(lhs_shape, rhs_shape, dims, subscripts):
    x, y = operands(lhs_shape, rhs_shape)
    out = dot_general(x, y, dims)
    expected = np.einsum(subscripts, x, y)
    assert out.shape == expected.shape and out.dtype == np.float64
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("lhs_shape, rhs_shape, dims, subscripts", params(CASES))
def test_grads_both_operands(lhs_shape, rhs_shape, dims, subscripts):
    x, y = operands(lhs_shape, rhs_shape)
    check_grads(lambda x, y: dot_general(x, y, dims), (x, y), order=2, modes=("fwd", "rev"))


@pytest.mark.parametrize("lhs_shape, rhs_shape, dims, subscripts", params(CASES))
def test_grads_one_operand(lhs_shape, rhs_shape, dims, subscripts):
    x, y = operands(lhs_shape, rhs_shape)
    check_grads(lambda x: dot_general(x, y, dims), (x,), order=2, modes=("fwd", "rev"))
    check_grads(lambda y: dot_general(x, y, dims), (y,), order=2, modes=("fwd", "rev"))


@pytest.mark.parametrize("lhs_shape, rhs_shape, dims, subscripts", params(CASES))
def test_cotangents_match_einsum(lhs_shape, rhs_shape, dims, subscripts):
    x, y = operands(lhs_shape, rhs_shape)
    out, pullback = fx.vjp(lambda x, y: dot_general(x, y, dims), x, y)
    ct = rand(out.shape, 3)
    ct_x, ct_y = pullback(ct)
    ins, out_sub = subscripts.split("->")
    x_sub, y_sub = ins.split(",")
    np.testing.assert_allclose(ct_x, np.einsum(f"{out_sub},{y_sub}->{x_sub}", ct, y),
                               atol=1e-12)
    np.testing.assert_allclose(ct_y, np.einsum(f"{x_sub},{out_sub}->{y_sub}", x, ct),
                               atol=1e-12)


@pytest.mark.parametrize("lhs_shape, rhs_shape, dims, subscripts", params(CASES))
def test_preserves_float32(lhs_shape, rhs_shape, dims, subscripts):
    x, y = operands(lhs_shape, rhs_shape, np.float32)
    f = lambda x, y: dot_general(x, y, dims)  # noqa: E731
    out, pullback = fx.vjp(f, x, y)
    _, out_dot = fx.jvp(f, (x, y), (np.ones_like(x), np.ones_like(y)))
    ct_x, ct_y = pullback(np.ones(out.shape, np.float32))
    assert {a.dtype for a in (out, out_dot, ct_x, ct_y)} == {np.dtype(np.float32)}
    np.testing.assert_allclose(out, np.einsum(subscripts, x, y), rtol=1e-5, atol=1e-5)


def test_large_matmul_matches_numpy():
    x, y = operands((64, 48), (48, 32))
    np.testing.assert_allclose(dot_general(x, y, (((1,), (0,)), NO_BATCH)), x @ y)


def test_integer_and_empty_operands():
    x, y = np.arange(6).reshape(2, 3), np.arange(12).reshape(3, 4)
    out = dot_general(x, y, (((1,), (0,)), NO_BATCH))
    assert out.dtype == x.dtype
    np.testing.assert_array_equal(out, x @ y)
    empty = dot_general(np.ones((0, 3)), np.ones((3, 2)), (((1,), (0,)), NO_BATCH))
    assert empty.shape == (0, 2)
    zeros = dot_general(np.ones((2, 0)), np.ones((0, 3)), (((1,), (0,)), NO_BATCH))
    np.testing.assert_array_equal(zeros, np.zeros((2, 3)))


def test_printed_params():
    text = str(fx.make_jaxpr(lambda x, y: dot_general(x, y, [[[1], [0]], [[], []]]))(
        np.ones((2, 3)), np.ones((3, 4))))
    assert "c:f64[2,4] = dot_general[dimension_numbers=(((1,), (0,)), ((), ()))] a b" in text


MAT = np.ones((2, 3))
ERRORS = [
    (lambda: dot_general(MAT, np.ones((4, 5)), (((1,), (0,)), NO_BATCH)),
     r"dot_general: contracting axes of different sizes: lhs axes \(1,\) have sizes \(3,\), "
     r"rhs axes \(0,\) have sizes \(4,\) \(shapes \(2, 3\) and \(4, 5\)\)"),
    (lambda: dot_general(np.ones((2, 3, 4)), np.ones((5, 4, 3)), (((2,), (1,)), ((0,), (0,)))),
     r"dot_general: batch axes of different sizes: lhs axes \(0,\) have sizes \(2,\), rhs "
     r"axes \(0,\) have sizes \(5,\)"),
    (lambda: dot_general(MAT, np.ones((3, 4), np.float32), (((1,), (0,)), NO_BATCH)),
     r"dot_general: operand dtypes differ \(float64, float32\) for shapes \(2, 3\) and "
     r"\(3, 4\)"),
    (lambda: dot_general(MAT, np.ones((3, 4)), (((2,), (0,)), NO_BATCH)),
     r"dot_general: lhs axes \(2,\) are out of range for the lhs of rank 2 \(shapes \(2, 3\)"),
    (lambda: dot_general(MAT, np.ones((3, 4)), (((1,), (-1,)), NO_BATCH)),
     r"dot_general: rhs axes \(-1,\) are out of range"),
    (lambda: dot_general(MAT, np.ones((2, 3)), (((0,), (0,)), ((0,), (1,)))),
     r"dot_general: lhs contracting \(0,\) and batch \(0,\) axes must be distinct"),
    (lambda: dot_general(MAT, np.ones((3, 3)), (((1,), (0, 1)), NO_BATCH)),
     r"dot_general: lhs and rhs need as many contracting axes, got \(1,\) and \(0, 1\) "
     r"\(shapes \(2, 3\) and \(3, 3\)\)"),
    (lambda: dot_general(MAT, MAT, ((1,), (1,))),
     r"dot_general: dimension_numbers must be \(\(lhs_contract, rhs_contract\), "),
]


@pytest.mark.parametrize("thunk, message", ERRORS)
def test_shape_errors(thunk, message):
    with pytest.raises(fx.FxTypeError, match=message):
        thunk()


def test_shape_error_names_user_line_while_tracing():
    with pytest.raises(fx.FxTypeError, match=r"contracting axes of different sizes(.|\n)*"
                                             r"test_dot.py"):
        fx.grad(lambda x: dot_general(x, np.ones(4), (((0,), (0,)), NO_BATCH)))(np.ones(3))


def test_bind_checks_params_too():
    with pytest.raises(fx.FxTypeError, match="contracting axes of different sizes"):
        dot_general_p.bind(MAT, MAT, dimension_numbers=(((1,), (0,)), NO_BATCH))
