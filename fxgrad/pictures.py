"""Pictures of programs: Graphviz DOT text, and files rendered from it.

`to_dot(program)` draws a program as a data-flow graph: one node per input,
constant, inline literal, equation and result, and an edge wherever a value flows
from where it is made to where it is used. Equation nodes are labelled as the
printer writes them (`reduce_sum[axes=(0,)]`) with their typed outputs, and the
variables keep the printer's names, so a picture and `print(program)` read side by
side. A sub-program (a scan body, the branches of a cond) is drawn as a cluster
hung from its equation by a dashed edge. `render(program, "grad.svg")` runs
Graphviz's `dot` executable to turn the text into svg, png or pdf.
"""
from __future__ import annotations

import itertools
import os
import shutil
import subprocess
from typing import Any

from fxgrad.core.errors import FxgradError, FxValueError
from fxgrad.core.ir import ClosedProgram, Literal, Program, _Printer

FORMATS = ("svg", "png", "pdf")
_INSTALL_HINT = ("install Graphviz to render pictures: `apt-get install graphviz` (Debian, "
                 "Ubuntu), `brew install graphviz` (macOS) or `conda install graphviz`; "
                 "or write `fx.to_dot(program)` to a .dot file and render it elsewhere")

_STYLE = {
    "input": 'shape=ellipse, style=filled, fillcolor="#dbeafe"',
    "const": 'shape=box, style="filled,dashed", fillcolor="#e5e7eb"',
    "literal": 'shape=plaintext',
    "eqn": 'shape=box, style="rounded,filled", fillcolor="#fef3c7"',
    "output": 'shape=ellipse, style="bold,filled", fillcolor="#dcfce7"',
}


def _quote(text: str) -> str:
    """A DOT string literal; `\\n` in `text` stays a DOT line break."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _sub_programs(eqn: Any) -> list[tuple[str, Program]]:
    """The programs among an equation's params, named `program` or `branches[1]`."""
    found = []
    for key, value in eqn.params.items():
        if isinstance(value, Program):
            found.append((key, value))
        elif isinstance(value, tuple) and value and all(isinstance(v, Program) for v in value):
            found.extend((f"{key}[{i}]", v) for i, v in enumerate(value))
    return found


class _DotWriter:
    """Collects DOT statements; node ids are unique across nested programs."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.num_nodes = 0
        self.clusters = itertools.count()

    def node(self, kind: str, label: str, indent: str) -> str:
        node_id = f"n{self.num_nodes}"
        self.num_nodes += 1
        self.lines.append(f"{indent}{node_id} [label={_quote(label)}, {_STYLE[kind]}];")
        return node_id

    def edge(self, src: str, dst: str, indent: str, attrs: str = "") -> None:
        self.lines.append(f"{indent}{src} -> {dst}{f' [{attrs}]' if attrs else ''};")

    def program(self, program: Program, indent: str) -> str | None:
        """Write `program`'s nodes and edges; the id of its first node (None if empty)."""
        printer, made_by = _Printer(), {}
        first = self.num_nodes
        for i, v in enumerate(program.invars):
            kind, prefix = ("const", "const ") if i < program.num_consts else ("input", "")
            made_by[id(v)] = (self.node(kind, prefix + printer.binder(v), indent), False)
        for eqn in program.eqns:
            self.equation(eqn, printer, made_by, indent)
        for i, atom in enumerate(program.outvars):
            out = self.node("output", f"out {i}: {printer.name(atom)}", indent)
            self.use(atom, out, printer, made_by, indent)
        return f"n{first}" if self.num_nodes > first else None

    def equation(self, eqn: Any, printer: _Printer, made_by: dict, indent: str) -> None:
        subs = _sub_programs(eqn)
        shown = {k: v for k, v in eqn.params.items() if k not in {s.split("[")[0] for s, _ in subs}}
        params = ", ".join(f"{k}={printer.param(v, 0)}" for k, v in shown.items())
        outs = " ".join(printer.binder(v) for v in eqn.outputs) or "_"
        label = f"{eqn.prim.name}{f'[{params}]' if params else ''}\n{outs}"
        node_id = self.node("eqn", label, indent)
        for atom in eqn.inputs:
            self.use(atom, node_id, printer, made_by, indent)
        for v in eqn.outputs:
            made_by[id(v)] = (node_id, len(eqn.outputs) > 1)
        for name, sub in subs:
            self.cluster(node_id, f"{eqn.prim.name}: {name}", sub, indent)

    def use(self, atom: Any, dst: str, printer: _Printer, made_by: dict, indent: str) -> None:
        if isinstance(atom, Literal):
            self.edge(self.node("literal", repr(atom), indent), dst, indent)
            return
        src, several = made_by[id(atom)]
        self.edge(src, dst, indent, f"label={_quote(printer.name(atom))}" if several else "")

    def cluster(self, owner: str, label: str, sub: Program, indent: str) -> None:
        name = f"cluster_{next(self.clusters)}"
        self.lines.append(f"{indent}subgraph {name} {{")
        self.lines.append(f'{indent}  label={_quote(label)}; style="rounded,dashed";')
        head = self.program(sub, indent + "  ")
        self.lines.append(f"{indent}}}")
        if head is not None:
            self.edge(owner, head, indent, f"lhead={name}, style=dashed, arrowhead=odot")


