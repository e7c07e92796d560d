"""Algebraic rewrite rules of the simplifier, one group per primitive family.

A rule is `rule(rw, *operands, **params) -> atom or None` (see `passes.Rewriter`);
the rules of a primitive are tried in order and the first replacement wins. Every
rule is an identity of real arithmetic, so results change at most by rounding:

* identities: x+0, x*1, x/1, --x, x**1, reshape/transpose/broadcast of their own kind,
  no-op reshapes, transposes, broadcasts, conversions and reductions;
* canonical forms: literal factors first, 2*(3*x) -> 6*x, x*x -> x**2,
  x**a * x**b -> x**(a+b), c1*x + c2*x -> (c1+c2)*x, x + -y -> x - y;
* zeros and ones from differentiation: a broadcast scalar operand of an elementwise
  operation is used unbroadcast (binary primitives take scalar operands), and sums of
  broadcasts become products;
* numerically stable forms: log(1+x) -> log1p(x), exp(x)-1 -> expm1(x),
  log(logistic(x)) -> -softplus(-x) (two exact branches), log(sum(exp(x))) -> logsumexp,
  exp(x)/sum(exp(x)) -> softmax shifted by the max (also seen through the reshapes,
  expand_dims and broadcasts of keepdims-style code).

x*0 -> 0 and x-x -> 0 are wrong for inf and nan, so they apply only with
`fx.config.simplify_assume_finite = True`.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from fxgrad.config import config
from fxgrad.core.ir import Atom, Eqn, Literal
from fxgrad.core.trace import abstract_eval
from fxgrad.primitives import arith, dot, logic, reduce, shape, unary
from fxgrad.simplify.passes import commutative, rewrite_rules

Rule = Callable[..., Any]
_chains: dict[Any, list[Rule]] = {}


def rules_for(*prims: Any) -> Callable[[Rule], Rule]:
    """Append a rule to the chains of `prims`."""
    def register(rule: Rule) -> Rule:
        for prim in prims:
            if prim not in _chains:
                _chains[prim] = []
                rewrite_rules[prim] = _chain(prim)
            _chains[prim].append(rule)
        return rule
    return register


def _chain(prim: Any) -> Rule:
    def run(rw: Any, *operands: Atom, **params: Any) -> Atom | None:
        for rule in _chains[prim]:
            out = rule(rw, *operands, **params) if _accepts(rule, params) else \
                rule(rw, *operands)
            if out is not None:
                run.__name__ = rule.__name__
                return out
        return None
    return run


def _accepts(rule: Rule, params: dict) -> bool:
    return bool(params) and rule.__code__.co_flags & 0x08 != 0  # has **params


commutative.update({arith.add_p, arith.mul_p, arith.max_p, arith.min_p, logic.eq_p,
                    logic.ne_p, logic.logical_and_p, logic.logical_or_p})


def lit(value: Any, like: Atom) -> Literal:
    return Literal(np.asarray(value, like.aval.dtype))


def is_value(rw: Any, atom: Atom, value: float) -> bool:
    s = rw.scalar(atom)
    return s is not None and s == value


def made_by(rw: Any, atom: Atom, prim: Any) -> Any:
    eqn = rw.producer(atom)
    return eqn if eqn is not None and eqn.prim is prim else None


def scalar_literal(rw: Any, atom: Atom) -> Literal | None:
    s = rw.scalar(atom)
    return None if s is None else lit(s, atom)


# ---------------------------------------------------------------- all binary elementwise

_BINARY = (arith.add_p, arith.sub_p, arith.mul_p, arith.div_p, arith.max_p, arith.min_p,
           arith.pow_p, logic.eq_p, logic.ne_p, logic.lt_p, logic.le_p, logic.gt_p, logic.ge_p)


def _scalar_source(rw: Any, atom: Atom) -> Atom | None:
    """A rank-0 atom that `atom` is a broadcast of (or a uniform literal/constant)."""
    if atom.aval.shape == ():
        return None
    eqn = made_by(rw, atom, shape.broadcast_in_dim_p)
    if eqn is not None and eqn.inputs[0].aval.shape == ():
        return eqn.inputs[0]
    return scalar_literal(rw, atom) if rw.value(atom) is not None else None


def sink_scalar_broadcast(rw: Any, x: Atom, y: Atom, prim: Any = None) -> Atom | None:
    sx, sy = _scalar_source(rw, x), _scalar_source(rw, y)
    if (sx is not None or x.aval.shape == ()) and (sy is not None or y.aval.shape == ()) and \
            (sx is not None or sy is not None):   # fills on both sides: compute one scalar
        out_shape = x.aval.shape if sx is not None else y.aval.shape
        scalar = rw.emit(prim, x if sx is None else sx, y if sy is None else sy)
        return rw.emit(shape.broadcast_in_dim_p, scalar, shape=out_shape, broadcast_dimensions=())
    for mine, other, first in ((x, y, True), (y, x, False)):
        src = _scalar_source(rw, mine)
        if src is not None and other.aval.shape == mine.aval.shape:
            eqn_prim = prim or rw.current
            return rw.emit(eqn_prim, src, other) if first else rw.emit(eqn_prim, other, src)
    return None


def _sinker(prim: Any) -> Rule:
    def rule(rw: Any, x: Atom, y: Atom) -> Atom | None:
        return sink_scalar_broadcast(rw, x, y, prim)
    rule.__name__ = "sink_scalar_broadcast"
    return rule


for _prim in _BINARY:
    rules_for(_prim)(_sinker(_prim))


def zeros_like(rw: Any, like: Atom, value: Any = 0) -> Atom:
    """A uniform array (or literal) of `value` with the aval of `like`."""
    if like.aval.shape == ():
        return lit(value, like)
    return rw.emit(shape.broadcast_in_dim_p, lit(value, like), shape=like.aval.shape,
                   broadcast_dimensions=())


# ---------------------------------------------------------------- add / sub / neg

def _term(rw: Any, atom: Atom) -> tuple[Any, Atom]:
    """(c, base) with atom = c * base for a literal coefficient c."""
    eqn = made_by(rw, atom, arith.mul_p)
    if eqn is not None and isinstance(eqn.inputs[0], Literal) and \
            eqn.inputs[1].aval == atom.aval:
        return eqn.inputs[0].val.item(), eqn.inputs[1]
    eqn = made_by(rw, atom, arith.neg_p)
    if eqn is not None:
        return -1, eqn.inputs[0]
    return 1, atom


def _flatten_sum(rw: Any, atom: Atom, coef: Any, terms: dict, order: list, depth: int) -> Any:
    """Accumulate atom*coef as {base: coefficient}; return the constant part."""
    eqn = rw.producer(atom)
    value = rw.scalar(atom) if atom.aval.shape == () else None
    if value is not None:
        return coef * value
    if depth < 6 and eqn is not None and eqn.outputs[0].aval == atom.aval:
        if eqn.prim in (arith.add_p, arith.sub_p) and all(a.aval == atom.aval or a.aval.shape == ()
                                                          for a in eqn.inputs):
            if all(a.aval == atom.aval or rw.scalar(a) is not None for a in eqn.inputs):
                sign = 1 if eqn.prim is arith.add_p else -1
                const = _flatten_sum(rw, eqn.inputs[0], coef, terms, order, depth + 1)
                return const + _flatten_sum(rw, eqn.inputs[1], sign * coef, terms, order, depth + 1)
    c, base = _term(rw, atom)
    if id(base) not in terms:
        order.append(base)
        terms[id(base)] = 0
    terms[id(base)] += coef * c
    return 0


def _collect(rw: Any, x: Atom, y: Atom, sign: int) -> Atom | None:
    """Collect like terms of an add/sub tree: x + x + 1 -> 2*x + 1."""
    if x.aval.dtype.kind not in "fc" or x.aval != y.aval:
        return None
    terms: dict[int, Any] = {}
    order: list[Atom] = []
    const = _flatten_sum(rw, x, 1, terms, order, 0) + _flatten_sum(rw, y, sign, terms, order, 0)
    leaves = _count_leaves(rw, x) + _count_leaves(rw, y)
    kept = [(terms[id(b)], b) for b in order if terms[id(b)] != 0 or not config.simplify_assume_finite]
    if len(kept) + (const != 0) >= leaves:
        return None
    return _rebuild(rw, kept, const, x)


def _count_leaves(rw: Any, atom: Atom, depth: int = 0) -> int:
    eqn = rw.producer(atom)
    if depth < 6 and eqn is not None and eqn.prim in (arith.add_p, arith.sub_p) and \
            all(a.aval == atom.aval or rw.scalar(a) is not None for a in eqn.inputs):
        return sum(_count_leaves(rw, a, depth + 1) for a in eqn.inputs)
    return 1


def _rebuild(rw: Any, kept: list, const: Any, like: Atom) -> Atom:
    total = None
    for c, base in kept:
        if total is not None and c < 0:
            term = base if c == -1 else rw.emit(arith.mul_p, lit(-c, base), base)
            total = rw.emit(arith.sub_p, total, term)
            continue
        term = base if c == 1 else rw.emit(arith.mul_p, lit(c, base), base)
        total = term if total is None else rw.emit(arith.add_p, total, term)
    if total is None:
        return zeros_like(rw, like, const)
    return total if const == 0 else rw.emit(arith.add_p, total, lit(const, like))


@rules_for(arith.add_p)
def add_identities(rw: Any, x: Atom, y: Atom) -> Atom | None:
    if is_value(rw, y, 0):
        return x
    if is_value(rw, x, 0):
        return y
    if made_by(rw, y, arith.neg_p):
        return rw.emit(arith.sub_p, x, made_by(rw, y, arith.neg_p).inputs[0])
    if made_by(rw, x, arith.neg_p):
        return rw.emit(arith.sub_p, y, made_by(rw, x, arith.neg_p).inputs[0])
    return _collect(rw, x, y, +1)


@rules_for(arith.sub_p)
def sub_identities(rw: Any, x: Atom, y: Atom) -> Atom | None:
    if is_value(rw, y, 0):
        return x
    if is_value(rw, x, 0):
        return rw.emit(arith.neg_p, y)
    if made_by(rw, y, arith.neg_p):
        return rw.emit(arith.add_p, x, made_by(rw, y, arith.neg_p).inputs[0])
    exp_eqn = made_by(rw, x, unary.exp_p)
    if exp_eqn is not None and is_value(rw, y, 1):
        return rw.emit(unary.expm1_p, exp_eqn.inputs[0])
    return _collect(rw, x, y, -1)


@rules_for(arith.neg_p)
def neg_identities(rw: Any, x: Atom) -> Atom | None:
    inner = rw.producer(x)
    if inner is None:
        return None
    if inner.prim is arith.neg_p:
        return inner.inputs[0]
    if inner.prim is arith.sub_p:
        return rw.emit(arith.sub_p, inner.inputs[1], inner.inputs[0])
    if inner.prim is arith.mul_p and isinstance(inner.inputs[0], Literal):
        return rw.emit(arith.mul_p, lit(-inner.inputs[0].val, x), inner.inputs[1])
    return None


# ---------------------------------------------------------------- mul / div / powers

def _power(rw: Any, atom: Atom) -> tuple[Atom, int]:
    eqn = made_by(rw, atom, arith.integer_pow_p)
    return (eqn.inputs[0], eqn.params["y"]) if eqn is not None else (atom, 1)


@rules_for(arith.mul_p)
def mul_identities(rw: Any, x: Atom, y: Atom) -> Atom | None:
    if is_value(rw, y, 1):
        return x
    if is_value(rw, x, 1):
        return y
    if is_value(rw, x, -1):
        return rw.emit(arith.neg_p, y)
    if is_value(rw, y, -1):
        return rw.emit(arith.neg_p, x)
    if config.simplify_assume_finite and (is_value(rw, x, 0) or is_value(rw, y, 0)):
        return zeros_like(rw, x if x.aval.ndim >= y.aval.ndim else y)
    return None


@rules_for(arith.mul_p)
def mul_canonical(rw: Any, x: Atom, y: Atom) -> Atom | None:
    if isinstance(y, Literal) and not isinstance(x, Literal):
        return rw.emit(arith.mul_p, y, x)
    if isinstance(x, Literal):
        inner = rw.producer(y)
        if inner is not None and inner.prim is arith.mul_p and isinstance(inner.inputs[0], Literal):
            return rw.emit(arith.mul_p, lit(x.val * inner.inputs[0].val, y), inner.inputs[1])
        if inner is not None and inner.prim is arith.neg_p:
            return rw.emit(arith.mul_p, lit(-x.val, y), inner.inputs[0])
        return None
    (bx, px), (by, py) = _power(rw, x), _power(rw, y)
    if bx is by and x.aval == y.aval and px + py != 0:
        return rw.emit(arith.integer_pow_p, bx, y=px + py)
    nx, ny = made_by(rw, x, arith.neg_p), made_by(rw, y, arith.neg_p)
    if nx is not None and ny is not None:
        return rw.emit(arith.mul_p, nx.inputs[0], ny.inputs[0])
    return None


@rules_for(arith.div_p)
def div_identities(rw: Any, x: Atom, y: Atom) -> Atom | None:
    return x if is_value(rw, y, 1) else None


@rules_for(arith.div_p)
def softmax_stable(rw: Any, num: Atom, den: Atom) -> Atom | None:
    """exp(z) / bcast(sum(exp(z))) -> e / bcast(sum(e)) with e = exp(z - max(z))."""
    exp_eqn = made_by(rw, num, unary.exp_p)
    src, chain = through_shape_ops(rw, den)
    sum_eqn = made_by(rw, src, reduce.reduce_sum_p)
    if exp_eqn is None or sum_eqn is None or not _sums_exp_of(rw, sum_eqn, exp_eqn.inputs[0]):
        return None
    axes = sum_eqn.params["axes"]
    shifted = _shifted_exp(rw, exp_eqn.inputs[0], axes)[1]
    return rw.emit(arith.div_p, shifted,
                   replay(rw, rw.emit(reduce.reduce_sum_p, shifted, axes=axes), chain))


@rules_for(arith.integer_pow_p)
def integer_pow_identities(rw: Any, x: Atom, **params: Any) -> Atom | None:
    y = params["y"]
    if y == 1:
        return x
    inner = made_by(rw, x, arith.integer_pow_p)
    if inner is not None:
        return rw.emit(arith.integer_pow_p, inner.inputs[0], y=inner.params["y"] * y)
    negated = made_by(rw, x, arith.neg_p)
    if negated is not None and y % 2 == 0:
        return rw.emit(arith.integer_pow_p, negated.inputs[0], y=y)
    return None


# ---------------------------------------------------------------- stable forms

@rules_for(unary.log_p)
def log_stable(rw: Any, x: Atom) -> Atom | None:
    inner = rw.producer(x)
    if inner is None:
        return None
    if inner.prim is arith.add_p:
        a, b = inner.inputs
        if is_value(rw, a, 1) and b.aval == x.aval:
            return rw.emit(unary.log1p_p, b)
        if is_value(rw, b, 1) and a.aval == x.aval:
            return rw.emit(unary.log1p_p, a)
    if inner.prim is unary.exp_p:
        return inner.inputs[0]
    if inner.prim is unary.logistic_p:
        return _log_sigmoid(rw, inner.inputs[0])
    src, chain = through_shape_ops(rw, x)   # log(bcast(s)) = bcast(log(s))
    sum_eqn = made_by(rw, src, reduce.reduce_sum_p)
    exp_eqn = None if sum_eqn is None else made_by(rw, sum_eqn.inputs[0], unary.exp_p)
    if exp_eqn is None or not _sums_exp_of(rw, sum_eqn, exp_eqn.inputs[0]):
        return None
    return replay(rw, _logsumexp(rw, exp_eqn.inputs[0], sum_eqn.params["axes"]), chain)


_SHAPE_OPS = (shape.reshape_p, shape.expand_dims_p, shape.squeeze_p, shape.broadcast_in_dim_p)


def through_shape_ops(rw: Any, atom: Atom) -> tuple[Atom, list]:
    """(source, eqns): `atom` is `source` put through the shape-only equations `eqns`."""
    chain: list[Eqn] = []
    eqn = rw.producer(atom)
    while eqn is not None and eqn.prim in _SHAPE_OPS and len(chain) < 4:
        chain.append(eqn)
        atom = eqn.inputs[0]
        eqn = rw.producer(atom)
    return atom, chain[::-1]


def replay(rw: Any, atom: Atom, chain: list) -> Atom:
    for eqn in chain:
        atom = rw.emit(eqn.prim, atom, **eqn.params)
    return atom


def _log_sigmoid(rw: Any, z: Any) -> Any:
    """log σ(z) = -log1p(exp(-z)) for z >= 0, z - log1p(exp(z)) below: exact branches
    (so every derivative is right at 0 too), with exp of a value <= 0 in both."""
    positive, zero = rw.emit(logic.ge_p, z, lit(0, z)), zeros_like(rw, z)
    head = rw.emit(logic.select_p, positive, zero, z)
    exponent = rw.emit(logic.select_p, positive, rw.emit(arith.neg_p, z), z)
    return rw.emit(arith.sub_p, head, rw.emit(unary.log1p_p, rw.emit(unary.exp_p, exponent)))


def _sums_exp_of(rw: Any, sum_eqn: Any, z: Atom) -> bool:
    """sum_eqn is sum(exp(z)) over non-empty axes and z is not already shifted by its max."""
    exp_eqn = made_by(rw, sum_eqn.inputs[0], unary.exp_p)
    axes = sum_eqn.params["axes"]
    if exp_eqn is None or exp_eqn.inputs[0] is not z or not axes or \
            any(z.aval.shape[a] == 0 for a in axes):
        return False
    shift = made_by(rw, z, arith.sub_p)
    if shift is None:
        return True
    m = through_shape_ops(rw, shift.inputs[1])[0]
    for _ in range(2):   # under the clipping of _shifted_exp
        clip = rw.producer(m)
        if clip is not None and clip.prim in (arith.max_p, arith.min_p) and \
                isinstance(clip.inputs[1], Literal):
            m = clip.inputs[0]
    m_eqn = made_by(rw, m, reduce.reduce_max_p)
    return m_eqn is None or m_eqn.inputs[0] is not shift.inputs[0]


def _shifted_exp(rw: Any, z: Atom, axes: tuple) -> tuple[Atom, Atom]:
    """(m, exp(z - m)) with m = max(z, axes), clipped to finite values."""
    m = rw.emit(reduce.reduce_max_p, z, axes=axes)
    big = np.finfo(z.aval.dtype).max   # an infinite max would give inf - inf = nan
    m = rw.emit(arith.max_p, rw.emit(arith.min_p, m, lit(big, m)), lit(-big, m))
    kept = tuple(d for d in range(z.aval.ndim) if d not in axes)
    m_full = rw.emit(shape.broadcast_in_dim_p, m, shape=z.aval.shape, broadcast_dimensions=kept)
    return m, rw.emit(unary.exp_p, rw.emit(arith.sub_p, z, m_full))


def _logsumexp(rw: Any, z: Atom, axes: tuple) -> Atom:
    """log(sum(exp(z), axes)) = m + log(sum(exp(z - m), axes)), m = max(z, axes)."""
    m, shifted = _shifted_exp(rw, z, axes)
    return rw.emit(arith.add_p, m, rw.emit(unary.log_p, rw.emit(reduce.reduce_sum_p, shifted,
                                                                 axes=axes)))


# ---------------------------------------------------------------- structural no-ops

_RESHAPES = (shape.reshape_p, shape.expand_dims_p, shape.squeeze_p)


def _reshape_rule(prim: Any) -> Rule:
    """reshape, expand_dims and squeeze keep the element order: merge runs of them."""
    def reshape_identities(rw: Any, x: Atom, **params: Any) -> Atom | None:
        out_shape = abstract_eval(prim, [x.aval], params)[0].shape
        if out_shape == x.aval.shape:
            return x
        inner = rw.producer(x)
        if inner is None or inner.prim not in _RESHAPES:
            return None
        src = inner.inputs[0]
        return src if src.aval.shape == out_shape else \
            rw.emit(shape.reshape_p, src, new_sizes=out_shape)
    return reshape_identities


for _prim in _RESHAPES:
    rules_for(_prim)(_reshape_rule(_prim))


@rules_for(shape.transpose_p)
def transpose_identities(rw: Any, x: Atom, **params: Any) -> Atom | None:
    perm = tuple(params["permutation"])
    if perm == tuple(range(len(perm))):
        return x
    inner = made_by(rw, x, shape.transpose_p)
    if inner is None:
        return None
    first = inner.params["permutation"]
    return rw.emit(shape.transpose_p, inner.inputs[0],
                   permutation=tuple(first[i] for i in perm))


@rules_for(shape.broadcast_in_dim_p)
def broadcast_identities(rw: Any, x: Atom, **params: Any) -> Atom | None:
    dims = tuple(params["broadcast_dimensions"])
    if tuple(params["shape"]) == x.aval.shape and dims == tuple(range(x.aval.ndim)):
        return x
    if x.aval.ndim and x.aval.size == 1 and params["shape"]:   # one element: a fill
        element = rw.emit(shape.reshape_p, x, new_sizes=())
        return rw.emit(shape.broadcast_in_dim_p, element, shape=params["shape"],
                       broadcast_dimensions=())
    inner = made_by(rw, x, shape.broadcast_in_dim_p)
    if inner is None:
        return None
    composed = tuple(dims[d] for d in inner.params["broadcast_dimensions"])
    return rw.emit(shape.broadcast_in_dim_p, inner.inputs[0], shape=params["shape"],
                   broadcast_dimensions=composed)


@rules_for(shape.convert_element_type_p)
def convert_identity(rw: Any, x: Atom, **params: Any) -> Atom | None:
    return x if np.dtype(params["new_dtype"]) == x.aval.dtype else None


@rules_for(reduce.reduce_sum_p)
def reduce_sum_identities(rw: Any, x: Atom, **params: Any) -> Atom | None:
    axes = tuple(params["axes"])
    if not axes:
        return x
    src = _scalar_source(rw, x)
    if src is not None and len(axes) == x.aval.ndim:   # sum of a broadcast scalar
        return rw.emit(arith.mul_p, lit(x.aval.size, src), src)
    return None


@rules_for(logic.select_p)
def select_identities(rw: Any, pred: Atom, on_true: Atom, on_false: Atom) -> Atom | None:
    if on_true is on_false:
        return on_true
    p = rw.scalar(pred)
    if p is not None and on_true.aval == on_false.aval:
        return on_true if bool(p) else on_false
    return None


# ---------------------------------------------------------------- sinking broadcasts

_UNARY = (unary.exp_p, unary.log_p, unary.log1p_p, unary.expm1_p, unary.sin_p, unary.cos_p,
          unary.tan_p, unary.tanh_p, unary.logistic_p, unary.sqrt_p, unary.abs_p, unary.sign_p,
          unary.floor_p, unary.round_p, arith.neg_p, arith.integer_pow_p,
          shape.convert_element_type_p)


def _broadcast_source(rw: Any, atom: Atom) -> Any:
    eqn = made_by(rw, atom, shape.broadcast_in_dim_p)
    return eqn if eqn is not None and eqn.inputs[0].aval.size < atom.aval.size else None


def _unary_sinker(prim: Any) -> Rule:
    def sink_broadcast(rw: Any, x: Atom, **params: Any) -> Atom | None:
        """f(broadcast(a)) -> broadcast(f(a)): f runs on the smaller array."""
        eqn = _broadcast_source(rw, x)
        if eqn is None:
            return None
        return rw.emit(shape.broadcast_in_dim_p, rw.emit(prim, eqn.inputs[0], **params),
                       **eqn.params)
    return sink_broadcast


def _binary_sinker(prim: Any) -> Rule:
    def sink_broadcast(rw: Any, x: Atom, y: Atom) -> Atom | None:
        """broadcast(a) op broadcast(b) -> broadcast(a op b), likewise with a rank-0 operand."""
        bx, by = _broadcast_source(rw, x), _broadcast_source(rw, y)
        if bx is not None and by is not None and bx.params == by.params and \
                bx.inputs[0].aval.shape == by.inputs[0].aval.shape:
            small = rw.emit(prim, bx.inputs[0], by.inputs[0])
        elif bx is not None and y.aval.shape == () and bx.inputs[0].aval.shape != ():
            small = rw.emit(prim, bx.inputs[0], y)
        elif by is not None and x.aval.shape == () and by.inputs[0].aval.shape != ():
            small = rw.emit(prim, x, by.inputs[0])
        else:
            return None
        return rw.emit(shape.broadcast_in_dim_p, small, **(bx or by).params)
    return sink_broadcast


for _prim in _UNARY:
    rules_for(_prim)(_unary_sinker(_prim))
for _prim in _BINARY:
    rules_for(_prim)(_binary_sinker(_prim))


# ---------------------------------------------------------------- products with the identity

def _is_identity(rw: Any, atom: Atom) -> bool:
    value = rw.value(atom)
    return (value is not None and np.ndim(value) == 2 and value.shape[0] == value.shape[1]
            and np.array_equal(value, np.eye(value.shape[0], dtype=value.dtype)))


@rules_for(dot.dot_general_p)
def dot_with_identity(rw: Any, x: Atom, y: Atom, **params: Any) -> Atom | None:
    """I·y and x·I (from Jacobians' basis vectors) are transposes of the other operand."""
    (lc, rc), (lb, rb) = params["dimension_numbers"]
    if lb or rb or len(lc) != 1:
        return None
    if _is_identity(rw, x):   # out[i, rest] = y[..., i at rc, ...]
        axis, ndim, other = rc[0], y.aval.ndim, y
        perm = (axis,) + tuple(d for d in range(ndim) if d != axis)
    elif _is_identity(rw, y):   # out[rest, j] = x[..., j at lc, ...]
        axis, ndim, other = lc[0], x.aval.ndim, x
        perm = tuple(d for d in range(ndim) if d != axis) + (axis,)
    else:
        return None
    return rw.emit(shape.transpose_p, other, permutation=perm)
