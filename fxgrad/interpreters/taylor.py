"""The Taylor-mode interpreter: push truncated Taylor series through a program.

Every value `x` is paired with the coefficients of a polynomial path through it,
x(t) = x + x_1 t + x_2 t^2 + ... + x_K t^K (normalised coefficients: x_k is the k-th
derivative divided by k!), and each equation computes the coefficients of its output
along that path. `jet_rules[prim](primals, series, **params) -> (out, out_series)`, where
each `series[i]` is the list [x_1, ..., x_K] of one operand (terms may be the symbolic
`Zero`); with `multiple_results` both outputs are lists. Elementwise functions use the
classical recurrences (exp: k y_k = sum_j j x_j y_{k-j}; products are Cauchy products),
so a K-th order series costs O(K^2) operations instead of the O(2^K) of nested `jvp`.

A primitive with no rule of its own still works, by one identity: y'(t) = J(x(t)) x'(t),
so the series of y' is the order-(K-1) series of the primitive's JVP along the series of
x and of x' (whose coefficients are (m+1) x_{m+1}), and y_k = y'_{k-1} / k. That recursion
(`jvp_jet`) reuses the JVP rules, so every primitive has a Taylor rule; dedicated rules are
there for speed. Locally linear primitives (linear ones, and piecewise linear ones such as
abs, max or select away from their kinks) map each coefficient by their JVP (`linear_jet`).
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

from fxgrad.core.ir import Literal, Program, ShapedArray, aval_of
from fxgrad.interpreters.jvp import (Zero, instantiate, is_zero, jvp_rules, linear_primitives,
                                     tangent_dtype)

Series = list  # [x_1, ..., x_K], each an array, a tracer or a `Zero`

jet_rules: dict[Any, Callable[..., Any]] = {}


def def_jet(prim: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator registering the Taylor (jet) rule of `prim`."""
    def register(rule: Callable[..., Any]) -> Callable[..., Any]:
        jet_rules[prim] = rule
        return rule
    return register


def zero_series(x: Any, order: int) -> Series:
    aval = aval_of(x)
    return [Zero(ShapedArray(aval.shape, tangent_dtype(aval.dtype)))] * order


def is_zero_series(s: Series) -> bool:
    return all(is_zero(t) for t in s)


def moving(values: Sequence[Any], series: Sequence[Series]) -> list[bool]:
    """Which values move along the path: floating point, with a non-zero series."""
    return [aval_of(x).dtype.kind in "fc" and not is_zero_series(s)
            for x, s in zip(values, series)]


def flatten_series(series: Sequence[Series], flags: Sequence[bool]) -> list[Any]:
    """The terms of the flagged series, materialised, one after another (as loop carries,
    branch operands, ...)."""
    return [instantiate(t) for s, flag in zip(series, flags) if flag for t in s]


def unflatten_series(values: Sequence[Any], terms: Sequence[Any], flags: Sequence[bool],
                     order: int) -> list[Series]:
    """The series of `values` from `flatten_series`'s terms; zero where not flagged."""
    it = iter(terms)
    return [[next(it) for _ in range(order)] if flag else zero_series(x, order)
            for x, flag in zip(values, flags)]


# ---------------------------------------------------------------- series arithmetic

def fit(term: Any, aval: ShapedArray) -> Any:
    """`term` with the shape of `aval`: scalars of broadcast operands are broadcast."""
    if is_zero(term):
        return Zero(ShapedArray(aval.shape, tangent_dtype(aval.dtype)))
    if aval_of(term).shape != aval.shape:
        from fxgrad.primitives.shape import broadcast_in_dim
        return broadcast_in_dim(term, aval.shape, ())
    return term


def add_terms(*terms: Any) -> Any:
    """The sum of `terms`, skipping zeros; `Zero` if all are."""
    from fxgrad.primitives.arith import add
    live = [t for t in terms if not is_zero(t)]
    if not live:
        return terms[0]
    out = live[0]
    for t in live[1:]:
        out = add(out, t)
    return out


def mul_terms(a: Any, b: Any, aval: ShapedArray) -> Any:
    from fxgrad.primitives.arith import mul
    if is_zero(a) or is_zero(b):
        return Zero(aval)
    return mul(a, b)


def scale(term: Any, c: float) -> Any:
    """`c * term` (a Python float keeps the term's dtype)."""
    from fxgrad.primitives.arith import mul
    if is_zero(term) or c == 1:
        return term
    return mul(term, float(c))


