"""fxgrad.numpy.linalg: numpy.linalg over fxgrad primitives, differentiable to any order.

Six primitives do the numerical work (`triangular_solve`, `cholesky`, `lu`, `eigh`,
`svd`, `qr`, in `fxgrad.primitives.linalg` and `.decompositions`); everything else is
written from them and ordinary array ops, so it differentiates, batches and compiles
through theirs: `solve` is an LU factorisation and two triangular solves, `inv` solves
against the identity, `det`/`slogdet` read U's diagonal and the pivots' parity, `norm`
is sums, maxima and singular values. Stacks of matrices (leading axes) work as in
numpy. Integer input is computed in float64, as numpy does; complex input is not
supported. See docs/linalg.md for the derivative formulas and their caveats.

>>> import fxgrad as fx, fxgrad.numpy as fnp, numpy as np
>>> a = np.array([[2.0, 1.0], [1.0, 3.0]])
>>> fnp.linalg.solve(a, np.array([3.0, 5.0]))
array([0.8, 1.4])
>>> fx.grad(lambda a: fnp.linalg.slogdet(a)[1])(a)   # d log|det a| / da = a⁻ᵀ
array([[ 0.6, -0.2],
       [-0.2,  0.4]])
"""
from __future__ import annotations

import functools
import operator
from typing import Any, Callable, NamedTuple

import numpy as np

from fxgrad.core.errors import FxTypeError, FxValueError, at_user_line
from fxgrad.numpy import elementwise as ew, indexing, reductions, shaping
from fxgrad.numpy._promote import (broadcast_shapes, broadcast_to_shape, canonical_axes,
                                   canonical_axis, cast, dtype_of, operand, out, shape_of)
from fxgrad.numpy.dot import matmul, outer, tensordot
from fxgrad.primitives.decompositions import eigh as _eigh, qr as _qr, svd as _svd
from fxgrad.primitives.linalg import cholesky as _cholesky, lu as _lu, mT, triangular_solve

LinAlgError = np.linalg.LinAlgError

__all__ = ["LinAlgError", "cholesky", "det", "diagonal", "eigh", "eigvalsh", "inv",
           "matmul", "matrix_norm", "matrix_power", "matrix_transpose", "multi_dot", "norm",
           "outer", "qr", "slogdet", "solve", "svd", "svdvals", "tensordot", "trace",
           "vecdot", "vector_norm"]


class SlogdetResult(NamedTuple):
    sign: Any
    logabsdet: Any


class EighResult(NamedTuple):
    eigenvalues: Any
    eigenvectors: Any


class SVDResult(NamedTuple):
    U: Any
    S: Any
    Vh: Any


class QRResult(NamedTuple):
    Q: Any
    R: Any


def _error(message: str) -> FxTypeError:
    return FxTypeError(at_user_line(message))


def as_float(name: str, a: Any) -> Any:
    """`a` as a float operand: integers and bools become float64, as in numpy."""
    a = operand(a, name)
    kind = dtype_of(a).kind
    if kind == "c":
        raise _error(f"{name}: complex input is not supported (shape {shape_of(a)})")
    if dtype_of(a) == np.float16:
        raise _error(f"{name}: float16 is not supported in linalg, as in numpy; convert with "
                     ".astype(np.float32)")
    return a if kind == "f" else cast(a, np.float64)


def as_matrix(name: str, a: Any, square: bool = True) -> Any:
    """`a` as a float (stack of) matrix, square if asked, or a clear error."""
    a = as_float(name, a)
    s = shape_of(a)
    if len(s) < 2:
        raise _error(f"{name}: expected a matrix (or a stack of them), got shape {s}; "
                     "linalg functions act on the last two axes")
    if square and s[-1] != s[-2]:
        raise _error(f"{name}: the last two axes must be square, got shape {s}")
    return a


def _eye_like(a: Any) -> np.ndarray:
    return np.eye(shape_of(a)[-1], dtype=dtype_of(a))


# ---------------------------------------------------------------- solving

def _permutation_matrix(perm: Any, n: int, dtype: np.dtype) -> Any:
    """P with (P a)[i] = a[perm[i]]."""
    return ew.astype(ew.equal(perm[..., :, None], np.arange(n)), dtype)


