"""The typed IR: abstract values, printing in the jaxpr-like syntax, dce, closed programs."""
import numpy as np
import pytest

from fxgrad.core.ir import (ClosedProgram, Eqn, Literal, Program, ShapedArray, Var, aval_of,
                            dce)
from fxgrad.core.trace import Primitive
from fxgrad.primitives.arith import add_p, mul_p, neg_p

F64_3 = ShapedArray((3,), np.float64)
F64 = ShapedArray((), np.float64)


# ---------------------------------------------------------------- ShapedArray

@pytest.mark.parametrize("shape, dtype, text", [
    ((3,), np.float64, "f64[3]"),
    ((), np.float32, "f32[]"),
    ((2, 5), np.int32, "i32[2,5]"),
    ((1,), np.bool_, "bool[1]"),
    ((4,), np.int64, "i64[4]"),
    ((0, 2), np.complex128, "c128[0,2]"),
])
def test_shaped_array_short_string(shape, dtype, text):
    aval = ShapedArray(shape, dtype)
    assert aval.str_short() == text
    assert repr(aval) == text


def test_shaped_array_equality_and_hash():
    a, b = ShapedArray([2, 3], "float64"), ShapedArray((2, 3), np.float64)
    assert a == b and hash(a) == hash(b)
    assert a != ShapedArray((2, 3), np.float32)
    assert a != ShapedArray((3, 2), np.float64)
    assert a != (2, 3)
    assert len({a, b, ShapedArray((3, 2), np.float64)}) == 2


def test_shaped_array_ndim_and_size():
    aval = ShapedArray((2, 3, 4), np.float64)
    assert aval.ndim == 3 and aval.size == 24
    assert ShapedArray((), np.float64).size == 1
    assert ShapedArray((0, 5), np.float64).size == 0


def test_aval_of_python_numbers_and_arrays():
    assert aval_of(1.0) == ShapedArray((), np.float64)
    assert aval_of(np.float32(1.0)) == ShapedArray((), np.float32)
    assert aval_of(np.zeros((2, 3), np.int32)) == ShapedArray((2, 3), np.int32)
    assert aval_of([[1.0, 2.0]]) == ShapedArray((1, 2), np.float64)


# ---------------------------------------------------------------- printing

def _sin_sum_program():
    sin_p, reduce_sum_p = Primitive("sin"), Primitive("reduce_sum")
    a, b, c = Var(F64_3), Var(F64_3), Var(F64)
    eqns = [Eqn(sin_p, [a], {}, [b]), Eqn(reduce_sum_p, [b], {"axes": (0,)}, [c])]
    return Program([a], eqns, [c])


def test_program_prints_in_jaxpr_syntax():
    assert str(_sin_sum_program()) == (
        "{ lambda ; a:f64[3]. let\n"
        "    b:f64[3] = sin a\n"
        "    c:f64[] = reduce_sum[axes=(0,)] b\n"
        "  in (c,) }")


def test_program_printing_names_consts_before_semicolon():
    k, x, y = Var(F64_3), Var(F64_3), Var(F64_3)
    program = Program([k, x], [Eqn(mul_p, [k, x], {}, [y])], [y], num_consts=1)
    assert str(program) == (
        "{ lambda a:f64[3] ; b:f64[3]. let\n"
        "    c:f64[3] = mul a b\n"
        "  in (c,) }")


def test_literals_print_inline_and_multiple_outputs_have_no_trailing_comma():
    x, y, z = Var(F64), Var(F64), Var(F64)
    eqns = [Eqn(mul_p, [x, Literal(2.0)], {}, [y]), Eqn(add_p, [y, Literal(3)], {}, [z])]
    text = str(Program([x], eqns, [y, z]))
    assert "b:f64[] = mul a 2.0" in text
    assert "c:f64[] = add b 3" in text
    assert text.endswith("in (b, c) }")


def test_literal_values_and_avals():
    assert repr(Literal(2.0)) == "2.0"
    assert repr(Literal(np.float32(0.5))) == "0.5"
    assert repr(Literal(7)) == "7"
    assert repr(Literal(True)) == "True"
    assert Literal(np.float32(1.0)).aval == ShapedArray((), np.float32)


