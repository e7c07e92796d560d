"""Linear-algebra primitives: triangular_solve, cholesky and lu (decompositions.py has
eigh, svd and qr).

Every primitive acts on the last two axes and maps over any leading batch axes, as
numpy.linalg does, so its batching rule only moves the vmapped axis to the front.
The rest of linear algebra (solve, inv, det, slogdet, cho_solve, ...) is written in
`fxgrad.numpy.linalg` and `fxgrad.scipy.linalg` from these and ordinary array ops.

Derivatives. `triangular_solve(a, b)` is linear in `b`: its transpose is the solve
with the transposed triangle. Its JVP in `a` is x_dot = -op(A)⁻¹ op(A_dot) x, one
more triangular solve. The JVPs of `cholesky` (L_dot = L Φ(L⁻¹ A_dot L⁻ᵀ), Φ taking
the lower triangle with half the diagonal) and `lu` (X = L⁻¹ P A_dot U⁻¹, then
L_dot = L tril(X, -1), U_dot = triu(X) U) are written with triangular solves,
matmuls and masks: their tangent parts are linear ops that transpose, so reverse
mode works, and they are differentiable again, so every order does.

Lowering. numba implements np.linalg.cholesky (LAPACK potrf), but has neither a
triangular solve nor an LU with its pivots. np.linalg.solve would ignore the
triangle (O(n³) per right-hand side and reading the other half), so both are
explicit loops in numba helpers (linalg_kernels.py): forward/back substitution, O(n²) per column, and
LU with partial pivoting picking the first largest |pivot| as LAPACK getrf does.
Singular input gives inf/nan under jit, where eager evaluation raises LinAlgError.
"""
from __future__ import annotations

import warnings
from typing import Any, Callable, Sequence

import numpy as np

from fxgrad.core.errors import FxTypeError
from fxgrad.core.ir import ShapedArray, aval_of
from fxgrad.core.trace import Primitive, shape_rules
from fxgrad.interpreters.batching import batch_size, def_batch, move_axis
from fxgrad.interpreters.evaluation import impl_rules
from fxgrad.interpreters.jvp import Zero, def_jvp, is_zero
from fxgrad.interpreters.transpose import def_transpose, is_undefined
from fxgrad.jit.lowering import HELPERS, def_lowering, np_dtype
from fxgrad.primitives import linalg_kernels


# ---------------------------------------------------------------- shared helpers

def check_matrix(name: str, aval: ShapedArray, square: bool = True) -> None:
    """Raise unless `aval` is a float (stack of) matrix, square if asked."""
    if aval.ndim < 2 or (square and aval.shape[-1] != aval.shape[-2]):
        kind = "square matrix (..., n, n)" if square else "matrix (..., m, n)"
        raise FxTypeError(f"{name}: expected a {kind} or a stack of them, got shape "
                          f"{aval.shape}")
    if aval.dtype.kind != "f":
        raise FxTypeError(f"{name}: expected a real floating-point array, got "
                          f"{aval.dtype.name}; convert with .astype(float)")


def map_matrices(fn: Callable[..., Any], arrays: Sequence[np.ndarray], nbatch: int,
                 out_avals: Sequence[ShapedArray]) -> list[np.ndarray]:
    """`fn` (one matrix problem -> tuple of arrays) over the leading `nbatch` axes."""
    if nbatch == 0:
        return list(fn(*arrays))
    outs = [np.empty(a.shape, a.dtype) for a in out_avals]
    for index in np.ndindex(*arrays[0].shape[:nbatch]):
        for o, r in zip(outs, fn(*(x[index] for x in arrays))):
            o[index] = r
    return outs


def batch_leading(prim: Primitive) -> None:
    """Batching rule of a primitive mapping over leading axes: batch axis first."""
    @def_batch(prim)
    def rule(args: Sequence[Any], dims: Sequence[int | None], **params: Any) -> Any:
        size = batch_size(args, dims)
        out = prim.bind(*[move_axis(x, d, 0, size) for x, d in zip(args, dims)], **params)
        return (out, [0] * len(out)) if prim.multiple_results else (out, 0)