def lu_solve(packed: Any, perm: Any, b: Any) -> Any:
    """x with a x = b from `lu(a)`'s packed factors and permutation; b (..., n, k)."""
    n, dtype = shape_of(packed)[-1], dtype_of(packed)
    y = triangular_solve(indexing.tril(packed, -1) + np.eye(n, dtype=dtype),
                         matmul(_permutation_matrix(perm, n, dtype), b), lower=True)
    return triangular_solve(indexing.triu(packed), y, lower=False)


def solve(a: Any, b: Any) -> Any:
    """x with a x = b, by LU with partial pivoting. `b` is a vector (n,) or a stack of
    matrices (..., n, k) broadcast against `a`'s stack, as in numpy 2.

    >>> import fxgrad.numpy as fnp, numpy as np
    >>> fnp.linalg.solve(np.array([[2.0, 0.0], [0.0, 4.0]]), np.array([[2.0], [2.0]]))
    array([[1. ],
           [0.5]])
    """
    a, b = as_matrix("solve", a), as_float("solve", b)
    dtype = np.result_type(dtype_of(a), dtype_of(b))
    a, b = (x if dtype_of(x) == dtype else cast(x, dtype) for x in (a, b))
    sa, sb = shape_of(a), shape_of(b)
    vector = len(sb) == 1
    if vector:
        b = shaping.reshape(b, sb + (1,))
    if len(shape_of(b)) < 2 or shape_of(b)[-2] != sa[-1]:
        raise _error(f"solve: b of shape {sb} does not match a of shape {sa}; b must be "
                     "(n,) or (..., n, k) with n = a.shape[-1]")
    batch = broadcast_shapes("solve", sa[:-2], shape_of(b)[:-2])
    a = broadcast_to_shape(a, batch + sa[-2:])
    b = broadcast_to_shape(b, batch + shape_of(b)[-2:])
    packed, _, perm = _lu(a)
    x = lu_solve(packed, perm, b)
    return shaping.reshape(x, batch + sa[-1:]) if vector else x


def inv(a: Any) -> Any:
    """The inverse of a square matrix (or of each in a stack), by solving a x = I.

    >>> import fxgrad.numpy as fnp, numpy as np
    >>> fnp.linalg.inv(np.array([[2.0, 0.0], [0.0, 4.0]]))
    array([[0.5 , 0.  ],
           [0.  , 0.25]])
    """
    a = as_matrix("inv", a)
    return solve(a, broadcast_to_shape(_eye_like(a), shape_of(a)))


def _lu_parts(name: str, a: Any) -> tuple[Any, Any]:
    """U's diagonal and the sign of the row permutation of a's LU factorisation."""
    a = as_matrix(name, a)
    packed, pivots, _ = _lu(a)
    swaps = reductions.sum(ew.not_equal(pivots, np.arange(shape_of(a)[-1])), axis=-1)
    parity = ew.astype(ew.remainder(swaps, 2), dtype_of(a))
    return indexing.diagonal(packed, 0, -2, -1), 1 - 2 * parity


def det(a: Any) -> Any:
    """Determinant: the product of U's diagonal times the permutation's sign.

    >>> import fxgrad as fx, fxgrad.numpy as fnp, numpy as np
    >>> fx.grad(fnp.linalg.det)(np.array([[2.0, 1.0], [1.0, 3.0]]))   # det(a) a⁻ᵀ
    array([[ 3., -1.],
           [-1.,  2.]])
    """
    diagonal_u, sign = _lu_parts("det", a)
    return out(sign * reductions.prod(diagonal_u, axis=-1))


def slogdet(a: Any) -> SlogdetResult:
    """(sign, log|det a|), stable where det itself would overflow; sign 0 and log -inf
    for a singular matrix. d log|det a| = tr(a⁻¹ da).

    >>> import fxgrad.numpy as fnp, numpy as np
    >>> sign, logdet = fnp.linalg.slogdet(np.array([[0.0, 2.0], [3.0, 0.0]]))
    >>> float(sign), round(float(logdet), 6)
    (-1.0, 1.791759)
    """
    diagonal_u, sign = _lu_parts("slogdet", a)
    sign = sign * reductions.prod(ew.sign(diagonal_u), axis=-1)
    with np.errstate(divide="ignore"):   # a zero pivot: log|det| = -inf, as in numpy
        logabsdet = reductions.sum(ew.log(ew.abs(diagonal_u)), axis=-1)
    return SlogdetResult(out(sign), logabsdet)


