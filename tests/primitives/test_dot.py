"""Tests of dot_general: values against an independent np.einsum, derivatives to second
order in both modes (w.r.t. each operand and both), float32 preservation, the
shape-error messages, and the numba lowering against eager evaluation (BLAS for floats,
loops for integers and bools, operands used in place)."""

import numpy as np
import pytest

import fxgrad as fx
from fxgrad.jit import jit
from fxgrad.primitives.dot import dot_general, dot_general_p
from fxgrad.test_util import check_grads, check_jit

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


# ----------------------------------------------------------------------------- jit
# Each test jits ONE function computing a whole table of named cases, so a table costs a
# single numba compilation. Unsimplified, every case reaches its own lowering.




# Beyond CASES: operands stored transposed inside batches, size 0 (free and contracting
# axes), size 1, and a matmul large enough for BLAS to block.
JIT_EDGE_CASES = [
    ("batched, both transposed", (5, 3, 2), (5, 4, 3), (((1,), (2,)), ((0,), (0,)))),
    ("empty free axis", (0, 3), (3, 2), (((1,), (0,)), NO_BATCH)),
    ("empty contraction", (2, 0), (0, 3), (((1,), (0,)), NO_BATCH)),
    ("empty vector.vector", (0,), (0,), (((0,), (0,)), NO_BATCH)),
    ("empty batch", (0, 2, 3), (0, 3), (((2,), (1,)), ((0,), (0,)))),
    ("1x1", (1, 1), (1, 1), (((1,), (0,)), NO_BATCH)),
    ("large", (64, 48), (48, 32), (((1,), (0,)), NO_BATCH)),
]
JIT_CASES = [(name, lhs, rhs, dims) for name, lhs, rhs, dims, _ in CASES] + JIT_EDGE_CASES


def _dot_table(operand_pairs, cases):
    return {name: dot_general(x, y, dims) for (x, y), (name, _, _, dims)
            in zip(operand_pairs, cases)}


def _operand_pairs(cases, dtype):
    return [operands(lhs, rhs, dtype) for _, lhs, rhs, _ in cases]


def _named(indices, dtype=None):
    prefix = f"{np.dtype(dtype).name} " if dtype else ""
    return [(prefix + JIT_CASES[i][0], *JIT_CASES[i][1:]) for i in indices]


# float32 and integer tables cover each layout path once: the operand views are shared.
FLOAT32_CASES = _named([0, 1, 4, 5, 6, 7, 8, 12])
INT_CASES = (_named([0, 3, 4, 7, 8, 13, 14, 18, 19], np.int64) + _named([3], np.int32)
             + _named([3, 8], np.bool_))


@pytest.mark.parametrize("dtype, rtol, cases", [(np.float64, 1e-12, JIT_CASES),
                                                (np.float32, 1e-5, FLOAT32_CASES)])
def test_jit_matches_eager_floats(unsimplified, dtype, rtol, cases):
    # float32: BLAS kernels may sum in another order than numpy's matmul
    check_jit(lambda pairs: _dot_table(pairs, cases), (_operand_pairs(cases, dtype),),
                     rtol=rtol, atol=rtol)


def _int_operands(lhs_shape, rhs_shape, dtype):
    rng = np.random.default_rng(5)
    if dtype == np.bool_:
        return rng.random(lhs_shape) < 0.5, rng.random(rhs_shape) < 0.5
    big = 2**20 if dtype == np.int32 else 9   # int32 products and sums wrap around
    return (rng.integers(-big, big, lhs_shape).astype(dtype),
            rng.integers(-big, big, rhs_shape).astype(dtype))


def test_jit_matches_eager_integers_and_bools(unsimplified):
    pairs = [_int_operands(lhs, rhs, np.dtype(name.split()[0])) for name, lhs, rhs, _ in INT_CASES]
    check_jit(lambda pairs: _dot_table(pairs, INT_CASES), (pairs,), rtol=0)


DERIVATIVE_CASES = [CASES[i] for i in (1, 4, 8, 10, 13)]


def _derivative_table(pairs, a, v):
    out = {}
    for (x, y), (name, _, _, dims, _) in zip(pairs, DERIVATIVE_CASES):
        f = lambda x, y, dims=dims: dot_general(x, y, dims)  # noqa: E731
        y_dot = np.linspace(-1.0, 1.0, y.size).reshape(y.shape)
        ct = np.linspace(1.0, 2.0, f(x, y).size).reshape(f(x, y).shape)
        out[name] = [fx.jvp(f, (x, y), (np.ones(x.shape), y_dot))[1], fx.vjp(f, x, y)[1](ct)]
    quadratic = lambda v: dot_general(v, dot_general(a, v, (((1,), (0,)), NO_BATCH)),  # noqa: E731
                                      (((0,), (0,)), NO_BATCH))
    out["hessian of v.Av"] = fx.hessian(quadratic)(v)
    return out


