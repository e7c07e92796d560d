"""Tracing: bind, constants, nested traces, lazy concrete evaluation, leaked tracers."""
import os

import numpy as np
import pytest

from fxgrad.core.errors import (ConcretizationError, FxTypeError, LeakedTracerError,
                                TracerArrayConversionError)
from fxgrad.core.ir import Literal, ShapedArray
from fxgrad.core.trace import Primitive, Tracer, new_trace, shape_rules, trace_to_program
from fxgrad.interpreters.evaluation import eval_program, impl_rules
from fxgrad.primitives.arith import add, mul, neg

THIS_FILE = os.path.basename(__file__)
F64 = ShapedArray((), np.float64)
F64_3 = ShapedArray((3,), np.float64)


def counting_primitive(name, fn, calls):
    """A throwaway unary primitive whose implementation records each call in `calls`."""
    prim = Primitive(name)
    shape_rules[prim] = lambda x: x

    def impl(x):
        calls.append(name)
        return fn(x)
    impl_rules[prim] = impl
    return prim


# ---------------------------------------------------------------- bind

def test_bind_without_tracers_runs_the_numpy_implementation():
    out = mul(np.array([1.0, 2.0]), np.array([3.0, 4.0]))
    assert isinstance(out, np.ndarray)
    np.testing.assert_array_equal(out, [3.0, 8.0])


def test_bind_checks_shapes_even_without_tracers():
    with pytest.raises(FxTypeError) as excinfo:
        mul(np.ones(2), np.ones(3))
    message = str(excinfo.value)
    assert "mul" in message and "(2,)" in message and "(3,)" in message
    assert THIS_FILE in message


def test_bind_casts_implementation_output_to_the_rule_dtype():
    calls = []
    prim = counting_primitive("as_float64", lambda x: x.astype(np.float64), calls)
    shape_rules[prim] = lambda x: ShapedArray(x.shape, np.float32)
    out = prim.bind(np.ones(2, np.float32))
    assert out.dtype == np.float32 and calls == ["as_float64"]


def test_bind_rejects_an_implementation_that_disagrees_with_the_shape_rule():
    prim = counting_primitive("bad_shape", lambda x: np.zeros(5), [])
    with pytest.raises(AssertionError, match="bad_shape"):
        prim.bind(np.ones(2))


def test_primitive_without_rules_reports_what_is_missing():
    no_rule = Primitive("no_shape_rule")
    with pytest.raises(NotImplementedError, match="no_shape_rule"):
        no_rule.bind(np.ones(2))
    no_impl = Primitive("no_impl")
    shape_rules[no_impl] = lambda x: x
    with pytest.raises(NotImplementedError, match="no_impl"):
        no_impl.bind(np.ones(2))
    assert repr(no_impl) == "no_impl"


# ---------------------------------------------------------------- tracing

def test_trace_to_program_records_equations_and_captures_constants():
    k = np.array([1.0, 2.0, 3.0])
    program, consts = trace_to_program(lambda x: [add(mul(x, k), 2.0)], [F64_3])
    assert [e.prim.name for e in program.eqns] == ["mul", "add"]
    assert program.num_consts == 1 and consts[0] is k
    assert isinstance(program.eqns[1].inputs[1], Literal)
    assert str(program).startswith("{ lambda a:f64[3] ; b:f64[3]. let")
    out = eval_program(program, [*consts, np.ones(3)])
    np.testing.assert_allclose(out[0], [3.0, 4.0, 5.0])


def test_an_array_used_twice_is_captured_once():
    k = np.array([1.0, 2.0, 3.0])
    program, consts = trace_to_program(lambda x: [mul(mul(x, k), k)], [F64_3])
    assert len(consts) == 1 and program.num_consts == 1


def test_unused_constants_and_dead_equations_are_dropped():
    k = np.array([1.0, 2.0, 3.0])

    def fun(x):
        mul(x, k)           # dead: its result is never used
        return [neg(x)]
    program, consts = trace_to_program(fun, [F64_3])
    assert consts == [] and program.num_consts == 0
    assert [e.prim.name for e in program.eqns] == ["neg"]


def test_outputs_may_be_inputs_or_python_numbers():
    program, _ = trace_to_program(lambda x: [x, 2.0], [F64])
    assert program.eqns == []
    assert program.outvars[0] is program.invars[0]
    assert isinstance(program.outvars[1], Literal)


def test_a_non_array_output_is_rejected():
    with pytest.raises(FxTypeError, match="must return arrays"):
        trace_to_program(lambda x: ["not an array"], [F64])


def test_python_scalars_take_the_traced_operand_dtype():
    program, _ = trace_to_program(lambda x: [mul(x, 2.0)], [ShapedArray((3,), np.float32)])
    literal = program.eqns[0].inputs[1]
    assert literal.aval.dtype == np.float32
    assert program.out_avals[0].dtype == np.float32


def test_operations_go_to_the_newest_trace_and_older_tracers_become_constants():
    with new_trace() as outer:
        x = outer.new_arg(F64)
        with new_trace() as inner:
            y = inner.new_arg(F64)
            z = mul(x, y)
            w = mul(y, x)       # operand order does not matter
            assert z._trace is inner and w._trace is inner
            program, consts = inner.build([add(z, w)])
        assert program.num_consts == 1 and consts[0] is x
        v = mul(x, 3.0)
        assert v._trace is outer
    assert [e.prim.name for e in outer.eqns] == ["mul"]


