"""einsum: subscripts parsed into reductions, broadcasts and one `dot_general` per pair.

After parsing (ellipses become fresh labels, right-aligned across operands; implicit
output is numpy's: ellipsis labels, then labels used once, sorted) each operand is a
pair (array, labels). Operands are combined left to right: labels only one side uses
and nothing later needs are summed out first, labels both sides share become batch
axes if still needed and contracting axes otherwise, and `dot_general` leaves the
result labelled batch + lhs free + rhs free. A final sum and transpose give the
output order. A label repeated within one operand (a trace or a diagonal) raises.
"""
from __future__ import annotations

from typing import Any, Sequence

from fxgrad.core.errors import FxTypeError, FxValueError, at_user_line
from fxgrad.numpy._promote import out, promote, shape_of
from fxgrad.primitives.dot import dot_general
from fxgrad.primitives.reduce import reduce_sum
from fxgrad.primitives.shape import broadcast_in_dim, transpose

Labelled = tuple[Any, str]
_ELLIPSIS_POOL = "".join(chr(0x391 + i) for i in range(24))   # Greek capitals, never user labels


def einsum(subscripts: str, *operands: Any, optimize: Any = None) -> Any:
    """Einstein summation over the operands, e.g. `einsum('bij,bjk->bik', x, y)`.

    Differs from numpy: only the subscripts-string form is taken (the sublist form raises
    FxTypeError), a label repeated within one operand (a trace or diagonal) raises
    FxValueError, `optimize` is ignored (operands are combined left to right) and
    `out`, `dtype`, `order` and `casting` are not taken.

    >>> import fxgrad as fx, fxgrad.numpy as fnp, numpy as np
    >>> fnp.einsum('ij,j->i', np.eye(2), np.array([3., 4.]))
    array([3., 4.])
    >>> fx.grad(lambda x: fnp.einsum('i,i->', x, x))(np.array([1., 2.]))
    array([2., 4.])
    """
    del optimize   # operands are always combined left to right
    if not isinstance(subscripts, str):
        raise FxTypeError(at_user_line("einsum: only the subscripts-string form is supported, "
                                       "e.g. einsum('ij,jk->ik', a, b)"))
    xs = promote("einsum", *operands)
    in_labels, out_labels = _parse(subscripts, [len(shape_of(x)) for x in xs])
    sizes = _label_sizes(xs, in_labels)
    ops: list[Labelled] = list(zip(xs, in_labels))
    result = ops[0]
    for k in range(1, len(ops)):
        later = set(out_labels).union(*(labels for _, labels in ops[k + 1:]))
        result = _pair(result, ops[k], later, sizes)
    return out(_finish(result, out_labels))


# ---------------------------------------------------------------- parsing

