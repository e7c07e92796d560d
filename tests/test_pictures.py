"""fx.to_dot and fx.render: the DOT text's structure (nodes, edges, clusters for
sub-programs), its validity, and rendering with and without Graphviz installed."""
import re
import stat
import sys

import numpy as np
import pytest

import fxgrad as fx
import fxgrad.numpy as fnp
from fxgrad import pictures

NODE = re.compile(r'^\s*(n\d+) \[label="((?:[^"\\]|\\.)*)", [^\n]*\];$')
EDGE = re.compile(r"^\s*(n\d+) -> (n\d+)(?: \[[^\n]*\])?;$")
OTHER = re.compile(r"^\s*(digraph \w+ \{|subgraph cluster_\d+ \{|\}|"
                   r"(compound|label|node|edge)\b.*;)$")


def parse(dot):
    """Nodes (id -> label), edges and cluster count; fails on any other statement."""
    nodes, edges, clusters = {}, [], 0
    for line in dot.splitlines():
        if (m := NODE.match(line)):
            assert m.group(1) not in nodes, line
            nodes[m.group(1)] = m.group(2)
        elif (m := EDGE.match(line)):
            edges.append((m.group(1), m.group(2), line))
        else:
            assert OTHER.match(line), f"not a DOT statement: {line!r}"
            clusters += line.strip().startswith("subgraph")
    assert dot.count("{") == dot.count("}")
    assert all(src in nodes and dst in nodes for src, dst, _ in edges)
    return nodes, edges, clusters


def labels_of(nodes, *names):
    return [label for label in nodes.values() if label.split("\\n")[0] in names]


def test_grad_x2_nodes_and_edges():
    nodes, edges, clusters = parse(fx.to_dot(fx.make_jaxpr(fx.grad(lambda x: x ** 2))(4.0)))
    # input a, 3 equations, literals 2.0 and 1.0, one output
    assert len(nodes) == 7 and clusters == 0
    assert labels_of(nodes, "integer_pow[y=1]") == ["integer_pow[y=1]\\nb:f64[]"]
    assert labels_of(nodes, "mul") == ["mul\\nc:f64[]", "mul\\nd:f64[]"]
    assert {"a:f64[]", "2.0", "1.0", "out 0: d"} <= set(nodes.values())
    # a -> pow -> mul(2.0) -> mul(1.0) -> out
    assert len(edges) == 6
    by_label = {v: k for k, v in nodes.items()}
    assert (by_label["1.0"], by_label["mul\\nd:f64[]"]) in [(s, d) for s, d, _ in edges]


def test_constants_params_and_fan_out():
    W = np.ones((2, 3))
    closed = fx.make_jaxpr(lambda x: fnp.sum(W * x, axis=0) + fnp.sum(x))(np.zeros((2, 3)))
    nodes, edges, _ = parse(fx.to_dot(closed))
    assert "const a:f64[2,3]" in nodes.values()
    assert any(label.startswith("reduce_sum[axes=(0,)]\\n") for label in nodes.values())
    x_id = next(k for k, v in nodes.items() if v == "b:f64[2,3]")
    assert sum(src == x_id for src, _, _ in edges) == 2      # x feeds mul and the full sum
    assert len(nodes) == len(closed.program.invars) + len(closed.eqns) + 1
    # data-flow edges: one per operand and per result
    operands = sum(len(e.inputs) for e in closed.eqns)
    assert len(edges) == operands + 1


def test_scan_body_is_a_cluster_hung_from_its_equation():
    closed = fx.make_jaxpr(lambda xs: fx.scan(lambda c, x: (c + x, c * x), 0.0, xs))(np.zeros(3))
    dot = fx.to_dot(closed)
    nodes, edges, clusters = parse(dot)
    assert clusters == 1 and 'label="scan: program"' in dot
    scan_label = "scan[num_consts=0, num_carry=1, length=3, reverse=False]\\nb:f64[] c:f64[3]"
    assert scan_label in nodes.values()
    # outer: a, scan, 0.0, 2 outputs; body: 2 inputs, add, mul, 2 outputs
    assert len(nodes) == 5 + 6
    hung = [line for _, _, line in edges if "lhead=cluster_0" in line]
    assert len(hung) == 1 and "style=dashed" in hung[0]
    # both scan results leave the multi-output node with their variable names
    assert sum('[label="b"]' in line or '[label="c"]' in line for _, _, line in edges) == 2


