"""fxgrad: composable function transformations over typed programs.

>>> import fxgrad as fx
>>> fx.grad(lambda x: x ** 2)(4.0)
array(8.)
"""
import os as _os

# `primitives/` is installed as `fxgrad.primitives`; when fxgrad is imported from a
# source checkout instead (e.g. `python -m pytest` in the repository), find it there.
if not _os.path.isdir(_os.path.join(__path__[0], "primitives")):
    __path__.append(_os.path.dirname(__path__[0]))

from fxgrad import primitives as _primitives  # noqa: E402,F401  (registers every rule)
from fxgrad import numpy as _numpy  # noqa: F401  (gives tracers their operators and methods)
from fxgrad import tree_util
from fxgrad.batching_api import vmap
from fxgrad.api import (Lop, Rop, grad, hvp, jvp, linearize, make_jaxpr, value_and_grad,
                        vjp)
from fxgrad.checkpoint import checkpoint, remat
from fxgrad.config import config
from fxgrad.control_flow import cond, scan, switch
from fxgrad.custom_derivatives import custom_jvp, custom_vjp
from fxgrad.core.errors import (ConcretizationError, FxgradError, FxTypeError, FxValueError,
                                LeakedTracerError, TracerArrayConversionError)
from fxgrad.core.ir import ClosedProgram, Program, ShapedArray
from fxgrad.jacobians import hessian, jacfwd, jacrev
from fxgrad.jit import jit
from fxgrad.jit.api import clear_caches, explain_cache_miss
from fxgrad.linear_transpose import linear_transpose
from fxgrad.loops import fori_loop, while_loop
from fxgrad.pictures import render, to_dot
from fxgrad.primitives.unary import stop_gradient
from fxgrad.simplify import simplify
from fxgrad.taylor import derivatives, jet, taylor_coefficients

__version__ = "0.1.0"

__all__ = [
    "checkpoint", "custom_jvp", "custom_vjp", "remat",
    "cond", "switch",
    "ClosedProgram", "ConcretizationError", "FxTypeError", "FxValueError", "FxgradError",
    "LeakedTracerError", "Lop", "Program", "Rop", "ShapedArray", "TracerArrayConversionError",
    "config", "fori_loop", "grad", "hessian", "hvp", "jacfwd", "jacrev", "jit", "jvp",
    "linear_transpose", "linearize", "make_jaxpr", "scan", "simplify", "stop_gradient",
    "tree_util", "value_and_grad", "vjp", "vmap", "while_loop",
    "clear_caches", "explain_cache_miss", "render", "to_dot",
    "derivatives", "jet", "taylor_coefficients",
]
