"""push_out_accumulations: a scan carry that only accumulates (`acc = acc + term`) is
summed after the loop — by one dot_general when the term is a product of per-iteration
values — and the simplified program computes what the traced one does.
prune_scan_outputs: per-iteration outputs nothing reads are dropped, repeated ones and
inputs stacked once, an output that is an xs row replaced by the xs array."""
import numpy as np
import pytest

import fxgrad as fx
import fxgrad.numpy as fnp
from fxgrad.interpreters.evaluation import eval_program

rng = np.random.default_rng(0)
W = rng.normal(size=(4, 4)) * 0.4
XS = rng.normal(size=(7, 4))
C = rng.normal(size=4)


def _scans(program):
    return [e for e in program.eqns if e.prim.name == "scan"]


def _rnn_loss(W, xs):
    h, _ = fx.scan(lambda h, x: (fnp.tanh(W @ h + x), None), fnp.zeros(W.shape[0]), xs)
    return fnp.sum(h ** 2)


def _sum_of_sines(c, xs):   # acc += sin(x_t) * c: an elementwise term, reduce_sum after
    acc, _ = fx.scan(lambda acc, x: (acc + fnp.sin(x) * c, None), fnp.zeros(4), xs)
    return acc


def _sum_of_xs(c, xs):      # acc += x_t: the xs operand itself is summed
    acc, ys = fx.scan(lambda acc, x: (acc + x, x * c), fnp.zeros(4), xs)
    return acc, ys


def _running_mean(c, xs):   # the carry is read by the body: nothing to push out
    acc, ys = fx.scan(lambda acc, x: (acc + x * c, acc * 2.0), fnp.ones(4), xs)
    return acc, ys


def _batched_outer(a, xs):  # dot_general with a batch dimension
    def body(acc, x):
        m = x.reshape(2, 2)
        return acc + fnp.einsum("bi,bj->bij", m * a[:2], m), None
    return fx.scan(body, fnp.zeros((2, 2, 2)), xs)[0]


def _reverse(c, xs):
    return fx.scan(lambda acc, x: (acc + fnp.outer(x, x * c), None), fnp.eye(4), xs,
                   reverse=True)[0]


CASES = {  # name: (function, arguments, carries pushed out of the last scan)
    "rnn grad": (fx.grad(_rnn_loss), (W, XS), 1),
    "sum of sines": (_sum_of_sines, (C, XS), 1),
    "sum of xs": (_sum_of_xs, (C, XS), 1),
    "carry read in the body": (_running_mean, (C, XS), 0),
    "batched outer products": (_batched_outer, (C, XS), 1),
    "reverse outer products": (_reverse, (C, XS), 1),
}


@pytest.mark.parametrize("name", CASES)
def test_pushed_out_carries_and_same_values(name):
    f, args, pushed = CASES[name]
    closed = fx.make_jaxpr(f)(*args)
    log = []
    simple = fx.simplify(closed, log)
    carries = [e.params["num_carry"] for e in _scans(closed.program)]
    simple_carries = [e.params["num_carry"] for e in _scans(simple.program)]
    assert carries[-1] - simple_carries[-1] == pushed
    assert any(line.startswith("push_out_accumulations") for line in log) == bool(pushed)
    _assert_same_values(f, args, closed, simple)


def _assert_same_values(f, args, closed, simple):
    """The simplified program and jit(f) compute what the traced program does."""
    want = eval_program(closed.program, [*closed.consts, *args])
    got = eval_program(simple.program, [*simple.consts, *args])
    for w, g in zip(want, got):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-14)
    for w, g in zip(want, fx.tree_util.tree_leaves(fx.jit(f)(*args))):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-14)


def test_outer_product_becomes_one_dot_after_the_loop():
    simple = fx.simplify(fx.make_jaxpr(fx.grad(_rnn_loss))(W, XS)).program
    backward = _scans(simple)[-1]
    assert backward.params["num_carry"] == 1
    after = simple.eqns[simple.eqns.index(backward) + 1:]
    dots = [e for e in after if e.prim.name == "dot_general"]
    assert len(dots) == 1 and dots[0].params["dimension_numbers"][0] == ((0,), (0,))
    assert not any(e.prim.name == "dot_general" and e.outputs[0].aval.shape == (4, 4)
                   for e in backward.params["program"].eqns)


def test_nested_scan_bodies_are_rewritten_too():
    def outer(W, xss):
        return fx.scan(lambda acc, xs: (acc + fx.grad(_rnn_loss)(W, xs), None),
                       fnp.zeros_like(W), xss)[0]
    xss = rng.normal(size=(3, 5, 4))
    log = []
    fx.simplify(fx.make_jaxpr(outer)(W, xss), log)
    assert any(line.startswith("push_out_accumulations") for line in log)
    assert any(line.startswith("simplify scan body") and "restructured" in line
               for line in log)
    np.testing.assert_allclose(fx.jit(outer)(W, xss), outer(W, xss), rtol=1e-12)


