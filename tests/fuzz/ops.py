"""The ops of the random programs (tests/fuzz/programs.py): `OPS` maps a name to an `Op`,
a function of drawn parameters and operands that applies where its `params` strategy
says, reaching every differentiable primitive family through fxgrad.numpy, fxgrad.scipy
and the control-flow API. Transcendental functions are kept inside their domains
(log of x*x + 1, sqrt of x*x + 0.5, matrices made positive definite), so values stay
finite and moderate.

Non-smooth ops (abs, max, comparisons, rounding, argmax, a cond predicate, close
eigenvalues, ...) report, inside `margin()` and on arrays, how far their operands are
from a kink, so that derivative checks can skip inputs next to one.
"""
from __future__ import annotations

import contextlib
import itertools
from typing import Any, Callable, NamedTuple

import numpy as np
from hypothesis import strategies as st

import fxgrad as fx
import fxgrad.numpy as fnp
import fxgrad.scipy.linalg as fsl
import fxgrad.scipy.special as fsp
from fxgrad.primitives.indexing import pad as pad_prim
from fxgrad.primitives.unary import logistic


class Op(NamedTuple):
    """`fn(params, *operands)`; `params(*shapes)` is a strategy of parameters for operands
    of these shapes, or None where the op does not apply; `fwd_only`: no reverse mode
    (while loops), `rev_only`: no forward mode over it (custom_vjp, as in JAX)."""
    fn: Callable[..., Any]
    arity: int
    params: Callable[..., Any]
    fwd_only: bool = False
    rev_only: bool = False


# ---------------------------------------------------------------- kinks

_margins: list[float] | None = None


@contextlib.contextmanager
def margin():
    """Collect, while a program runs on arrays, its distances to kinks: `[min distance]`."""
    global _margins
    _margins, out = [], [np.inf]
    try:
        yield out
    finally:
        out[0] = min(_margins, default=np.inf)
        _margins = None


def _kink(distance: Callable[..., Any], *xs: Any) -> None:
    """Record `min |distance(*xs)|` when recording and the operands are arrays."""
    if _margins is not None and all(isinstance(x, (np.ndarray, np.generic, float)) for x in xs):
        _margins.append(float(np.min(np.abs(distance(*map(np.asarray, xs))), initial=np.inf)))


def _to_integer(x: Any) -> Any:
    return x - np.round(x)


def _top_gap(x: np.ndarray, axes: tuple[int, ...] | None) -> np.ndarray:
    """Gap between the two largest entries over `axes` (no kink with fewer than two)."""
    axes = tuple(range(x.ndim)) if axes is None else tuple(a % x.ndim for a in axes)
    rest = [a for a in range(x.ndim) if a not in axes]
    flat = np.transpose(x, rest + list(axes)).reshape([x.shape[a] for a in rest] + [-1])
    if flat.shape[-1] < 2:
        return np.inf
    s = np.sort(flat, axis=-1)
    return s[..., -1] - s[..., -2]


# ---------------------------------------------------------------- parameter strategies

def _always(*shapes):
    return st.just(())


def _arrays(*shapes):
    return st.just(()) if all(len(s) >= 1 for s in shapes) else None


def _broadcastable(a, b):
    try:
        np.broadcast_shapes(a, b)
        return st.just(())
    except ValueError:
        return None


def _numpy_accepts(np_fn):
    """Applicable where numpy accepts operands of these shapes."""
    def params(*shapes):
        try:
            np_fn(*[np.zeros(s) for s in shapes])
            return st.just(())
        except Exception:
            return None
    return params


def _axis(s):
    return st.integers(-len(s), len(s) - 1) if s else None


def _reduction_axes(s):
    if not s:
        return None
    subsets = [None] + [c for k in range(1, len(s) + 1) for c in itertools.combinations(range(len(s)), k)]
    return st.tuples(st.sampled_from(subsets), st.booleans())


def _reshapes(s):
    size = int(np.prod(s))
    dims = [d for d in range(1, size + 1) if size % d == 0]
    targets = [t for k in range(4) for t in itertools.product(dims, repeat=k) if int(np.prod(t)) == size]
    return st.sampled_from(targets)


def _permutation(s):
    return st.permutations(range(len(s))).map(tuple) if len(s) >= 2 else None