def _parse(subscripts: str, ndims: Sequence[int]) -> tuple[list[str], str]:
    spec = subscripts.replace(" ", "")
    inputs, arrow, output = spec.partition("->")
    terms = inputs.split(",")
    if len(terms) != len(ndims):
        raise FxValueError(at_user_line(
            f"einsum: subscripts {subscripts!r} name {len(terms)} operands, but "
            f"{len(ndims)} were given"))
    bad = set(spec.replace("->", "").replace(",", "").replace(".", "")) - set(
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
    if bad:
        raise FxValueError(at_user_line(f"einsum: invalid subscript characters {sorted(bad)} "
                                        f"in {subscripts!r}"))
    ell_rank = max((n - len(t.replace("...", "")) for t, n in zip(terms, ndims) if "..." in t),
                   default=0)
    ell = _ELLIPSIS_POOL[:ell_rank]
    labels = [_expand(t, n, ell, k, subscripts) for k, (t, n) in enumerate(zip(terms, ndims))]
    out_labels = (output.replace("...", ell) if arrow else _implicit_output(labels, ell))
    _check_output(out_labels, labels, subscripts)
    return labels, out_labels


def _expand(term: str, ndim: int, ell: str, k: int, subscripts: str) -> str:
    """One operand's labels, its ellipsis replaced by the trailing ellipsis labels."""
    explicit = len(term.replace("...", ""))
    if "..." in term:
        rank = ndim - explicit
        term = term.replace("...", ell[len(ell) - rank:] if rank > 0 else "")
    if len(term) != ndim:
        raise FxValueError(at_user_line(
            f"einsum: operand {k} has {ndim} dimensions, but its subscripts in "
            f"{subscripts!r} name {explicit}"))
    repeated = sorted({c for c in term if term.count(c) > 1})
    if repeated:
        raise FxValueError(at_user_line(
            f"einsum: subscript {repeated[0]!r} repeats in operand {k} of {subscripts!r}; "
            "traces and diagonals are not supported by fxgrad.numpy.einsum (use "
            "fnp.trace or fnp.diagonal)"))
    return term


def _implicit_output(labels: Sequence[str], ell: str) -> str:
    counts: dict[str, int] = {}
    for term in labels:
        for c in term:
            counts[c] = counts.get(c, 0) + 1
    return ell + "".join(sorted(c for c, n in counts.items() if n == 1 and c not in ell))


def _check_output(out_labels: str, labels: Sequence[str], subscripts: str) -> None:
    used = set("".join(labels))
    for c in out_labels:
        if c not in used:
            raise FxValueError(at_user_line(f"einsum: output subscript {c!r} in {subscripts!r} "
                                            "does not appear in any input"))
        if out_labels.count(c) > 1:
            raise FxValueError(at_user_line(f"einsum: output subscript {c!r} repeats in "
                                            f"{subscripts!r}"))


def _label_sizes(xs: Sequence[Any], labels: Sequence[str]) -> dict[str, int]:
    """Each label's size; sizes of 1 broadcast against the others."""
    sizes: dict[str, int] = {}
    for x, term in zip(xs, labels):
        for c, n in zip(term, shape_of(x)):
            if sizes.get(c, 1) not in (1, n) and n != 1:
                raise FxValueError(at_user_line(
                    f"einsum: subscript {c!r} has sizes {sizes[c]} and {n} in different "
                    "operands"))
            sizes[c] = max(sizes.get(c, 1), n)
    return sizes


# ---------------------------------------------------------------- evaluation

def _sum_out(op: Labelled, keep: set[str]) -> Labelled:
    """Sum over the labels of `op` not in `keep`."""
    x, labels = op
    axes = tuple(i for i, c in enumerate(labels) if c not in keep)
    if not axes:
        return op
    return reduce_sum(x, axes), "".join(c for c in labels if c in keep)


def _widen(op: Labelled, sizes: dict[str, int], labels: set[str]) -> Labelled:
    """Broadcast size-1 axes of the given labels to their full size."""
    x, term = op
    shape = tuple(sizes[c] if c in labels else n for c, n in zip(term, shape_of(x)))
    if shape == shape_of(x):
        return op
    return broadcast_in_dim(x, shape, tuple(range(len(shape)))), term


def _pair(lhs: Labelled, rhs: Labelled, later: set[str], sizes: dict[str, int]) -> Labelled:
    shared = set(lhs[1]) & set(rhs[1])
    lhs, rhs = _sum_out(lhs, later | shared), _sum_out(rhs, later | shared)
    lhs, rhs = _widen(lhs, sizes, shared), _widen(rhs, sizes, shared)
    (x, xl), (y, yl) = lhs, rhs
    batch = [c for c in xl if c in shared and c in later]
    contract = [c for c in xl if c in shared and c not in later]
    dims = (((tuple(xl.index(c) for c in contract), tuple(yl.index(c) for c in contract)),
             (tuple(xl.index(c) for c in batch), tuple(yl.index(c) for c in batch))))
    free_x = "".join(c for c in xl if c not in shared)
    free_y = "".join(c for c in yl if c not in shared)
    return dot_general(x, y, dims), "".join(batch) + free_x + free_y


def _finish(op: Labelled, out_labels: str) -> Any:
    x, labels = _sum_out(op, set(out_labels))
    perm = tuple(labels.index(c) for c in out_labels)
    return x if perm == tuple(range(len(perm))) else transpose(x, perm)
