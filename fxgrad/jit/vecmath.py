"""Vector math: SIMD exp, log, sin, tanh, ... inside fused loops.

numba calls libm once per element for a transcendental function, and LLVM cannot
vectorize a loop around an opaque scalar call, so `exp` over a million elements costs a
million libm calls. glibc ships vector versions (libmvec: `_ZGVdN4v_exp` computes four
exps in one AVX2 register, within 4 ulp). The functions here are numba intrinsics that
call a scalar alias of the libm function (`fxgrad_exp`, registered in LLVM's symbol
table) whose declaration names its libmvec variants in the `vector-function-abi-variant`
attribute; LLVM's loop vectorizer then widens the call, and the scalar tail of a loop
still calls libm. The alias matters: a call to `exp` itself would be turned into LLVM's
`llvm.exp` intrinsic, which the backend scalarizes again.

float32 has its own set (`vm_expf`, ...: `_ZGVdN8v_expf` computes eight float32 exps
in one AVX2 register), as numba would otherwise call libm's float32 functions one
element at a time.

Available on Linux x86-64 with glibc >= 2.35 (tanh, expm1, erf, ... joined libmvec
there). Elsewhere, or with `FXGRAD_VECTOR_MATH=0`, `lowering_name` returns None and
lowerings call numpy's scalar functions as before.
"""
from __future__ import annotations

import ctypes
import os
import platform
import sys
from typing import Any, Callable

import llvmlite.binding as llvm
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

# The libm functions with libmvec variants that lowerings use (one argument each).
UNARY = ("exp", "log", "log1p", "expm1", "sin", "cos", "tan", "tanh", "erf", "erfc")
# (ISA letter, lanes, CPU feature LLVM needs to pass <lanes x double> in one register)
_ISAS = (("b", 2, "sse2"), ("d", 4, "avx2"), ("e", 8, "avx512f"))


def _wanted() -> bool:
    if os.environ.get("FXGRAD_VECTOR_MATH", "1").strip().lower() in ("0", "false", "no"):
        return False
    return sys.platform.startswith("linux") and platform.machine() in ("x86_64", "AMD64")


def _variant_isas(mvec: Any) -> list[tuple[str, int]]:
    """The libmvec ISA variants this process can call with LLVM's calling convention:
    only those whose vector registers numba's target machine has, with every function
    in both precisions (float32 variants take twice the lanes)."""
    from numba.core import config
    cpu_name, cpu_features = getattr(config, "CPU_NAME", None), getattr(config, "CPU_FEATURES", None)
    host = llvm.get_host_cpu_features() if not cpu_name else {}
    chosen = set((cpu_features or "").split(","))
    isas = []
    for letter, lanes, feature in _ISAS:
        if feature == "sse2" or host.get(feature) or f"+{feature}" in chosen:
            names = [f"_ZGV{letter}N{lanes}v_{name}" for name in UNARY]
            names += [f"_ZGV{letter}N{2 * lanes}v_{name}f" for name in UNARY]
            if all(hasattr(mvec, n) for n in names):
                isas.append((letter, lanes))
    return isas


def _load() -> list[tuple[str, int]]:
    """Register the scalar aliases and load libmvec; the usable ISA variants, or []."""
    from fxgrad.jit.runtime import opaque_pointers
    if not _wanted() or not opaque_pointers():
        return []
    try:
        mvec, libm = ctypes.CDLL("libmvec.so.1"), ctypes.CDLL("libm.so.6")
        isas = _variant_isas(mvec)
        if not isas:
            return []
        llvm.load_library_permanently("libmvec.so.1")
        for name in [*UNARY, *(f"{name}f" for name in UNARY)]:
            address = ctypes.cast(getattr(libm, name), ctypes.c_void_p).value
            llvm.add_symbol(f"fxgrad_{name}", address)
        return isas
    except (OSError, AttributeError, RuntimeError):
        return []


ISAS = _load()
AVAILABLE = bool(ISAS)