def test_jit_of_derivative_programs():
    pairs = [operands(lhs, rhs) for _, lhs, rhs, _, _ in DERIVATIVE_CASES]
    check_jit(_derivative_table, (pairs, rand((4, 4), 7), rand((4,), 8)))


def _source(f, *args):
    """The kernel's source without the floating-point mode lines (see fxgrad.jit.runtime)."""
    lines = jit(f).lower(*args).as_text().splitlines()
    return "\n".join(line for line in lines if "flush_e" not in line) + "\n"


def test_plain_matmul_is_one_blas_call_without_copies():
    matmul = lambda x, y: dot_general(x, y, (((1,), (0,)), NO_BATCH))  # noqa: E731
    source = _source(matmul, np.ones((128, 784)), np.ones((784, 512)))
    body = source.split("def kernel(in0, in1):\n")[1].splitlines()
    assert [line.split(" = ")[1] for line in body[:-1]] == ["np.dot(in0, in1)"], source
    for lhs, rhs, dims, call in [
            ((784, 128), (784, 512), (((0,), (0,)), NO_BATCH), "np.dot(in0.T, in1)"),
            ((128, 784), (512, 784), (((1,), (1,)), NO_BATCH), "np.dot(in0, in1.T)"),
            ((128, 784), (784,), (((1,), (0,)), NO_BATCH), "np.dot(in0, in1)")]:
        source = _source(lambda x, y, dims=dims: dot_general(x, y, dims),
                         np.ones(lhs, np.float32), np.ones(rhs, np.float32))
        assert call in source and "copy" not in source and "reshape" not in source, source


def test_matmul_cotangents_need_no_transpose():
    # ct_w of y = x @ w is x.T @ ct (a BLAS flag), not (ct.T @ x).T (a copy)
    matmul = lambda x, w: dot_general(x, w, (((1,), (0,)), NO_BATCH))  # noqa: E731
    x, w, ct = np.ones((8, 5)), np.ones((5, 3)), np.ones((8, 3))
    text = str(fx.make_jaxpr(lambda x, w: fx.vjp(matmul, x, w)[1](ct))(x, w))
    assert text.count("dot_general") == 2 and "transpose" not in text, text


# ----------------------------------------------------------------------------- vmap
# Every case mapped over each operand alone and both, at the first, the last and a
# negative axis, against a Python loop over the examples; one dot_general whatever the
# batch; compositions with grad, jit and vmap.

def _in_axes_variants(ranks):
    """in_axes mapping each operand alone and both, at axis 0, last and negative."""
    subsets = [{0}, {1}, {0, 1}]
    picks = (lambda r: 0, lambda r: r, lambda r: -2 if r else -1)
    return list(dict.fromkeys(tuple(pick(r) if k in subset else None for k, r in enumerate(ranks))
                              for subset in subsets for pick in picks))


def _examples(lhs_shape, rhs_shape, size, dtype=np.float64):
    return [(rand(lhs_shape, 2 * b, dtype), rand(rhs_shape, 2 * b + 1, dtype))
            for b in range(size)]


def _stacked(examples, in_axes):
    """The arguments of the mapped function; an unmapped operand is the first example's."""
    return tuple(examples[0][k] if axis is None else np.stack([ex[k] for ex in examples], axis)
                 for k, axis in enumerate(in_axes))


def _loop(fn, examples, in_axes):
    return np.stack([fn(*(examples[0][k] if axis is None else a
                          for k, (a, axis) in enumerate(zip(ex, in_axes)))) for ex in examples])


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 1e-5)])
@pytest.mark.parametrize("lhs_shape, rhs_shape, dims, subscripts", params(CASES))
def test_vmap_matches_loop(lhs_shape, rhs_shape, dims, subscripts, dtype, rtol):
    fn = lambda x, y: dot_general(x, y, dims)  # noqa: E731
    examples = _examples(lhs_shape, rhs_shape, 3, dtype)
    for in_axes in _in_axes_variants((len(lhs_shape), len(rhs_shape))):
        expected = _loop(fn, examples, in_axes)
        out = fx.vmap(fn, in_axes=in_axes)(*_stacked(examples, in_axes))
        assert (out.shape, out.dtype) == (expected.shape, expected.dtype), in_axes
        np.testing.assert_allclose(out, expected, rtol=rtol, atol=rtol,
                                   err_msg=f"in_axes={in_axes}")


