"""Operators, methods and numpy protocols of `Tracer`, installed by `install()`.

Importing fxgrad.numpy gives tracers numpy's array interface: arithmetic and comparison
operators (with reflected forms), `x[idx]`, `.T`, and methods such as `.sum()` or
`.reshape()`, each the fxgrad.numpy function of the same name. Plain numpy also works
on tracers where fxgrad.numpy has an equivalent: `__array_ufunc__` sends `np.sin(t)`
or `ndarray + t` to `fnp.sin`/`fnp.add` (and `np.add.reduce` to `fnp.sum`), and
`__array_function__` sends `np.sum(t)` to `fnp.sum`. Anything else raises an error
naming the numpy function. `&`, `|`, `^` and `~` are logical on bools; `~` is also
`-x - 1` on signed integers (two's complement); other bitwise operations have no
primitive.
"""
from __future__ import annotations

import functools
from typing import Any, Callable

import numpy as np

from fxgrad.core.errors import FxTypeError, TracerArrayConversionError, at_user_line
from fxgrad.core.trace import Tracer
from fxgrad.numpy import creation, dot, elementwise as ew, indexing, reductions, shaping


class NoNumpyEquivalentError(FxTypeError, TracerArrayConversionError):
    """A numpy function or ufunc with no fxgrad.numpy equivalent met a traced value."""


def _no_equivalent(what: str) -> NoNumpyEquivalentError:
    return NoNumpyEquivalentError(at_user_line(
        f"{what} was called on a traced value, but it has no fxgrad.numpy equivalent, so it "
        "cannot see through transformations; express it with fxgrad.numpy functions "
        "(import fxgrad.numpy as fnp)"))


def _namespace() -> Any:
    import fxgrad.numpy as fnp
    return fnp


# ---------------------------------------------------------------- operators

def _forward(fn: Callable[..., Any]) -> Callable[..., Any]:
    return lambda self, other: fn(self, other)


def _reflected(fn: Callable[..., Any]) -> Callable[..., Any]:
    return lambda self, other: fn(other, self)


def _is_bool(x: Any) -> bool:
    return isinstance(x, (bool, np.bool_)) or getattr(x, "dtype", None) == np.dtype(bool)


def _bool_only(fn: Callable[..., Any], symbol: str) -> Callable[..., Any]:
    """A bitwise operator that exists for bool operands only (as logical and/or/xor)."""
    def op(x: Any, y: Any) -> Any:
        if not all(_is_bool(v) for v in (x, y)):
            raise FxTypeError(at_user_line(
                f"`{symbol}` on traced values is supported for bool operands only (as a "
                "logical operation); there are no bitwise primitives for integers"))
        return fn(x, y)
    return op


def _invert(x: Any) -> Any:
    if x.dtype == np.dtype(bool):
        return ew.logical_not(x)
    if x.dtype.kind == "i":
        return ew.subtract(ew.negative(x), 1)   # two's complement: ~x = -x - 1
    raise FxTypeError(at_user_line(f"`~` is not supported for traced {x.dtype} values"))


def _round(x: Any, ndigits: Any = None) -> Any:
    return ew.round(x, 0 if ndigits is None else ndigits)


def _setitem(self: Any, idx: Any, value: Any) -> None:
    raise FxTypeError(at_user_line(
        "traced arrays are immutable and do not support item assignment; build the "
        "result with fnp.where, fnp.concatenate or arithmetic instead"))


_BINARY: dict[str, Callable[..., Any]] = {
    "add": ew.add, "sub": ew.subtract, "mul": ew.multiply, "truediv": ew.divide,
    "floordiv": ew.floor_divide, "mod": ew.remainder, "pow": ew.power, "matmul": dot.matmul,
    "and": _bool_only(ew.logical_and, "&"), "or": _bool_only(ew.logical_or, "|"),
    "xor": _bool_only(ew.logical_xor, "^"),
}

_COMPARISONS: dict[str, Callable[..., Any]] = {"lt": ew.less, "le": ew.less_equal, "gt": ew.greater, "ge": ew.greater_equal,
                "eq": ew.equal, "ne": ew.not_equal}

_UNARY: dict[str, Callable[..., Any]] = {"neg": ew.negative, "pos": ew.positive, "abs": ew.absolute, "invert": _invert,
          "round": _round, "getitem": indexing.getitem, "setitem": _setitem}


# ---------------------------------------------------------------- methods

def _reshape_method(self: Any, *shape: Any, order: str = "C") -> Any:
    return shaping.reshape(self, shape[0] if len(shape) == 1 else shape, order)


