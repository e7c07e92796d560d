"""Taylor rules of every primitive family, table-driven: `fx.jet` along a random
polynomial path (all terms non-zero) against nested `jvp` of f(path(t)) in t, to
order 5; plus coverage (every differentiable primitive is exercised here) and the
jet of a jit-compiled program against the eager one."""
import math

import numpy as np
import pytest

import fxgrad as fx
import fxgrad.numpy as fnp
from fxgrad.interpreters.jvp import jvp_rules
from fxgrad.interpreters.taylor import jet_rules
from fxgrad.primitives.indexing import scatter_add

ORDER = 5


def reference_jet(f, primals, series):
    """Derivatives of t -> f(x + v_1 t + v_2 t^2/2! + ...) at 0, by nesting jvp in t."""
    def path_f(t):
        args = [x + sum(v * t ** k / math.factorial(k) for k, v in enumerate(vs, 1))
                for x, vs in zip(primals, series)]
        return f(*args)
    derivs, g = [], path_f
    for _ in range(len(series[0])):
        g = (lambda h: lambda t: fx.jvp(h, (t,), (1.0,))[1])(g)
        derivs.append(np.asarray(g(0.0)))
    return np.asarray(path_f(0.0)), derivs


def _scan_fn(x):
    carry, ys = fx.scan(lambda c, xi: (fnp.sin(c) * xi + c, c * xi), x[0], x)
    return carry + fnp.sum(ys)


def _while_fn(x):
    return fx.while_loop(lambda c: c[0] < 2, lambda c: (c[0] + 1, fnp.sin(c[1]) * x),
                         (0, x))[1]


@fx.custom_jvp
def _softplus(x):
    return fnp.log1p(fnp.exp(x))


@_softplus.defjvp
def _softplus_jvp(primals, tangents):
    (x,), (x_dot,) = primals, tangents
    return _softplus(x), x_dot * fx.primitives.unary.logistic(x)


@fx.custom_vjp
def _cube(x):
    return x * x * x


_cube.defvjp(lambda x: (_cube(x), x), lambda x, ct: (3.0 * x * x * ct,))

POS = "pos"   # inputs drawn from (0.5, 1.5)
# name, function, input shapes (POS marks inputs that must be positive)
CASES = [
    ("exp", fnp.exp, [(3,)]), ("log", fnp.log, [(POS, 3)]), ("log1p", fnp.log1p, [(POS, 3)]),
    ("expm1", fnp.expm1, [(3,)]), ("sin", fnp.sin, [(3,)]), ("cos", fnp.cos, [(3,)]),
    ("tan", fnp.tan, [(3,)]), ("tanh", fnp.tanh, [(3,)]),
    ("logistic", fx.primitives.unary.logistic, [(3,)]), ("sqrt", fnp.sqrt, [(POS, 3)]),
    ("abs", fnp.abs, [(POS, 3)]), ("sign", lambda x: fnp.sign(x) * x, [(3,)]),
    ("floor", lambda x: fnp.floor(x) + x, [(3,)]), ("round", lambda x: fnp.round(x) * x, [(3,)]),
    ("stop_gradient", lambda x: fx.stop_gradient(x) * x, [(3,)]),
    ("add", fnp.add, [(3,), (3,)]), ("add_scalar", fnp.add, [(3,), ()]),
    ("sub", fnp.subtract, [(), (3,)]), ("mul", fnp.multiply, [(3,), (3,)]),
    ("mul_scalar", fnp.multiply, [(), (2, 3)]), ("div", fnp.divide, [(3,), (POS, 3)]),
    ("div_scalar", fnp.divide, [(), (POS, 3)]), ("neg", fnp.negative, [(3,)]),
    ("max", fnp.maximum, [(3,), (3,)]), ("min", fnp.minimum, [(3,), (3,)]),
    ("pow_const", lambda x: fnp.power(x, 2.5), [(POS, 3)]), ("pow", fnp.power, [(POS, 3), (3,)]),
    ("integer_pow_3", lambda x: x ** 3, [(3,)]), ("integer_pow_-2", lambda x: x ** -2, [(POS, 3)]),
    ("integer_pow_0", lambda x: fnp.sum(x ** 0) * x, [(3,)]),
    ("broadcast_in_dim", lambda x: fnp.broadcast_to(x, (2, 3)) * x, [(3,)]),
    ("reshape", lambda x: fnp.reshape(x, (3, 2)) ** 2, [(2, 3)]),
    ("transpose", lambda x: fnp.sin(x.T), [(2, 3)]),
    ("squeeze_expand", lambda x: fnp.squeeze(fnp.expand_dims(x, 0), 0) * x, [(3,)]),
    ("concatenate", lambda x, y: fnp.concatenate([x * y, y]), [(3,), (3,)]),
    ("convert_element_type", lambda x: x.astype(np.float32).astype(np.float64) ** 2, [(3,)]),
    ("slice", lambda x: x[1:] * x[:-1], [(4,)]),
    ("pad", lambda x: fnp.pad(x * x, (1, 2)), [(3,)]),
    ("gather", lambda x: x[np.array([2, 0, 2])] * x, [(3,)]),
    ("scatter_add", lambda x: scatter_add(fnp.zeros(4), np.array([1, 1, 3]), x * x, 0), [(3,)]),
    ("reduce_sum", lambda x: fnp.sum(x * x, axis=0), [(2, 3)]),
    ("reduce_max", lambda x: fnp.max(fnp.sin(x), axis=1), [(2, 3)]),
    ("reduce_min", lambda x: fnp.min(x * x, axis=0), [(2, 3)]),
    ("cumsum", lambda x: fnp.cumsum(x * x), [(4,)]),
    ("argmax", lambda x: x[fnp.argmax(x)] * x, [(3,)]),
    ("select", lambda x, y: fnp.where(x > y, x * y, fnp.exp(y)), [(3,), (3,)]),
    ("comparison", lambda x, y: (x < y) * x, [(3,), (3,)]),
    ("dot_general", lambda a, b: fnp.sin(a @ b), [(2, 3), (3, 2)]),
    ("dot_batched", lambda a, b: fnp.einsum("bij,bjk->bik", a, b), [(2, 2, 3), (2, 3, 2)]),
    ("scan", _scan_fn, [(4,)]),
    ("cond", lambda x: fx.cond(fnp.sum(x) > 0, lambda y: fnp.sin(y) * y,
                               lambda y: fnp.exp(y), x), [(3,)]),
    ("cond_negative", lambda x: fx.cond(fnp.sum(x) > 100.0, lambda y: fnp.sin(y) * y,
                                        lambda y: fnp.exp(y) / y, x), [(POS, 3)]),
    ("while", _while_fn, [(3,)]),
    ("custom_jvp", _softplus, [(3,)]),
    ("custom_vjp", _cube, [(3,)]),
    ("checkpoint", fx.checkpoint(lambda x: fnp.sin(x) * fnp.exp(x)), [(3,)]),
]