def full(x0: Any, series: Series) -> list[Any]:
    """[x_0, x_1, ..., x_K]: the primal followed by its series."""
    return [x0, *series]


def cauchy(a: Sequence[Any], b: Sequence[Any], k: int, aval: ShapedArray,
           lo: int = 0) -> Any:
    """sum_{j=lo}^{k-lo} a_j b_{k-j}: the k-th coefficient of a product of series."""
    return add_terms(*(mul_terms(a[j], b[k - j], aval) for j in range(lo, k - lo + 1)),
                     Zero(aval))


def tail_sum(a: Sequence[Any], b: Sequence[Any], k: int, aval: ShapedArray) -> Any:
    """sum_{j=1}^{k} a_j b_{k-j}: the k-th coefficient of a product, less its a_0 b_k term."""
    return add_terms(*(mul_terms(a[j], b[k - j], aval) for j in range(1, k + 1)), Zero(aval))


def next_coefficient(rhs: Any, known: Any, divisor: Any, aval: ShapedArray) -> Any:
    """(rhs - known) / divisor: an identity (z y = x, y^2 = x, ...) solved for its newest
    coefficient, given the terms already known."""
    from fxgrad.primitives.arith import div
    return fit(div(instantiate(fit(add_terms(rhs, scale(known, -1.0)), aval)), divisor), aval)


def integrate(x: Sequence[Any], g: Sequence[Any], k: int, aval: ShapedArray) -> Any:
    """(1/k) sum_{j=1}^{k} j x_j g_{k-j}: the k-th coefficient of y with y' = g x'."""
    terms = [scale(mul_terms(x[j], g[k - j], aval), j / k) for j in range(1, k + 1)]
    return add_terms(*terms, Zero(aval))


def ode_series(y0: Any, x: Sequence[Any], g_of: Callable[[list[Any], int], Any],
               order: int) -> Series:
    """Series of y with y' = g(y) x', where `g_of(y_terms, m)` gives g's m-th coefficient
    from y's first m+1 coefficients (exp: g = y; tanh: g = 1 - y^2)."""
    y, g = [y0], []
    aval = aval_of(y0)
    for k in range(1, order + 1):
        g.append(g_of(y, k - 1))
        y.append(fit(integrate(x, g, k, aval), aval))
    return y[1:]


def series_product(a: Sequence[Any], b: Sequence[Any], order: int,
                   aval: ShapedArray) -> list[Any]:
    """[c_0, ..., c_K] of the product of two full series [a_0, ...], [b_0, ...]."""
    from fxgrad.primitives.arith import mul
    return [mul(a[0], b[0]), *(fit(cauchy(a, b, k, aval), aval) for k in range(1, order + 1))]


def series_reciprocal(a: Sequence[Any], order: int, aval: ShapedArray) -> list[Any]:
    """[r_0, ..., r_K] of 1/a: r_k = -(sum_{j=1}^{k} a_j r_{k-j}) / a_0."""
    from fxgrad.primitives.arith import div
    r = [div(1.0, a[0])]
    for k in range(1, order + 1):
        r.append(fit(scale(mul_terms(tail_sum(a, r, k, aval), r[0], aval), -1.0), aval))
    return r


# ---------------------------------------------------------------- generic rules

def linear_jet(prim: Any) -> None:
    """Jet rule of a locally linear primitive: each coefficient maps through its JVP."""
    def rule(primals: Sequence[Any], series: Sequence[Series], **params: Any) -> Any:
        jvp = jvp_rules[prim]
        linear = prim in linear_primitives
        out = prim.bind(*primals, **params)
        outs = out if prim.multiple_results else [out]
        out_series = []
        for k in range(len(series[0])):
            terms = [s[k] for s in series]
            if all(is_zero(t) for t in terms):
                t_out = [zero_series(o, 1)[0] for o in outs]
            elif linear:   # the JVP would recompute the output; apply the primitive directly
                t_out = prim.bind(*map(instantiate, terms), **params)
                t_out = t_out if prim.multiple_results else [t_out]
            else:
                t_out = jvp(primals, terms, **params)[1]
                t_out = t_out if prim.multiple_results else [t_out]
            out_series.append(t_out)
        columns = [list(col) for col in zip(*out_series)] or [[] for _ in outs]
        return out, columns if prim.multiple_results else columns[0]
    jet_rules[prim] = rule


