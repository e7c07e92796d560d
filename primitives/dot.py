"""dot_general: tensor contraction with batch dimensions, with JAX semantics.

`dimension_numbers = ((lhs_contract, rhs_contract), (lhs_batch, rhs_batch))` pairs
axes of the two operands that are summed over (contracting) or run in lockstep
(batch). The output's axes are the batch axes, then the remaining ("free") lhs axes,
then the free rhs axes, each group in operand order. The implementation permutes
both operands into a batched matrix product so numpy's matmul (BLAS) does the work.
The numba lowering does the same with `np.dot` per batch; an operand already laid out
as a matrix, or as the transpose of one, is used in place (BLAS transposes for free),
and integer or bool products, which BLAS lacks, are explicit loops.

dot_general is bilinear. The cotangent of one operand is itself a dot_general of the
output cotangent with the other operand: contract the other operand's free axes
against the matching axes of the cotangent, batch the batch axes, then transpose the
result back into the operand's axis order.

Under vmap, a batch axis on both operands becomes one more dot_general batch dimension
(the output's first axis); a batch axis on one operand is just another free axis of
that operand. So a matrix-vector product mapped over vectors is one matrix-matrix
product, with no transpose: this is what makes jacfwd and hessian fast.
"""
from __future__ import annotations

import contextlib
import operator
from typing import Any, Sequence

import numpy as np

from fxgrad.core.errors import FxTypeError
from fxgrad.core.ir import ShapedArray, aval_of
from fxgrad.core.trace import Primitive, shape_rules
from fxgrad.interpreters.batching import def_batch
from fxgrad.interpreters.evaluation import impl_rules
from fxgrad.interpreters.jvp import Zero, def_jvp, is_zero
from fxgrad.interpreters.taylor import add_terms, def_jet
from fxgrad.interpreters.transpose import def_transpose, is_undefined
from fxgrad.jit.lowering import def_lowering, np_dtype

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


@def_jet(dot_general_p)
def _dot_general_jet(primals: Any, series: Any, dimension_numbers: DimensionNumbers) -> Any:
    # bilinear: z_k = sum_{j=0}^{k} dot(x_j, y_{k-j})
    (x, y), (xs, ys) = primals, series
    a, b = [x, *xs], [y, *ys]
    out = dot_general(x, y, dimension_numbers)
    aval = aval_of(out)
    terms = [[dot_general(a[j], b[k - j], dimension_numbers) for j in range(k + 1)
              if not is_zero(a[j]) and not is_zero(b[k - j])] for k in range(1, len(xs) + 1)]
    return out, [add_terms(*t) if t else Zero(aval) for t in terms]


def _argsort(dims: Sequence[int]) -> Dims:
    return tuple(sorted(range(len(dims)), key=lambda i: dims[i]))


def _operand_cotangent(ct: Any, other: Any, own_ndim: int, other_ndim: int,
                       own: tuple[Dims, Dims], other_dims: tuple[Dims, Dims],
                       other_free_in_ct: Dims) -> Any:
    """Cotangent of one operand given the other; `own`/`other_dims` are (contract, batch).

    Contracting ct's axes of the other operand's free dims against those dims leaves
    (batch, own free, own contracting ordered as the other's contracting axes); with the
    operands swapped, (batch, own contracting, own free). The order needing no transpose
    is preferred (for y = x @ w, ct_w = x.T @ ct rather than (ct.T @ x).T).
    """
    from fxgrad.primitives.shape import transpose
    (own_contract, own_batch), (other_contract, other_batch) = own, other_dims
    other_free = _free_dims(other_ndim, other_contract, other_batch)
    own_free = _free_dims(own_ndim, own_contract, own_batch)
    own_contract = tuple(own_contract[i] for i in _argsort(other_contract))
    ct_batch, identity = tuple(range(len(own_batch))), tuple(range(own_ndim))
    if own_batch + own_contract + own_free == identity != own_batch + own_free + own_contract:
        return dot_general(other, ct, ((other_free, other_free_in_ct), (other_batch, ct_batch)))
    result = dot_general(ct, other, ((other_free_in_ct, other_free), (ct_batch, other_batch)))
    permutation = _argsort(own_batch + own_free + own_contract)
    return result if permutation == identity else transpose(result, permutation)


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


def _size(shape: tuple[int, ...], dims: Dims) -> int:
    return int(np.prod(_sizes(shape, dims), dtype=np.int64))


