"""The program simplifier: rewrites a program into an equivalent, smaller one.

See `passes` for the passes and `simplify` / `simplify_program` for the entry points.
"""
from fxgrad.simplify.passes import simplify, simplify_program
from fxgrad.simplify import rules as _rules  # noqa: F401  (registers the rewrite rules)
from fxgrad.simplify import scan as _scan  # noqa: F401  (registers push_out_accumulations, prune_scan_outputs)

__all__ = ["simplify", "simplify_program"]
