"""The simplifier's passes and entry points: dead-code elimination, structural CSE
(commutativity aware), constant folding, the fixed-point iteration, the debug log,
scan bodies, dtype/shape preservation, `make_jaxpr(optimize=True)` and `jit`'s
`config.jit_simplify`. Every test compares the simplified program's values with the
unsimplified program's on random inputs."""
import numpy as np
import pytest

import fxgrad as fx
import fxgrad.numpy as fnp
from fxgrad.core.ir import ClosedProgram, Eqn, Literal, Program, ShapedArray, Var
from fxgrad.core.trace import abstract_eval
from fxgrad.primitives import arith, shape, unary
from fxgrad.simplify import simplify_program


def random_args(closed, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.uniform(0.2, 1.5, a.shape).astype(a.dtype) if a.dtype.kind == "f"
            else rng.integers(1, 5, a.shape).astype(a.dtype) for a in closed.in_avals]


def assert_same_values(closed, simple, seeds=(0, 1, 2)):
    assert simple.out_avals == closed.out_avals
    for seed in seeds:
        args = random_args(closed, seed)
        for want, got in zip(closed(*args), simple(*args)):
            assert np.asarray(got).dtype == np.asarray(want).dtype
            assert np.shape(got) == np.shape(want)
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


def simplified(fun, *args):
    closed = fx.make_jaxpr(fun)(*args)
    log = []
    simple = fx.simplify(closed, log=log)
    assert_same_values(closed, simple)
    return closed, simple, log


def one_line(closed):
    return " ".join(str(closed).split())


class Builder:
    """Writes programs equation by equation, for inputs tracing never produces."""

    def __init__(self, consts=()):
        self.consts = [np.asarray(c) for c in consts]
        self.invars = [Var(ShapedArray(c.shape, c.dtype)) for c in self.consts]
        self.eqns = []

    def arg(self, shape_, dtype=np.float64):
        self.invars.append(Var(ShapedArray(shape_, dtype)))
        return self.invars[-1]

    def __call__(self, prim, *operands, **params):
        aval = abstract_eval(prim, [a.aval for a in operands], params)[0]
        self.eqns.append(Eqn(prim, operands, params, [Var(aval)]))
        return self.eqns[-1].outputs[0]

    def closed(self, *outs):
        program = Program(self.invars, self.eqns, outs, len(self.consts))
        return ClosedProgram(program, self.consts)


def lit(value):
    return Literal(np.float64(value))


# ---------------------------------------------------------------- the seed examples

def test_gradient_of_square_is_one_multiplication():
    closed, simple, log = simplified(fx.grad(lambda x: x ** 2), 4.0)
    assert len(closed.eqns) == 3
    assert one_line(simple) == "{ lambda ; a:f64[]. let b:f64[] = mul 2.0 a in (b,) }"
    assert simple(np.float64(94.2))[0] == pytest.approx(188.4)


def test_derivative_of_a_quadratic_is_two_equations():
    closed, simple, log = simplified(fx.grad(lambda x: x * x + x - 2.0), 3.0)
    assert len(closed.eqns) == 4
    assert one_line(simple) == ("{ lambda ; a:f64[]. let b:f64[] = mul 2.0 a "
                                "c:f64[] = add b 1.0 in (c,) }")


def test_make_jaxpr_optimize_returns_the_simplified_program():
    fun = fx.grad(lambda x: fnp.sum(fnp.sin(x) * 1.0 + 0.0))
    x = np.linspace(0.1, 1.0, 4)
    plain = fx.make_jaxpr(fun)(x)
    optimized = fx.make_jaxpr(fun, optimize=True)(x)
    assert one_line(optimized) == one_line(fx.simplify(plain))
    assert len(optimized.eqns) < len(plain.eqns)
    assert_same_values(plain, optimized)


# ---------------------------------------------------------------- DCE and CSE

def test_dead_code_is_removed():
    def fun(x):
        unused = fnp.exp(fnp.sin(x))   # noqa: F841
        return fnp.cos(x)
    closed, simple, _ = simplified(fun, np.ones(3))
    assert [e.prim.name for e in simple.eqns] == ["cos"]


def test_cse_merges_structurally_equal_equations():
    closed, simple, log = simplified(lambda x: fnp.sin(x) * 2.0 + fnp.sin(x) * 3.0, np.ones(3))
    assert [e.prim.name for e in simple.eqns].count("sin") == 1
    assert "cse: sin a -> b" in log


def test_cse_knows_commutative_primitives():
    closed, simple, log = simplified(lambda x, y: fnp.exp(x * y) + fnp.exp(y * x),
                                     np.ones(3), np.ones(3))
    assert [e.prim.name for e in simple.eqns] == ["mul", "exp", "mul"]   # 2 * exp(x*y)
    assert "cse: mul b a -> c" in log


