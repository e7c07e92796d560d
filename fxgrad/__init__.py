"""fxgrad: composable function transformations over typed programs."""
from fxgrad import primitives as _primitives  # noqa: F401  (registers every rule)
from fxgrad import numpy as _numpy  # noqa: F401  (gives tracers their operators and methods)
from fxgrad.api import (Lop, Rop, grad, hvp, jvp, linearize, make_jaxpr, value_and_grad,
                        vjp)
from fxgrad.jacobians import hessian, jacfwd, jacrev
from fxgrad.control_flow import scan
from fxgrad.core.errors import (ConcretizationError, FxgradError, FxTypeError, FxValueError,
                                LeakedTracerError, TracerArrayConversionError)
from fxgrad.core.ir import ClosedProgram, Program, ShapedArray
from fxgrad import tree_util

__version__ = "0.1.0"