# forward mode cannot go through a custom_vjp; its plain function is the reference
REFERENCE = {"custom_vjp": lambda x: x * x * x}


def _draw(spec, rng):
    if spec and spec[0] == POS:
        return rng.uniform(0.5, 1.5, spec[1:])
    return rng.uniform(-1.5, 1.5, spec)


def _case_args(shapes, seed=0):
    rng = np.random.default_rng(seed)
    primals = tuple(_draw(s, rng) for s in shapes)
    series = tuple([rng.standard_normal(np.shape(x)) * 0.5 for _ in range(ORDER)]
                   for x in primals)
    return primals, series


@pytest.mark.parametrize("name,fn,shapes", CASES, ids=[c[0] for c in CASES])
def test_jet_matches_nested_jvp(name, fn, shapes):
    primals, series = _case_args(shapes)
    y, terms = fx.jet(fn, primals, series)
    y_ref, terms_ref = reference_jet(REFERENCE.get(name, fn), primals, series)
    np.testing.assert_allclose(y, y_ref, rtol=1e-12, atol=1e-12)
    tol = 1e-6 if name == "convert_element_type" else 1e-9   # a float32 round trip
    for k, (t, t_ref) in enumerate(zip(terms, terms_ref), 1):
        np.testing.assert_allclose(t, t_ref, rtol=tol, atol=tol, err_msg=f"order {k}")


# Primitives whose Taylor rule is the JVP recursion (`jvp_jet`) on purpose.
BY_JVP_RECURSION = {"custom_jvp_call", "custom_vjp_lin", "remat_lin"}
CORE_FAMILIES = {"arith", "unary", "logic", "shape", "indexing", "reduce", "dot", "control",
                 "branch", "loops", "custom"}


def _family(prim):
    module = next((m for m in CORE_FAMILIES
                   if prim in vars(getattr(fx.primitives, m)).values()), None)
    return module


def test_core_primitives_have_dedicated_rules():
    missing = {p.name for p in jvp_rules if p not in jet_rules and _family(p)}
    assert missing == BY_JVP_RECURSION, sorted(missing ^ BY_JVP_RECURSION)


def test_the_cases_exercise_every_primitive():
    seen = set()
    for _, fn, shapes in CASES:
        primals, _ = _case_args(shapes)
        program = fx.make_jaxpr(fn)(*primals)
        seen |= _prim_names(program.program if hasattr(program, "program") else program)
    piecewise_constant = {p.name for p, rule in jet_rules.items() if "zero_jet" in rule.__qualname__}
    core = {p.name for p in jvp_rules if _family(p)}
    untested = core - seen - piecewise_constant - {"custom_vjp_lin", "remat_lin"}
    assert not untested, sorted(untested)