def _keep(module: ir.Module, fn: ir.Function) -> None:
    """List `fn` in `llvm.compiler.used`: the vectorizer only uses a variant whose
    declaration is in the module, and unused declarations are dropped before it runs."""
    name = "llvm.compiler.used"
    old = module.globals.get(name)
    items = list(old.initializer.constant) if old is not None else []
    if any(item is fn for item in items):
        return
    if old is not None:
        del module.globals[name]
        module.scope._useset.discard(name)   # llvmlite has no API to replace a global
    ptr = ir.PointerType()
    array = ir.ArrayType(ptr, len(items) + 1)
    used = ir.GlobalVariable(module, array, name)
    used.linkage, used.section = "appending", "llvm.metadata"
    used.initializer = ir.Constant(array, [*items, fn])


def _declare(module: ir.Module, name: str, single: bool = False) -> ir.Function:
    """The scalar alias `fxgrad_<name>` (`fxgrad_<name>f` in float32), pure, naming its
    vector variants."""
    element = ir.FloatType() if single else ir.DoubleType()
    name = f"{name}f" if single else name
    scalar = cgutils.get_or_insert_function(module, ir.FunctionType(element, [element]),
                                            f"fxgrad_{name}")
    variants = []
    for letter, lanes in ISAS:
        lanes = 2 * lanes if single else lanes
        vector = ir.VectorType(element, lanes)
        vname = f"_ZGV{letter}N{lanes}v_{name}"
        _keep(module, cgutils.get_or_insert_function(
            module, ir.FunctionType(vector, [vector]), vname))
        variants.append(f"_ZGV_LLVM_N{lanes}v_fxgrad_{name}({vname})")
    # llvmlite validates attribute names; string attributes go in as they are printed.
    for attribute in ("readnone", "nounwind",
                      f'"vector-function-abi-variant"="{",".join(variants)}"'):
        set.add(scalar.attributes, attribute)
    return scalar


def _unary_intrinsic(name: str) -> Callable[..., Any]:
    def typer(typingctx: Any, x: Any) -> Any:
        if x != types.float64:
            return None

        def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
            return builder.call(_declare(builder.module, name), args)
        return types.float64(types.float64), codegen
    typer.__name__ = f"vm_{name}"
    return intrinsic(typer)


def _unary_intrinsic_f32(name: str) -> Callable[..., Any]:
    """`vm_<name>f`: float32 in and out; a float64 argument (numba's arithmetic may
    have widened a float32 value) is rounded to float32 first, as the kernel would."""
    def typer(typingctx: Any, x: Any) -> Any:
        if x not in (types.float32, types.float64):
            return None

        def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
            arg = context.cast(builder, args[0], signature.args[0], types.float32)
            return builder.call(_declare(builder.module, name, single=True), [arg])
        return types.float32(x), codegen
    typer.__name__ = f"vm_{name}f"
    return intrinsic(typer)


vm_exp, vm_log, vm_log1p, vm_expm1, vm_sin, vm_cos, vm_tan, vm_tanh, vm_erf, vm_erfc = (
    _unary_intrinsic(name) for name in UNARY)
(vm_expf, vm_logf, vm_log1pf, vm_expm1f, vm_sinf, vm_cosf, vm_tanf, vm_tanhf, vm_erff,
 vm_erfcf) = (_unary_intrinsic_f32(name) for name in UNARY)


# Lanes of the explicit vector calls `vmx_<name>(a, b, ...)` (scan bodies with small
# state are straight-line code, where LLVM's SLP vectorizer leaves calls scalar).
LANES = max((lanes for _, lanes in ISAS if lanes <= 4), default=0)


def _lanes_intrinsic(name: str) -> Callable[..., Any]:
    letter = {lanes: letter for letter, lanes in ISAS}.get(LANES, "b")

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        double, index = ir.DoubleType(), ir.IntType(32)
        vector_type = ir.VectorType(double, LANES)
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(vector_type, [vector_type]),
            f"_ZGV{letter}N{LANES}v_{name}")
        vector = ir.Constant(vector_type, ir.Undefined)
        for lane, arg in enumerate(args):
            vector = builder.insert_element(vector, arg, ir.Constant(index, lane))
        result = builder.call(fn, [vector])
        lanes = [builder.extract_element(result, ir.Constant(index, k)) for k in range(LANES)]
        return context.make_tuple(builder, signature.return_type, lanes)

    def check(args: tuple[Any, ...]) -> Any:
        if any(a != types.float64 for a in args):
            return None
        return types.UniTuple(types.float64, LANES)(*args), codegen

    if LANES == 4:
        def typer(typingctx: Any, a: Any, b: Any, c: Any, d: Any) -> Any:
            return check((a, b, c, d))
    else:
        def typer(typingctx: Any, a: Any, b: Any) -> Any:   # type: ignore[misc]
            return check((a, b))
    typer.__name__ = f"vmx_{name}"
    return intrinsic(typer)