def _broadcast_target(s):
    grown = st.tuples(*[st.sampled_from([d, 2, 3]) if d == 1 else st.just(d) for d in s])
    return st.tuples(st.sampled_from([(), (2,)]), grown).map(lambda p: p[0] + p[1])


def _slice(s):
    if not s:
        return None
    def for_axis(axis):
        n = s[axis]
        return st.tuples(st.just(axis), st.integers(-n, n - 1), st.integers(1, n),
                         st.sampled_from([1, 2, -1]))
    return st.integers(0, len(s) - 1).flatmap(for_axis)


def _int_index(s):
    return st.integers(-s[0], s[0] - 1) if s else None


def _take_params(s):
    if not s:
        return None
    def for_axis(axis, shape):
        size = int(np.prod(shape))
        idx = st.lists(st.integers(-s[axis], s[axis] - 1), min_size=size, max_size=size)
        return st.tuples(st.just(axis), idx.map(tuple), st.just(shape))
    return st.tuples(st.integers(0, len(s) - 1), st.sampled_from([(1,), (3,), (2, 2)])).flatmap(
        lambda p: for_axis(*p))


def _two_arrays(s):
    if len(s) < 2:
        return None
    idx = lambda n: st.lists(st.integers(0, n - 1), min_size=2, max_size=2).map(tuple)  # noqa: E731
    return st.tuples(st.integers(0, len(s) - 2), st.just(s)).flatmap(
        lambda p: st.tuples(st.just(p[0]), idx(s[p[0]]), idx(s[p[0] + 1])))


def _mask(s):
    if not s:
        return None
    return st.lists(st.booleans(), min_size=int(np.prod(s)), max_size=int(np.prod(s))).filter(
        any).map(tuple)


def _pad(s):
    if not s:
        return None
    return st.tuples(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 1)),
                              min_size=len(s), max_size=len(s)).map(tuple),
                     st.sampled_from([0.0, 1.5]))


def _interior(s):
    return st.lists(st.tuples(st.integers(0, 1), st.integers(0, 1), st.integers(0, 1)),
                    min_size=len(s), max_size=len(s)).map(tuple)


def _concat(a, b):
    if len(a) != len(b) or not a:
        return None
    axes = [k for k in range(len(a)) if a[:k] + a[k + 1:] == b[:k] + b[k + 1:]]
    return st.sampled_from(axes) if axes else None


def _stack(a, b):
    return st.integers(0, len(a)) if a == b else None


def _einsum(*shapes):
    """Subscripts: each operand's axes get letters, shared with an axis of the same size
    of an earlier operand or new; the output is a random ordered subset of the letters."""
    @st.composite
    def draw_subscripts(draw):
        sizes, terms = {}, []
        for s in shapes:
            term = ""
            for d in s:
                same = [c for c, n in sizes.items() if n == d and c not in term]  # no diagonals
                c = draw(st.sampled_from(same + ["new"]))
                if c == "new":
                    c = "abcdefgh"[len(sizes)]
                    sizes[c] = d
                term += c
            terms.append(term)
        letters = draw(st.permutations(sorted(sizes)))
        out = "".join(letters[:draw(st.integers(0, len(letters)))])
        return ",".join(terms) + "->" + out
    return draw_subscripts() if sum(map(len, shapes)) <= 5 else None


def _variants(name, fn, arity, params, variants, **flags):
    """One op `name[v]` per variant v (so each primitive behind a variant is sure to be
    reached), with params `(v, extra)`, extra drawn from `params(*shapes)`."""
    def with_variant(v):
        def variant_params(*shapes):
            extra = params(*shapes)
            return None if extra is None else st.tuples(st.just(v), extra)
        return Op(fn, arity, variant_params, **flags)
    return {f"{name}[{v}]": with_variant(v) for v in variants}


# ---------------------------------------------------------------- op bodies

def _abs(p, x):
    _kink(lambda v: v, x)
    return fnp.abs(x) * 0.5 + x


def _sign(p, x):
    _kink(lambda v: v, x)
    return fnp.sign(x) * x * x


def _floor(p, x):
    _kink(lambda v: _to_integer(2 * v), x)
    return 0.3 * fnp.floor(2.0 * x) + x


def _round(p, x):
    _kink(lambda v: v - np.floor(v) - 0.5, x)
    return fnp.round(x) * x


def _clip(p, x):
    _kink(lambda v: np.minimum(np.abs(v - 1.0), np.abs(v + 0.5)), x)
    return fnp.clip(x, -0.5, 1.0) + 0.1 * x


