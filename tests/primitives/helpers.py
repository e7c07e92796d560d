"""Helpers shared by the table-driven primitive-family tests."""
import numpy as np

from fxgrad.primitives.arith import mul


def rand(*shapes, seed=0):
    """Uniform(-2, 2) arrays of the given shapes."""
    rng = np.random.default_rng(seed)
    return tuple(rng.uniform(-2.0, 2.0, s) for s in shapes)


def case_ids(cases):
    """pytest ids: the first field (the name) of each case."""
    return [c[0] for c in cases]


def squared(fn):
    """fn(...)**2, so second derivatives of a linear fn are not identically zero."""
    def f(*args):
        y = fn(*args)
        return mul(y, y)
    return f
