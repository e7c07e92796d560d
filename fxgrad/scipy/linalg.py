"""fxgrad.scipy.linalg: SciPy's triangular and Cholesky solvers, differentiable.

`solve_triangular` binds the `triangular_solve` primitive (linear in `b`, so reverse
mode transposes it into the solve with the other triangle); `cholesky`, `cho_factor`
and `cho_solve` are the Cholesky primitive and two triangular solves. Stacks of
matrices (leading axes) work, as in recent SciPy. `cho_factor` returns a clean
triangle (zeros in the other half, where SciPy leaves whatever was there).

>>> import fxgrad as fx, fxgrad.scipy.linalg as fsl, numpy as np
>>> a = np.array([[4.0, 2.0], [2.0, 5.0]])
>>> fsl.cho_solve(fsl.cho_factor(a), np.array([2.0, 1.0]))
array([0.5, 0. ])
"""
from __future__ import annotations

from typing import Any

import numpy as np

from fxgrad.core.errors import FxValueError, at_user_line
from fxgrad.numpy import elementwise as ew, shaping
from fxgrad.numpy._promote import cast, dtype_of, shape_of
from fxgrad.numpy.linalg import _error, as_float, as_matrix, cholesky as _np_cholesky
from fxgrad.primitives.linalg import triangular_solve

__all__ = ["cho_factor", "cho_solve", "cholesky", "solve_triangular"]

_TRANS = {0: False, "N": False, 1: True, "T": True, 2: True, "C": True}


def _rhs(name: str, a: Any, b: Any) -> tuple[Any, Any, bool]:
    """`a` and `b` in one float dtype, `b` as (..., n, k); whether `b` was a vector."""
    a, b = as_matrix(name, a), as_float(name, b)
    dtype = np.result_type(dtype_of(a), dtype_of(b))
    a, b = (x if dtype_of(x) == dtype else cast(x, dtype) for x in (a, b))
    sa, sb = shape_of(a), shape_of(b)
    vector = len(sb) == len(sa) - 1
    if vector:
        b = shaping.expand_dims(b, -1)
    if shape_of(b)[:-1] != sa[:-1]:
        raise _error(f"{name}: b of shape {sb} does not match a of shape {sa}; b must be "
                     "(..., n) or (..., n, k) with a's leading axes and n = a.shape[-1]")
    return a, b, vector


def solve_triangular(a: Any, b: Any, trans: Any = 0, lower: bool = False,
                     unit_diagonal: bool = False) -> Any:
    """x with op(a) x = b for triangular `a`, reading only its lower (`lower=True`) or
    upper triangle; op(a) is a (`trans=0`/'N') or aᵀ (1/'T', 2/'C'). With
    `unit_diagonal`, a's diagonal is taken to be ones.

    >>> import fxgrad.scipy.linalg as fsl, numpy as np
    >>> fsl.solve_triangular(np.array([[2.0, 0.0], [1.0, 1.0]]), np.array([2.0, 3.0]),
    ...                      lower=True)
    array([1., 2.])
    """
    if trans not in _TRANS:
        raise FxValueError(at_user_line(f"solve_triangular: trans must be 0, 1, 2, 'N', 'T' "
                                        f"or 'C', got {trans!r}"))
    a, b, vector = _rhs("solve_triangular", a, b)
    if unit_diagonal:
        a = ew.where(np.eye(shape_of(a)[-1], dtype=bool), np.ones((), dtype_of(a)), a)
    x = triangular_solve(a, b, lower=lower, transpose_a=_TRANS[trans])
    return shaping.squeeze(x, -1) if vector else x


def cholesky(a: Any, lower: bool = False) -> Any:
    """SciPy's cholesky: upper U with a = UᵀU by default, lower L with `lower=True`.

    >>> import fxgrad.scipy.linalg as fsl, numpy as np
    >>> fsl.cholesky(np.array([[4.0, 2.0], [2.0, 5.0]]))
    array([[2., 1.],
           [0., 2.]])
    """
    return _np_cholesky(a, upper=not lower)


def cho_factor(a: Any, lower: bool = False) -> tuple[Any, bool]:
    """(c, lower): the Cholesky factor of `a` and which triangle it is, for `cho_solve`.

    >>> import fxgrad.scipy.linalg as fsl, numpy as np
    >>> fsl.cho_factor(np.array([[4.0, 2.0], [2.0, 5.0]]), lower=True)
    (array([[2., 0.],
           [1., 2.]]), True)
    """
    return cholesky(a, lower=lower), bool(lower)


def cho_solve(c_and_lower: tuple[Any, bool], b: Any) -> Any:
    """x with a x = b given `cho_factor(a)`: two triangular solves.

    >>> import fxgrad.scipy.linalg as fsl, numpy as np
    >>> fsl.cho_solve(fsl.cho_factor(np.diag([2.0, 4.0])), np.array([1.0, 1.0]))
    array([0.5 , 0.25])
    """
    try:
        c, lower = c_and_lower
    except (TypeError, ValueError):
        raise _error("cho_solve: the first argument must be the (c, lower) pair that "
                     "cho_factor returns") from None
    c, b, vector = _rhs("cho_solve", c, b)
    if lower:   # a = L Lᵀ: x = L⁻ᵀ L⁻¹ b
        x = triangular_solve(c, triangular_solve(c, b, lower=True), lower=True,
                             transpose_a=True)
    else:       # a = Uᵀ U: x = U⁻¹ U⁻ᵀ b
        x = triangular_solve(c, triangular_solve(c, b, lower=False, transpose_a=True),
                             lower=False)
    return shaping.squeeze(x, -1) if vector else x