def _maximum(p, x, y):
    _kink(np.subtract, x, y)
    return fnp.maximum(x, y) if p[0] == "max" else fnp.minimum(x, y)


_COMPARISONS = {"lt": fnp.less, "le": fnp.less_equal, "gt": fnp.greater, "ge": fnp.greater_equal}


def _where_compare(p, x, y):
    _kink(np.subtract, x, y)
    return fnp.where(_COMPARISONS[p[0]](x, y), x * y, fnp.sin(y) - x)


def _where_equal(p, x, y):
    _kink(lambda a, b: np.minimum(np.abs(a - np.floor(a) - 0.5), np.abs(b - np.floor(b) - 0.5)),
          x, y)
    test = fnp.equal if p[0] == "eq" else fnp.not_equal
    return fnp.where(test(fnp.round(x), fnp.round(y)), x + y, x * y)


def _where_logic(p, x, y):
    _kink(lambda a, b: np.minimum(np.abs(a), np.abs(b - 0.5)), x, y)
    a, b = x > 0.0, y < 0.5
    test = {"and": fnp.logical_and(a, b), "or": fnp.logical_or(a, b),
            "not": fnp.logical_not(a), "xor": fnp.logical_xor(a, b)}[p[0]]
    return fnp.where(test, fnp.cos(x), y * 2.0)


def _bool_to_float(p, x, y):
    _kink(np.subtract, x, y)
    return (x > y).astype(np.float64) * (x + y) + x


def _reduce(p, x):
    (name, (axis, keepdims)) = p
    if name in ("max", "min"):
        _kink(lambda v: _top_gap(v if name == "max" else -v, axis), x)
    fn = {"sum": fnp.sum, "mean": fnp.mean, "max": fnp.max, "min": fnp.min, "var": fnp.var,
          "prod": fnp.prod}[name]
    return fn(x, axis=axis, keepdims=keepdims)


def _arg_pick(p, x):
    name, axis = p
    _kink(lambda v: _top_gap(v if name == "argmax" else -v, (axis,)), x)
    arg = fnp.argmax if name == "argmax" else fnp.argmin
    return fnp.take_along_axis(x, arg(x, axis=axis, keepdims=True), axis) * x


def _take_argmax(p, x, y):
    """x gathered at traced integer indices: the argmax of y along its last axis."""
    _kink(lambda v: _top_gap(v, (-1,)), y)
    return fnp.take(x, fnp.argmax(y, axis=-1), axis=0)


def _take_floor(p, x, y):
    """x gathered at traced indices floor(n * logistic(y)), converted to integers."""
    n = x.shape[0] - 0.5
    _kink(lambda v: _to_integer(n / (1.0 + np.exp(-v))), y)
    return x[fnp.floor(n * logistic(y)).astype(np.int64)] + 0.0


def _take_along(p, x, y):
    """take_along_axis with traced indices: y's argsort-like ranks via argmax one-hot."""
    _kink(lambda v: _top_gap(v, (0,)), y)
    return fnp.take_along_axis(x, fnp.argmax(y, axis=0, keepdims=True), 0)


def _getitem_slice(p, x):
    axis, start, stop, step = p
    return x[(slice(None),) * axis + (slice(start, stop, step),)]


def _take(p, x):
    axis, idx, shape = p
    return fnp.take(x, np.reshape(idx, shape), axis=axis)


def _two_arrays_index(p, x):
    axis, i, j = p
    return x[(slice(None),) * axis + (np.array(i), np.array(j))]


def _masked(p, x):
    return x[np.reshape(np.array(p), np.shape(x))]


def _stop_gradient(p, x):
    """x * sg(e) / sg(e): the value and the derivative of x, through a stopped branch."""
    e = fx.stop_gradient(fnp.exp(x))
    return x * e / e


@fx.custom_jvp
def _softplus(x):
    return fnp.log1p(fnp.exp(x))


@_softplus.defjvp
def _softplus_jvp(primals, tangents):
    (x,), (x_dot,) = primals, tangents
    return _softplus(x), logistic(x) * x_dot


@fx.custom_vjp
def _bump(x, y):
    return x * fnp.exp(-y * y)


def _bump_fwd(x, y):
    e = fnp.exp(-y * y)
    return x * e, (x, y, e)


