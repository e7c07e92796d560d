"""Numba kernels of the linear-algebra primitives that numba's np.linalg lacks:
triangular solves by substitution and LU with partial pivoting (see linalg.py).

Compiled kernels import these by name (`import_line`) instead of carrying a copy of
their source, so numba compiles each once per process (and caches it on disk), not
once per kernel. The import line names a hash of this file, so kernels are
recompiled when it changes.
"""
import hashlib

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def fx_trisolve(a, b, lower, trans):
    """x with op(a) x = b (op(a) = a.T if trans), reading a's lower or upper triangle;
    a tuple, like np.linalg's multi-output functions, for the caller's unpacking."""
    n, k = b.shape
    x = np.empty_like(b)
    forward = lower != trans
    for step in range(n):
        i = step if forward else n - 1 - step
        for c in range(k):
            x[i, c] = b[i, c]
        for prior in range(step):
            j = prior if forward else n - 1 - prior
            aij = a[j, i] if trans else a[i, j]
            for c in range(k):
                x[i, c] -= aij * x[j, c]
        d = a[i, i]
        for c in range(k):
            x[i, c] /= d
    return (x,)


@njit(cache=True, nogil=True)
def fx_lu(a):
    """(lu, pivots, permutation) of square `a`, pivoting on the first largest |entry|
    of each column, as LAPACK getrf (a zero pivot leaves its column as it is)."""
    n = a.shape[0]
    lu = a.copy()
    piv = np.empty(n, np.int64)
    perm = np.arange(n)
    for k in range(n):
        p = k
        for i in range(k + 1, n):
            if abs(lu[i, k]) > abs(lu[p, k]):
                p = i
        piv[k] = p
        if p != k:
            for j in range(n):
                t = lu[k, j]
                lu[k, j] = lu[p, j]
                lu[p, j] = t
            q = perm[k]
            perm[k] = perm[p]
            perm[p] = q
        d = lu[k, k]
        if d != 0:
            for i in range(k + 1, n):
                lu[i, k] /= d
                f = lu[i, k]
                for j in range(k + 1, n):
                    lu[i, j] -= f * lu[k, j]
    return lu, piv, perm


def import_line(name: str) -> str:
    """Kernel-module source importing helper `name`, salted with this file's hash."""
    with open(__file__, "rb") as source:
        digest = hashlib.sha256(source.read()).hexdigest()[:16]
    return f"from fxgrad.primitives.linalg_kernels import {name}  # {digest}\n"