def emit_per_matrix(ctx: Any, call: Callable[..., str], ins: Sequence[str]) -> None:
    """Assign `ctx.outs` from `call(*matrix_names)` (an expression giving a tuple of
    arrays, one per output), looping over the flattened leading batch axes."""
    nbatch = ctx.in_avals[0].ndim - 2
    batch = ctx.in_avals[0].shape[:nbatch]
    if not batch:   # LAPACK results may be Fortran-ordered; kernels keep C order
        parts = [ctx.fresh("r") for _ in ctx.outs]
        ctx.emit(f"{', '.join(parts)}, = {call(*ins)}")
        for out, part in zip(ctx.outs, parts):
            ctx.emit(f"{out} = np.ascontiguousarray({part})")
        return
    size = int(np.prod(batch))
    views = []
    for x, aval in zip(ins, ctx.in_avals):
        views.append(ctx.fresh("m"))
        ctx.emit(f"{views[-1]} = {x}.reshape({(size,) + aval.shape[nbatch:]!r})")
    bufs, parts, b = [ctx.fresh("buf") for _ in ctx.outs], [ctx.fresh("r") for _ in ctx.outs], \
        ctx.fresh("b")
    for buf, aval in zip(bufs, ctx.out_avals):
        ctx.emit(f"{buf} = np.empty({(size,) + aval.shape[nbatch:]!r}, {np_dtype(aval.dtype)})")
    ctx.emit(f"for {b} in range({size}):")
    with ctx.indented():
        ctx.emit(f"{', '.join(parts)}, = {call(*(f'{v}[{b}]' for v in views))}")
        for buf, part in zip(bufs, parts):
            ctx.emit(f"{buf}[{b}] = {part}")
    for out, buf, aval in zip(ctx.outs, bufs, ctx.out_avals):
        ctx.emit(f"{out} = {buf}.reshape({aval.shape!r})")


def mT(x: Any) -> Any:
    """`x` with its last two axes swapped."""
    import fxgrad.numpy as fnp
    return fnp.swapaxes(x, -1, -2)


def symmetric_from_lower(x: Any) -> Any:
    """The symmetric matrix whose lower triangle is that of `x` (what LAPACK reads)."""
    import fxgrad.numpy as fnp
    return fnp.tril(x) + mT(fnp.tril(x, -1))


# ---------------------------------------------------------------- triangular_solve

def _triangular_solve_impl(a: np.ndarray, b: np.ndarray, lower: bool,
                           transpose_a: bool) -> np.ndarray:
    def solve(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray]:
        import scipy.linalg
        return (scipy.linalg.solve_triangular(a, b, trans=int(transpose_a), lower=lower,
                                              check_finite=False),)
    out = ShapedArray(b.shape, b.dtype)
    return map_matrices(solve, (a, b), a.ndim - 2, [out])[0]


triangular_solve_p = Primitive("triangular_solve")
impl_rules[triangular_solve_p] = _triangular_solve_impl


def triangular_solve(a: Any, b: Any, lower: bool, transpose_a: bool = False) -> Any:
    """x with op(a) x = b, op(a) = a or aᵀ; `a` (..., n, n) triangular, `b` (..., n, k)."""
    return triangular_solve_p.bind(a, b, lower=bool(lower), transpose_a=bool(transpose_a))


def _triangular_solve_shape(a: ShapedArray, b: ShapedArray, lower: bool,
                            transpose_a: bool) -> ShapedArray:
    check_matrix("triangular_solve", a)
    check_matrix("triangular_solve", b, square=False)
    if a.shape[:-1] != b.shape[:-1] or a.dtype != b.dtype:
        raise FxTypeError(f"triangular_solve: a {a.str_short()} and b {b.str_short()} need "
                          "the same batch axes, rows and dtype (a: (..., n, n), b: (..., n, k))")
    return b


shape_rules[triangular_solve_p] = _triangular_solve_shape


@def_jvp(triangular_solve_p)
def _triangular_solve_jvp(primals: Any, tangents: Any, lower: bool, transpose_a: bool) -> Any:
    import fxgrad.numpy as fnp
    (a, b), (a_dot, b_dot) = primals, tangents
    x = triangular_solve(a, b, lower, transpose_a)
    rhs = None if is_zero(b_dot) else b_dot
    if not is_zero(a_dot):   # x_dot = op(a)⁻¹ (b_dot - op(a_dot) x), a_dot's triangle only
        tri = fnp.tril(a_dot) if lower else fnp.triu(a_dot)
        term = fnp.matmul(mT(tri) if transpose_a else tri, x)
        rhs = -term if rhs is None else rhs - term
    return x, triangular_solve(a, rhs, lower, transpose_a)


@def_transpose(triangular_solve_p)
def _triangular_solve_transpose(ct: Any, a: Any, b: Any, lower: bool,
                                transpose_a: bool) -> list[Any]:
    if is_undefined(a):
        raise TypeError("triangular_solve is linear in b only")
    return [None, triangular_solve(a, ct, lower, not transpose_a)]


batch_leading(triangular_solve_p)

