"""Spectral and orthogonal decompositions: eigh, svd (reduced) and qr (reduced).

Each maps over leading batch axes like numpy.linalg and lowers to numba's
np.linalg.eigh / svd / qr, which call the same LAPACK routines as numpy (syevd,
gesdd, geqrf), so jit and eager agree, signs of vectors included.

JVPs, written with matmuls, masks and triangular solves (so they transpose for reverse
mode and differentiate again):

* eigh, A = V diag(w) Vᵀ: with M = Vᵀ A_dot V, w_dot = diag(M) and
  V_dot = V (F ∘ M), F_ij = 1/(w_j - w_i) off the diagonal. Only the lower triangle of
  A is read (as LAPACK does), so A_dot is first made symmetric from its lower triangle.
* svd, A = U diag(s) Vᵀ: with P = Uᵀ A_dot V and F_ij = 1/(s_j² - s_i²) off the
  diagonal, s_dot = diag(P), U_dot = U (F ∘ (P S + S Pᵀ)) + (I - UUᵀ) A_dot V S⁻¹,
  V_dot = V (F ∘ (S P + Pᵀ S)) + (I - VVᵀ) A_dotᵀ U S⁻¹ (the last terms only for
  non-square A).
* qr (m >= n), A = QR: with C = Qᵀ A_dot R⁻¹ and Ω = tril(C, -1) - tril(C, -1)ᵀ,
  Q_dot = Q (Ω - C) + A_dot R⁻¹ and R_dot = (C - Ω) R. For m < n, A = Q [R1 R2]: the
  square block gives Q_dot and R1_dot, and R2_dot = Q_dotᵀ A2 + Qᵀ A2_dot.

Degenerate eigenvalues (or singular values) make F infinite: the eigenvectors are
then not differentiable (any rotation within the eigenspace is as good), and only
functions invariant to that choice, like the eigenvalues themselves, have derivatives.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from fxgrad.core.ir import ShapedArray, aval_of
from fxgrad.core.trace import Primitive, shape_rules
from fxgrad.interpreters.evaluation import impl_rules
from fxgrad.interpreters.jvp import def_jvp
from fxgrad.jit.lowering import def_lowering
from fxgrad.primitives.linalg import (batch_leading, check_matrix, emit_per_matrix, mT,
                                      symmetric_from_lower, triangular_solve)


def _off_diagonal_inverse(d: Any, k: int, dtype: np.dtype) -> Any:
    """1 / d off the diagonal and 0 on it, with no division by the diagonal's zeros."""
    eye = np.eye(k, dtype=dtype)
    return (1 - eye) / (d + eye)


# ---------------------------------------------------------------- eigh

eigh_p = Primitive("eigh", multiple_results=True)
impl_rules[eigh_p] = lambda a: list(np.linalg.eigh(a))


def eigh(a: Any) -> tuple[Any, Any]:
    """(w, v): ascending eigenvalues and orthonormal eigenvectors (columns) of the
    symmetric matrix whose lower triangle is that of `a`."""
    w, v = eigh_p.bind(a)
    return w, v


def _eigh_shape(a: ShapedArray) -> list[ShapedArray]:
    check_matrix("eigh", a)
    return [ShapedArray(a.shape[:-1], a.dtype), a]


shape_rules[eigh_p] = _eigh_shape


@def_jvp(eigh_p)
def _eigh_jvp(primals: Any, tangents: Any) -> Any:
    import fxgrad.numpy as fnp
    (a,), (a_dot,) = primals, tangents
    w, v = eigh(a)
    m = fnp.matmul(mT(v), fnp.matmul(symmetric_from_lower(a_dot), v))
    aval = aval_of(a)
    f = _off_diagonal_inverse(w[..., None, :] - w[..., :, None], aval.shape[-1], aval.dtype)
    return [w, v], [fnp.diagonal(m, 0, -2, -1), fnp.matmul(v, f * m)]


batch_leading(eigh_p)


@def_lowering(eigh_p)
def _eigh_lowering(ctx: Any, a: str) -> None:
    emit_per_matrix(ctx, lambda a: f"np.linalg.eigh({a})", [a])


# ---------------------------------------------------------------- svd

svd_p = Primitive("svd", multiple_results=True)
impl_rules[svd_p] = lambda a: list(np.linalg.svd(a, full_matrices=False))