def _as_program(program: Any) -> Program:
    if isinstance(program, ClosedProgram):
        return program.program
    if isinstance(program, Program):
        return program
    raise FxValueError(f"to_dot expects a Program or ClosedProgram (what fx.make_jaxpr "
                       f"returns), got {type(program).__name__}")


def to_dot(program: Program | ClosedProgram, name: str = "program") -> str:
    """Graphviz DOT text of a program's data flow.

    >>> import fxgrad as fx
    >>> print(fx.to_dot(fx.make_jaxpr(lambda x: x * 2.0)(1.0)))  # doctest: +ELLIPSIS
    digraph program {
    ...
      n0 [label="a:f64[]", ...];
      n1 [label="mul\\nb:f64[]", ...];
      n0 -> n1;
    ...
    """
    writer = _DotWriter()
    writer.program(_as_program(program), "  ")
    header = [f"digraph {_quote(name) if not name.isidentifier() else name} {{",
              "  compound=true; rankdir=TB;",
              '  node [fontname="monospace", fontsize=11];',
              '  edge [fontname="monospace", fontsize=9];']
    return "\n".join([*header, *writer.lines, "}"])


def _dot_executable() -> str | None:
    """The path of Graphviz's `dot`, or None when Graphviz is not installed."""
    return shutil.which("dot")


def render(program: Program | ClosedProgram, path: str | os.PathLike[str],
           format: str | None = None) -> str:
    """Draw `program` into `path` with Graphviz; the format comes from the extension.

    Returns the path written. Raises `FxgradError` saying how to install Graphviz
    when its `dot` executable cannot be found.

    >>> import fxgrad as fx, os, tempfile
    >>> program = fx.make_jaxpr(fx.grad(lambda x: x * x))(3.0)
    >>> path = os.path.join(tempfile.mkdtemp(), "grad.svg")
    >>> try:
    ...     done = fx.render(program, path) == path and os.path.getsize(path) > 0
    ... except fx.FxgradError as e:      # no Graphviz here: the error says how to get it
    ...     done = "install Graphviz" in str(e)
    >>> done
    True
    """
    path = os.fspath(path)
    fmt = (format or os.path.splitext(path)[1].lstrip(".")).lower()
    if fmt not in FORMATS:
        raise FxValueError(f"render: cannot tell the picture format of {path!r}; use a "
                           f"file name ending in {', '.join('.' + f for f in FORMATS)} "
                           "or pass format=")
    text = to_dot(program)
    dot = _dot_executable()
    if dot is None:
        raise FxgradError(f"render: Graphviz's `dot` executable was not found; {_INSTALL_HINT}")
    done = subprocess.run([dot, f"-T{fmt}", "-o", path], input=text.encode(),
                          capture_output=True, check=False)
    if done.returncode != 0:
        raise FxgradError(f"render: `dot -T{fmt}` failed with exit status {done.returncode}: "
                          f"{done.stderr.decode(errors='replace').strip()}")
    return path