def _prim_names(program):
    names = set()
    for eqn in program.eqns:
        names.add(eqn.prim.name)
        for value in eqn.params.values():
            inner = value if isinstance(value, tuple) else (value,)
            for p in inner:
                if hasattr(p, "eqns"):
                    names |= _prim_names(p)
    return names


JIT_CASES = ["tanh", "div", "pow_const", "integer_pow_3", "dot_general", "scan", "cond",
             "while", "reduce_max", "gather"]


@pytest.mark.parametrize("name", JIT_CASES)
def test_jet_under_jit_matches_eager(name):
    fn, shapes = next((f, s) for n, f, s in CASES if n == name)
    primals, series = _case_args(shapes, seed=1)
    jetted = fx.jit(lambda p, s: fx.jet(fn, p, s))
    (y, terms), (y_ref, terms_ref) = jetted(primals, series), fx.jet(fn, primals, series)
    np.testing.assert_allclose(y, y_ref, rtol=1e-12, atol=1e-14)
    for t, t_ref in zip(terms, terms_ref):
        np.testing.assert_allclose(t, t_ref, rtol=1e-11, atol=1e-12)


@pytest.mark.parametrize("name", ["sin", "mul", "dot_general", "scan", "cond", "while"])
def test_vmap_of_jet_matches_a_loop(name):
    fn, shapes = next((f, s) for n, f, s in CASES if n == name)
    cases = [_case_args(shapes, seed=s) for s in range(3)]
    stacked = [np.stack(parts) for parts in zip(*[p for p, _ in cases])]
    stacked_series = [[np.stack([c[1][i][k] for c in cases]) for k in range(ORDER)]
                      for i in range(len(shapes))]
    y, terms = fx.vmap(lambda *a: fx.jet(fn, a[:len(shapes)], tuple(
        list(a[len(shapes) + i * ORDER:len(shapes) + (i + 1) * ORDER]) for i in range(len(shapes)))))(
        *stacked, *[t for s in stacked_series for t in s])
    for b, (primals, series) in enumerate(cases):
        y_b, terms_b = fx.jet(fn, primals, series)
        np.testing.assert_allclose(y[b], y_b, rtol=1e-12, atol=1e-14)
        for t, t_b in zip(terms, terms_b):
            np.testing.assert_allclose(t[b], t_b, rtol=1e-11, atol=1e-12)


def _spd(seed=0):
    a = np.random.default_rng(seed).standard_normal((3, 3))
    return a @ a.T + 3.0 * np.eye(3)


_B = np.array([0.3, -1.0, 0.5])
# Primitives of the linear-algebra and special-function families reach Taylor mode through
# the JVP recursion; these cases keep that path checked for each of them.
RECURSION_CASES = [
    ("solve_lu", lambda a: fnp.linalg.solve(a, _B), _spd),
    ("cholesky_triangular_solve", lambda a: fx.scipy.linalg.cho_solve(
        (fnp.linalg.cholesky(a), True), _B), _spd),
    ("slogdet", lambda a: fnp.linalg.slogdet(a)[1], _spd),
    ("eigh", lambda a: fnp.linalg.eigh(a)[0], _spd),
    ("svd", lambda a: fnp.linalg.svd(a)[1], _spd),
    ("qr", lambda a: fnp.linalg.qr(a)[1], _spd),
    ("erf_erfc", lambda x: fx.scipy.special.erf(x) * fx.scipy.special.erfc(x),
     lambda s: np.array([0.3, -0.5])),
    ("gammaln_digamma", lambda x: fx.scipy.special.gammaln(x) + fx.scipy.special.digamma(x),
     lambda s: np.array([1.3, 2.5])),
    ("xlogy_xlog1py", lambda x: fx.scipy.special.xlogy(x, x + 1.0)
     + fx.scipy.special.xlog1py(x, x), lambda s: np.array([1.3, 2.5])),
]


@pytest.mark.parametrize("name,fn,make", RECURSION_CASES, ids=[c[0] for c in RECURSION_CASES])
def test_jet_through_the_jvp_recursion(name, fn, make):
    import fxgrad.scipy.linalg  # noqa: F401
    import fxgrad.scipy.special  # noqa: F401
    x = make(0)
    rng = np.random.default_rng(1)
    terms = [rng.standard_normal(x.shape) * 0.1 for _ in range(4)]
    terms = [(t + t.T) / 2 if t.ndim == 2 else t for t in terms]   # keep matrices symmetric
    y, out = fx.jet(fn, (x,), (terms,))
    y_ref, out_ref = reference_jet(fn, (x,), (terms,))
    np.testing.assert_allclose(y, y_ref, rtol=1e-12, atol=1e-12)
    for k, (t, t_ref) in enumerate(zip(out, out_ref), 1):
        np.testing.assert_allclose(t, t_ref, rtol=1e-9, atol=1e-10, err_msg=f"order {k}")
