"""Every public function of fxgrad.numpy -- and of fxgrad.numpy.linalg, where that module
exists -- has a docstring: a one-line summary and a `>>>` example that pytest's
`--doctest-modules` finds and runs. numpy's own constants, dtypes and dtype utilities,
re-exported as they are, are numpy's to document.
"""
from __future__ import annotations

import doctest
import functools
import importlib
import importlib.util
import inspect
from types import ModuleType
from typing import Any

import pytest

import fxgrad.numpy as fnp


def _modules() -> list[ModuleType]:
    """fxgrad.numpy, and fxgrad.numpy.linalg if it exists (an import error there fails)."""
    found = importlib.util.find_spec("fxgrad.numpy.linalg") is not None
    return [fnp] + ([importlib.import_module("fxgrad.numpy.linalg")] if found else [])


def _is_numpys(obj: Any) -> bool:
    module = getattr(obj, "__module__", None) or ""
    return module == "numpy" or module.startswith("numpy.")


def _public_names(module: ModuleType) -> list[str]:
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n, obj in vars(module).items() if not inspect.ismodule(obj)
                 and getattr(obj, "__module__", None) == module.__name__]
    return sorted(n for n in names if not n.startswith("_"))


def _is_documented_here(obj: Any) -> bool:
    """A callable fxgrad defines (classes such as exceptions are documented elsewhere)."""
    return callable(obj) and not isinstance(obj, type) and not _is_numpys(obj)


FUNCTIONS = [(m.__name__, name) for m in _modules() for name in _public_names(m)
             if _is_documented_here(getattr(m, name))]


def _function(module_name: str, name: str) -> Any:
    return getattr(importlib.import_module(module_name), name)


def test_the_list_covers_fxgrad_numpy():
    names = {name for module, name in FUNCTIONS if module == "fxgrad.numpy"}
    assert len(names) >= 150
    assert {"sin", "add", "where", "sum", "reshape", "einsum", "matmul", "take", "zeros",
            "result_type"} <= names
    assert "float32" not in names and "finfo" not in names and "broadcast_shapes" not in names


@pytest.mark.parametrize("module", [m.__name__ for m in _modules()])
def test_every_public_callable_is_fxgrads_or_numpys(module):
    mod = importlib.import_module(module)
    for name in _public_names(mod):
        obj = getattr(mod, name)
        if callable(obj):
            assert getattr(obj, "__module__", "").startswith("fxgrad.") or _is_numpys(obj), (
                f"{module}.{name} is neither an fxgrad function nor numpy's own object")


@pytest.mark.parametrize("module,name", FUNCTIONS, ids=lambda v: v)
def test_public_function_has_a_summary_and_an_example(module, name):
    doc = inspect.getdoc(_function(module, name)) or ""
    summary = doc.split("\n", 1)[0].strip()
    assert summary and not summary.startswith(">>>"), (
        f"{module}.{name} needs a docstring that starts with a one-line summary")
    assert ">>>" in doc, (f"{module}.{name} needs a `>>>` example in its docstring "
                          "(pytest runs it as a doctest)")


@functools.lru_cache(maxsize=None)
def _doctested_docstrings(module_name: str) -> frozenset[str]:
    """The docstrings of `module_name` in which doctest (so --doctest-modules) finds examples."""
    tests = doctest.DocTestFinder().find(importlib.import_module(module_name))
    return frozenset(test.docstring for test in tests if test.examples)


@pytest.mark.parametrize("module,name", FUNCTIONS, ids=lambda v: v)
def test_the_example_is_collected_as_a_doctest(module, name):
    fn = _function(module, name)
    assert fn.__doc__ in _doctested_docstrings(fn.__module__), (
        f"{module}.{name}: --doctest-modules does not find its example in {fn.__module__}")
