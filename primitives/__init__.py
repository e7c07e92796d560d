"""The primitive catalogue, installed as `fxgrad.primitives`: one module per family,
each primitive followed by its rules (numpy implementation, shape rule, JVP rule,
transpose rule where linear)."""
from fxgrad.primitives import dot, reduce  # noqa: F401
from fxgrad.primitives import arith, logic, unary  # noqa: F401
from fxgrad.primitives import indexing, shape  # noqa: F401
from fxgrad.primitives import control  # noqa: F401
from fxgrad.primitives import loops  # noqa: F401
from fxgrad.primitives import branch  # noqa: F401
from fxgrad.primitives import custom  # noqa: F401
from fxgrad.primitives import linalg, decompositions  # noqa: F401
from fxgrad.primitives import special  # noqa: F401