def test_zero_length_scan_is_left_alone():
    xs = np.zeros((0, 4))
    closed = fx.make_jaxpr(_sum_of_sines)(C, xs)
    assert [e.params["num_carry"] for e in _scans(fx.simplify(closed).program)] == [1]
    np.testing.assert_array_equal(fx.jit(_sum_of_sines)(C, xs), np.zeros(4))


def test_carry_stays_when_its_stack_would_be_too_large(monkeypatch):
    from fxgrad.simplify import scan as scan_rewrite
    closed = fx.make_jaxpr(_sum_of_sines)(C, XS)   # would stack 7 x 4 = 28 elements
    monkeypatch.setattr(scan_rewrite, "STACK_LIMIT", 27)
    assert [e.params["num_carry"] for e in _scans(fx.simplify(closed).program)] == [1]
    monkeypatch.setattr(scan_rewrite, "STACK_LIMIT", 28)
    assert [e.params["num_carry"] for e in _scans(fx.simplify(closed).program)] == [0]


def _twice(c, xs):          # the same per-iteration value stacked twice
    def body(h, x):
        y = fnp.sin(h * x)
        return h * 0.5 + x, (y, y * 1.0, x)
    h, (a, b, same_x) = fx.scan(body, c, xs)
    return h, a + b * 2.0, same_x


def _unread(c, xs):         # a stacked output nothing reads
    h, (a, b) = fx.scan(lambda h, x: (h * 0.5 + x, (fnp.cos(h), fnp.exp(x))), c, xs)
    return h, a


def _inputs_twice(c, xs):   # the same const and the same xs passed twice
    def body(h, x):
        x1, x2, k1, k2 = x
        return h * k1 + x1 * x2 + k2, None
    k = fnp.sin(c)
    return fx.scan(lambda h, x: body(h, (*x, k, k)), c, (xs, xs))[0]


def _rk4_loss(p, xs):       # reverse mode stacks residuals that are the same carry element
    def f(s, x):
        return fnp.stack([p[0] * (s[1] - s[0]), s[0] * (p[1] - s[2]) - s[1],
                          s[0] * s[1] - p[2] * s[2]]) + x[:3] * 0.01
    def step(s, x):
        k1 = f(s, x)
        k2 = f(s + 0.005 * k1, x)
        return s + 0.01 * (k1 + k2) / 2.0, None
    s, _ = fx.scan(step, fnp.ones(3), xs)
    return fnp.sum(s ** 2)


PRUNED = {  # name: (function, arguments)
    "output stacked twice, xs forwarded": (_twice, (C, XS)),
    "output nobody reads": (_unread, (C, XS)),
    "inputs passed twice": (_inputs_twice, (C, XS)),
    "gradient of a Runge-Kutta loop": (fx.grad(_rk4_loss), (np.array([10.0, 28.0, 2.5]), XS)),
}


def _stacked_outputs(program):
    return sum(len(e.outputs) - e.params["num_carry"] for e in _scans(program))


def _operands(program):
    return sum(len(e.inputs) for e in _scans(program))


@pytest.mark.parametrize("name", PRUNED)
def test_pruned_scan_outputs_and_inputs_compute_the_same_values(name, monkeypatch):
    f, args = PRUNED[name]
    closed = fx.make_jaxpr(f)(*args)
    log = []
    simple = fx.simplify(closed, log)
    assert any(line.startswith("prune_scan_outputs") for line in log)
    from fxgrad.simplify import passes, scan as scan_rewrite
    monkeypatch.setattr(passes, "program_rewrites", [
        r for r in passes.program_rewrites if r is not scan_rewrite.prune_scan_outputs])
    unpruned = fx.simplify(closed).program
    assert _stacked_outputs(simple.program) + _operands(simple.program) < \
        _stacked_outputs(unpruned) + _operands(unpruned)
    _assert_same_values(f, args, closed, simple)


def test_each_pruning_in_detail():
    twice = fx.simplify(fx.make_jaxpr(_twice)(C, XS)).program
    (scan,) = _scans(twice)
    assert len(scan.outputs) == 2                        # h and y: y * 1.0 is y, x is xs
    assert twice.outvars[2] is twice.invars[-1]          # the xs operand itself
    unread = fx.simplify(fx.make_jaxpr(_unread)(C, XS)).program
    assert [e.prim.name for e in _scans(unread)[0].params["program"].eqns] == [
        "mul", "add", "cos"]                             # exp(x) is gone with its output
    merged = fx.simplify(fx.make_jaxpr(_inputs_twice)(C, XS)).program
    (scan,) = _scans(merged)
    assert len(scan.inputs) == 3 and scan.params["num_consts"] == 1   # k, h, xs


def test_rk4_gradient_stacks_each_residual_once():
    closed = fx.make_jaxpr(fx.grad(_rk4_loss))(np.array([10.0, 28.0, 2.5]), XS)
    forward = _scans(fx.simplify(closed).program)[0]
    body = forward.params["program"]
    ys = body.outvars[forward.params["num_carry"]:]
    assert len({id(v) for v in ys}) == len(ys)