def _bump_bwd(res, ct):
    x, y, e = res
    return ct * e, ct * x * e * (-2.0 * y)


_bump.defvjp(_bump_fwd, _bump_bwd)


def _scan(p, x, *y):
    reverse, with_const = p
    w = fnp.mean(y[0]) if y and with_const else 0.7

    def body(c, xi):
        return 0.5 * c + fnp.sin(xi) * w, c * xi
    carry, ys = fx.scan(body, x[0] * 0.0 + 0.1, x, reverse=reverse)
    return ys + carry


def _scan_length(p, x):
    carry, ys = fx.scan(lambda c, _: (fnp.sin(c) * 0.9 + 0.1 * c, c * c), x, None, length=p)
    return ys * carry


def _fori_static(p, x):
    """A fori_loop with Python bounds (a scan), indexing x with the traced counter."""
    return fx.fori_loop(0, x.shape[0], lambda i, c: c * 0.8 + fnp.take(x, i, axis=0) * fnp.cos(c), x[0] * 0.5)


def _fori_traced(p, x, y):
    """A fori_loop to a traced bound: a while loop, forward mode only."""
    _kink(lambda v: _top_gap(v, None), y)
    n = fnp.argmax(y) + 1
    return fx.fori_loop(0, n, lambda i, c: fnp.sin(c) * 0.9 + 0.2 * x, x)


def _while_counter(p, x):
    _, out = fx.while_loop(lambda c: c[0] < p, lambda c: (c[0] + 1, fnp.tanh(c[1]) * 1.5 + 0.1),
                           (0, x))
    return out


def _while_value(p, x):
    """A loop whose trip count depends on x: the margin is how far each test is from flipping."""
    def test(c):
        return fnp.logical_and(c[0] < 6, fnp.sum(c[1] * c[1]) < 8.0)

    def body(c):
        return c[0] + 1, c[1] * 1.3 + 0.2
    if _margins is not None and isinstance(x, np.ndarray):
        c = (0, x)
        while c[0] < 6:
            _kink(lambda v: np.sum(v * v) - 8.0, c[1])
            if not np.sum(c[1] * c[1]) < 8.0:
                break
            c = (c[0] + 1, c[1] * 1.3 + 0.2)
    return fx.while_loop(test, body, (0, x))[1]


def _cond(p, x, y):
    _kink(np.sum, y)
    return fx.cond(fnp.sum(y) > 0.0, lambda a, b: fnp.sin(a) * fnp.mean(b),
                   lambda a, b: a * a - 1.0, x, y)


def _switch(p, x, y):
    _kink(lambda v: _to_integer(np.sum(v)), y)
    index = fnp.floor(fnp.sum(y)).astype(np.int32) + 1
    return fx.switch(index, [lambda a, b: fnp.cos(a), lambda a, b: a * fnp.sum(b),
                             lambda a, b: fnp.tanh(a) + 1.0], x, y)


def _spd(x):
    """x xᵀ + 1: symmetric positive definite, eigenvalues at least 1."""
    return fnp.matmul(x, fnp.swapaxes(x, -1, -2)) + np.eye(x.shape[-1])


def _first_row_negated(n):
    return np.where(np.arange(n) == 0, -1.0, 1.0)[:, None]


def _gaps(values):
    """Distances between the entries of `values` along the last axis (and from zero)."""
    v = np.sort(values, axis=-1)
    return np.concatenate([np.diff(v, axis=-1), v[..., :1]], axis=-1)


def _linalg(p, x):
    a, p = _spd(x), p[0]
    if p == "eigh":
        _kink(lambda v: _gaps(np.linalg.eigvalsh(v @ np.swapaxes(v, -1, -2))), x)
        w, v = fnp.linalg.eigh(a)
        return fnp.matmul(v * fnp.sin(w)[..., None, :], fnp.swapaxes(v, -1, -2))
    return {"cholesky": lambda: fnp.linalg.cholesky(a),
            "solve": lambda: fnp.linalg.solve(a, x),
            "inv": lambda: fnp.linalg.inv(a),
            "slogdet": lambda: fnp.linalg.slogdet(a)[1],
            # a general (non-symmetric, negative-determinant) matrix that is never singular:
            # the gradient of det at a singular matrix raises eagerly (see docs/linalg.md)
            "det": lambda: fnp.linalg.det(a * _first_row_negated(x.shape[-1])),
            "solve_triangular": lambda: fsl.solve_triangular(fnp.linalg.cholesky(a), x, lower=True),
            }[p]()


