"""Shape manipulation against numpy, under tracing, with derivatives (all linear maps)."""
from __future__ import annotations

import numpy as np
import pytest

import fxgrad as fx
import fxgrad.numpy as fnp
from fxgrad.test_util import check_grads

X = np.arange(24.0).reshape(2, 3, 4) / 7 - 1
V = np.arange(1.0, 5.0)

# (label, function taking the module (np or fnp) and an array)
CASES = [
    ("reshape", lambda m, x: m.reshape(x, (4, 6))),
    ("reshape-1", lambda m, x: m.reshape(x, (3, -1))),
    ("ravel", lambda m, x: m.ravel(x)),
    ("transpose", lambda m, x: m.transpose(x)),
    ("transpose_axes", lambda m, x: m.transpose(x, (1, 2, 0))),
    ("swapaxes", lambda m, x: m.swapaxes(x, 0, -1)),
    ("moveaxis", lambda m, x: m.moveaxis(x, 0, -1)),
    ("moveaxis_multi", lambda m, x: m.moveaxis(x, (0, 1), (2, 0))),
    ("squeeze", lambda m, x: m.squeeze(m.reshape(x, (2, 1, 3, 4, 1)))),
    ("squeeze_axis", lambda m, x: m.squeeze(m.reshape(x, (2, 1, 3, 4, 1)), axis=1)),
    ("expand_dims", lambda m, x: m.expand_dims(x, 1)),
    ("expand_dims_multi", lambda m, x: m.expand_dims(x, (0, -1))),
    ("broadcast_to", lambda m, x: m.broadcast_to(x[:, :1], (5, 2, 3, 4))),
    ("concatenate", lambda m, x: m.concatenate([x, 2 * x], axis=1)),
    ("concatenate_none", lambda m, x: m.concatenate([x, x[0]], axis=None)),
    ("stack", lambda m, x: m.stack([x, x * 3], axis=-1)),
    ("hstack", lambda m, x: m.hstack([x[0], x[1]])),
    ("hstack_1d", lambda m, x: m.hstack([x[0, 0], x[1, 1]])),
    ("vstack", lambda m, x: m.vstack([x[0, 0], x[1, 1]])),
    ("dstack", lambda m, x: m.dstack([x[0], x[1]])),
    ("column_stack", lambda m, x: m.column_stack([x[0, 0], x[1, 1]])),
    ("append", lambda m, x: m.append(x, x[:1], axis=0)),
    ("atleast_1d", lambda m, x: m.atleast_1d(x[0, 0, 0])),
    ("atleast_2d", lambda m, x: m.atleast_2d(x[0, 0])),
    ("atleast_3d", lambda m, x: m.atleast_3d(x[0])),
    ("atleast_3d_1d", lambda m, x: m.atleast_3d(x[0, 0])),
    ("tile", lambda m, x: m.tile(x, (2, 1, 3))),
    ("tile_short", lambda m, x: m.tile(x[0], 2)),
    ("tile_long", lambda m, x: m.tile(x[0, 0], (2, 1, 2))),
    ("repeat", lambda m, x: m.repeat(x, 2, axis=1)),
    ("repeat_flat", lambda m, x: m.repeat(x[0], 3)),
    ("repeat_counts", lambda m, x: m.repeat(x, [1, 0, 2], axis=1)),
    ("flip", lambda m, x: m.flip(x)),
    ("flip_axis", lambda m, x: m.flip(x, 1)),
    ("fliplr", lambda m, x: m.fliplr(x)),
    ("flipud", lambda m, x: m.flipud(x)),
    ("roll", lambda m, x: m.roll(x, 2, axis=2)),
    ("roll_flat", lambda m, x: m.roll(x, -5)),
    ("roll_multi", lambda m, x: m.roll(x, (1, -1), axis=(0, 2))),
    ("diff", lambda m, x: m.diff(x)),
    ("diff2", lambda m, x: m.diff(x, n=2, axis=1)),
    ("pad", lambda m, x: m.pad(x, 1)),
    ("pad_widths", lambda m, x: m.pad(x, ((0, 1), (2, 0), (1, 1)), constant_values=2.5)),
    ("split", lambda m, x: m.split(x, 2, axis=2)[1]),
    ("split_indices", lambda m, x: m.split(x, [1, 3], axis=2)[2]),
    ("array_split", lambda m, x: m.array_split(x, 3, axis=2)[0]),
    ("array_split_negative", lambda m, x: m.array_split(x, [-1], axis=1)[0]),
    ("hsplit", lambda m, x: m.hsplit(x, 3)[2]),
    ("vsplit", lambda m, x: m.vsplit(x, 2)[0]),
]
LABELS = [c[0] for c in CASES]


