"""The program simplifier: rewrites a program into an equivalent, smaller one.

See `passes` for the passes and `simplify` / `simplify_program` for the entry points.
"""
from fxgrad.simplify.passes import simplify, simplify_program

__all__ = ["simplify", "simplify_program"]
