"""The public API is fully typed: every public function (and public class constructor) of
fxgrad, fxgrad.numpy, fxgrad.numpy.linalg, fxgrad.scipy.linalg and fxgrad.scipy.special
annotates all its parameters and its return, and the package ships its `py.typed` marker.
Names re-exported from numpy (dtypes, constants) are not fxgrad's and are left out.
"""
import importlib
import inspect
import os

import pytest

import fxgrad

MODULES = ["fxgrad", "fxgrad.numpy", "fxgrad.numpy.linalg", "fxgrad.scipy.linalg",
           "fxgrad.scipy.special"]


def _own(obj):
    """`obj` if fxgrad defines it (a function, or a class's own __init__), else None."""
    if not getattr(obj, "__module__", "").startswith("fxgrad"):
        return None
    if inspect.isclass(obj):
        return obj.__dict__.get("__init__")
    return obj if callable(obj) else None


def public_callables():
    cases = []
    for name in MODULES:
        module = importlib.import_module(name)
        for attr in module.__all__:
            fn = _own(getattr(module, attr))
            if fn is not None:
                cases.append(pytest.param(fn, id=f"{name}.{attr}"))
    return cases


def missing_annotations(fn) -> list[str]:
    sig = inspect.signature(fn)
    missing = [p.name for p in sig.parameters.values()
               if p.name not in ("self", "cls") and p.annotation is inspect.Parameter.empty]
    if fn.__name__ != "__init__" and sig.return_annotation is inspect.Signature.empty:
        missing.append("return")
    return missing


CASES = public_callables()


def test_the_cases_cover_the_api():
    assert len(CASES) > 200


@pytest.mark.parametrize("fn", CASES)
def test_public_callable_is_fully_annotated(fn):
    assert missing_annotations(fn) == [], f"{fn.__qualname__} lacks annotations"


@pytest.mark.parametrize("fn, missing", [
    (lambda x, y: x, ["x", "y", "return"]),
    (lambda: None, ["return"]),
])
def test_missing_annotations_are_found(fn, missing):
    assert missing_annotations(fn) == missing


def test_py_typed_marker_is_shipped():
    assert os.path.isfile(os.path.join(os.path.dirname(fxgrad.__file__), "py.typed"))