def _transpose_method(self: Any, *axes: Any) -> Any:
    picked: Any = axes
    if len(axes) == 1 and (axes[0] is None or isinstance(axes[0], (tuple, list))):
        picked = axes[0]
    return shaping.transpose(self, picked or None)


def _item(self: Any, *args: Any) -> Any:
    return self.concrete("item() of a traced value").item(*args)


def _tolist(self: Any) -> Any:
    return self.concrete("tolist() of a traced value").tolist()


_METHODS: dict[str, Callable[..., Any]] = {
    "sum": reductions.sum, "mean": reductions.mean, "std": reductions.std,
    "var": reductions.var,
    "prod": reductions.prod, "max": reductions.max, "min": reductions.min,
    "argmax": reductions.argmax, "argmin": reductions.argmin,
    "any": reductions.any, "all": reductions.all, "cumsum": reductions.cumsum,
    "reshape": _reshape_method, "transpose": _transpose_method, "ravel": shaping.ravel,
    "flatten": shaping.ravel, "squeeze": shaping.squeeze, "swapaxes": shaping.swapaxes,
    "repeat": shaping.repeat, "astype": ew.astype, "clip": ew.clip, "round": ew.round,
    "dot": dot.dot, "take": indexing.take, "diagonal": indexing.diagonal, "trace": indexing.trace,
    "copy": creation.copy, "item": _item, "tolist": _tolist,
}


# ---------------------------------------------------------------- numpy protocols

_UFUNC_REDUCTIONS: dict[str, Callable[..., Any]] = {"add": reductions.sum, "multiply": reductions.prod,
                     "maximum": reductions.max, "minimum": reductions.min,
                     "logical_and": reductions.all, "logical_or": reductions.any}


def _array_ufunc(self: Any, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
    if kwargs.get("out") is not None:
        raise FxTypeError(at_user_line(f"numpy.{ufunc.__name__}: `out=` cannot hold traced "
                                       "values; use the returned array"))
    kwargs.pop("out", None)
    name = ufunc.__name__
    if method == "__call__" and not kwargs and name in _ufunc_names():
        return getattr(_namespace(), name)(*inputs)
    if method == "reduce" and name in _UFUNC_REDUCTIONS and set(kwargs) <= {"axis", "keepdims"}:
        return _UFUNC_REDUCTIONS[name](inputs[0], kwargs.get("axis", 0),
                                       keepdims=kwargs.get("keepdims", False))
    if method == "accumulate" and name == "add" and set(kwargs) <= {"axis"}:
        return reductions.cumsum(inputs[0], kwargs.get("axis", 0))
    if method == "outer" and not kwargs and name in _ufunc_names():
        a, b = inputs
        a = shaping.reshape(a, shaping.shape(a) + (1,) * len(shaping.shape(b)))
        return getattr(_namespace(), name)(a, b)
    detail = f" with arguments {sorted(kwargs)}" if kwargs else ""
    suffix = "" if method == "__call__" else f".{method}"
    raise _no_equivalent(f"numpy.{name}{suffix}{detail}")


@functools.lru_cache(maxsize=None)
def _ufunc_names() -> frozenset[str]:
    """The fxgrad.numpy functions named after numpy ufuncs."""
    fnp = _namespace()
    return frozenset(n for n in dir(fnp) if isinstance(getattr(np, n, None), np.ufunc))


def _array_function(self: Any, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
    name = getattr(func, "__name__", repr(func))
    fn = getattr(_namespace(), name, None)
    if fn is None or getattr(np, name, None) is not func or not callable(fn):
        module = getattr(func, "__module__", "numpy") or "numpy"
        raise _no_equivalent(f"{module.replace('numpy._core', 'numpy')}.{name}")
    return fn(*args, **kwargs)


# ---------------------------------------------------------------- installation

def install() -> None:
    """Give `Tracer` numpy's operators, methods and dispatch protocols."""
    for name, fn in _BINARY.items():
        setattr(Tracer, f"__{name}__", _forward(fn))
        setattr(Tracer, f"__r{name}__", _reflected(fn))
    for name, fn in _COMPARISONS.items():
        setattr(Tracer, f"__{name}__", _forward(fn))
    for name, fn in _UNARY.items():
        setattr(Tracer, f"__{name}__", fn)
    for name, fn in _METHODS.items():
        assert name not in Tracer.__slots__, name
        setattr(Tracer, name, fn)
    setattr(Tracer, "T", property(lambda self: shaping.transpose(self)))
    setattr(Tracer, "__array_ufunc__", _array_ufunc)
    setattr(Tracer, "__array_function__", _array_function)