def _view(ctx: Any, x: str, shape: tuple[int, ...], perm: Dims,
          new_shape: tuple[int, ...]) -> str:
    """`x` (of `shape`) with its axes permuted by `perm`, C-contiguous, reshaped."""
    if perm != tuple(range(len(perm))):
        x, shape = _emit_permuted_copy(ctx, x, shape, perm), _sizes(shape, perm)
    if shape == new_shape:
        return x
    name = ctx.fresh("m")
    ctx.emit(f"{name} = {x}.reshape({new_shape!r})")
    return name


def _emit_permuted_copy(ctx: Any, x: str, shape: tuple[int, ...], perm: Dims) -> str:
    """A C-contiguous copy of `x` with axes permuted by `perm`, by loops (numba compiles
    copies of strided N-d views slowly)."""
    name, index = ctx.fresh("p"), [ctx.fresh("i") for _ in perm]
    ctx.emit(f"{name} = np.empty({_sizes(shape, perm)!r}, {np_dtype(ctx.in_avals[0].dtype)})")
    with contextlib.ExitStack() as loops:
        for i, axis in zip(index, perm):
            ctx.emit(f"for {i} in range({shape[axis]}):")
            loops.enter_context(ctx.indented())
        source = ", ".join(index[perm.index(axis)] for axis in range(len(perm)))
        ctx.emit(f"{name}[{', '.join(index)}] = {x}[{source}]")
    return name


def _blas_operand(ctx: Any, x: str, shape: tuple[int, ...], batch: Dims, rows: Dims,
                  cols: Dims, free: Dims) -> tuple[str, str]:
    """`x` as (batch, rows, cols) matrices: (name, suffix to index one matrix).

    Stored as (batch, cols, rows) it is used transposed, without a copy. Without batch
    axes an empty free run gives a vector, so np.dot is a BLAS matrix-vector product."""
    if not batch and not free:
        return _view(ctx, x, shape, rows + cols, (_size(shape, rows + cols),)), ""
    swapped = batch + cols + rows
    transposed = swapped == tuple(range(len(shape))) != batch + rows + cols
    perm = swapped if transposed else batch + rows + cols
    inner = (_size(shape, cols), _size(shape, rows)) if transposed \
        else (_size(shape, rows), _size(shape, cols))
    name = _view(ctx, x, shape, perm, ((_size(shape, batch),) + inner) if batch else inner)
    return name, ".T" if transposed else ""


def _emit_blas(ctx: Any, x: str, y: str, dims: DimensionNumbers) -> None:
    (lc, rc), (lb, rb) = dims
    (x_aval, y_aval), out_aval = ctx.in_avals, ctx.out_aval
    lf, rf = _free_dims(x_aval.ndim, lc, lb), _free_dims(y_aval.ndim, rc, rb)
    lhs, lhs_t = _blas_operand(ctx, x, x_aval.shape, lb, lf, lc, lf)
    rhs, rhs_t = _blas_operand(ctx, y, y_aval.shape, rb, rc, rf, rf)
    rows, cols = _size(x_aval.shape, lf), _size(y_aval.shape, rf)
    if not lb:
        result_shape = ((rows,) if lf else ()) + ((cols,) if rf else ())
        _emit_result(ctx, f"np.dot({lhs}{lhs_t}, {rhs}{rhs_t})", result_shape)
        return
    batch, b, out3 = _size(x_aval.shape, lb), ctx.fresh("b"), ctx.fresh("out")
    ctx.emit(f"{out3} = np.empty({(batch, rows, cols)!r}, {np_dtype(out_aval.dtype)})")
    ctx.emit(f"for {b} in range({batch}):")
    with ctx.indented():
        ctx.emit(f"np.dot({lhs}[{b}]{lhs_t}, {rhs}[{b}]{rhs_t}, {out3}[{b}])")
    _emit_result(ctx, out3, (batch, rows, cols))


def _emit_result(ctx: Any, expr: str, shape: tuple[int, ...]) -> None:
    """Assign `expr`, of `shape` (() for a scalar), to the output in the output's shape."""
    out_aval, out = ctx.out_aval, ctx.outs[0]
    if not out_aval.shape:
        ctx.emit(f"{out} = {expr if out_aval.dtype == np.float64 else ctx.cast(expr)}")
    elif shape == out_aval.shape:
        ctx.emit(f"{out} = {expr}")
    else:
        ctx.emit(f"{out} = {expr}.reshape({out_aval.shape!r})")