# ---------------------------------------------------------------- decompositions

def cholesky(a: Any, upper: bool = False) -> Any:
    """Lower-triangular L with a = L Lᵀ (or upper U = Lᵀ with `upper=True`) for
    symmetric positive-definite `a`; only that triangle of `a` is read, as in numpy.

    >>> import fxgrad.numpy as fnp, numpy as np
    >>> fnp.linalg.cholesky(np.array([[4.0, 2.0], [2.0, 5.0]]))
    array([[2., 0.],
           [1., 2.]])
    """
    a = as_matrix("cholesky", a)
    return mT(_cholesky(mT(a))) if upper else _cholesky(a)


def _hermitian_part(name: str, a: Any, UPLO: str) -> Any:
    a = as_matrix(name, a)
    if UPLO not in ("L", "U"):
        raise FxValueError(at_user_line(f"{name}: UPLO must be 'L' or 'U', got {UPLO!r}"))
    return a if UPLO == "L" else mT(a)


def eigh(a: Any, UPLO: str = "L") -> EighResult:
    """Eigenvalues (ascending) and eigenvectors (columns) of a symmetric matrix, read
    from its lower (`UPLO='L'`) or upper triangle. Eigenvectors are differentiable only
    where the eigenvalues are distinct (see docs/linalg.md).

    >>> import fxgrad.numpy as fnp, numpy as np
    >>> fnp.linalg.eigh(np.array([[2.0, 1.0], [1.0, 2.0]])).eigenvalues
    array([1., 3.])
    """
    return EighResult(*_eigh(_hermitian_part("eigh", a, UPLO)))


def eigvalsh(a: Any, UPLO: str = "L") -> Any:
    """The eigenvalues of a symmetric matrix, ascending.

    >>> import fxgrad as fx, fxgrad.numpy as fnp, numpy as np
    >>> fx.grad(lambda a: fnp.linalg.eigvalsh(a)[-1])(np.diag([1.0, 2.0]))
    array([[0., 0.],
           [0., 1.]])
    """
    return eigh(a, UPLO).eigenvalues


def svd(a: Any, full_matrices: bool = True, compute_uv: bool = True,
        hermitian: bool = False) -> Any:
    """Singular value decomposition a = U diag(S) Vh, S descending. Only the reduced
    form is computed, so `full_matrices=True` (numpy's default) is accepted where it is
    the same, for square matrices. Singular vectors need distinct singular values to be
    differentiable. `hermitian` is accepted and ignored.

    >>> import fxgrad.numpy as fnp, numpy as np
    >>> fnp.linalg.svd(np.array([[3.0, 0.0], [0.0, -4.0]])).S
    array([4., 3.])
    """
    a = as_matrix("svd", a, square=False)
    *_, m, n = shape_of(a)
    if not compute_uv:
        return _svd(a)[1]
    if full_matrices and m != n:
        raise FxValueError(at_user_line(
            f"svd: full_matrices=True is not supported for a non-square matrix (shape "
            f"{shape_of(a)}); pass full_matrices=False for the reduced SVD"))
    return SVDResult(*_svd(a))


def svdvals(x: Any) -> Any:
    """The singular values, descending.

    >>> import fxgrad.numpy as fnp, numpy as np
    >>> fnp.linalg.svdvals(np.array([[0.0, 2.0], [1.0, 0.0]]))
    array([2., 1.])
    """
    return svd(x, compute_uv=False)


def qr(a: Any, mode: str = "reduced") -> Any:
    """QR decomposition a = Q R, Q with orthonormal columns, R upper triangular
    (`mode='reduced'`, or `'r'` for R alone; `'complete'` only where it is the same).

    >>> import fxgrad.numpy as fnp, numpy as np
    >>> q, r = fnp.linalg.qr(np.array([[3.0, 1.0], [4.0, 2.0]]))
    >>> np.allclose(q @ r, [[3.0, 1.0], [4.0, 2.0]]), abs(r[0, 0])
    (True, np.float64(5.0))
    """
    a = as_matrix("qr", a, square=False)
    *_, m, n = shape_of(a)
    if mode not in ("reduced", "r", "complete") or (mode == "complete" and m > n):
        raise FxValueError(at_user_line(
            f"qr: mode {mode!r} is not supported for shape {shape_of(a)}; use 'reduced' "
            "or 'r' ('complete' only when rows <= columns)"))
    q, r = _qr(a)
    return r if mode == "r" else QRResult(q, r)


