"""The program simplifier: rewrites a program into an equivalent, smaller one.

See `passes` for the passes and `simplify` / `simplify_program` for the entry points.
"""
from fxgrad.simplify.passes import simplify, simplify_program
from fxgrad.simplify import rules as _rules  # noqa: F401  (registers the rewrite rules)

__all__ = ["simplify", "simplify_program"]
