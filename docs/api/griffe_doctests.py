"""A griffe extension for the API reference: docstring examples become code blocks.

fxgrad's docstrings carry their examples as doctests (`>>> ...` lines and the output
they print) in free text, where pytest's `--doctest-modules` runs them. Markdown would
read `>>>` as three nested quotes, so before mkdocstrings renders a docstring this
extension wraps each run of example lines, up to the next blank line, in a fenced
Python block, and drops `# doctest:` directives, which mean nothing to a reader.
Loaded by mkdocs.yml (`extensions:` of the python handler).
"""
from __future__ import annotations

import re
from typing import Any

import griffe

_DIRECTIVE = re.compile(r"\s*#\s*doctest:.*$")


def fence_doctests(text: str) -> str:
    """`text` with each doctest example (a `>>>` line to the next blank line) fenced;
    examples already inside a fenced block are left alone."""
    out: list[str] = []
    indent, fenced = None, False
    for line in text.splitlines():
        if indent is None and line.lstrip().startswith("```"):
            fenced = not fenced
        elif indent is None and not fenced and line.lstrip().startswith(">>>"):
            indent = line[:len(line) - len(line.lstrip())]
            out.append(indent + "```python")
        elif indent is not None and not line.strip():
            out.append(indent + "```")
            indent = None
        out.append(_DIRECTIVE.sub("", line) if indent is not None else line)
    if indent is not None:
        out.append(indent + "```")
    return "\n".join(out)


class DoctestFences(griffe.Extension):
    """Fence the doctest examples of every docstring griffe loads."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None and ">>>" in obj.docstring.value:
            obj.docstring.value = fence_doctests(obj.docstring.value)
