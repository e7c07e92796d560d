"""Shared building blocks of the primitive catalogue: shape rules for elementwise
families, Python-scalar coercion and cotangent un-broadcasting.

Elementwise binary primitives take operands of one dtype whose shapes are equal or
where one is a scalar (shape ()), which broadcasts; general numpy broadcasting is
done by `fxgrad.numpy` with `broadcast_in_dim` before binding.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from fxgrad.core.errors import FxTypeError
from fxgrad.core.ir import ShapedArray, aval_of
from fxgrad.core.trace import Primitive, Tracer, shape_rules
from fxgrad.interpreters.evaluation import impl_rules


def is_python_scalar(x: Any) -> bool:
    return isinstance(x, (bool, int, float, complex)) and not isinstance(x, np.generic)


def coerce(*args: Any) -> list[Any]:
    """Give Python scalars among `args` the dtype of the first array operand (weak typing)."""
    ref = next((a for a in args if not is_python_scalar(a)), None)
    if ref is None:
        return [np.asarray(a) for a in args]
    dtype = aval_of(ref).dtype
    return [np.asarray(a, dtype) if is_python_scalar(a) else a for a in args]


def check_float(prim: Primitive, *avals: ShapedArray) -> None:
    for a in avals:
        if a.dtype.kind not in "fc":
            raise FxTypeError(f"{prim.name} requires floating-point operands, got {a.dtype.name}; "
                              "convert with .astype(float)")


def unary_shape(prim: Primitive, floats_only: bool = True) -> None:
    def rule(x: ShapedArray) -> ShapedArray:
        if floats_only:
            check_float(prim, x)
        return x
    shape_rules[prim] = rule


def broadcast_shapes(prim: Primitive, *avals: ShapedArray) -> tuple[int, ...]:
    """Shape of an elementwise result: all equal, scalars broadcasting."""
    shapes = {a.shape for a in avals if a.shape != ()}
    if len(shapes) > 1:
        detail = ", ".join(str(a.shape) for a in avals)
        raise FxTypeError(f"{prim.name}: incompatible operand shapes {detail}; elementwise "
                          "operations need equal shapes (or scalars)")
    return shapes.pop() if shapes else ()


def same_dtype(prim: Primitive, *avals: ShapedArray) -> np.dtype:
    dtypes = {a.dtype for a in avals}
    if len(dtypes) > 1:
        names = ", ".join(a.dtype.name for a in avals)
        raise FxTypeError(f"{prim.name}: operand dtypes differ ({names}); convert one with "
                          ".astype(...) so they match")
    return avals[0].dtype


def binary_shape(prim: Primitive, floats_only: bool = False, out_dtype: Any = None) -> None:
    def rule(*avals: ShapedArray) -> ShapedArray:
        dtype = same_dtype(prim, *avals)
        if floats_only:
            check_float(prim, *avals)
        return ShapedArray(broadcast_shapes(prim, *avals), out_dtype or dtype)
    shape_rules[prim] = rule


def elementwise(name: str, np_fn: Any, nargs: int, floats_only: bool = True) -> Primitive:
    """A new elementwise primitive with its numpy implementation and shape rule."""
    prim = Primitive(name)
    impl_rules[prim] = np_fn
    if nargs == 1:
        unary_shape(prim, floats_only)
    else:
        binary_shape(prim, floats_only)
    return prim


def unbroadcast(ct: Any, aval: ShapedArray) -> Any:
    """Sum a cotangent down to the shape of a scalar operand that was broadcast."""
    if aval.shape == () and aval_of(ct).shape != ():
        from fxgrad.primitives.reduce import reduce_sum
        return reduce_sum(ct, tuple(range(aval_of(ct).ndim)))
    return ct


def full_like_aval(value: float, aval: ShapedArray) -> np.ndarray:
    return np.full(aval.shape, value, aval.dtype)


def is_traced(x: Any) -> bool:
    return isinstance(x, Tracer)