def test_cond_branches_and_nested_clusters():
    inner = lambda x: fx.scan(lambda c, y: (c * y, c), 1.0, x)[0]
    closed = fx.make_jaxpr(lambda p, x: fx.cond(p, inner, fnp.sum, x))(True, np.ones(3))
    dot = fx.to_dot(closed)
    _, _, clusters = parse(dot)
    assert clusters == 3
    assert 'label="cond: branches[0]"' in dot and 'label="cond: branches[1]"' in dot
    assert re.search(r"subgraph cluster_\d+ \{\n\s+label=\"scan: program\"", dot)


def test_program_and_closed_program_draw_alike_and_bad_input():
    closed = fx.make_jaxpr(lambda x: fnp.sin(x) * 2.0)(1.0)
    assert fx.to_dot(closed) == fx.to_dot(closed.program)
    assert fx.to_dot(closed, name="my graph").startswith('digraph "my graph" {')
    with pytest.raises(fx.FxValueError, match="Program or ClosedProgram"):
        fx.to_dot(lambda x: x)


def test_labels_escape_quotes():
    assert pictures._quote('a"b\\c\nd') == '"a\\"b\\\\c\\nd"'


def grad_x2():
    return fx.make_jaxpr(fx.grad(lambda x: x ** 2))(4.0)


def test_render_without_graphviz_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr(pictures, "_dot_executable", lambda: None)
    with pytest.raises(fx.FxgradError) as info:
        fx.render(grad_x2(), tmp_path / "g.svg")
    message = str(info.value)
    for hint in ("apt-get install graphviz", "brew install graphviz", "conda install graphviz"):
        assert hint in message
    assert not (tmp_path / "g.svg").exists()


def fake_dot(tmp_path, exit_code=0):
    """A stand-in `dot`: checks its arguments and writes the DOT text it was given."""
    script = tmp_path / "dot"
    script.write_text(f"#!{sys.executable}\n"
                      "import sys\n"
                      "fmt, flag, out = sys.argv[1:]\n"
                      "assert flag == '-o'\n"
                      "text = sys.stdin.read()\n"
                      f"if {exit_code}: sys.stderr.write('syntax error'); sys.exit({exit_code})\n"
                      "open(out, 'w').write(fmt + '\\n' + text)\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


@pytest.mark.parametrize("ext", ["svg", "png", "pdf"])
def test_render_runs_dot_with_the_format_of_the_extension(monkeypatch, tmp_path, ext):
    monkeypatch.setattr(pictures, "_dot_executable", lambda: fake_dot(tmp_path))
    out = tmp_path / f"grad.{ext}"
    assert fx.render(grad_x2(), out) == str(out)
    written = out.read_text()
    assert written == f"-T{ext}\n" + fx.to_dot(grad_x2())


def test_render_reports_dot_failures_and_unknown_formats(monkeypatch, tmp_path):
    monkeypatch.setattr(pictures, "_dot_executable", lambda: fake_dot(tmp_path, exit_code=3))
    with pytest.raises(fx.FxgradError, match="exit status 3: syntax error"):
        fx.render(grad_x2(), tmp_path / "g.svg")
    with pytest.raises(fx.FxValueError, match=r"\.svg, \.png, \.pdf"):
        fx.render(grad_x2(), tmp_path / "g.jpeg")
    monkeypatch.setattr(pictures, "_dot_executable", lambda: fake_dot(tmp_path))
    fx.render(grad_x2(), tmp_path / "picture", format="PNG")
    assert (tmp_path / "picture").read_text().startswith("-Tpng\n")


def test_render_with_this_machines_graphviz(tmp_path):
    """Real Graphviz when installed (a nested program renders to SVG), else the hint."""
    closed = fx.make_jaxpr(lambda p, x: fx.cond(p, lambda x: x * 2.0, fnp.sin, x))(True, 1.0)
    out = tmp_path / "cond.svg"
    if pictures._dot_executable() is None:
        with pytest.raises(fx.FxgradError, match="apt-get install graphviz"):
            fx.render(closed, out)
    else:
        fx.render(closed, out)
        svg = out.read_text()
        assert "<svg" in svg and "cond: branches[1]" in svg and "sin" in svg