def test_variable_names_continue_past_z():
    xs = [Var(F64) for _ in range(30)]
    eqns = [Eqn(neg_p, [xs[i]], {}, [xs[i + 1]]) for i in range(29)]
    text = str(Program([xs[0]], eqns, [xs[-1]]))
    binders = [line.split(":")[0].strip() for line in text.splitlines()[1:-1]]
    assert len(set(binders)) == 29 and "a" not in binders
    assert "z:f64[] = neg y" in text
    assert all(name.isalpha() and name.islower() for name in binders)


def test_dtype_params_print_by_name():
    convert_p = Primitive("convert_element_type")
    x, y = Var(F64), Var(ShapedArray((), np.float32))
    text = str(Program([x], [Eqn(convert_p, [x], {"new_dtype": np.dtype(np.float32)}, [y])], [y]))
    assert "b:f32[] = convert_element_type[new_dtype=float32] a" in text


def test_program_params_print_nested_and_indented():
    body = _sin_sum_program()
    loop_p = Primitive("loop")
    x, y = Var(F64_3), Var(F64)
    text = str(Program([x], [Eqn(loop_p, [x], {"body": body, "length": 2}, [y])], [y]))
    lines = text.splitlines()
    assert lines[0] == "{ lambda ; a:f64[3]. let"
    assert lines[1] == "    b:f64[] = loop[body={ lambda ; a:f64[3]. let"
    # the nested program names its own variables from 'a' and is indented deeper
    assert lines[2].strip() == "b:f64[3] = sin a"
    assert len(lines[2]) - len(lines[2].lstrip()) > 4
    assert lines[4].strip() == "in (c,) }, length=2] a"
    assert lines[-1] == "  in (b,) }"


def test_program_with_no_equations_and_input_passthrough():
    x = Var(F64)
    assert str(Program([x], [], [x])) == "{ lambda ; a:f64[]. let\n  in (a,) }"


# ---------------------------------------------------------------- dce

def test_dce_drops_unused_equations_and_keeps_their_dependencies():
    x, y, dead, out = Var(F64), Var(F64), Var(F64), Var(F64)
    eqns = [Eqn(neg_p, [x], {}, [y]), Eqn(mul_p, [x, x], {}, [dead]),
            Eqn(add_p, [y, Literal(1.0)], {}, [out])]
    pruned = dce(Program([x], eqns, [out]))
    assert [e.prim.name for e in pruned.eqns] == ["neg", "add"]
    assert pruned.invars == [x] and pruned.outvars == [out]


def test_dce_keeps_a_multiple_result_equation_if_any_output_is_used():
    split_p = Primitive("split", multiple_results=True)
    x, a, b = Var(F64), Var(F64), Var(F64)
    program = Program([x], [Eqn(split_p, [x], {}, [a, b])], [b])
    assert len(dce(program).eqns) == 1


def test_dce_on_a_program_returning_its_input_or_a_literal_drops_everything():
    x, y = Var(F64), Var(F64)
    program = Program([x], [Eqn(neg_p, [x], {}, [y])], [x, Literal(0.0)])
    assert dce(program).eqns == []


def test_dce_keeps_num_consts():
    k, x, y = Var(F64), Var(F64), Var(F64)
    program = dce(Program([k, x], [Eqn(mul_p, [k, x], {}, [y])], [y], num_consts=1))
    assert program.num_consts == 1 and len(program.eqns) == 1


# ---------------------------------------------------------------- closed programs

def test_closed_program_evaluates_with_its_constants():
    k, x, y, z = Var(F64_3), Var(F64_3), Var(F64_3), Var(F64_3)
    eqns = [Eqn(mul_p, [k, x], {}, [y]), Eqn(add_p, [y, Literal(1.0)], {}, [z])]
    closed = ClosedProgram(Program([k, x], eqns, [z], num_consts=1), [np.array([1.0, 2.0, 3.0])])
    (out,) = closed(np.array([2.0, 2.0, 2.0]))
    np.testing.assert_allclose(out, [3.0, 5.0, 7.0])
    assert closed.in_avals == [F64_3] and closed.out_avals == [F64_3]
    assert closed.eqns is closed.program.eqns
    assert str(closed) == str(closed.program)


def test_closed_program_checks_constant_count():
    k, x = Var(F64), Var(F64)
    with pytest.raises(AssertionError):
        ClosedProgram(Program([k, x], [], [x], num_consts=1), [])


def test_program_in_and_out_avals():
    program = _sin_sum_program()
    assert program.in_avals == [F64_3] and program.out_avals == [F64]