def _svd(p, x):
    _kink(lambda v: _gaps(np.linalg.svd(v, compute_uv=False)), x)
    u, s, vh = fnp.linalg.svd(x, full_matrices=False)
    return fnp.matmul(u * fnp.sin(s)[..., None, :], vh)


def _qr(p, x):
    _kink(lambda v: np.diagonal(np.linalg.qr(v)[1], axis1=-2, axis2=-1), x)
    q, r = fnp.linalg.qr(x)
    return fnp.matmul(q, fnp.tanh(r))


def _checkpoint(p, x):
    return fx.checkpoint(lambda v: fnp.sin(fnp.sin(v)) * v)(x)


_UNARY = {
    "neg": lambda x: -x, "sin": fnp.sin, "cos": fnp.cos, "tanh": fnp.tanh,
    "tan": lambda x: fnp.tan(fnp.tanh(x)), "exp": lambda x: fnp.exp(0.5 * x),
    "expm1": fnp.expm1, "log": lambda x: fnp.log(x * x + 1.0),
    "log1p": lambda x: fnp.log1p(x * x), "sqrt": lambda x: fnp.sqrt(x * x + 0.5),
    "logistic": logistic, "square": lambda x: x * x, "cube": lambda x: x ** 3,
    "inverse_square": lambda x: (1.0 + x * x) ** -2, "power_1_5": lambda x: (x * x + 0.5) ** 1.5,
    "reciprocal": lambda x: 1.0 / (x * x + 1.0), "softplus": _softplus,
    "erf": fsp.erf, "erfc": fsp.erfc, "gammaln": lambda x: fsp.gammaln(x * x + 0.5),
    "digamma": lambda x: fsp.digamma(x * x + 0.5),
    "polygamma": lambda x: fsp.polygamma(1, x * x + 0.5),
}

_BINARY = {
    "add": fnp.add, "sub": fnp.subtract, "mul": fnp.multiply,
    "div": lambda x, y: x / (1.0 + y * y), "pow": lambda x, y: (1.0 + x * x) ** fnp.tanh(y),
    "logaddexp": fnp.logaddexp, "xlogy": lambda x, y: fsp.xlogy(x, y * y + 0.5),
    "xlog1py": lambda x, y: fsp.xlog1py(x, y * y),
}

_REDUCTIONS = ["sum", "mean", "max", "min", "var", "prod"]

