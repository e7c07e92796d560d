"""einsum against np.einsum for common subscripts, under tracing, with derivatives and
the errors for unsupported (diagonal) or malformed subscripts."""
from __future__ import annotations

import numpy as np
import pytest

import fxgrad as fx
import fxgrad.numpy as fnp
from fxgrad.test_util import check_grads


def arr(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape)


CASES = [
    ("ij->ji", [(2, 3)]), ("ij->", [(2, 3)]), ("ij->j", [(2, 3)]), ("ijk->kij", [(2, 3, 4)]),
    ("ij", [(2, 3)]), ("ji", [(2, 3)]), ("i,i->", [(3,), (3,)]), ("i,i", [(3,), (3,)]),
    ("i,j->ij", [(3,), (4,)]), ("ij,j->i", [(2, 3), (3,)]), ("ij,jk->ik", [(2, 3), (3, 4)]),
    ("ij,jk", [(2, 3), (3, 4)]), ("ij,kj->ik", [(2, 3), (4, 3)]),
    ("bij,bjk->bik", [(5, 2, 3), (5, 3, 4)]), ("bij,jk->bik", [(5, 2, 3), (3, 4)]),
    ("bij,bjk->kib", [(5, 2, 3), (5, 3, 4)]), ("ij,ij->i", [(2, 3), (2, 3)]),
    ("ij,ij->ij", [(2, 3), (2, 3)]), ("ij,kl->ijkl", [(2, 3), (1, 2)]),
    ("ijk,k->", [(2, 3, 4), (4,)]), ("ijk,jl->il", [(2, 3, 4), (3, 5)]),
    ("...ij,...jk->...ik", [(5, 2, 3), (5, 3, 4)]), ("...ij,jk", [(6, 5, 2, 3), (3, 4)]),
    ("...j,j", [(2, 3, 4), (4,)]), ("i...->...", [(2, 3, 4)]), ("...,...", [(2, 3), (2, 3)]),
    ("...ij,...jk->...ik", [(1, 2, 3), (5, 3, 4)]), ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 5)]),
    ("i,j,k->ijk", [(2,), (3,), (4,)]), ("ab,bc,cd,d->a", [(2, 3), (3, 4), (4, 5), (5,)]),
    ("ij,jk->", [(2, 3), (3, 4)]), ("i,ij,j", [(2,), (2, 3), (3,)]),
    ("ab,ab,ab->", [(2, 3), (2, 3), (2, 3)]), ("ij,j->ij", [(2, 1), (3,)]),
]
IDS = [c[0] for c in CASES]


def operands(shapes):
    return [arr(*s, seed=k) for k, s in enumerate(shapes)]


@pytest.mark.parametrize("subscripts,shapes", CASES, ids=IDS)
def test_matches_numpy(subscripts, shapes, matches_numpy):
    xs = operands(shapes)
    matches_numpy(fnp.einsum(subscripts, *xs), np.einsum(subscripts, *xs))


@pytest.mark.parametrize("subscripts,shapes", CASES, ids=IDS)
def test_traced_value_and_grads(subscripts, shapes, matches_numpy):
    xs = operands(shapes)
    fn = lambda *ys: fnp.einsum(subscripts, *ys)   # noqa: E731
    out = fx.jvp(fn, tuple(xs), tuple(np.ones_like(x) for x in xs))[0]
    matches_numpy(out, np.einsum(subscripts, *xs))
    check_grads(fn, tuple(xs), order=2)


def test_dtypes_promote_like_numpy(matches_numpy):
    a, b = arr(2, 3).astype(np.float32), np.arange(3)
    matches_numpy(fnp.einsum("ij,j->i", a, b), np.einsum("ij,j->i", a, b), rtol=1e-5)
    matches_numpy(fnp.einsum("ij,j->i", a, a[0]), np.einsum("ij,j->i", a, a[0]), rtol=1e-5)


def test_numpy_einsum_dispatches_on_tracers(matches_numpy):
    a, b = arr(2, 3), arr(3, 4)
    out = fx.jvp(lambda x: np.einsum("ij,jk->ik", x, b), (a,), (np.ones_like(a),))[0]
    matches_numpy(out, a @ b)


def test_a_matrix_product_is_one_dot_general():
    program = fx.make_jaxpr(lambda x, y: fnp.einsum("ij,jk->ik", x, y))(arr(2, 3), arr(3, 4))
    assert [e.prim.name for e in program.eqns] == ["dot_general"]


@pytest.mark.parametrize("subscripts,shapes,message", [
    ("ii->i", [(3, 3)], "trace"), ("ii", [(3, 3)], "diagonal"),
    ("ij,jk->ik", [(2, 3)], "name 2 operands"), ("ij->k", [(2, 3)], "does not appear"),
    ("ij->ii", [(2, 3)], "repeats"), ("ijk->", [(2, 3)], "has 2 dimensions"),
    ("i,i->", [(2,), (3,)], "sizes 2 and 3"), ("i1->", [(2,)], "invalid subscript"),
])
def test_errors(subscripts, shapes, message):
    with pytest.raises(fx.FxValueError, match=message):
        fnp.einsum(subscripts, *operands(shapes))


def test_operand_list_form_is_rejected():
    with pytest.raises(fx.FxTypeError, match="subscripts-string"):
        fnp.einsum(arr(2), [0], [0])


def test_uppercase_labels_and_optimize_argument(matches_numpy):
    a, b = arr(2, 3), arr(3, 4)
    matches_numpy(fnp.einsum("Ij,jK->KI", a, b, optimize=True),
                  np.einsum("Ij,jK->KI", a, b, optimize=True))


def test_size_one_axes_broadcast_against_each_other(matches_numpy):
    a, b = arr(1, 3), arr(4, 3)
    matches_numpy(fnp.einsum("ij,ij->ij", a, b), np.einsum("ij,ij->ij", a, b))
    matches_numpy(fnp.einsum("ij,ij->j", a, b), np.einsum("ij,ij->j", a, b))
    check_grads(lambda x, y: fnp.einsum("ij,ij->j", x, y), (a, b), order=2)