@pytest.mark.parametrize("label,fn", CASES, ids=LABELS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64])
def test_matches_numpy(label, fn, dtype, matches_numpy):
    x = (X * 7).astype(dtype)
    matches_numpy(fn(fnp, x), fn(np, x))


@pytest.mark.parametrize("label,fn", CASES, ids=LABELS)
def test_traced_value_and_grads(label, fn, matches_numpy):
    out, _ = fx.jvp(lambda x: fn(fnp, x), (X,), (np.ones_like(X),))
    matches_numpy(out, fn(np, X))
    check_grads(lambda x: fn(fnp, x), (X,), order=2)


def test_split_returns_every_piece(matches_numpy):
    for got, want in zip(fnp.array_split(X, 3, axis=2), np.array_split(X, 3, axis=2)):
        matches_numpy(got, want)
    for got, want in zip(fnp.split(X, [1, 2]), np.split(X, [1, 2])):
        matches_numpy(got, want)


def test_broadcast_arrays_and_shape_queries(matches_numpy):
    for got, want in zip(fnp.broadcast_arrays(X[:, :1], V), np.broadcast_arrays(X[:, :1], V)):
        matches_numpy(got, want)
    assert fnp.shape(X) == (2, 3, 4) and fnp.ndim(X) == 3 and fnp.size(X) == 24
    assert fnp.size(X, 1) == 3 and fnp.shape(2.0) == ()


def test_mixed_dtypes_concatenate_promotes(matches_numpy):
    matches_numpy(fnp.concatenate([np.arange(3), V]), np.concatenate([np.arange(3), V]))


def test_noop_reshapes_bind_nothing():
    program = fx.make_jaxpr(lambda x: fnp.transpose(fnp.reshape(fnp.ravel(x), (4,)),
                                                    (0,)))(V)
    assert program.eqns == []


@pytest.mark.parametrize("fn,message", [
    (lambda: fnp.reshape(X, (5, 5)), "cannot reshape"),
    (lambda: fnp.reshape(X, (5, -1)), "cannot reshape"),
    (lambda: fnp.squeeze(X, 0), "size 1"),
    (lambda: fnp.concatenate([X, V]), "concatenate"),
    (lambda: fnp.concatenate([1.0, 2.0]), "zero-dimensional"),
    (lambda: fnp.stack([X, V]), "same shape"),
    (lambda: fnp.split(X, 3, axis=2), "equal division"),
    (lambda: fnp.broadcast_to(X, (3, 4)), "broadcast"),
    (lambda: fnp.pad(X, 1, mode="edge"), "constant"),
    (lambda: fnp.transpose(X, (0, 1)), "do not match"),
    (lambda: fnp.moveaxis(X, (0, 1), 2), "same number"),
])
def test_errors(fn, message):
    with pytest.raises(fx.FxgradError, match=message):
        fn()


def test_repeat_with_traced_counts_raises():
    with pytest.raises(fx.FxTypeError, match="data-dependent"):
        fx.make_jaxpr(lambda r: fnp.repeat(V, r))(np.array(2))