@pytest.mark.parametrize("lhs_shape, rhs_shape, dims, subscripts", params(CASES))
def test_vmap_is_one_dot_general(lhs_shape, rhs_shape, dims, subscripts):
    fn = lambda x, y: dot_general(x, y, dims)  # noqa: E731
    for in_axes in _in_axes_variants((len(lhs_shape), len(rhs_shape))):
        for size in (2, 5):
            args = _stacked(_examples(lhs_shape, rhs_shape, size), in_axes)
            program = fx.make_jaxpr(fx.vmap(fn, in_axes=in_axes))(*args)
            names = [e.prim.name for e in program.eqns]
            # at most the transpose putting the batch axis first (out_axes=0)
            assert names in (["dot_general"], ["dot_general", "transpose"]), program


def test_matrix_vector_products_mapped_over_vectors_are_one_matrix_product():
    a, vs = rand((3, 4), 0), rand((4, 6), 1)
    matvec = lambda v: dot_general(a, v, (((1,), (0,)), NO_BATCH))  # noqa: E731
    program = fx.make_jaxpr(fx.vmap(matvec, in_axes=1, out_axes=1))(vs)
    assert str(program.eqns[0].outputs[0].aval.str_short()) == "f64[3,6]"
    assert [e.prim.name for e in program.eqns] == ["dot_general"], program
    np.testing.assert_allclose(fx.vmap(matvec, in_axes=1, out_axes=1)(vs), a @ vs, rtol=1e-12)
    vecmat = lambda v: dot_general(v, a, (((0,), (0,)), NO_BATCH))  # noqa: E731
    program = fx.make_jaxpr(fx.vmap(vecmat))(vs[:3].T)
    assert [e.prim.name for e in program.eqns] == ["dot_general"], program


def _quadratic(v, m):
    """v . (m v): both operands of the outer product depend on v."""
    return dot_general(v, dot_general(m, v, (((1,), (0,)), NO_BATCH)), (((0,), (0,)), NO_BATCH))


def test_vmap_of_grad_and_grad_of_vmap():
    vs, m = rand((5, 4), 0), rand((4, 4), 1)
    expected = np.stack([fx.grad(_quadratic)(v, m) for v in vs])
    np.testing.assert_allclose(fx.vmap(fx.grad(_quadratic), in_axes=(0, None))(vs, m),
                               expected, rtol=1e-12)
    summed = lambda vs: dot_general(fx.vmap(_quadratic, in_axes=(0, None))(vs, m),  # noqa: E731
                                    np.ones(5), (((0,), (0,)), NO_BATCH))
    np.testing.assert_allclose(fx.grad(summed)(vs), expected, rtol=1e-12)


def test_vmap_of_vmap():
    # batched matmul over two batch axes: the outer one on both operands, the inner on x
    xs, ys = rand((2, 3, 4, 5), 0), rand((5, 6, 2), 1)
    matmul = lambda x, y: dot_general(x, y, (((1,), (0,)), NO_BATCH))  # noqa: E731
    out = fx.vmap(fx.vmap(matmul, in_axes=(1, None)), in_axes=(0, 2))(xs, ys)
    expected = np.stack([np.stack([xs[a, :, b] @ ys[..., a] for b in range(4)])
                         for a in range(2)])
    np.testing.assert_allclose(out, expected, rtol=1e-12)
    program = fx.make_jaxpr(fx.vmap(fx.vmap(matmul, in_axes=(1, None)), in_axes=(0, 2)))(xs, ys)
    assert [e.prim.name for e in program.eqns].count("dot_general") == 1, program


def test_jit_of_vmap():
    variants = []   # each case with one of its in_axes, cycling through them
    for k, row in enumerate(CASES):
        choices = _in_axes_variants((len(row[1]), len(row[2])))
        variants.append((row, choices[k % len(choices)]))

    def table(args):
        return {f"{row[0]} {in_axes}": fx.vmap(lambda x, y, d=row[3]: dot_general(x, y, d),
                                               in_axes=in_axes)(*a)
                for (row, in_axes), a in zip(variants, args)}
    args = [_stacked(_examples(row[1], row[2], 3), in_axes) for row, in_axes in variants]
    check_jit(table, (args,))
