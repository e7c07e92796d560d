"""Polynomial normal form: re-emit trees of sums and products in Horner form.

Differentiating sin(x)*exp(x), tanh or exp(sin x) k times builds a DAG of add, sub,
mul, neg, integer_pow and div whose size grows exponentially in k, although its value is
a small polynomial in a few *generators*: variables made by any other primitive (tanh x,
exp x) or program inputs. This pass computes that polynomial for every variable made
by such an equation (a dict from monomial, a sorted tuple of (generator, exponent), to
a float coefficient) and re-emits each root (a polynomial variable used by another
primitive or as an output) in Horner form: pull out the common monomial, then split on
the generator of highest degree. A root keeps its original equations when the Horner
form is not smaller; past `CAP` monomials a variable becomes a generator itself.

A few identities keep the forms small and accurate:
* a / b is a * (1/b), with 1/b a generator when b is not a single monomial;
* for t = tanh z, t**2 = 1 - u with the generator u = 1 - t**2 (tanh' = u), so the k-th
  derivative is A(u) + t*B(u), accurate where tanh saturates (u -> 0);
* for c = cos z and s = sin z, c**2 = 1 - s**2;
* for σ = logistic z and v = logistic(-z), and for σ = 1/(1 + c) and v = c*σ, σ + v = 1: every
  monomial is multiplied by a power of (σ + v) to the top degree in σ and v, so the k-th
  derivative of a logistic is a homogeneous polynomial, accurate for σ -> 0 and v -> 0.

Coefficients that cancel to zero are dropped only where their generators still occur in
the polynomial (or with `simplify_assume_finite`), so a non-finite generator still gives
a non-finite result.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from fxgrad.core.ir import Atom, Eqn, Literal, Program, ShapedArray, Var
from fxgrad.core.trace import new_eqn
from fxgrad.primitives import arith, shape, unary

Monomial = tuple[tuple[int, int], ...]
Poly = dict[Monomial, Any]

CAP = 64           # most monomials a polynomial may have before it becomes a generator
_WORK = 4096       # most term products one multiplication may compute
_MAX_POWER = 64    # most repeated products integer_pow may expand
_CUT = 8           # a larger root is a generator, not expanded, where it is used again

_POLY_PRIMS = (arith.add_p, arith.sub_p, arith.mul_p, arith.neg_p, arith.integer_pow_p,
               arith.div_p)


# ---------------------------------------------------------------- polynomial algebra

def _mono_mul(a: Monomial, b: Monomial) -> Monomial:
    if not a or not b:
        return a or b
    powers = dict(a)
    for g, e in b:
        powers[g] = powers.get(g, 0) + e
    return tuple(sorted(powers.items()))


def _exponent(mono: Monomial, g: int) -> int:
    return next((e for h, e in mono if h == g), 0)


def _divide(poly: Poly, divisor: Monomial) -> Poly:
    """poly / divisor for a monomial dividing every monomial of poly."""
    cut = dict(divisor)
    return {tuple((g, e - cut.get(g, 0)) for g, e in m if e != cut.get(g, 0)): c
            for m, c in poly.items()}


def _common_monomial(poly: Poly) -> Monomial:
    monos = iter(poly)
    common = dict(next(monos))
    for m in monos:
        powers = dict(m)
        common = {g: min(e, powers[g]) for g, e in common.items() if g in powers}
    return tuple(sorted(common.items()))


def _pivot(poly: Poly) -> int:
    """The generator of highest degree (then most frequent) to split `poly` on."""
    degree: dict[int, list[int]] = {}
    for m in poly:
        for g, e in m:
            best = degree.setdefault(g, [0, 0, -g])
            best[0], best[1] = max(best[0], e), best[1] + 1
    return max(degree, key=lambda g: degree[g])


def _prune(poly: Poly, assume_finite: bool) -> Poly:
    """Drop zero terms whose generators still occur elsewhere (all, if assume_finite)."""
    if all(c != 0 for c in poly.values()):
        return poly
    present = {g for m, c in poly.items() if c != 0 for g, _ in m}
    return {m: c for m, c in poly.items()
            if c != 0 or (m and not assume_finite and any(g not in present for g, _ in m))}


def _sum(p: Poly, q: Poly, sign: int) -> Poly:
    out = dict(p)
    for m, c in q.items():
        out[m] = out.get(m, 0) + sign * c
    return out


# ---------------------------------------------------------------- the pass

class _NormalForm:
    """One walk over a program: polynomials of variables, then Horner forms of roots."""

    def __init__(self, program: Program, assume_finite: bool):
        self.program = program
        self.assume_finite = assume_finite
        self.producer = {id(v): e for e in program.eqns for v in e.outputs}
        self.position = {id(v): i for i, e in enumerate(program.eqns) for v in e.outputs}
        self.polys: dict[int, Poly] = {}          # id(var) -> its polynomial
        self.used_elsewhere = {id(a) for e in program.eqns if not _is_candidate(e)
                               for a in e.inputs} | {id(v) for v in program.outvars}
        self.eqns: list[Eqn] = []
        self.done: dict[Any, Atom] = {}           # materialised roots and originals
        self.memo: dict[Any, Atom] = {}           # emitted equations, for sharing
        self.journal: list[tuple[dict, Any]] = []
        self.keep: list[Any] = []                 # keeps ids in the memo keys unique
        self.gen_index: dict[Any, int] = {}
        self.gen_makers: list[Callable[[], Atom]] = []
        self.gen_avals: list[ShapedArray] = []
        self.relations: dict[int, Poly] = {}      # g -> R where g**2 = R
        self.products: dict[tuple[int, int], int] = {}   # (a, b) -> w where a*b = w
        self.pairs: dict[int, int] = {}           # p -> q and q -> p where p + q = 1
        self.binomials: dict[tuple[int, int, int], Poly] = {}
        self.reduced: dict[Monomial, Poly | None] = {}
        self.rewritten = 0                        # roots given a Horner form

    def run(self) -> Program:
        for eqn in self.program.eqns:
            poly = self.poly_of_eqn(eqn) if _is_candidate(eqn) else None
            if poly is not None:
                self.polys[id(eqn.outputs[0])] = poly
            else:
                self.eqns.append(Eqn(eqn.prim, [self.atom(a) for a in eqn.inputs],
                                     eqn.params, eqn.outputs))
        outs = [self.atom(v) for v in self.program.outvars]
        return Program(self.program.invars, self.eqns, outs, self.program.num_consts)

    # ---- generators
    def generator(self, key: Any, aval: ShapedArray, make: Callable[[], Atom]) -> int:
        if key not in self.gen_index:
            self.gen_index[key] = len(self.gen_makers)
            self.gen_makers.append(make)
            self.gen_avals.append(aval)
        return self.gen_index[key]

    def gen_atom(self, g: int) -> Atom:
        return self.remember(self.done, ("gen", g), self.gen_makers[g])

    def var_generator(self, var: Var) -> int:
        eqn = self.producer.get(id(var))
        prim = eqn.prim if eqn is not None else None
        if prim in (unary.sin_p, unary.cos_p):
            assert eqn is not None
            g = self.trig_generator(prim, eqn.inputs[0], lambda: var)
        elif prim is unary.logistic_p:
            assert eqn is not None
            return self.logistic_generator(eqn.inputs[0], var)
        else:
            g = self.generator(("var", id(var)), var.aval, lambda: self.atom(var))
        if g not in self.relations and g not in self.pairs:
            self.add_identities(prim, g, eqn)
        return g

    def add_identities(self, prim: Any, g: int, eqn: Eqn | None) -> None:
        """The identities of tanh, cos and logistic generators (see the module doc)."""
        aval = self.gen_avals[g]
        one_minus = lambda x: self.emit(arith.sub_p, _lit(1, aval), x)   # noqa: E731
        if prim is unary.tanh_p:        # t**2 = 1 - u with u = 1 - t**2
            u = self.generator(("sech2", g), aval, lambda: one_minus(
                self.emit(arith.integer_pow_p, self.gen_atom(g), y=2)))
            self.relations[g] = {(): 1.0, ((u, 1),): -1.0}
        elif prim is unary.cos_p:       # cos**2 = 1 - sin**2
            assert eqn is not None
            s = self.trig_generator(unary.sin_p, eqn.inputs[0], None)
            self.relations[g] = {(): 1.0, ((s, 2),): -1.0}

    def logistic_generator(self, z: Atom, var: Var) -> int:
        """σ(w) or σ(-w) for z = w or z = -w; the two are a pair: σ(w) + σ(-w) = 1."""
        inner = self.producer.get(id(z)) if isinstance(z, Var) else None
        negated = inner is not None and inner.prim is arith.neg_p
        w = inner.inputs[0] if negated and inner is not None else z
        emit_pos = lambda: self.emit(unary.logistic_p, self.atom(w))   # noqa: E731
        emit_neg = lambda: self.emit(unary.logistic_p, self.emit(arith.neg_p, self.atom(w)))  # noqa: E731
        pos = self.generator(("logistic", _atom_key(w)), var.aval,
                             emit_pos if negated else (lambda: var))
        neg = self.generator(("logistic-", _atom_key(w)), var.aval,
                             (lambda: var) if negated else emit_neg)
        self.pairs[pos], self.pairs[neg] = neg, pos
        return neg if negated else pos

    def trig_generator(self, prim: Any, z: Atom, make: Callable[[], Atom] | None) -> int:
        """sin z or cos z, shared by the program's equation and one this pass adds."""
        fresh = lambda: self.emit(prim, self.atom(z))   # noqa: E731
        return self.generator((prim.name, _atom_key(z)), z.aval, make or fresh)

    def reciprocal(self, atom: Atom) -> Poly | None:
        if isinstance(atom, Literal):
            value = atom.val.item()
            return {(): 1 / value} if value != 0 and np.isfinite(value) else None
        poly = self.poly_of(atom)
        if len(poly) == 1 and next(iter(poly.values())) != 0:
            (mono, c), = poly.items()
            inverse = tuple(sorted((self.inverse_of_generator(g), e) for g, e in mono))
            return {inverse: 1 / c}
        g = self.generator(("inv", id(atom)), atom.aval, lambda: self.emit(
            arith.div_p, _lit(1, atom.aval), self.atom(atom)))
        c = _one_plus_generator(poly)
        if c is not None and g not in self.pairs:   # g = 1/(1+c): g + w = 1 with w = c*g
            w = self.generator(("times", c, g), atom.aval, lambda: self.emit(
                arith.mul_p, self.gen_atom(c), self.gen_atom(g)))
            self.products[(c, g)] = w
            self.pairs[g], self.pairs[w] = w, g
        return {((g, 1),): 1.0}

    def inverse_of_generator(self, g: int) -> int:
        like = self.gen_avals[g]
        return self.generator(("inv-gen", g), like, lambda: self.emit(
            arith.div_p, _lit(1, like), self.gen_atom(g)))

    # ---- polynomials
    def poly_of(self, atom: Atom) -> Poly:
        if isinstance(atom, Literal):
            return {(): atom.val.item()}
        poly = self.polys.get(id(atom))
        if poly is not None and (len(poly) <= _CUT or id(atom) not in self.used_elsewhere):
            return poly
        return {((self.var_generator(atom), 1),): 1.0}

    def poly_of_eqn(self, eqn: Eqn) -> Poly | None:
        prim, ins = eqn.prim, eqn.inputs
        if prim is arith.integer_pow_p:
            y = eqn.params["y"]
            base = self.poly_of(ins[0]) if y >= 0 else self.reciprocal(ins[0])
            poly = None if base is None else self.power(base, abs(y))
        elif prim is arith.div_p:
            inverse = self.reciprocal(ins[1])
            poly = None if inverse is None else self.product(self.poly_of(ins[0]), inverse)
        elif prim is arith.mul_p:
            poly = self.product(self.poly_of(ins[0]), self.poly_of(ins[1]))
        elif prim is arith.neg_p:
            poly = {m: -c for m, c in self.poly_of(ins[0]).items()}
        else:
            sign = 1 if prim is arith.add_p else -1
            poly = _sum(self.poly_of(ins[0]), self.poly_of(ins[1]), sign)
        return None if poly is None else self.finish(poly)

    def finish(self, poly: Poly | None) -> Poly | None:
        for p, q in self.pairs.items():
            if poly is not None and p < q:
                poly = self.homogenize(poly, p, q)
        poly = None if poly is None else _prune(poly, self.assume_finite)
        return None if poly is None or len(poly) > CAP else poly

    def homogenize(self, poly: Poly, p: int, q: int) -> Poly | None:
        """Every monomial times (p + q)**n (= 1) to the top degree in p and q."""
        degree = {m: _exponent(m, p) + _exponent(m, q) for m in poly}
        top = max(degree.values(), default=0)
        if all(d == top for d in degree.values()):
            return poly
        out: Poly = {}
        for m, c in poly.items():
            term = self.product({m: c}, self.binomial(p, q, top - degree[m]))
            if term is None:
                return None
            out = _sum(out, term, 1)
        return out

    def binomial(self, p: int, q: int, n: int) -> Poly:
        if (p, q, n) not in self.binomials:
            self.binomials[p, q, n] = {
                tuple(sorted((g, e) for g, e in ((p, n - i), (q, i)) if e)): float(math.comb(n, i))
                for i in range(n + 1)}
        return self.binomials[p, q, n]

    def product(self, p: Poly, q: Poly) -> Poly | None:
        if len(p) * len(q) > _WORK:
            return None
        out: Poly = {}
        for m1, c1 in p.items():
            for m2, c2 in q.items():
                m = _mono_mul(m1, m2)
                reduced = self.reduce(m) if self.relations or self.products else None
                if reduced is None:
                    out[m] = out.get(m, 0) + c1 * c2
                    continue
                for m, c in reduced.items():
                    out[m] = out.get(m, 0) + c1 * c2 * c
            if len(out) > 2 * CAP:
                return None
        return out

    def power(self, base: Poly, n: int) -> Poly | None:
        if n > _MAX_POWER and len(base) > 1:
            return None
        out: Poly = {(): 1.0}
        for _ in range(n):
            step = self.product(out, base)
            if step is None or len(step) > CAP:
                return None
            out = step
        return out

    def reduce(self, mono: Monomial) -> Poly | None:
        """mono with every g**2 of a related generator replaced by its relation (None: as is)."""
        if mono in self.reduced:
            return self.reduced[mono]
        out = None
        square = next((g for g, e in mono if e >= 2 and g in self.relations), None)
        if square is not None:
            out = self.product(_divide({mono: 1.0}, ((square, 2),)), self.relations[square])
        powers = dict(mono)
        for (a, b), w in self.products.items() if out is None else ():
            n = min(powers.get(a, 0), powers.get(b, 0))
            if n:
                out = self.product(_divide({mono: 1.0}, ((a, n), (b, n))), {((w, n),): 1.0})
                break
        self.reduced[mono] = out
        return out

    # ---- materialising roots
    def atom(self, atom: Atom) -> Atom:
        if isinstance(atom, Literal) or id(atom) not in self.polys:
            return atom
        return self.remember(self.done, ("root", id(atom)), lambda: self.materialise(atom))

    def materialise(self, var: Var) -> Atom:
        """The Horner form of `var`, or its original equations where those are fewer."""
        poly, cost = self.polys[id(var)], len(self.original_cone(var))
        if len(poly) > cost:     # a Horner form needs an add per further monomial
            return self.original(var)
        mark = (len(self.eqns), len(self.journal))
        horner = self.horner(poly, var.aval)
        if len(self.eqns) - mark[0] < cost:
            self.rewritten += 1
            return horner
        self.rollback(*mark)
        return self.original(var)

    def original_cone(self, var: Var) -> list[Var]:
        """The polynomial variables `var` is computed from whose equations are not copied yet."""
        cone: list[Var] = []
        seen: set[int] = set()
        stack: list[Atom] = [var]
        while stack:
            atom = stack.pop()
            if isinstance(atom, Literal) or id(atom) not in self.polys or id(atom) in seen \
                    or ("orig", id(atom)) in self.done:
                continue
            seen.add(id(atom))
            cone.append(atom)
            stack.extend(self.producer[id(atom)].inputs)
        return sorted(cone, key=lambda v: self.position[id(v)])

    def original(self, var: Var) -> Atom:
        for v in self.original_cone(var):   # the copies define the original variables
            eqn = self.producer[id(v)]
            self.eqns.append(Eqn(eqn.prim, eqn.inputs, eqn.params, eqn.outputs))
            self.remember(self.done, ("orig", id(v)), lambda v=v: v)
        return var

    def remember(self, table: dict, key: Any, make: Callable[..., Atom]) -> Atom:
        if key not in table:
            value = make()
            table[key] = value
            self.journal.append((table, key))
        return table[key]

    def rollback(self, n_eqns: int, n_journal: int) -> None:
        del self.eqns[n_eqns:]
        while len(self.journal) > n_journal:
            table, key = self.journal.pop()
            del table[key]

    # ---- emitting Horner forms
    def emit(self, prim: Any, *inputs: Atom, **params: Any) -> Atom:
        key = (prim, tuple(_atom_key(a) for a in inputs), tuple(sorted(params.items())))

        def make() -> Atom:
            eqn = new_eqn(prim, inputs, params)
            self.eqns.append(eqn)
            self.keep.append(eqn)
            return eqn.outputs[0]
        return self.remember(self.memo, key, make)

    def horner(self, poly: Poly, aval: ShapedArray) -> Atom:
        if not poly or list(poly) == [()]:
            return _constant(self, poly.get((), 0), aval)
        common = _common_monomial(poly)
        if common:
            inner = self.horner(_divide(poly, common), aval)
            return self.times(inner, self.monomial(common))
        g = _pivot(poly)
        rest = {m: c for m, c in poly.items() if not _exponent(m, g)}
        e = min(_exponent(m, g) for m in poly if _exponent(m, g))
        quotient = _divide({m: c for m, c in poly.items() if _exponent(m, g)}, ((g, e),))
        signs = [np.sign(np.real(c)) for c in quotient.values()]
        negate = signs.count(-1) > signs.count(1)
        if negate:
            quotient = {m: -c for m, c in quotient.items()}
        term = self.times(self.horner(quotient, aval), self.monomial(((g, e),)))
        return self.emit(arith.sub_p if negate else arith.add_p, self.horner(rest, aval), term)

    def monomial(self, mono: Monomial) -> Atom:
        out = None
        for g, e in mono:
            factor = self.gen_atom(g)
            factor = self.emit(arith.integer_pow_p, factor, y=e) if e > 1 else factor
            out = factor if out is None else self.emit(arith.mul_p, out, factor)
        assert out is not None, "an empty monomial has no atom"
        return out

    def times(self, x: Atom, y: Atom) -> Atom:
        if isinstance(x, Literal) and x.val.item() == 1:
            return y
        if isinstance(x, Literal) and x.val.item() == -1:
            return self.emit(arith.neg_p, y)
        return self.emit(arith.mul_p, x, y)


