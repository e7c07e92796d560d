"""The simplifier on randomly generated programs: `simplify(make_jaxpr(f))` computes what
`make_jaxpr(f)` computes, with the same output avals, for random well-typed programs
built from fxgrad.numpy operations (elementwise with scalars and arrays, broadcasting,
reductions over axes, reshape/transpose, indexing, dot, scan, the patterns the stable
rewrites look for) and for their gradient programs."""
import numpy as np
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

import fxgrad as fx
import fxgrad.numpy as fnp
from fxgrad.primitives.unary import logistic

SETTINGS = settings(max_examples=150, deadline=None, database=None)
INPUT_SHAPES = [(2, 3), (3,), ()]


def _any(*shapes):
    return True


def _arrays(*shapes):
    return all(len(s) >= 1 for s in shapes)


def _broadcastable(a, b):
    try:
        np.broadcast_shapes(a, b)
        return True
    except ValueError:
        return False


def _matmul_ok(a, b):
    return len(a) >= 1 and len(b) >= 1 and a[-1] == b[0 if len(b) == 1 else -2]


def _scan(x):
    carry, ys = fx.scan(lambda c, xi: (0.5 * c + xi * 1.0, c * xi + 0.0), x[0] * 0.0, x)
    return ys + carry


# name -> (function, arity, applicable(*shapes))
OPS = {
    "sin": (fnp.sin, 1, _any),
    "tanh": (fnp.tanh, 1, _any),
    "exp": (fnp.exp, 1, _any),
    "abs": (fnp.abs, 1, _any),
    "square": (lambda x: x * x, 1, _any),
    "cube": (lambda x: x ** 3, 1, _any),
    "log1p_of_square": (lambda x: fnp.log(1.0 + x * x), 1, _any),
    "expm1": (lambda x: fnp.exp(x) - 1.0, 1, _any),
    "log_logistic": (lambda x: fnp.log(logistic(x)), 1, _any),
    "neg_neg": (lambda x: -(-x), 1, _any),
    "identities": (lambda x: (x * 1.0 + 0.0) / 1.0, 1, _any),
    "scale_scale": (lambda x: 2.0 * (3.0 * x), 1, _any),
    "times_zero": (lambda x: x * 0.0 + x, 1, _any),
    "self_sub": (lambda x: (x - x) + x, 1, _any),
    "affine": (lambda x: 1.5 - 0.5 * x, 1, _any),
    "sum": (fnp.sum, 1, _arrays),
    "sum_last": (lambda x: fnp.sum(x, axis=-1), 1, _arrays),
    "sum_first_keepdims": (lambda x: fnp.sum(x, axis=0, keepdims=True), 1, _arrays),
    "max_last": (lambda x: fnp.max(x, axis=-1), 1, _arrays),
    "mean": (fnp.mean, 1, _arrays),
    "logsumexp": (lambda x: fnp.log(fnp.sum(fnp.exp(x), axis=-1)), 1, _arrays),
    "softmax": (lambda x: fnp.exp(x) / fnp.sum(fnp.exp(x), axis=-1, keepdims=True), 1, _arrays),
    "log_softmax": (lambda x: x - fnp.log(fnp.sum(fnp.exp(x), axis=-1, keepdims=True)), 1,
                    _arrays),
    "ravel": (lambda x: fnp.reshape(x, (-1,)), 1, _any),
    "transpose": (lambda x: x.T, 1, lambda s: len(s) == 2),
    "reshape_3x2": (lambda x: fnp.reshape(x, (3, 2)), 1, lambda s: int(np.prod(s)) == 6),
    "double_transpose": (lambda x: fnp.transpose(fnp.transpose(x)), 1, _any),
    "index_first": (lambda x: x[0], 1, _arrays),
    "slice_last": (lambda x: x[..., 1:], 1, lambda s: len(s) >= 1 and s[-1] > 1),
    "gather_last": (lambda x: x[..., np.array([2, 0, 0])], 1, lambda s: len(s) >= 1 and s[-1] == 3),
    "new_axis": (lambda x: x[None], 1, lambda s: len(s) <= 1),
    "broadcast_to": (lambda x: fnp.broadcast_to(x, (2, 3)), 1,
                     lambda s: _broadcastable(s, (2, 3)) and len(s) <= 2),
    "add": (lambda x, y: x + y, 2, _broadcastable),
    "sub": (lambda x, y: x - y, 2, _broadcastable),
    "mul": (lambda x, y: x * y, 2, _broadcastable),
    "div": (lambda x, y: x / (1.0 + y * y), 2, _broadcastable),
    "maximum": (fnp.maximum, 2, _broadcastable),
    "where": (lambda x, y: fnp.where(x > y, x * y, y - 1.0), 2, _broadcastable),
    "matmul": (fnp.matmul, 2, _matmul_ok),
    "scan": (_scan, 1, _arrays),
}