# ---------------------------------------------------------------- norms

def _vector_norm(x: Any, ord: Any, axes: tuple[int, ...], keepdims: bool) -> Any:
    a = ew.abs(x)
    if ord is None or ord == 2:
        return ew.sqrt(reductions.sum(x * x, axis=axes, keepdims=keepdims))
    if ord == np.inf:
        return reductions.max(a, axis=axes, keepdims=keepdims)
    if ord == -np.inf:
        return reductions.min(a, axis=axes, keepdims=keepdims)
    if ord == 0:
        return ew.astype(reductions.sum(ew.not_equal(x, 0), axis=axes, keepdims=keepdims),
                         dtype_of(x))
    if ord == 1:
        return reductions.sum(a, axis=axes, keepdims=keepdims)
    if isinstance(ord, str):
        raise FxValueError(at_user_line(f"norm: invalid norm order {ord!r} for vectors"))
    p = float(ord)
    return reductions.sum(a ** p, axis=axes, keepdims=keepdims) ** (1.0 / p)


def _singular_values(x: Any, axes: tuple[int, int]) -> Any:
    return _svd(shaping.moveaxis(x, axes, (-2, -1)))[1]


def _matrix_norm(x: Any, ord: Any, axes: tuple[int, int], keepdims: bool) -> Any:
    rows, cols = axes
    if ord in (None, "fro"):
        result = ew.sqrt(reductions.sum(x * x, axis=axes))
    elif ord in ("nuc", 2, -2):
        s = _singular_values(x, axes)
        reducers: dict[Any, Callable[..., Any]] = {"nuc": reductions.sum, 2: reductions.max,
                                                   -2: reductions.min}
        result = reducers[ord](s, axis=-1)
    elif ord in (1, -1, np.inf, -np.inf):
        summed, other = (rows, cols) if ord in (1, -1) else (cols, rows)
        sums = reductions.sum(ew.abs(x), axis=summed, keepdims=True)
        pick = reductions.max if ord > 0 else reductions.min
        result = reductions.sum(pick(sums, axis=other, keepdims=True), axis=axes)
    else:
        raise FxValueError(at_user_line(f"norm: invalid norm order {ord!r} for matrices"))
    if keepdims:
        result = shaping.expand_dims(result, axes)
    return result


def norm(x: Any, ord: Any = None, axis: Any = None, keepdims: bool = False) -> Any:
    """Vector or matrix norm as numpy's: with `axis=None` the 2-norm of the flattened
    array (Frobenius for a matrix) unless `ord` is given; an int `axis` gives vector
    norms (ord None/2, 1, inf, -inf, 0, any p), a pair of axes matrix norms (None/'fro',
    'nuc', 1, -1, 2, -2, inf, -inf).

    >>> import fxgrad as fx, fxgrad.numpy as fnp, numpy as np
    >>> fnp.linalg.norm(np.array([3.0, 4.0])), fnp.linalg.norm(np.eye(2), ord="nuc")
    (array(5.), array(2.))
    >>> fx.grad(fnp.linalg.norm)(np.array([3.0, 4.0]))
    array([0.6, 0.8])
    """
    x = as_float("norm", x)
    nd = len(shape_of(x))
    if axis is None and ord is None:
        result = ew.sqrt(reductions.sum(x * x))
        return shaping.reshape(result, (1,) * nd) if keepdims else result
    if axis is None:
        if nd not in (1, 2):
            raise _error(f"norm: ord={ord!r} needs a 1-d or 2-d array (or an axis), got "
                         f"shape {shape_of(x)}")
        axis = tuple(range(nd))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    canonical = tuple(canonical_axis(a, nd, "norm") for a in axes)
    if len(canonical) == 1:
        return out(_vector_norm(x, ord, canonical, keepdims))
    if len(canonical) != 2 or canonical[0] == canonical[1]:
        raise FxValueError(at_user_line(f"norm: axis must be an int or two distinct ints, "
                                        f"got {axis!r}"))
    return out(_matrix_norm(x, ord, (canonical[0], canonical[1]), keepdims))