def _constant(nf: _NormalForm, value: Any, aval: ShapedArray) -> Atom:
    if aval.shape == ():
        return _lit(value, aval)
    return nf.emit(shape.broadcast_in_dim_p, _lit(value, aval), shape=aval.shape,
                   broadcast_dimensions=())


def _one_plus_generator(poly: Poly) -> int | None:
    """g where poly is 1 + g."""
    if len(poly) != 2 or poly.get(()) != 1:
        return None
    mono, c = next((m, c) for m, c in poly.items() if m)
    return mono[0][0] if c == 1 and len(mono) == 1 and mono[0][1] == 1 else None


def _lit(value: Any, aval: ShapedArray) -> Literal:
    return Literal(np.asarray(value, aval.dtype))


def _atom_key(atom: Atom) -> Any:
    if isinstance(atom, Literal):
        return ("lit", atom.val.dtype.str, atom.val.item())
    return id(atom)


def _is_candidate(eqn: Eqn) -> bool:
    """An equation of `_POLY_PRIMS` over operands of its own aval and scalar literals."""
    if eqn.prim not in _POLY_PRIMS or len(eqn.outputs) != 1:
        return False
    aval = eqn.outputs[0].aval
    if aval.dtype.kind not in "fc":
        return False
    return all(a.aval == aval if isinstance(a, Var) else
               a.aval.dtype == aval.dtype and bool(np.isfinite(a.val)) for a in eqn.inputs)


def polynomial_normal_form(program: Program, assume_finite: bool = False) -> Program | None:
    """`program` with its polynomial roots re-emitted in Horner form; None if it has none."""
    if sum(_is_candidate(e) for e in program.eqns) < 2:
        return None
    normal_form = _NormalForm(program, assume_finite)
    out = normal_form.run()
    return out if normal_form.rewritten else None
