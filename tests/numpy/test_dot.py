"""Products (dot, vdot, inner, outer, matmul, tensordot, kron) against numpy, under
tracing, with derivatives, dtype promotion and shape errors."""
from __future__ import annotations

import numpy as np
import pytest

import fxgrad as fx
import fxgrad.numpy as fnp
from fxgrad.test_util import check_grads


def arr(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape)


# (function name, lhs shape, rhs shape, extra args)
CASES = [
    ("dot", (), (3,), ()), ("dot", (3,), (3,), ()), ("dot", (2, 3), (3,), ()),
    ("dot", (3,), (3, 4), ()), ("dot", (2, 3), (3, 4), ()), ("dot", (2, 5, 3), (4, 3, 2), ()),
    ("vdot", (2, 3), (3, 2), ()), ("inner", (2, 3), (4, 3), ()), ("inner", (3,), (3,), ()),
    ("inner", (), (2, 3), ()), ("outer", (3,), (4,), ()), ("outer", (2, 2), (3,), ()),
    ("matmul", (3,), (3,), ()), ("matmul", (2, 3), (3, 4), ()), ("matmul", (3,), (3, 4), ()),
    ("matmul", (2, 3), (3,), ()), ("matmul", (5, 2, 3), (3, 4), ()),
    ("matmul", (2, 3), (5, 3, 4), ()), ("matmul", (5, 2, 3), (5, 3, 4), ()),
    ("matmul", (1, 2, 3), (5, 3, 4), ()), ("matmul", (6, 1, 2, 3), (5, 3, 4), ()),
    ("matmul", (5, 2, 3), (3,), ()), ("matmul", (3,), (5, 3, 4), ()),
    ("tensordot", (2, 3, 4), (3, 4, 5), ()), ("tensordot", (2, 3), (3, 2), (1,)),
    ("tensordot", (2, 3), (4, 5), (0,)), ("tensordot", (2, 3, 4), (4, 2), (((0, 2), (1, 0)),)),
    ("tensordot", (2, 3), (3,), (([1], [0]),)), ("kron", (2, 3), (3, 2), ()),
    ("kron", (2,), (2, 3), ()),
]
IDS = [f"{n}-{a}-{b}-{e}" for n, a, b, e in CASES]


@pytest.mark.parametrize("name,sa,sb,extra", CASES, ids=IDS)
def test_matches_numpy(name, sa, sb, extra, matches_numpy):
    a, b = arr(*sa, seed=1), arr(*sb, seed=2)
    matches_numpy(getattr(fnp, name)(a, b, *extra), getattr(np, name)(a, b, *extra))


@pytest.mark.parametrize("name,sa,sb,extra", CASES, ids=IDS)
def test_traced_value_and_grads(name, sa, sb, extra, matches_numpy):
    a, b = arr(*sa, seed=1), arr(*sb, seed=2)
    fn = getattr(fnp, name)
    out = fx.jvp(lambda x, y: fn(x, y, *extra), (a, b), (np.ones_like(a), np.ones_like(b)))[0]
    matches_numpy(out, getattr(np, name)(a, b, *extra))
    check_grads(lambda x, y: fn(x, y, *extra), (a, b), order=2)


@pytest.mark.parametrize("name", ["dot", "matmul", "inner", "outer", "vdot", "tensordot"])
@pytest.mark.parametrize("da,db", [(np.float32, np.float32), (np.float32, np.float64),
                                   (np.int32, np.float32), (np.int64, np.int64)])
def test_dtype_promotion(name, da, db, matches_numpy):
    a, b = (arr(2, 2, seed=1) * 4).astype(da), (arr(2, 2, seed=2) * 4).astype(db)
    matches_numpy(getattr(fnp, name)(a, b), getattr(np, name)(a, b), rtol=1e-5)


def test_matmul_operator_keeps_float32():
    a, b = arr(2, 3).astype(np.float32), arr(3, 4).astype(np.float32)
    g = fx.grad(lambda x: fnp.sum(x @ b))(a)
    assert g.dtype == np.float32


def test_matmul_program_is_one_dot_general():
    program = fx.make_jaxpr(fnp.matmul)(arr(5, 2, 3), arr(3, 4))
    assert [e.prim.name for e in program.eqns] == ["dot_general"]


@pytest.mark.parametrize("fn,message", [
    (lambda: fnp.dot(arr(2, 3), arr(2, 3)), "not aligned"),
    (lambda: fnp.matmul(arr(2, 3), arr(2, 3)), "mismatch in its core dimension"),
    (lambda: fnp.matmul(arr(3), 2.0), "enough dimensions"),
    (lambda: fnp.matmul(arr(2, 2, 3), arr(3, 3, 4)), "broadcast"),
    (lambda: fnp.tensordot(arr(2, 3), arr(3, 2), 3), "out of range"),
    (lambda: fnp.tensordot(arr(2, 3), arr(3, 2), ((0, 1), (0,))), "same length"),
    (lambda: fnp.vdot(arr(2).astype(complex), arr(2)), "complex"),
])
def test_errors(fn, message):
    with pytest.raises(fx.FxgradError, match=message):
        fn()


def test_integer_and_bool_products_match_numpy(matches_numpy):
    a, b = np.arange(6).reshape(2, 3), np.arange(12).reshape(3, 4)
    for name in ("dot", "matmul", "tensordot"):
        matches_numpy(getattr(fnp, name)(a, b, *(() if name != "tensordot" else (1,))),
                      getattr(np, name)(a, b, *(() if name != "tensordot" else (1,))))
    matches_numpy(fnp.matmul(a > 2, b > 2), np.matmul(a > 2, b > 2))


def test_tensordot_with_no_axes_is_an_outer_product(matches_numpy):
    a, b = arr(2, 3), arr(4)
    matches_numpy(fnp.tensordot(a, b, 0), np.tensordot(a, b, 0))
    check_grads(lambda x, y: fnp.tensordot(x, y, 0), (a, b), order=2)


def test_dot_with_python_scalars(matches_numpy):
    matches_numpy(fnp.dot(2.0, 3), np.dot(2.0, 3))
    # Python scalars are weak everywhere in fxgrad.numpy; np.dot alone makes them float64
    x = np.ones(3, np.float32)
    matches_numpy(fnp.dot(x, 2.0), np.dot(x, 2.0).astype(np.float32))