def test_cse_keeps_non_commutative_and_differently_parametrised_equations():
    closed, simple, _ = simplified(lambda x, y: (x - y) * (y - x), np.ones(3), np.ones(3))
    assert [e.prim.name for e in simple.eqns].count("sub") == 2
    closed, simple, _ = simplified(lambda x: fnp.sum(x, axis=0) + fnp.sum(x, axis=1),
                                   np.ones((3, 3)))
    assert [e.prim.name for e in simple.eqns].count("reduce_sum") == 2


def test_cse_compares_literals_by_value():
    closed, simple, log = simplified(lambda x: fnp.exp(x * 2.0) - fnp.exp(2.0 * x), np.ones(3))
    assert [e.prim.name for e in simple.eqns] == ["mul", "exp", "mul"]   # 0 * exp(2x)
    assert "cse: mul 2.0 a -> g" in log and "cse: exp g -> c" in log


# ---------------------------------------------------------------- constant folding

def test_scalar_literals_fold():
    b = Builder()
    x = b.arg((3,))
    five = b(arith.add_p, lit(2.0), lit(3.0))
    closed = b.closed(b(arith.mul_p, five, x))
    log = []
    simple = fx.simplify(closed, log=log)
    assert one_line(simple) == "{ lambda ; a:f64[3]. let b:f64[3] = mul 5.0 a in (b,) }"
    assert log[0] == "fold: add 2.0 3.0 -> 5.0"
    assert_same_values(closed, simple)


def test_small_constant_arrays_fold_into_new_constants():
    b = Builder(consts=[np.array([0.1, 0.2, 0.3])])
    c, x = b.invars[0], b.arg((3,))
    closed = b.closed(b(arith.mul_p, b(unary.sin_p, b(unary.exp_p, c)), x))
    simple = fx.simplify(closed)
    assert [e.prim.name for e in simple.eqns] == ["mul"]
    np.testing.assert_allclose(simple.consts[0], np.sin(np.exp([0.1, 0.2, 0.3])))
    assert_same_values(closed, simple)


def test_large_fills_are_not_materialised():
    b = Builder()
    x = b.arg((1000,))
    ones = b(shape.broadcast_in_dim_p, lit(1.0), shape=(1000,), broadcast_dimensions=())
    twos = b(arith.add_p, ones, ones)
    closed = b.closed(b(arith.add_p, twos, x))
    simple = fx.simplify(closed)
    assert simple.consts == []
    assert one_line(simple) == "{ lambda ; a:f64[1000]. let b:f64[1000] = add 2.0 a in (b,) }"
    assert_same_values(closed, simple)


def test_uniform_constants_become_broadcast_literals():
    x = np.linspace(-1, 1, 1000)
    closed, simple, log = simplified(lambda x: fnp.where(x > 0, x, 0.0) + fnp.ones(1000), x)
    assert [c.shape for c in closed.consts] == [(1000,), (1000,)]   # 0.0 and 1.0 fills
    assert simple.consts == [] and "uniform constant: a -> broadcast 0.0" in log
    small, _, small_log = simplified(lambda x: fnp.where(x > 0, x, 0.0), x[:8])
    assert not any(line.startswith("uniform") for line in small_log)   # folded anyway
    varied = np.arange(1000.0)
    assert fx.simplify(fx.make_jaxpr(lambda x: x + varied)(x)).consts[0] is not None


def test_broadcast_of_one_element_is_a_fill():
    x = np.linspace(-1, 1, 1000)
    closed, simple, _ = simplified(lambda x: fnp.where(x > 0.5, fnp.max(x, keepdims=True), x), x)
    fills = [e for e in simple.eqns if e.prim.name == "broadcast_in_dim"]
    assert [e.inputs[0].aval.shape for e in fills] == [()]


def test_unused_constants_are_dropped():
    fun = fx.grad(lambda x: fnp.sum(fnp.sin(x) * 2.0))
    closed, simple, _ = simplified(fun, np.ones(3))
    assert closed.consts and not simple.consts
    assert simple.program.num_consts == 0


# ---------------------------------------------------------------- the fixed point

def test_passes_iterate_to_a_fixed_point():
    fun = fx.grad(fx.grad(lambda x: fnp.sin(x) * x * x))
    closed, simple, _ = simplified(fun, 0.7)
    assert len(simple.eqns) < len(closed.eqns)
    again = fx.simplify(simple)
    assert one_line(again) == one_line(simple)


def test_simplify_program_on_a_bare_program():
    closed = fx.make_jaxpr(lambda x: (x * 1.0 + 0.0) * 2.0)(np.ones(2))
    program, consts = simplify_program(closed.program, closed.consts)
    assert [e.prim.name for e in program.eqns] == ["mul"] and consts == []
    assert_same_values(closed, ClosedProgram(program, consts))


def test_simplify_leaves_its_input_unchanged():
    closed = fx.make_jaxpr(fx.grad(lambda x: fnp.sum(fnp.exp(x) * x * 1.0)))(np.ones(3))
    before = str(closed)
    fx.simplify(closed)
    assert str(closed) == before


# ---------------------------------------------------------------- the debug log

