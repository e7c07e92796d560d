"""Every example script runs to completion, and every `>>>` example in the Markdown
documentation (README.md, docs/*.md) produces the output it shows.

Examples are discovered with glob, so a new examples/*.py is covered automatically.
Each runs in a fresh interpreter, as a user would run it, and asserts its own results.
"""
import doctest
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
MARKDOWN = [page for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
            if ">>> " in page.read_text(encoding="utf-8")]


def test_examples_exist():
    assert (ROOT / "examples" / "demo.py") in EXAMPLES


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(script):
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            timeout=120, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, f"{script.name} failed:\n{result.stdout}\n{result.stderr}"
    assert result.stdout.strip(), f"{script.name} printed nothing"


@pytest.mark.parametrize("page", MARKDOWN, ids=lambda p: p.name)
def test_markdown_doctests(page):
    flags = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS
    failed, _ = doctest.testfile(str(page), module_relative=False, optionflags=flags,
                                 encoding="utf-8")
    assert failed == 0, f"{page.name}: {failed} doctest example(s) failed (see output above)"