(vmx_exp, vmx_log, vmx_log1p, vmx_expm1, vmx_sin, vmx_cos, vmx_tan, vmx_tanh, vmx_erf,
 vmx_erfc) = (_lanes_intrinsic(name) for name in UNARY)


def pairwise_sum(values: list[Any], add: Callable[[Any, Any], Any]) -> Any:
    """`values` added pairwise, log2(n) additions deep: the one summation order of the
    scalarized code (source text) and of the matvec intrinsics (LLVM values), so both
    give the same bits."""
    while len(values) > 1:
        pairs = [add(a, b) for a, b in zip(values[::2], values[1::2])]
        values = pairs + values[len(pairs) * 2:]
    return values[0]


def _matvec_intrinsic(rows: int, k: int) -> Callable[..., Any]:
    """`matvec_<rows>_<k>(wt, (v_0, ..., v_{k-1}))`: the `rows` sums over j of
    wt[j, i] * v_j, four rows per vector register, for a C-contiguous (k, rows) float64
    `wt` with `rows` a multiple of 4 (a scan body's loop-invariant matrix, laid out
    before the loop). LLVM's SLP vectorizer leaves the scalar form of this unvectorized."""
    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        double, index = ir.DoubleType(), ir.IntType(32)
        vector_type = ir.VectorType(double, 4)
        data = context.make_array(signature.args[0])(context, builder, args[0]).data
        vs = cgutils.unpack_tuple(builder, args[1], k)
        splats = [builder.shuffle_vector(
            builder.insert_element(ir.Constant(vector_type, ir.Undefined), v, ir.Constant(index, 0)),
            ir.Constant(vector_type, ir.Undefined), ir.Constant(ir.VectorType(index, 4), [0] * 4))
            for v in vs]
        lanes = []
        for block in range(rows // 4):
            products = []
            for j in range(k):
                where = builder.gep(data, [ir.Constant(ir.IntType(64), j * rows + 4 * block)])
                column = builder.load(where, typ=vector_type, align=8)
                products.append(builder.fmul(column, splats[j]))
            total = pairwise_sum(products, builder.fadd)
            lanes += [builder.extract_element(total, ir.Constant(index, i)) for i in range(4)]
        return context.make_tuple(builder, signature.return_type, lanes)

    def typer(typingctx: Any, wt: Any, vs: Any) -> Any:
        if not (isinstance(wt, types.Array) and wt.dtype == types.float64 and wt.ndim == 2
                and wt.layout == "C" and vs == types.UniTuple(types.float64, k)):
            return None
        return types.UniTuple(types.float64, rows)(wt, vs), codegen
    typer.__name__ = f"matvec_{rows}_{k}"
    return intrinsic(typer)


_matvecs: dict[str, Callable[..., Any]] = {}


def __getattr__(name: str) -> Any:
    """`matvec_<rows>_<k>` intrinsics, made on first import (kernels import them by name)."""
    parts = name.split("_")
    if len(parts) == 3 and parts[0] == "matvec" and parts[1].isdigit() and parts[2].isdigit():
        if name not in _matvecs:
            _matvecs[name] = _matvec_intrinsic(int(parts[1]), int(parts[2]))
        return _matvecs[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def lowering_name(name: str, dtype: Any) -> str | None:
    """`vm_<name>` (float64) or `vm_<name>f` (float32) when `name` can use vector math
    here, else None."""
    if not AVAILABLE or name not in UNARY or str(dtype) not in ("float64", "float32"):
        return None
    return f"vm_{name}" if str(dtype) == "float64" else f"vm_{name}f"
