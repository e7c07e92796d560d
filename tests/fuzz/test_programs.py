"""The random-program generator itself: its ops reach every primitive of the catalogue
(so a new primitive must be given an op in tests/fuzz/programs.py, or an excuse here),
and the kink margins see the kinks."""
import itertools
import sys

import numpy as np
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

import fxgrad as fx
from fxgrad.core import trace
from fxgrad.interpreters.evaluation import impl_rules

from .ops import OPS
from .programs import INPUT_SHAPES, RandomProgram

# Primitives no op needs to reach, and why.
EXCLUDED: dict[str, str] = {}


def _first_applicable(op):
    for shapes in itertools.product(INPUT_SHAPES[1:], repeat=op.arity):
        strategy = op.params(*shapes)
        if strategy is not None:
            return shapes, strategy
    raise AssertionError(f"no input shapes suit {op}")


def _exercise(f, args, op):
    """Run f through evaluation, tracing, both modes of differentiation and vmap."""
    f(*args)
    fx.make_jaxpr(f)(*args)
    loss = lambda *xs: sum(fx.numpy.sum(o) for o in f(*xs))  # noqa: E731
    if not op.rev_only:
        fx.jvp(f, args, args)
        fx.make_jaxpr(lambda *xs: fx.jvp(f, xs, xs)[1])(*args)
    if not op.fwd_only:
        fx.grad(loss, tuple(range(len(args))))(*args)
        fx.make_jaxpr(fx.grad(loss, tuple(range(len(args)))))(*args)
    fx.vmap(f)(*[np.stack([a, a + 1.0]) for a in args])


def _catalogue():
    """The primitives of fxgrad's catalogue (not ones that other test modules define)."""
    modules = [m for name, m in sorted(sys.modules.items())
               if name.startswith("fxgrad.primitives.") and m is not None]
    return {prim.name for prim in impl_rules
            if any(prim in vars(m).values() for m in modules)}


@settings(max_examples=1, derandomize=True, deadline=None, database=None, phases=[Phase.generate])
@given(st.data())
def test_the_ops_reach_every_primitive_of_the_catalogue(data):
    seen = set()
    bind = trace.bind

    def recording_bind(prim, args, params):
        seen.add(prim.name)
        return bind(prim, args, params)
    trace.bind = recording_bind
    try:
        rng = np.random.default_rng(0)
        for name, op in OPS.items():
            shapes, strategy = _first_applicable(op)
            step = (name, tuple(range(op.arity)), data.draw(strategy))
            program = RandomProgram(list(shapes), [step], (op.arity,))
            _exercise(program, tuple(rng.uniform(-2, 2, s) for s in shapes), op)
    finally:
        trace.bind = bind
    catalogue = _catalogue()
    assert catalogue - set(EXCLUDED) - seen == set()
    assert set(EXCLUDED) <= catalogue - seen, "an excluded primitive is reached: drop its excuse"