HELPERS["fx_trisolve"] = linalg_kernels.import_line("fx_trisolve")


@def_lowering(triangular_solve_p)
def _triangular_solve_lowering(ctx: Any, a: str, b: str, lower: bool,
                               transpose_a: bool) -> None:
    fn = ctx.helper("fx_trisolve")
    emit_per_matrix(ctx, lambda a, b: f"{fn}({a}, {b}, {lower}, {transpose_a})", [a, b])


# ---------------------------------------------------------------- cholesky

cholesky_p = Primitive("cholesky")
impl_rules[cholesky_p] = np.linalg.cholesky


def cholesky(a: Any) -> Any:
    """Lower-triangular L with L Lᵀ = a, reading the lower triangle of `a` only."""
    return cholesky_p.bind(a)


def _cholesky_shape(a: ShapedArray) -> ShapedArray:
    check_matrix("cholesky", a)
    return a


shape_rules[cholesky_p] = _cholesky_shape


@def_jvp(cholesky_p)
def _cholesky_jvp(primals: Any, tangents: Any) -> Any:
    import fxgrad.numpy as fnp
    (a,), (a_dot,) = primals, tangents
    l = cholesky(a)
    n, dtype = aval_of(a).shape[-1], aval_of(a).dtype
    y = triangular_solve(l, symmetric_from_lower(a_dot), lower=True)
    z = triangular_solve(l, mT(y), lower=True)   # L⁻¹ S L⁻ᵀ, using S symmetric
    phi = np.tril(np.ones((n, n), dtype), -1) + np.eye(n, dtype=dtype) / 2
    return l, fnp.matmul(l, z * phi)


batch_leading(cholesky_p)


@def_lowering(cholesky_p)
def _cholesky_lowering(ctx: Any, a: str) -> None:
    emit_per_matrix(ctx, lambda a: f"(np.linalg.cholesky({a}),)", [a])


# ---------------------------------------------------------------- lu

def _lu_one(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    import scipy.linalg
    with warnings.catch_warnings():   # exactly singular input: U has a zero pivot
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        lu, piv = scipy.linalg.lu_factor(a, check_finite=False)
    perm = np.arange(len(piv))
    for i, p in enumerate(piv):
        perm[i], perm[p] = perm[p], perm[i]
    return lu, piv.astype(np.int64), perm


def _lu_impl(a: np.ndarray) -> list[np.ndarray]:
    return map_matrices(_lu_one, (a,), a.ndim - 2, _lu_shape(aval_of(a)))


lu_p = Primitive("lu", multiple_results=True)
impl_rules[lu_p] = _lu_impl


def lu(a: Any) -> tuple[Any, Any, Any]:
    """LU with partial pivoting: (lu, pivots, permutation) with a[perm] = L U, L unit
    lower triangular (below the diagonal of `lu`), U upper (on and above it); pivots
    are LAPACK's row interchanges (row i swapped with pivots[i]), zero-based."""
    out, pivots, perm = lu_p.bind(a)
    return out, pivots, perm


def _lu_shape(a: ShapedArray) -> list[ShapedArray]:
    check_matrix("lu", a)
    index = ShapedArray(a.shape[:-1], np.dtype(np.int64))
    return [a, index, index]


shape_rules[lu_p] = _lu_shape


@def_jvp(lu_p)
def _lu_jvp(primals: Any, tangents: Any) -> Any:
    import fxgrad.numpy as fnp
    (a,), (a_dot,) = primals, tangents
    packed, pivots, perm = lu_p.bind(a)
    n, dtype = aval_of(a).shape[-1], aval_of(a).dtype
    l, u = fnp.tril(packed, -1) + np.eye(n, dtype=dtype), fnp.triu(packed)
    p = fnp.astype(fnp.equal(perm[..., :, None], np.arange(n)), dtype)   # rows of a[perm]
    y = triangular_solve(l, fnp.matmul(p, a_dot), lower=True)
    x = mT(triangular_solve(u, mT(y), lower=False, transpose_a=True))   # L⁻¹ P a_dot U⁻¹
    packed_dot = fnp.matmul(l, fnp.tril(x, -1)) + fnp.matmul(fnp.triu(x), u)
    return [packed, pivots, perm], [packed_dot, Zero.like(pivots), Zero.like(perm)]


batch_leading(lu_p)

HELPERS["fx_lu"] = linalg_kernels.import_line("fx_lu")


@def_lowering(lu_p)
def _lu_lowering(ctx: Any, a: str) -> None:
    fn = ctx.helper("fx_lu")
    emit_per_matrix(ctx, lambda a: f"{fn}({a})", [a])