def test_log_names_rule_primitive_operands_and_result():
    log = []
    fx.simplify(fx.make_jaxpr(fx.grad(lambda x: x ** 2))(4.0), log=log)
    assert log == ["rewrite integer_pow_identities: integer_pow[y=1] a -> a",
                   "rewrite mul_canonical: mul a 2.0 -> e = mul 2.0 a",
                   "rewrite mul_identities: mul e 1.0 -> e"]


def test_log_is_optional_and_kinds_are_named():
    closed = fx.make_jaxpr(lambda x: fnp.sin(x) + fnp.sin(x) * 1.0)(np.ones(2))
    log = []
    assert one_line(fx.simplify(closed)) == one_line(fx.simplify(closed, log=log))
    assert log == ["cse: sin a -> b", "rewrite mul_identities: mul b 1.0 -> b",
                   "rewrite add_identities: add b b -> f = mul 2.0 b"]


# ---------------------------------------------------------------- dtypes and shapes

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtypes_and_shapes_of_outputs_never_change(dtype):
    def fun(x, y):
        z = fnp.log(1.0 + x * x) * 1.0 + 0.0 - (fnp.exp(y) - 1.0)
        lse = fnp.log(fnp.sum(fnp.exp(x), axis=1))
        soft = fnp.exp(x) / fnp.sum(fnp.exp(x), axis=1, keepdims=True)
        return z, lse, soft.T.T, fnp.sum(fnp.broadcast_to(y, (2, 3)) * 2.0 * 3.0, axis=0)
    args = (np.ones((2, 3), dtype), np.ones(3, dtype))
    for f in (fun, fx.grad(lambda x, y: sum(fnp.sum(o) for o in fun(x, y)), argnums=(0, 1))):
        closed = fx.make_jaxpr(f)(*args)
        simple = fx.simplify(closed)
        assert simple.out_avals == closed.out_avals
        assert all(a.dtype == dtype for a in simple.out_avals)
        for v in simple.program.invars + [o for e in simple.eqns for o in e.outputs]:
            assert v.aval.dtype in (np.dtype(dtype), np.dtype(bool))
        for want, got in zip(closed(*args), simple(*args)):
            assert got.dtype == dtype and got.shape == want.shape
            np.testing.assert_allclose(got, want, rtol=1e-5 if dtype == np.float32 else 1e-12)


def test_integer_programs_keep_their_dtype():
    closed, simple, _ = simplified(lambda i: (i * 1 + 0) * 2 + i - i, np.arange(3, dtype=np.int32))
    assert simple.out_avals[0].dtype == np.int32
    assert len(simple.eqns) < len(closed.eqns)


def test_outputs_that_become_literals_keep_shape_and_dtype():
    closed, simple, _ = simplified(lambda x: (x, x * 0.0 + 1.0), np.float32(2.0))
    assert simple.out_avals == closed.out_avals
    assert [np.asarray(o).dtype for o in simple(np.float32(3.0))] == [np.float32, np.float32]


# ---------------------------------------------------------------- scan

def scanned(x):
    def body(c, xi):
        return c * xi + 1.0 * c, c * 1.0
    c, ys = fx.scan(body, x[0], x)
    return c * 1.0 + fnp.sum(ys) + 0.0


def test_programs_with_scan_simplify_around_and_inside_the_loop():
    x = np.array([0.5, 1.2, 0.7])
    closed, simple, log = simplified(scanned, x)
    assert [e.prim.name for e in simple.eqns] == ["slice", "squeeze", "scan", "reduce_sum", "add"]
    body = simple.eqns[2].params["program"]
    assert [e.prim.name for e in body.eqns] == ["mul", "add"]
    assert "simplify scan body: 4 -> 2 equations" in log


@pytest.mark.parametrize("transform", [fx.grad, fx.hessian], ids=["grad", "hessian"])
def test_derivatives_of_scan_simplify_without_changing_values(transform):
    x = np.array([0.5, 1.2, 0.7])
    closed, simple, _ = simplified(transform(scanned), x)
    before = sum(len(e.params["program"].eqns) for e in closed.eqns if e.prim.name == "scan")
    after = sum(len(e.params["program"].eqns) for e in simple.eqns if e.prim.name == "scan")
    assert after < before


# ---------------------------------------------------------------- jit

def test_jit_simplifies_by_default_and_can_be_switched_off():
    fun = lambda x: fnp.sin(x) * 1.0 + 0.0    # noqa: E731
    x = np.ones(3)
    assert fx.config.jit_simplify
    program = fx.jit(fun).lower(x).program
    assert [e.prim.name for e in program.eqns] == ["sin"]
    np.testing.assert_allclose(program(x)[0], np.sin(x))
    fx.config.update("jit_simplify", False)
    try:
        lowered = fx.jit(fun).lower(x)
    finally:
        fx.config.update("jit_simplify", True)
    assert [e.prim.name for e in lowered.program.eqns] == ["sin", "mul", "add"]
