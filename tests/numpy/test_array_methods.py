"""Tracer operators, methods and numpy dispatch (__array_ufunc__, __array_function__)."""
from __future__ import annotations

import operator

import numpy as np
import pytest

import fxgrad as fx
import fxgrad.numpy as fnp
from fxgrad.core.trace import Tracer
from fxgrad.numpy.array_methods import NoNumpyEquivalentError
from fxgrad.test_util import check_grads

X = np.array([[0.7, -1.3, 2.1], [1.6, 0.4, -0.9]])
Y = np.array([1.2, 0.8, -1.7])


def traced(fn, *args):
    """fn applied to traced versions of args, its value returned (checks a Tracer was seen)."""
    def wrapped(*xs):
        assert all(isinstance(x, Tracer) for x in xs)
        return fn(*xs)
    return fx.jvp(wrapped, args, tuple(np.ones_like(a) for a in args))[0]


BINARY_OPS = [operator.add, operator.sub, operator.mul, operator.truediv, operator.floordiv,
              operator.mod, operator.lt, operator.le, operator.gt, operator.ge, operator.eq,
              operator.ne]
OP_IDS = [op.__name__ for op in BINARY_OPS]


@pytest.mark.parametrize("op", BINARY_OPS, ids=OP_IDS)
def test_binary_operators_and_reflections(op, matches_numpy):
    matches_numpy(traced(op, X, Y), op(X, Y))
    matches_numpy(traced(lambda x: op(x, 2.5), X), op(X, 2.5))
    matches_numpy(traced(lambda x: op(2.5, x), X), op(2.5, X))
    matches_numpy(traced(lambda y: op(X, y), Y), op(X, Y))   # ndarray on the left
    matches_numpy(traced(lambda x: op(np.float64(1.5), x), X), op(np.float64(1.5), X))


def test_power_and_matmul_operators(matches_numpy):
    pos = np.abs(X) + 0.5
    matches_numpy(traced(lambda x: x ** 2, X), X ** 2)
    matches_numpy(traced(lambda x: x ** 0.5, pos), pos ** 0.5)
    matches_numpy(traced(lambda x: 2.0 ** x, X), 2.0 ** X)
    matches_numpy(traced(lambda x: x ** Y, pos), pos ** Y)
    matches_numpy(traced(lambda x: x @ Y, X), X @ Y)
    matches_numpy(traced(lambda y: X @ y, Y), X @ Y)
    check_grads(lambda x, y: (x ** 2 @ y) * 3 - (2 / (x ** 2 + 1)).sum() + 1.5 ** x[0, :2], (X, Y),
                order=2)


def test_integer_exponent_traces_integer_pow():
    program = fx.make_jaxpr(lambda x: x ** 3 + 2 ** x)(X)
    names = [e.prim.name for e in program.eqns]
    assert names[0] == "integer_pow" and "pow" in names


def test_unary_operators(matches_numpy):
    matches_numpy(traced(operator.neg, X), -X)
    matches_numpy(traced(operator.pos, X), +X)
    matches_numpy(traced(abs, X), abs(X))
    matches_numpy(traced(round, X), np.round(X))
    matches_numpy(traced(lambda x: round(x, 1), X), np.round(X, 1))
    check_grads(lambda x: -abs(x) + (+x), (X,), order=2)


def test_bool_and_integer_bit_operators(matches_numpy):
    a, b = X > 0, Y > 0
    results = fx.make_jaxpr(lambda x, y: (x & y, x | y, x ^ y, ~x, True & x))(a, b)(a, b)
    for got, want in zip(results, (a & b, a | b, a ^ b, ~a, True & a)):
        matches_numpy(got, want)
    ints = np.array([-2, 0, 5])
    matches_numpy(fx.make_jaxpr(lambda i: ~i)(ints)(ints)[0], ~ints)
    with pytest.raises(fx.FxTypeError, match="bool operands only"):
        fx.make_jaxpr(lambda i: i & 1)(ints)


def test_comparisons_return_traced_bools():
    def f(x):
        c = x > 0
        assert isinstance(c, Tracer) and c.dtype == np.bool_
        assert isinstance(x == 1.0, Tracer)
        return fnp.where(c, x, 0.0)
    np.testing.assert_array_equal(fx.grad(lambda x: fnp.sum(f(x)))(X), (X > 0).astype(float))


METHODS = [
    ("sum", lambda x: x.sum()), ("sum_axis", lambda x: x.sum(axis=1, keepdims=True)),
    ("mean", lambda x: x.mean(0)), ("std", lambda x: x.std()), ("prod", lambda x: x.prod(1)),
    ("max", lambda x: x.max()), ("min", lambda x: x.min(axis=0)),
    ("cumsum", lambda x: x.cumsum(axis=1)), ("reshape", lambda x: x.reshape(3, 2)),
    ("reshape_tuple", lambda x: x.reshape((-1,))), ("transpose", lambda x: x.transpose()),
    ("transpose_axes", lambda x: x.transpose(1, 0)),
    ("transpose_tuple", lambda x: x.transpose((1, 0))),
    ("T", lambda x: x.T), ("ravel", lambda x: x.ravel()), ("flatten", lambda x: x.flatten()),
    ("squeeze", lambda x: x[:1].squeeze()), ("swapaxes", lambda x: x.swapaxes(0, 1)),
    ("repeat", lambda x: x.repeat(2, axis=0)), ("astype", lambda x: x.astype(np.float32)),
    ("clip", lambda x: x.clip(-1.0, 1.0)), ("round", lambda x: x.round(1)),
    ("dot", lambda x: x.dot(Y)), ("take", lambda x: x.take([0, 2], axis=1)),
    ("diagonal", lambda x: x.diagonal()), ("copy", lambda x: x.copy()),
    ("getitem", lambda x: x[1, ::-1]), ("iter", lambda x: [row for row in x][1]),
]
NON_DIFF_METHODS = [
    ("argmax", lambda x: x.argmax()), ("argmin", lambda x: x.argmin(axis=1)),
    ("any", lambda x: (x > 2).any()), ("all", lambda x: (x > -2).all(axis=0)),
]


