"""dot_general: tensor contraction with batch dimensions, with JAX semantics.

`dimension_numbers = ((lhs_contract, rhs_contract), (lhs_batch, rhs_batch))` pairs
axes of the two operands that are summed over (contracting) or run in lockstep
(batch). The output's axes are the batch axes, then the remaining ("free") lhs axes,
then the free rhs axes, each group in operand order. The implementation permutes
both operands into a batched matrix product so numpy's matmul (BLAS) does the work.

dot_general is bilinear. The cotangent of one operand is itself a dot_general of the
output cotangent with the other operand: contract the other operand's free axes
against the matching axes of the cotangent, batch the batch axes, then transpose the
result back into the operand's axis order.
"""
from __future__ import annotations

import operator
from typing import Any, Sequence

import numpy as np

from fxgrad.core.errors import FxTypeError
from fxgrad.core.ir import ShapedArray, aval_of
from fxgrad.core.trace import Primitive, shape_rules
from fxgrad.interpreters.evaluation import impl_rules
from fxgrad.interpreters.jvp import def_jvp, is_zero
from fxgrad.interpreters.transpose import def_transpose, is_undefined

Dims = tuple[int, ...]
DimensionNumbers = tuple[tuple[Dims, Dims], tuple[Dims, Dims]]


def _ints(dims: Sequence[int]) -> Dims:
    return tuple(operator.index(d) for d in dims)


def _dimension_numbers_param(dimension_numbers: Any) -> DimensionNumbers:
    """Dimension numbers as the canonical hashable param (tuples of Python ints)."""
    try:
        (lc, rc), (lb, rb) = dimension_numbers
        return (_ints(lc), _ints(rc)), (_ints(lb), _ints(rb))
    except (TypeError, ValueError):
        raise FxTypeError(
            "dot_general: dimension_numbers must be ((lhs_contract, rhs_contract), "
            f"(lhs_batch, rhs_batch)) with tuples of ints, got {dimension_numbers!r}") from None


def _free_dims(ndim: int, contract: Dims, batch: Dims) -> Dims:
    return tuple(d for d in range(ndim) if d not in contract and d not in batch)


def _sizes(shape: tuple[int, ...], dims: Dims) -> tuple[int, ...]:
    return tuple(shape[d] for d in dims)


def _as_batched_matrix(x: np.ndarray, batch: Dims, rows: Dims, cols: Dims) -> np.ndarray:
    """`x` permuted to (batch..., rows, cols) with the row and column axes flattened."""
    sizes = _sizes(x.shape, batch) + (int(np.prod(_sizes(x.shape, rows), dtype=np.int64)),
                                      int(np.prod(_sizes(x.shape, cols), dtype=np.int64)))
    return np.transpose(x, batch + rows + cols).reshape(sizes)


def _dot_general_impl(x: np.ndarray, y: np.ndarray,
                      dimension_numbers: DimensionNumbers) -> np.ndarray:
    (lc, rc), (lb, rb) = dimension_numbers
    lf, rf = _free_dims(x.ndim, lc, lb), _free_dims(y.ndim, rc, rb)
    if x.ndim == 2 and y.ndim == 2 and (lc, rc, lb) == ((1,), (0,), ()):
        return np.matmul(x, y)
    out = np.matmul(_as_batched_matrix(x, lb, lf, lc), _as_batched_matrix(y, rb, rc, rf))
    return out.reshape(_sizes(x.shape, lb) + _sizes(x.shape, lf) + _sizes(y.shape, rf))


dot_general_p = Primitive("dot_general")
impl_rules[dot_general_p] = _dot_general_impl


def dot_general(x: Any, y: Any, dimension_numbers: Any) -> Any:
    return dot_general_p.bind(x, y, dimension_numbers=_dimension_numbers_param(dimension_numbers))


def _check_side(side: str, aval: ShapedArray, contract: Dims, batch: Dims,
                shapes: str) -> None:
    dims = contract + batch
    if not all(0 <= d < aval.ndim for d in dims):
        raise FxTypeError(f"dot_general: {side} axes {dims} are out of range for the {side} "
                          f"of rank {aval.ndim} ({shapes})")
    if len(set(dims)) != len(dims):
        raise FxTypeError(f"dot_general: {side} contracting {contract} and batch {batch} "
                          f"axes must be distinct ({shapes})")