def test_tracer_properties():
    with new_trace() as trace:
        x = trace.new_arg(ShapedArray((2, 3), np.float32))
        assert x.shape == (2, 3) and x.dtype == np.float32 and x.ndim == 2 and x.size == 6
        assert len(x) == 2
        assert repr(x) == "Traced<f32[2,3]>"
        with pytest.raises(TypeError):
            hash(x)
        s = trace.new_arg(F64)
        with pytest.raises(TypeError, match="0-d"):
            len(s)
        with pytest.raises(TypeError, match="integer"):
            [1, 2][s]


def test_iterating_over_a_tracer_yields_its_rows():
    import fxgrad.numpy  # noqa: F401  (gives tracers their indexing)

    def rows(x):
        first, second = x
        assert first.shape == (3,) and isinstance(first, Tracer)
        return [second, first]
    program, _ = trace_to_program(rows, [ShapedArray((2, 3), np.float64)])
    x = np.arange(6.0).reshape(2, 3)
    out = eval_program(program, [x])
    np.testing.assert_array_equal(out[0], x[1])
    np.testing.assert_array_equal(out[1], x[0])


# ---------------------------------------------------------------- concrete values

def test_bool_evaluates_only_the_equations_it_needs():
    calls = []
    cheap = counting_primitive("cheap", lambda x: x + 1.0, calls)
    costly = counting_primitive("costly", lambda x: x * 100.0, calls)
    then_used = counting_primitive("then_used", lambda x: x - 1.0, calls)

    def fun(x):
        b = costly.bind(x)                      # recorded first, never needed by bool
        a = then_used.bind(cheap.bind(x))
        taken = bool(a)     # needs cheap and then_used, not costly
        assert calls == ["cheap", "then_used"]
        bool(a)             # already known: nothing is evaluated again
        assert calls == ["cheap", "then_used"]
        return [b if taken else a]
    program, _ = trace_to_program(fun, [F64], [np.array(3.0)])
    assert calls == ["cheap", "then_used"]
    assert [e.prim.name for e in program.eqns] == ["costly"]


def test_float_int_and_index_of_concrete_tracers():
    program, _ = trace_to_program(
        lambda x, n: [mul(x, float(add(x, 1.0))), mul(n, int(n))], [F64, ShapedArray((), np.int64)],
        [np.array(2.0), np.array(3)])
    np.testing.assert_allclose(eval_program(program, [np.array(2.0), np.array(3)]), [6.0, 9])

    def index(n):
        assert [10, 20, 30, 40][n] == 40
        return [n]
    trace_to_program(index, [ShapedArray((), np.int64)], [np.array(3)])


def test_concrete_values_flow_through_older_traces():
    with new_trace() as outer:
        x = outer.new_arg(F64, np.array(3.0))
        y = mul(x, 2.0)
        with new_trace() as inner:
            z = inner.new_arg(F64, y)       # its value is a tracer of the outer trace
            assert float(mul(z, z)) == 36.0
            assert float(mul(z, x)) == 18.0


def test_abstract_traces_refuse_concretization_and_name_the_fix():
    def fun(x):
        if add(x, 1.0):
            return [x]
        return [neg(x)]
    with pytest.raises(ConcretizationError) as excinfo:
        trace_to_program(fun, [F64])
    message = str(excinfo.value)
    assert "f64[]" in message and "static_argnums" in message and "fnp.where" in message
    assert THIS_FILE in message


def test_plain_numpy_on_a_tracer_names_fxgrad_numpy():
    def fun(x):
        np.asarray(x)
        return [x]
    with pytest.raises(TracerArrayConversionError) as excinfo:
        trace_to_program(fun, [F64_3], [np.zeros(3)])
    assert "fxgrad.numpy" in str(excinfo.value) and "f64[3]" in str(excinfo.value)
    assert THIS_FILE in str(excinfo.value)


# ---------------------------------------------------------------- leaked tracers

def test_using_a_leaked_tracer_raises():
    leaked = []

    def fun(x):
        leaked.append(x)
        return [x]
    trace_to_program(fun, [F64], [np.array(1.0)])
    (tracer,) = leaked
    assert isinstance(tracer, Tracer) and not tracer._trace.alive
    with pytest.raises(LeakedTracerError) as excinfo:
        add(tracer, 1.0)
    assert "leaked" in str(excinfo.value) and THIS_FILE in str(excinfo.value)
    with pytest.raises(LeakedTracerError):
        bool(tracer)
    with pytest.raises(LeakedTracerError):
        float(tracer)


def test_a_trace_is_closed_even_when_tracing_fails():
    leaked = []

    def fun(x):
        leaked.append(x)
        raise RuntimeError("user error")
    with pytest.raises(RuntimeError, match="user error"):
        trace_to_program(fun, [F64])
    assert not leaked[0]._trace.alive


def test_traces_get_increasing_levels():
    with new_trace() as a, new_trace() as b:
        assert b.level > a.level
    with new_trace() as c:
        assert c.level > b.level