def zero_jet(prim: Any) -> None:
    """Jet rule of a piecewise-constant primitive (comparisons, sign, ...): zero series."""
    def rule(primals: Sequence[Any], series: Sequence[Series], **params: Any) -> Any:
        out = prim.bind(*primals, **params)
        outs = out if prim.multiple_results else [out]
        columns = [zero_series(o, len(series[0])) for o in outs]
        return out, columns if prim.multiple_results else columns[0]
    jet_rules[prim] = rule


def jvp_jet(prim: Any, primals: Sequence[Any], series: Sequence[Series],
            **params: Any) -> Any:
    """Jet of any primitive from its JVP rule: y' = jvp(x, x'), recursively (see module)."""
    from fxgrad.core.trace import trace_to_program
    order = len(series[0])
    moving = [not is_zero_series(s) for s in series]
    avals = [aval_of(x) for x in primals]
    out = prim.bind(*primals, **params)
    outs = out if prim.multiple_results else [out]
    if order == 0:
        return out, [] if not prim.multiple_results else [[] for _ in outs]

    def tangent_fn(*args: Any) -> list[Any]:
        xs, vs = args[:len(primals)], iter(args[len(primals):])
        ts = [next(vs) if m else Zero(a) for m, a in zip(moving, avals)]
        _, t_out = jvp_rules[prim](xs, ts, **params)
        t_out = t_out if prim.multiple_results else [t_out]
        return [instantiate(t) for t in t_out]

    v_avals = [ShapedArray(a.shape, tangent_dtype(a.dtype)) for a, m in zip(avals, moving) if m]
    program, captured = trace_to_program(tangent_fn, [*avals, *v_avals])
    v_primals = [instantiate(fit(s[0], a)) for s, a, m in zip(series, avals, moving) if m]
    v_series = [[scale(s[m + 1], m + 2) for m in range(order - 1)]
                for s, mv in zip(series, moving) if mv]
    x_series = [s[:order - 1] for s in series]
    d_outs, d_series = jet_program(
        program, [*captured, *primals, *v_primals],
        [*(zero_series(c, order - 1) for c in captured), *x_series, *v_series])
    out_series = [[scale(d, 1.0 / (k + 1)) for k, d in enumerate([d0, *ds])]
                  for d0, ds in zip(d_outs, d_series)]
    return out, out_series if prim.multiple_results else out_series[0]


# ---------------------------------------------------------------- the interpreter

def jet_program(program: Program, primals: Sequence[Any],
                series: Sequence[Series]) -> tuple[list[Any], list[Series]]:
    """Outputs of `program` and their series, given the inputs' series (all of one order)."""
    order = len(series[0]) if series else 0
    env: dict[int, tuple[Any, Series]] = {}
    for v, x, s in zip(program.invars, primals, series):
        env[id(v)] = (x, list(s))

    def read(atom: Any) -> tuple[Any, Series]:
        if isinstance(atom, Literal):
            return atom.val, zero_series(atom.val, order)
        return env[id(atom)]

    for eqn in program.eqns:
        pairs = [read(a) for a in eqn.inputs]
        xs, ss = [p for p, _ in pairs], [s for _, s in pairs]
        outs, out_series = _jet_eqn(eqn, xs, ss, order)
        for v, o, s in zip(eqn.outputs, outs, out_series):
            env[id(v)] = (o, [fit(t, v.aval) for t in s])
    results = [read(v) for v in program.outvars]
    return [p for p, _ in results], [s for _, s in results]


def _jet_eqn(eqn: Any, xs: Sequence[Any], ss: Sequence[Series],
             order: int) -> tuple[list[Any], list[Series]]:
    prim, multi = eqn.prim, eqn.prim.multiple_results
    if order == 0 or all(is_zero_series(s) for s in ss):
        outs = prim.bind(*xs, **eqn.params)
        outs = outs if multi else [outs]
        return outs, [zero_series(o, order) for o in outs]
    rule = jet_rules.get(prim)
    if rule is None:
        out, out_series = jvp_jet(prim, xs, ss, **eqn.params)
    else:
        out, out_series = rule(xs, ss, **eqn.params)
    return (list(out), [list(s) for s in out_series]) if multi else ([out], [list(out_series)])