@pytest.mark.parametrize("name,fn", METHODS + NON_DIFF_METHODS,
                         ids=[m[0] for m in METHODS + NON_DIFF_METHODS])
def test_methods_match_numpy(name, fn, matches_numpy):
    matches_numpy(traced(fn, X), np.asarray(fn(X)))


@pytest.mark.parametrize("name,fn", METHODS, ids=[m[0] for m in METHODS])
def test_method_grads(name, fn):
    if name == "astype":
        check_grads(fn, (X,), order=2, eps=1e-2, tol=1e-3)   # float32 output
    else:
        check_grads(fn, (X,), order=2)


def test_item_and_tolist_concretize():
    def f(x):
        assert x.sum().item() == pytest.approx(X.sum())
        assert x.tolist() == X.tolist()
        return x
    fx.grad(lambda x: f(x).sum())(X)
    with pytest.raises(fx.ConcretizationError):
        fx.make_jaxpr(lambda x: x.sum().item())(X)


def test_var_and_trace_are_slots_not_methods():
    program = fx.make_jaxpr(lambda x: fnp.var(x) + fnp.trace(x))(np.eye(2))
    assert program.out_avals[0].shape == ()


def test_item_assignment_raises():
    def f(x):
        x[0] = 1.0
        return x
    with pytest.raises(fx.FxTypeError, match="immutable"):
        fx.grad(lambda x: f(x).sum())(X)


# ---------------------------------------------------------------- numpy dispatch

UFUNCS = [np.sin, np.exp, np.sqrt, np.add, np.multiply, np.maximum, np.divide, np.power,
          np.less, np.negative, np.absolute, np.logaddexp, np.matmul, np.floor]


@pytest.mark.parametrize("ufunc", UFUNCS, ids=[u.__name__ for u in UFUNCS])
def test_numpy_ufuncs_dispatch(ufunc, matches_numpy):
    pos = np.abs(X) + 0.5
    args = (pos,) if ufunc.nin == 1 else (pos, pos.T if ufunc is np.matmul else pos)
    matches_numpy(traced(lambda x: ufunc(*((x,) + args[1:])), pos), ufunc(*args))


def test_ufunc_methods_dispatch(matches_numpy):
    matches_numpy(traced(lambda x: np.add.reduce(x, axis=1), X), np.add.reduce(X, axis=1))
    matches_numpy(traced(lambda x: np.maximum.reduce(x), X), np.maximum.reduce(X))
    matches_numpy(traced(lambda x: np.multiply.reduce(x, axis=0, keepdims=True), X),
                  np.multiply.reduce(X, axis=0, keepdims=True))
    matches_numpy(traced(lambda x: np.add.accumulate(x, axis=1), X), np.add.accumulate(X, axis=1))
    matches_numpy(traced(lambda y: np.multiply.outer(y, X), Y), np.multiply.outer(Y, X))


FUNCTIONS = [
    (np.sum, {}), (np.mean, {"axis": 0}), (np.max, {}), (np.transpose, {}),
    (np.reshape, {"shape": (3, 2)}), (np.concatenate, None), (np.stack, None),
    (np.where, None), (np.clip, {"a_min": 0.0, "a_max": 1.0}), (np.round, {}),
    (np.cumsum, {"axis": 1}), (np.flip, {}), (np.dot, None), (np.tile, {"reps": 2}),
]


@pytest.mark.parametrize("func,kwargs", FUNCTIONS, ids=[f.__name__ for f, _ in FUNCTIONS])
def test_numpy_functions_dispatch(func, kwargs, matches_numpy):
    if kwargs is None:
        call = {np.concatenate: lambda x: func([x, x]), np.stack: lambda x: func([x, x]),
                np.where: lambda x: func(x > 0, x, 0.0), np.dot: lambda x: func(x, Y)}[func]
    else:
        call = lambda x: func(x, **kwargs)   # noqa: E731
    matches_numpy(traced(call, X), call(X))


def test_unknown_numpy_function_raises_naming_it():
    with pytest.raises(NoNumpyEquivalentError, match=r"numpy\.median .*no fxgrad\.numpy "
                                                     r"equivalent"):
        fx.grad(lambda x: np.median(x))(X)
    with pytest.raises(fx.TracerArrayConversionError, match=r"numpy\.arcsin"):
        fx.grad(lambda x: np.sum(np.arcsin(x)))(X / 3)
    with pytest.raises(fx.FxTypeError, match=r"numpy\.linalg\.norm"):
        fx.grad(lambda x: np.linalg.norm(x))(X)


def test_unsupported_ufunc_call_raises():
    with pytest.raises(fx.FxTypeError, match="out="):
        fx.grad(lambda x: np.sin(x, out=np.empty(3)).sum())(Y)
    with pytest.raises(NoNumpyEquivalentError, match=r"numpy\.add\.at"):
        fx.grad(lambda x: np.add.at(x, [0], 1.0))(Y)
