"""Random well-typed fxgrad programs, for differential testing of the interpreters.

A `RandomProgram` is a list of steps over a pool of values that starts with 1-3 float64
inputs of small random shapes: each step applies an op of `OPS` (tests/fuzz/ops.py) to
pool entries whose shapes it accepts, with parameters (axes, slices, subscripts, ...)
drawn for those shapes, and appends the result; the program returns the last step and
maybe the one before. `kink_margin` says how close inputs are to a kink of a program;
derivative checks skip inputs closer than `KINK_MARGIN`, so finite differences never
straddle one. `COUNTS` tallies what the differential tests checked.
"""
from __future__ import annotations

import collections
import functools
import itertools
from typing import Any

import numpy as np
from hypothesis import strategies as st

from .ops import OPS, margin

COUNTS: collections.Counter = collections.Counter()
KINK_MARGIN = 1e-3
INPUT_SHAPES = [(), (3,), (4,), (2, 3), (3, 3), (1, 3), (2, 1), (2, 2, 3)]
MAX_SIZE = 36

# ---------------------------------------------------------------- programs

class RandomProgram:
    """`steps`: (op name, operand indices into the pool, params); returns the pool entries
    at `outputs`, the pool being the inputs followed by the steps' results."""

    def __init__(self, in_shapes: list[tuple[int, ...]], steps: list[tuple], outputs: tuple[int, ...]):
        self.in_shapes, self.steps, self.outputs = in_shapes, steps, outputs

    def __call__(self, *inputs: Any) -> tuple[Any, ...]:
        pool = list(inputs)
        for name, idx, params in self.steps:
            pool.append(OPS[name].fn(params, *[pool[i] for i in idx]))
        return tuple(pool[i] for i in self.outputs)

    @property
    def modes(self) -> tuple[str, ...]:
        """The modes of differentiation that apply: ('fwd', 'rev'), one of them, or none."""
        ops = [OPS[name] for name, _, _ in self.steps]
        return tuple(m for m, excluded in (("fwd", any(op.rev_only for op in ops)),
                                           ("rev", any(op.fwd_only for op in ops))) if not excluded)

    def __repr__(self) -> str:
        lines = [f"RandomProgram(inputs {self.in_shapes}"]
        lines += [f"  v{len(self.in_shapes) + k} = {name}{params!r}({', '.join(f'v{i}' for i in idx)})"
                  for k, (name, idx, params) in enumerate(self.steps)]
        return "\n".join(lines + [f"  return {', '.join(f'v{i}' for i in self.outputs)})"])


@functools.lru_cache(maxsize=None)
def _params(name: str, shapes: tuple[tuple[int, ...], ...]) -> Any:
    return OPS[name].params(*shapes)


def _candidates(shapes: list[tuple[int, ...]]) -> dict[str, list[tuple[tuple[int, ...], Any]]]:
    """{op name: [(operand indices, params strategy)]} applicable to values of these shapes."""
    out = {}
    for name, op in OPS.items():
        found = []
        for idx in itertools.product(range(len(shapes)), repeat=op.arity):
            strategy = _params(name, tuple(shapes[i] for i in idx))
            if strategy is not None:
                found.append((idx, strategy))
        if found:
            out[name] = found
    return out


def _probe(name: str, idx: tuple[int, ...], params: Any, shapes: list) -> tuple[int, ...]:
    return np.shape(OPS[name].fn(params, *[np.full(shapes[i], 0.5) for i in idx]))


@st.composite
def programs(draw: Any, max_steps: int = 5) -> RandomProgram:
    """A random program over 1-3 float64 inputs with 1 to `max_steps` steps. Ops, operands
    and shapes are picked by a hypothesis-seeded `random.Random`, uniformly (a sampled_from
    leans towards its first items); op parameters are drawn from the ops' strategies."""
    rnd = draw(st.randoms(use_true_random=False))
    shapes = [rnd.choice(INPUT_SHAPES) for _ in range(rnd.choice([1, 2, 2, 3]))]
    num_inputs, steps = len(shapes), []
    for _ in range(rnd.randint(1, max_steps)):
        choices = _candidates(shapes)
        name = rnd.choice(sorted(choices))
        idx, strategy = rnd.choice(choices[name])
        params = draw(strategy)
        shape = _probe(name, idx, params, shapes)
        if int(np.prod(shape)) <= MAX_SIZE and len(shape) <= 4 and 0 not in shape:
            shapes.append(shape)
            steps.append((name, idx, params))
    if not steps:   # every step was too big: one elementwise step
        steps.append(("sin", (0,), ()))
        shapes.append(shapes[0])
    last = len(shapes) - 1
    extra = rnd.choice([(), (last - 1,)]) if last - 1 >= num_inputs else ()
    return RandomProgram(shapes[:num_inputs], steps, extra + (last,))


@st.composite
def inputs(draw: Any, shapes: list[tuple[int, ...]]) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    return tuple(rng.uniform(-2.0, 2.0, s) for s in shapes)


@st.composite
def programs_and_inputs(draw: Any, max_steps: int = 5) -> tuple[RandomProgram, tuple]:
    program = draw(programs(max_steps))
    return program, draw(inputs(program.in_shapes))


def kink_margin(program: RandomProgram, args: tuple) -> float:
    """How close `args` are to a kink of `program` (inf for a smooth program)."""
    with margin() as m, np.errstate(all="ignore"):
        program(*args)
    return m[0]