class RandomProgram:
    """Steps `(op, operand indices)` over a pool that starts with the inputs; the
    outputs are the pool entries at `outputs`."""

    def __init__(self, steps, outputs):
        self.steps, self.outputs = steps, outputs

    def __call__(self, *inputs):
        pool = list(inputs)
        for name, idx in self.steps:
            pool.append(OPS[name][0](*[pool[i] for i in idx]))
        return tuple(pool[i] for i in self.outputs)

    def __repr__(self):
        return f"RandomProgram({self.steps}, outputs={self.outputs})"


def _choices(shapes):
    """{op: the operand index tuples it accepts} for the values of these shapes."""
    out = {}
    for name, (_, arity, ok) in OPS.items():
        pairs = [(i,) for i in range(len(shapes))] if arity == 1 else \
            [(i, j) for i in range(len(shapes)) for j in range(len(shapes))]
        accepted = [idx for idx in pairs if ok(*[shapes[i] for i in idx])]
        if accepted:
            out[name] = accepted
    return out


@st.composite
def random_programs(draw):
    shapes = list(INPUT_SHAPES)
    steps = []
    for _ in range(draw(st.integers(1, 6))):
        choices = _choices(shapes)
        name = draw(st.sampled_from(sorted(choices)))
        idx = draw(st.sampled_from(choices[name]))
        probe = OPS[name][0](*[np.full(shapes[i], 0.5) for i in idx])
        shapes.append(np.shape(probe))
        steps.append((name, idx))
    return RandomProgram(steps, tuple(range(len(INPUT_SHAPES), len(shapes))))  # every step


@st.composite
def inputs(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    dtype = draw(st.sampled_from([np.float64, np.float64, np.float32]))
    return tuple(rng.uniform(-2, 2, s).astype(dtype) for s in INPUT_SHAPES)


def assert_simplify_agrees(fun, args):
    closed = fx.make_jaxpr(fun)(*args)
    simple = fx.simplify(closed)
    assert simple.out_avals == closed.out_avals
    # stable forms grow: log(logistic(x)) (2 equations) becomes 7, min(x, 0) - log1p(exp(-|x|))
    assert len(simple.eqns) <= 4 * len(closed.eqns) + 10
    with np.errstate(all="ignore"):
        want = closed(*args)
    assume(all(np.all(np.isfinite(w)) and np.max(np.abs(w), initial=0) < 1e6 for w in want))
    got = simple(*args)
    tol = 1e-9 if args[0].dtype == np.float64 else 2e-4
    for w, g in zip(want, got):
        assert np.asarray(g).dtype == np.asarray(w).dtype
        np.testing.assert_allclose(g, w, rtol=tol, atol=tol * (1 + np.max(np.abs(w), initial=0)))


@SETTINGS
@given(random_programs(), inputs())
@example(RandomProgram([("log_logistic", (i,)) for i in range(4)], outputs=(3, 4, 5, 6)),
         (np.ones((2, 3)), np.ones(3), np.array(1.5)))   # stable forms, 8 equations to 28
def test_simplified_random_programs_compute_the_same_values(program, args):
    assert_simplify_agrees(program, args)


def _weights(shape_):
    return 0.5 + np.cos(np.arange(int(np.prod(shape_)))).reshape(shape_)


@SETTINGS
@given(random_programs(), inputs())
def test_simplified_gradient_programs_compute_the_same_values(program, args):
    def loss(*xs):   # weighted, so that the cotangents are not uniform fills
        return sum(fnp.sum(out * _weights(np.shape(out)).astype(out.dtype)) for out in program(*xs))
    assert_simplify_agrees(fx.grad(loss, argnums=(0, 1, 2)), args)


@settings(max_examples=40, deadline=None, database=None)
@given(random_programs(), inputs())
def test_simplified_programs_with_assume_finite_compute_the_same_values(program, args):
    fx.config.update("simplify_assume_finite", True)
    try:
        assert_simplify_agrees(program, args)
    finally:
        fx.config.update("simplify_assume_finite", False)