def svd(a: Any) -> tuple[Any, Any, Any]:
    """Reduced SVD (u, s, vt): a = u diag(s) vt, s descending, k = min(m, n) of them."""
    u, s, vt = svd_p.bind(a)
    return u, s, vt


def _svd_shape(a: ShapedArray) -> list[ShapedArray]:
    check_matrix("svd", a, square=False)
    *batch, m, n = a.shape
    k = min(m, n)
    return [ShapedArray((*batch, m, k), a.dtype), ShapedArray((*batch, k), a.dtype),
            ShapedArray((*batch, k, n), a.dtype)]


shape_rules[svd_p] = _svd_shape


@def_jvp(svd_p)
def _svd_jvp(primals: Any, tangents: Any) -> Any:
    import fxgrad.numpy as fnp
    (a,), (a_dot,) = primals, tangents
    u, s, vt = svd(a)
    v, (*_, m, n), dtype = mT(vt), aval_of(a).shape, aval_of(a).dtype
    p = fnp.matmul(mT(u), fnp.matmul(a_dot, v))
    row, col = s[..., None, :], s[..., :, None]
    f = _off_diagonal_inverse((row - col) * (row + col), min(m, n), dtype)
    ps, sp = p * row, col * p
    u_dot = fnp.matmul(u, f * (ps + mT(ps)))
    v_dot = fnp.matmul(v, f * (sp + mT(sp)))
    if m > n:
        u_dot = u_dot + (fnp.matmul(a_dot, v) - fnp.matmul(u, p)) / row
    if n > m:
        v_dot = v_dot + (fnp.matmul(mT(a_dot), u) - fnp.matmul(v, mT(p))) / row
    return [u, s, vt], [u_dot, fnp.diagonal(p, 0, -2, -1), mT(v_dot)]


batch_leading(svd_p)


@def_lowering(svd_p)
def _svd_lowering(ctx: Any, a: str) -> None:
    emit_per_matrix(ctx, lambda a: f"np.linalg.svd({a}, False)", [a])


# ---------------------------------------------------------------- qr

qr_p = Primitive("qr", multiple_results=True)
impl_rules[qr_p] = lambda a: list(np.linalg.qr(a))


def qr(a: Any) -> tuple[Any, Any]:
    """Reduced QR (q, r): a = q r, q (..., m, k) orthonormal columns, r (..., k, n) upper
    triangular, k = min(m, n)."""
    q, r = qr_p.bind(a)
    return q, r


def _qr_shape(a: ShapedArray) -> list[ShapedArray]:
    check_matrix("qr", a, square=False)
    *batch, m, n = a.shape
    k = min(m, n)
    return [ShapedArray((*batch, m, k), a.dtype), ShapedArray((*batch, k, n), a.dtype)]


shape_rules[qr_p] = _qr_shape


def _qr_tall_jvp(q: Any, r: Any, a_dot: Any) -> tuple[Any, Any]:
    """Tangents of q and r for a = q r with r square (m >= n)."""
    import fxgrad.numpy as fnp
    dar = mT(triangular_solve(r, mT(a_dot), lower=False, transpose_a=True))   # a_dot r⁻¹
    c = fnp.matmul(mT(q), dar)
    low = fnp.tril(c, -1)
    omega = low - mT(low)
    return fnp.matmul(q, omega - c) + dar, fnp.matmul(c - omega, r)


@def_jvp(qr_p)
def _qr_jvp(primals: Any, tangents: Any) -> Any:
    import fxgrad.numpy as fnp
    (a,), (a_dot,) = primals, tangents
    q, r = qr(a)
    *_, m, n = aval_of(a).shape
    if m >= n:
        return [q, r], list(_qr_tall_jvp(q, r, a_dot))
    q_dot, r1_dot = _qr_tall_jvp(q, r[..., :m], a_dot[..., :m])
    r2_dot = fnp.matmul(mT(q_dot), a[..., m:]) + fnp.matmul(mT(q), a_dot[..., m:])
    return [q, r], [q_dot, fnp.concatenate([r1_dot, r2_dot], axis=-1)]


batch_leading(qr_p)


@def_lowering(qr_p)
def _qr_lowering(ctx: Any, a: str) -> None:
    emit_per_matrix(ctx, lambda a: f"np.linalg.qr({a})", [a])