def vector_norm(x: Any, axis: Any = None, keepdims: bool = False, ord: Any = 2) -> Any:
    """numpy 2's vector_norm: the norm of the vectors along `axis` (all axes: flattened).

    >>> import fxgrad.numpy as fnp, numpy as np
    >>> fnp.linalg.vector_norm(np.array([[3.0, 4.0], [6.0, 8.0]]), axis=1)
    array([ 5., 10.])
    """
    x = as_float("vector_norm", x)
    axes = canonical_axes(axis, len(shape_of(x)), "vector_norm")
    return out(_vector_norm(x, ord, axes, keepdims))


def matrix_norm(x: Any, keepdims: bool = False, ord: Any = "fro") -> Any:
    """numpy 2's matrix_norm: the norm of each matrix over the last two axes.

    >>> import fxgrad.numpy as fnp, numpy as np
    >>> fnp.linalg.matrix_norm(np.ones((2, 2)), ord=1)
    array(2.)
    """
    x = as_matrix("matrix_norm", x, square=False)
    nd = len(shape_of(x))
    return out(_matrix_norm(x, ord, (nd - 2, nd - 1), keepdims))


# ---------------------------------------------------------------- products and re-exports

def matrix_power(a: Any, n: int) -> Any:
    """`a` multiplied by itself `n` times, by repeated squaring; n < 0 inverts first,
    n = 0 gives the identity.

    >>> import fxgrad.numpy as fnp, numpy as np
    >>> fnp.linalg.matrix_power(np.array([[1.0, 1.0], [0.0, 1.0]]), 3)
    array([[1., 3.],
           [0., 1.]])
    """
    try:
        n = operator.index(n)
    except TypeError:
        raise _error(f"matrix_power: the exponent must be an integer, got {n!r}") from None
    a = operand(a, "matrix_power")
    s = shape_of(a)
    if len(s) < 2 or s[-1] != s[-2]:
        raise _error(f"matrix_power: the last two axes must be square, got shape {s}")
    if n < 0:
        a, n = inv(a), -n
    result = None
    while n:
        if n & 1:
            result = a if result is None else matmul(result, a)
        n >>= 1
        if n:
            a = matmul(a, a)
    return broadcast_to_shape(_eye_like(a), s) if result is None else result


def multi_dot(arrays: Any) -> Any:
    """The product of a sequence of matrices (first may be 1-d: a row; last: a column),
    left to right.

    >>> import fxgrad.numpy as fnp, numpy as np
    >>> fnp.linalg.multi_dot([np.ones(2), np.eye(2), np.ones(2)])
    array(2.)
    """
    if len(arrays) < 2:
        raise FxValueError(at_user_line("multi_dot: expected at least two arrays"))
    return functools.reduce(matmul, arrays)


def matrix_transpose(x: Any) -> Any:
    """`x` with its last two axes swapped.

    >>> import fxgrad.numpy as fnp, numpy as np
    >>> fnp.linalg.matrix_transpose(np.ones((4, 2, 3))).shape
    (4, 3, 2)
    """
    x = operand(x, "matrix_transpose")
    if len(shape_of(x)) < 2:
        raise _error(f"matrix_transpose: expected at least 2 axes, got shape {shape_of(x)}")
    return mT(x)


def vecdot(x1: Any, x2: Any, axis: int = -1) -> Any:
    """The dot products of the vectors along `axis` (broadcast).

    >>> import fxgrad.numpy as fnp, numpy as np
    >>> fnp.linalg.vecdot(np.ones((2, 3)), np.arange(3.0))
    array([3., 3.])
    """
    return reductions.sum(ew.multiply(x1, x2), axis=axis)


def trace(x: Any, offset: int = 0, dtype: Any = None) -> Any:
    """Sums of the `offset` diagonals over the last two axes (numpy.linalg.trace).

    >>> import fxgrad.numpy as fnp, numpy as np
    >>> fnp.linalg.trace(np.ones((2, 3, 3)))
    array([3., 3.])
    """
    return indexing.trace(x, offset, -2, -1, dtype)


def diagonal(x: Any, offset: int = 0) -> Any:
    """The `offset` diagonals over the last two axes (numpy.linalg.diagonal).

    >>> import fxgrad.numpy as fnp, numpy as np
    >>> fnp.linalg.diagonal(np.arange(8.0).reshape(2, 2, 2))
    array([[0., 3.],
           [4., 7.]])
    """
    return indexing.diagonal(x, offset, -2, -1)

