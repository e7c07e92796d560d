"""The public API stays documented: every public callable of fxgrad, fxgrad.tree_util and
fxgrad.test_util has a docstring with a runnable example, and the documentation site
(mkdocs.yml, docs/api/) lists every page and every public name.

pytest's --doctest-modules runs the examples of functions defined under fxgrad/; those
defined elsewhere (`fx.stop_gradient` lives in primitives/) are run here.
"""
import doctest
import inspect
import pathlib
import re

import pytest

import fxgrad
import fxgrad.test_util
import fxgrad.tree_util

ROOT = pathlib.Path(__file__).resolve().parent.parent
FXGRAD_DIR = ROOT / "fxgrad"


def _defined_in(module):
    """Public callables that `module` defines itself (not the names it imports)."""
    return [(module.__name__, name) for name, obj in vars(module).items()
            if not name.startswith("_") and callable(obj)
            and getattr(obj, "__module__", None) == module.__name__]


PUBLIC = ([("fxgrad", name) for name in fxgrad.__all__
           if callable(getattr(fxgrad, name)) and not inspect.ismodule(getattr(fxgrad, name))]
          + _defined_in(fxgrad.tree_util) + _defined_in(fxgrad.test_util))


def _obj(module_name, name):
    return getattr({"fxgrad": fxgrad, "fxgrad.tree_util": fxgrad.tree_util,
                    "fxgrad.test_util": fxgrad.test_util}[module_name], name)


def _source_file(obj):
    try:
        return pathlib.Path(inspect.getsourcefile(obj)).resolve()
    except TypeError:
        return None


def test_public_list_is_complete():
    names = {name for _, name in PUBLIC}
    assert {"grad", "jit", "vmap", "scan", "stop_gradient", "FxgradError", "tree_map",
            "tree_leaves", "check_grads", "check_vmap"} <= names


@pytest.mark.parametrize("module_name,name", PUBLIC, ids=lambda v: v)
def test_public_callable_has_an_example(module_name, name):
    doc = inspect.getdoc(_obj(module_name, name)) or ""
    assert ">>>" in doc, (f"{module_name}.{name} needs a docstring with a `>>>` example "
                          "(pytest runs it as a doctest)")


OUTSIDE = [(m, n) for m, n in PUBLIC
           if FXGRAD_DIR not in (_source_file(_obj(m, n)) or FXGRAD_DIR).parents]


@pytest.mark.parametrize("module_name,name", OUTSIDE, ids=lambda v: v)
def test_examples_outside_the_package_run(module_name, name):
    obj = _obj(module_name, name)
    flags = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS
    runner = doctest.DocTestRunner(optionflags=flags)
    for test in doctest.DocTestFinder(recurse=False).find(obj, name, globs={}):
        runner.run(test)
    assert runner.tries > 0 and runner.failures == 0, f"{name}: {runner.failures} failed"


def _api_directives():
    """The `::: dotted.path` directives of docs/api/*.md, by their last component."""
    paths = [m.group(1) for page in sorted((ROOT / "docs" / "api").glob("*.md"))
             for m in re.finditer(r"^::: (\S+)", page.read_text(encoding="utf-8"), re.M)]
    return set(paths), {p.rsplit(".", 1)[-1] for p in paths}


@pytest.mark.parametrize("name", fxgrad.__all__)
def test_api_reference_covers_public_name(name):
    paths, last = _api_directives()
    obj = getattr(fxgrad, name)
    covered = (f"fxgrad.{name}" in paths if inspect.ismodule(obj)
               else name in last or type(obj).__name__ in last)
    assert covered, f"fxgrad.{name} is missing from the API reference: add `::: ...` to docs/api/"


def _namespace_modules():
    """The modules whose functions the reference lists: those defining the functions of
    fxgrad.numpy, and the public submodules of fxgrad.numpy and fxgrad.scipy that declare
    an `__all__` (`fnp.linalg`, `fxgrad.scipy.special`)."""
    import importlib
    import fxgrad.numpy as fnp
    found = {getattr(fnp, name).__module__ for name in fnp.__all__
             if inspect.isfunction(getattr(fnp, name))}
    for package in ("numpy", "scipy"):
        for path in (FXGRAD_DIR / package).glob("[!_]*.py"):
            module = importlib.import_module(f"fxgrad.{package}.{path.stem}")
            if hasattr(module, "__all__"):
                found.add(module.__name__)
    return sorted(m for m in found if m.startswith("fxgrad.") and "._" not in m)


@pytest.mark.parametrize("module", ["fxgrad.tree_util", "fxgrad.test_util", "fxgrad.numpy",
                                    *_namespace_modules()])
def test_api_reference_covers_module(module):
    paths, _ = _api_directives()
    assert module in paths, f"{module} is missing from the API reference: add `::: {module}`"


def test_every_page_is_in_the_nav():
    entries = re.findall(r"^\s*- (?:[^:\n]+: )?(\S+\.md)\s*$",
                         (ROOT / "mkdocs.yml").read_text(encoding="utf-8"), re.M)
    assert len(entries) == len(set(entries)), f"pages listed twice in the nav: {sorted(entries)}"
    nav = set(entries)
    pages = {p.relative_to(ROOT / "docs").as_posix() for p in (ROOT / "docs").rglob("*.md")}
    assert pages - nav == set(), f"pages missing from the nav in mkdocs.yml: {sorted(pages - nav)}"
    assert nav - pages == set(), f"nav entries without a page: {sorted(nav - pages)}"