OPS: dict[str, Op] = {
    **{name: Op(lambda p, x, f=f: f(x), 1, _always) for name, f in _UNARY.items()},
    **{name: Op(lambda p, x, y, f=f: f(x, y), 2, _broadcastable) for name, f in _BINARY.items()},
    "custom_vjp": Op(lambda p, x, y: _bump(x, y), 2, lambda a, b: st.just(()) if a == b else None,
                     rev_only=True),
    "abs": Op(_abs, 1, _always),
    "sign": Op(_sign, 1, _always),
    "floor": Op(_floor, 1, _always),
    "round": Op(_round, 1, _always),
    "clip": Op(_clip, 1, _always),
    **_variants("maximum", _maximum, 2, _broadcastable, ["max", "min"]),
    **_variants("where_compare", _where_compare, 2, _broadcastable, sorted(_COMPARISONS)),
    **_variants("where_equal", _where_equal, 2, _broadcastable, ["eq", "ne"]),
    **_variants("where_logic", _where_logic, 2, _broadcastable, ["and", "or", "not", "xor"]),
    "bool_to_float": Op(_bool_to_float, 2, _broadcastable),
    "stop_gradient": Op(_stop_gradient, 1, _always),
    **_variants("reduce", _reduce, 1, _reduction_axes, _REDUCTIONS),
    **_variants("arg_pick", _arg_pick, 1, _axis, ["argmax", "argmin"]),
    "cumsum": Op(lambda p, x: fnp.cumsum(x, axis=p), 1,
                 lambda s: st.one_of(st.none(), _axis(s)) if s else None),
    "reshape": Op(lambda p, x: fnp.reshape(x, p), 1, _reshapes),
    "transpose": Op(lambda p, x: fnp.transpose(x, p), 1, _permutation),
    "broadcast_to": Op(lambda p, x: fnp.broadcast_to(x, p), 1, _broadcast_target),
    "expand_dims": Op(lambda p, x: fnp.expand_dims(x, p), 1,
                      lambda s: st.integers(-len(s) - 1, len(s)) if len(s) < 3 else None),
    "squeeze": Op(lambda p, x: fnp.squeeze(x, p), 1,
                  lambda s: st.sampled_from([None] + [k for k, d in enumerate(s) if d == 1])
                  if 1 in s else None),
    "concatenate": Op(lambda p, x, y: fnp.concatenate([x, y], axis=p), 2, _concat),
    "concatenate_self": Op(lambda p, x: fnp.concatenate([x, fnp.sin(x)], axis=p), 1, _axis),
    "stack": Op(lambda p, x, y: fnp.stack([x, y], axis=p), 2, _stack),
    "slice": Op(_getitem_slice, 1, _slice),
    "int_index": Op(lambda p, x: x[p], 1, _int_index),
    "take": Op(_take, 1, _take_params),
    "two_array_index": Op(_two_arrays_index, 1, _two_arrays),
    "mask": Op(_masked, 1, _mask),
    "take_argmax": Op(_take_argmax, 2,
                      lambda a, b: st.just(()) if a and b and b[-1] <= a[0] else None),
    "take_floor": Op(_take_floor, 2, lambda a, b: st.just(()) if a and len(b) <= 2 else None),
    "take_along_traced": Op(_take_along, 2, lambda a, b: st.just(()) if a and len(a) == len(b) and b[0] <= a[0]
                            and _broadcastable(a[1:], b[1:]) is not None else None),
    "pad": Op(lambda p, x: fnp.pad(x, p[0], constant_values=p[1]), 1, _pad),
    "pad_interior": Op(lambda p, x: pad_prim(x, 0.5, p), 1, _interior),
    "flip": Op(lambda p, x: fnp.flip(x, p), 1, lambda s: st.one_of(st.none(), _axis(s)) if s else None),
    "roll": Op(lambda p, x: fnp.roll(x, p[0], axis=p[1]), 1,
               lambda s: st.tuples(st.integers(-3, 3), _axis(s)) if s else None),
    "diag": Op(lambda p, x: fnp.diag(x, p), 1,
               lambda s: st.integers(-1, 1) if len(s) in (1, 2) else None),
    "tril": Op(lambda p, x: fnp.tril(x, p), 1, lambda s: st.integers(-1, 1) if len(s) == 2 else None),
    "matmul": Op(lambda p, x, y: fnp.matmul(x, y), 2, _numpy_accepts(np.matmul)),
    "dot": Op(lambda p, x, y: fnp.dot(x, y), 2, _numpy_accepts(np.dot)),
    "tensordot": Op(lambda p, x, y: fnp.tensordot(x, y, axes=1), 2,
                    _numpy_accepts(lambda a, b: np.tensordot(a, b, axes=1))),
    "einsum": Op(lambda p, x, y: fnp.einsum(p, x, y), 2, _einsum),
    "einsum_unary": Op(lambda p, x: fnp.einsum(p, x), 1, _einsum),
    "scan": Op(_scan, 1, lambda s: st.tuples(st.booleans(), st.just(False)) if s else None),
    "scan_const": Op(_scan, 2, lambda a, b: st.tuples(st.booleans(), st.just(True)) if a else None),
    "scan_length": Op(_scan_length, 1, lambda s: st.integers(1, 3)),
    "fori_static": Op(_fori_static, 1, _arrays),
    "fori_traced": Op(_fori_traced, 2, _always, fwd_only=True),
    "while_counter": Op(_while_counter, 1, lambda s: st.integers(0, 3), fwd_only=True),
    "while_value": Op(_while_value, 1, _always, fwd_only=True),
    "cond": Op(_cond, 2, _always),
    "switch": Op(_switch, 2, _always),
    "checkpoint": Op(_checkpoint, 1, _always),
    **_variants("linalg", _linalg, 1, lambda s: st.just(()) if len(s) >= 2 and s[-1] == s[-2] else None,
                ["cholesky", "solve", "inv", "slogdet", "det", "solve_triangular", "eigh"]),
    "svd": Op(_svd, 1, lambda s: st.just(()) if len(s) >= 2 else None),
    "qr": Op(_qr, 1, lambda s: st.just(()) if len(s) >= 2 and s[-2] >= s[-1] else None),
}