def _check_pairs(kind: str, x: ShapedArray, y: ShapedArray, lhs: Dims, rhs: Dims,
                 shapes: str) -> None:
    if len(lhs) != len(rhs):
        raise FxTypeError(f"dot_general: lhs and rhs need as many {kind} axes, got {lhs} "
                          f"and {rhs} ({shapes})")
    if _sizes(x.shape, lhs) != _sizes(y.shape, rhs):
        raise FxTypeError(f"dot_general: {kind} axes of different sizes: lhs axes {lhs} have "
                          f"sizes {_sizes(x.shape, lhs)}, rhs axes {rhs} have sizes "
                          f"{_sizes(y.shape, rhs)} ({shapes})")


def _dot_general_shape(x: ShapedArray, y: ShapedArray,
                       dimension_numbers: DimensionNumbers) -> ShapedArray:
    (lc, rc), (lb, rb) = dimension_numbers
    shapes = f"shapes {x.shape} and {y.shape}"
    if x.dtype != y.dtype:
        raise FxTypeError(f"dot_general: operand dtypes differ ({x.dtype.name}, "
                          f"{y.dtype.name}) for {shapes}; convert one with .astype(...)")
    _check_side("lhs", x, lc, lb, shapes)
    _check_side("rhs", y, rc, rb, shapes)
    _check_pairs("contracting", x, y, lc, rc, shapes)
    _check_pairs("batch", x, y, lb, rb, shapes)
    lf, rf = _free_dims(x.ndim, lc, lb), _free_dims(y.ndim, rc, rb)
    return ShapedArray(_sizes(x.shape, lb) + _sizes(x.shape, lf) + _sizes(y.shape, rf),
                       x.dtype)


shape_rules[dot_general_p] = _dot_general_shape


@def_jvp(dot_general_p)
def _dot_general_jvp(primals: Any, tangents: Any, dimension_numbers: DimensionNumbers) -> Any:
    from fxgrad.primitives.arith import add
    (x, y), (x_dot, y_dot) = primals, tangents
    out = dot_general(x, y, dimension_numbers)
    terms = []
    if not is_zero(x_dot):
        terms.append(dot_general(x_dot, y, dimension_numbers))
    if not is_zero(y_dot):
        terms.append(dot_general(x, y_dot, dimension_numbers))
    return out, terms[0] if len(terms) == 1 else add(*terms)


def _argsort(dims: Sequence[int]) -> Dims:
    return tuple(sorted(range(len(dims)), key=lambda i: dims[i]))


def _operand_cotangent(ct: Any, other: Any, own_ndim: int, other_ndim: int,
                       own: tuple[Dims, Dims], other_dims: tuple[Dims, Dims],
                       other_free_in_ct: Dims) -> Any:
    """Cotangent of one operand given the other; `own`/`other_dims` are (contract, batch).

    Contracting ct's axes of the other operand's free dims against those dims leaves
    (batch, own free, own contracting ordered as the other's contracting axes).
    """
    from fxgrad.primitives.shape import transpose
    (own_contract, own_batch), (other_contract, other_batch) = own, other_dims
    other_free = _free_dims(other_ndim, other_contract, other_batch)
    dims = ((other_free_in_ct, other_free), (tuple(range(len(own_batch))), other_batch))
    result = dot_general(ct, other, dims)
    own_order = (own_batch + _free_dims(own_ndim, own_contract, own_batch)
                 + tuple(own_contract[i] for i in _argsort(other_contract)))
    permutation = _argsort(own_order)
    if permutation == tuple(range(own_ndim)):
        return result
    return transpose(result, permutation)


@def_transpose(dot_general_p)
def _dot_general_transpose(ct: Any, x: Any, y: Any,
                           dimension_numbers: DimensionNumbers) -> Any:
    if is_undefined(x) and is_undefined(y):
        raise TypeError("dot_general is not linear in both operands at once")
    (lc, rc), (lb, rb) = dimension_numbers
    x_ndim, y_ndim = aval_of(x).ndim, aval_of(y).ndim
    num_lhs_free = x_ndim - len(lc) - len(lb)
    lhs_free_in_ct = tuple(range(len(lb), len(lb) + num_lhs_free))
    rhs_free_in_ct = tuple(range(len(lb) + num_lhs_free, aval_of(ct).ndim))
    if is_undefined(x):
        return [_operand_cotangent(ct, y, x_ndim, y_ndim, (lc, lb), (rc, rb),
                                   rhs_free_in_ct), None]
    return [None, _operand_cotangent(ct, x, y_ndim, x_ndim, (rc, rb), (lc, lb),
                                     lhs_free_in_ct)]
