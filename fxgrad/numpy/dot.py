"""Products: dot, vdot, inner, outer, matmul, tensordot, kron, all one `dot_general` each.

Each function says which axes of its operands contract and which run in lockstep
(batch), then binds `dot_general`, whose output axes are batch, free lhs, free rhs --
numpy's order for everything here except `matmul` with unbatched lhs, which transposes
once. Operands are first promoted to numpy's common dtype. `einsum` lives in its own
module and builds on the same primitive.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from fxgrad.core.errors import FxTypeError, FxValueError, at_user_line
from fxgrad.numpy._promote import (broadcast_shapes, broadcast_to_shape, canonical_axis,
                                   dtype_of, out, promote, shape_of)
from fxgrad.numpy.elementwise import multiply
from fxgrad.primitives.dot import dot_general
from fxgrad.primitives.shape import reshape, squeeze, transpose

Dims = tuple[int, ...]


def _contract(a: Any, b: Any, a_axes: Dims, b_axes: Dims, name: str) -> Any:
    """`dot_general` contracting `a_axes` with `b_axes`, after a numpy-style size check."""
    sa, sb = shape_of(a), shape_of(b)
    for i, j in zip(a_axes, b_axes):
        if sa[i] != sb[j]:
            raise FxValueError(at_user_line(
                f"{name}: shapes {sa} and {sb} not aligned: {sa[i]} (dim {i}) != "
                f"{sb[j]} (dim {j})"))
    return dot_general(a, b, ((tuple(a_axes), tuple(b_axes)), ((), ())))


def dot(a: Any, b: Any) -> Any:
    """Dot product: contract a's last axis with b's second-to-last (its only one if 1-d).

    Scalars multiply. numpy's `out` is not taken, and a Python scalar operand is weakly
    typed (numpy's `dot(x_f32, 2.0)` is float64, here float32).

    >>> import fxgrad as fx, fxgrad.numpy as fnp, numpy as np
    >>> fx.grad(lambda x: fnp.dot(x, np.array([1., 2.])))(np.zeros(2))
    array([1., 2.])
    """
    a, b = promote("dot", a, b)
    na, nb = len(shape_of(a)), len(shape_of(b))
    if na == 0 or nb == 0:
        return multiply(a, b)
    return out(_contract(a, b, (na - 1,), (0 if nb == 1 else nb - 2,), "dot"))


def _check_real(name: str, *xs: Any) -> None:
    if any(dtype_of(x).kind == "c" for x in xs):
        raise FxTypeError(at_user_line(f"{name}: complex operands are not supported "
                                       "(there is no conjugation primitive)"))


def vdot(a: Any, b: Any) -> Any:
    """Dot product of the flattened operands; complex operands raise FxTypeError.

    >>> import fxgrad as fx, fxgrad.numpy as fnp, numpy as np
    >>> fx.grad(fnp.vdot)(np.array([1., 2.]), np.array([3., 4.]))
    array([3., 4.])
    """
    a, b = promote("vdot", a, b)
    _check_real("vdot", a, b)
    return out(_contract(reshape(a, (-1,)), reshape(b, (-1,)), (0,), (0,), "vdot"))


def inner(a: Any, b: Any) -> Any:
    """Contract the last axes of `a` and `b` (scalars multiply).

    >>> import fxgrad as fx, fxgrad.numpy as fnp, numpy as np
    >>> fx.vmap(fnp.inner)(np.eye(2), np.array([[3., 4.], [5., 6.]]))
    array([3., 6.])
    """
    a, b = promote("inner", a, b)
    na, nb = len(shape_of(a)), len(shape_of(b))
    if na == 0 or nb == 0:
        return multiply(a, b)
    return out(_contract(a, b, (na - 1,), (nb - 1,), "inner"))


def outer(a: Any, b: Any) -> Any:
    """`out[i, j] = a.ravel()[i] * b.ravel()[j]`: a product with no contraction.

    numpy's `out` is not taken.

    >>> import fxgrad as fx, fxgrad.numpy as fnp, numpy as np
    >>> fnp.outer(np.array([1., 2.]), np.array([1., 10., 100.]))
    array([[  1.,  10., 100.],
           [  2.,  20., 200.]])
    """
    a, b = promote("outer", a, b)
    return out(_contract(reshape(a, (-1,)), reshape(b, (-1,)), (), (), "outer"))


def tensordot(a: Any, b: Any, axes: Any = 2) -> Any:
    """Contract the last `axes` axes of `a` with the first of `b`, or the listed pairs.

    >>> import fxgrad as fx, fxgrad.numpy as fnp, numpy as np
    >>> fnp.tensordot(np.ones((2, 3)), np.ones((3, 4)), axes=1).shape
    (2, 4)
    """
    a, b = promote("tensordot", a, b)
    na, nb = len(shape_of(a)), len(shape_of(b))
    if isinstance(axes, (int, np.integer)):
        if axes < 0 or axes > min(na, nb):
            raise FxValueError(at_user_line(f"tensordot: axes={axes} is out of range for "
                                            f"shapes {shape_of(a)} and {shape_of(b)}"))
        a_axes, b_axes = tuple(range(na - axes, na)), tuple(range(axes))
    else:
        a_axes, b_axes = (_axis_list(ax, n) for ax, n in zip(axes, (na, nb)))
        if len(a_axes) != len(b_axes):
            raise FxValueError(at_user_line("tensordot: the two axes lists must have the "
                                            "same length"))
    return out(_contract(a, b, a_axes, b_axes, "tensordot"))


def _axis_list(axes: Any, ndim: int) -> Dims:
    seq = axes if isinstance(axes, (list, tuple)) else (axes,)
    return tuple(canonical_axis(ax, ndim, "tensordot") for ax in seq)


def matmul(a: Any, b: Any) -> Any:
    """numpy's `a @ b`: matrix products over the last two axes, broadcasting the others.

    A plain function, not a gufunc: numpy's `out`, `axes` and `dtype` keywords are not
    taken; 0-d operands raise FxValueError, as in numpy.

    >>> import fxgrad as fx, fxgrad.numpy as fnp, numpy as np
    >>> fx.jit(fnp.matmul)(np.eye(2), np.array([[1., 2.], [3., 4.]]))
    array([[1., 2.],
           [3., 4.]])
    """
    a, b = promote("matmul", a, b)
    if shape_of(a) == () or shape_of(b) == ():
        raise FxValueError(at_user_line("matmul: input operand does not have enough "
                                        "dimensions (scalars need fnp.multiply)"))
    a_vec, b_vec = len(shape_of(a)) == 1, len(shape_of(b)) == 1
    if a_vec != b_vec and shape_of(a)[-1] == shape_of(b)[0 if b_vec else -2]:
        return out(_vector_product(a, b, a_vec))   # one dot_general, no reshapes
    a = reshape(a, (1,) + shape_of(a)) if a_vec else a
    b = reshape(b, shape_of(b) + (1,)) if b_vec else b
    product = _batched_matmul(a, b)
    n = len(shape_of(product))
    dropped = ((n - 2,) if a_vec else ()) + ((n - 1,) if b_vec else ())
    return out(squeeze(product, dropped) if dropped else product)


def _vector_product(a: Any, b: Any, a_vec: bool) -> Any:
    """matrix @ vector or vector @ matrix (the vector's axis contracts, others are free)."""
    if a_vec:
        return dot_general(a, b, (((0,), (len(shape_of(b)) - 2,)), ((), ())))
    return dot_general(a, b, (((len(shape_of(a)) - 1,), (0,)), ((), ())))


def _batched_matmul(a: Any, b: Any) -> Any:
    sa, sb = shape_of(a), shape_of(b)
    na, nb = len(sa), len(sb)
    if sa[-1] != sb[-2]:
        raise FxValueError(at_user_line(
            f"matmul: input operand 1 has a mismatch in its core dimension 0 (size {sb[-2]} "
            f"is different from {sa[-1]}); shapes {sa} and {sb}"))
    if nb == 2:   # unbatched rhs: batch axes of a are free axes already in place
        return dot_general(a, b, (((na - 1,), (0,)), ((), ())))
    if na == 2:   # unbatched lhs: the output comes as (m, batch..., n)
        prod = dot_general(a, b, (((1,), (nb - 2,)), ((), ())))
        return transpose(prod, tuple(range(1, nb - 1)) + (0, nb - 1))
    batch = broadcast_shapes("matmul", sa[:-2], sb[:-2])
    a, b = broadcast_to_shape(a, batch + sa[-2:]), broadcast_to_shape(b, batch + sb[-2:])
    nbatch = len(batch)
    dims = tuple(range(nbatch))
    return dot_general(a, b, (((nbatch + 1,), (nbatch,)), (dims, dims)))


def kron(a: Any, b: Any) -> Any:
    """Kronecker product: `outer` of the operands, axes interleaved and merged pairwise.

    >>> import fxgrad as fx, fxgrad.numpy as fnp, numpy as np
    >>> fnp.kron(np.eye(2), np.array([[1., 2.]]))
    array([[1., 2., 0., 0.],
           [0., 0., 1., 2.]])
    """
    a, b = promote("kron", a, b)
    sa, sb = shape_of(a), shape_of(b)
    n = max(len(sa), len(sb))
    sa, sb = (1,) * (n - len(sa)) + sa, (1,) * (n - len(sb)) + sb
    prod = _contract(reshape(a, sa), reshape(b, sb), (), (), "kron")
    interleaved = transpose(prod, tuple(i for k in range(n) for i in (k, n + k)))
    return out(reshape(interleaved, tuple(x * y for x, y in zip(sa, sb))))
