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
  log(logistic(x)) -> min(x,0) - log1p(exp(-|x|)), log(sum(exp(x))) -> logsumexp.

x*0 -> 0 and x-x -> 0 are wrong for inf and nan, so they apply only with
`fx.config.simplify_assume_finite = True`.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from fxgrad.config import config
from fxgrad.core.ir import Atom, Literal
from fxgrad.primitives import arith, logic, reduce, shape, unary
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
    for mine, other, first in ((x, y, True), (y, x, False)):
        src = _scalar_source(rw, mine)
        if src is not None and other.aval.shape == mine.aval.shape:
            eqn_prim = prim or rw.current
            return rw.emit(eqn_prim, src, other) if first else rw.emit(eqn_prim, other, src)
    return None


for _prim in _BINARY:
    rules_for(_prim)(lambda rw, x, y, _p=_prim: sink_scalar_broadcast(rw, x, y, _p))


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
        return lit(const, like) if like.aval.shape == () else None  # type: ignore[return-value]
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
        zero = lit(0, x)
        return zero if x.aval.shape == y.aval.shape == () else None
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
    if inner.prim is unary.logistic_p:   # log σ(z) = min(z, 0) - log1p(exp(-|z|))
        z = inner.inputs[0]
        tail = rw.emit(unary.log1p_p, rw.emit(unary.exp_p, rw.emit(arith.neg_p, rw.emit(unary.abs_p, z))))
        return rw.emit(arith.sub_p, rw.emit(arith.min_p, z, lit(0, z)), tail)
    if inner.prim is reduce.reduce_sum_p:
        return _logsumexp(rw, inner)
    return None


def _logsumexp(rw: Any, sum_eqn: Any) -> Atom | None:
    """log(sum(exp(z), axes)) = m + log(sum(exp(z - m), axes)), m = max(z, axes)."""
    exp_eqn = made_by(rw, sum_eqn.inputs[0], unary.exp_p)
    if exp_eqn is None:
        return None
    z, axes = exp_eqn.inputs[0], sum_eqn.params["axes"]
    m = rw.emit(reduce.reduce_max_p, z, axes=axes)
    kept = tuple(d for d in range(z.aval.ndim) if d not in axes)
    m_full = rw.emit(shape.broadcast_in_dim_p, m, shape=z.aval.shape, broadcast_dimensions=kept) \
        if z.aval.shape else m
    shifted = rw.emit(unary.exp_p, rw.emit(arith.sub_p, z, m_full))
    return rw.emit(arith.add_p, m, rw.emit(unary.log_p, rw.emit(reduce.reduce_sum_p, shifted, axes=axes)))


# ---------------------------------------------------------------- structural no-ops

@rules_for(shape.reshape_p)
def reshape_identities(rw: Any, x: Atom, **params: Any) -> Atom | None:
    if tuple(params["new_sizes"]) == x.aval.shape:
        return x
    inner = made_by(rw, x, shape.reshape_p)
    return rw.emit(shape.reshape_p, inner.inputs[0], **params) if inner is not None else None


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