def _emit_loops(ctx: Any, x: str, y: str, dims: DimensionNumbers) -> None:
    """out[b, i, j] = sum_k lhs[b, i, k] * rhs[b, k, j] by loops (i, k, j: rows stream)."""
    (lc, rc), (lb, rb) = dims
    (x_aval, y_aval), out_aval = ctx.in_avals, ctx.out_aval
    lf, rf = _free_dims(x_aval.ndim, lc, lb), _free_dims(y_aval.ndim, rc, rb)
    sizes = {"b": _size(x_aval.shape, lb), "i": _size(x_aval.shape, lf),
             "k": _size(x_aval.shape, lc), "j": _size(y_aval.shape, rf)}
    lhs = _view(ctx, x, x_aval.shape, lb + lf + lc, (sizes["b"], sizes["i"], sizes["k"]))
    rhs = _view(ctx, y, y_aval.shape, rb + rc + rf, (sizes["b"], sizes["k"], sizes["j"]))
    out3, a = ctx.fresh("out"), ctx.fresh("a")
    b, i, k, j = (ctx.fresh(n) for n in "bikj")
    shape3 = (sizes["b"], sizes["i"], sizes["j"])
    ctx.emit(f"{out3} = np.zeros({shape3!r}, {np_dtype(out_aval.dtype)})")
    with contextlib.ExitStack() as loops:
        for index, n in ((b, sizes["b"]), (i, sizes["i"]), (k, sizes["k"])):
            ctx.emit(f"for {index} in range({n}):")
            loops.enter_context(ctx.indented())
        ctx.emit(f"{a} = {lhs}[{b}, {i}, {k}]")
        ctx.emit(f"for {j} in range({sizes['j']}):")
        ctx.emit(f"    {out3}[{b}, {i}, {j}] += {a} * {rhs}[{b}, {k}, {j}]")
    _emit_result(ctx, f"{out3}[0, 0, 0]" if not out_aval.shape else out3, shape3)


def _emit_scaled(ctx: Any, x: str, y: str) -> None:
    """The product with a rank-0 operand, whose output is the other operand's layout."""
    product, out_aval = f"{x} * {y}", ctx.out_aval
    if not out_aval.shape:
        product = ctx.cast(product)
    elif out_aval.dtype.kind not in "fc":   # numba widens small integers and bools
        product = f"({product}).astype({np_dtype(out_aval.dtype)})"
    ctx.emit(f"{ctx.outs[0]} = {product}")


@def_lowering(dot_general_p)
def _dot_general_lowering(ctx: Any, x: str, y: str, dimension_numbers: DimensionNumbers) -> None:
    (x_aval, y_aval), out_aval = ctx.in_avals, ctx.out_aval
    dt, out = np_dtype(out_aval.dtype), ctx.outs[0]
    contracted = _size(x_aval.shape, dimension_numbers[0][0])
    if x_aval.ndim == 0 or y_aval.ndim == 0:   # no axis to pair: a scaled copy
        _emit_scaled(ctx, x, y)
    elif out_aval.size == 0 or contracted == 0:
        ctx.emit(f"{out} = " + (f"np.zeros({out_aval.shape!r}, {dt})" if out_aval.shape
                                 else ctx.const(0, out_aval.dtype)))
    elif out_aval.dtype.kind in "fc" and dimension_numbers[0][0]:
        _emit_blas(ctx, x, y, dimension_numbers)
    else:
        _emit_loops(ctx, x, y, dimension_numbers)


def _past_batch(dims: Dims, batch_dim: int | None) -> Dims:
    """An operand's axes renumbered past its batch axis (if any)."""
    if batch_dim is None:
        return dims
    return tuple(d + (d >= batch_dim) for d in dims)


@def_batch(dot_general_p)
def _dot_general_batch(args: Any, dims: Any,
                       dimension_numbers: DimensionNumbers) -> tuple[Any, int]:
    (x, y), (x_dim, y_dim) = args, dims
    (lc, rc), (lb, rb) = dimension_numbers
    lc, lb, rc, rb = (_past_batch(lc, x_dim), _past_batch(lb, x_dim),
                      _past_batch(rc, y_dim), _past_batch(rb, y_dim))
    if x_dim is not None and y_dim is not None:
        return dot_general(x, y, ((lc, rc), ((x_dim,) + lb, (y_dim,) + rb))), 0
    out = dot_general(x, y, ((lc, rc), (lb, rb)))
    lhs_free = _free_dims(aval_of(x).ndim, lc, lb)
    if y_dim is None:     # output axes: batch, lhs free (the batch axis among them), rhs free
        return out, len(lb) + lhs_free.index(x_dim)
    rhs_free = _free_dims(aval_of(y).ndim, rc, rb)
    return out, len(lb) + len(lhs_free) + rhs_free.index(y_dim)
