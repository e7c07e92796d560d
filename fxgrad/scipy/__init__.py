"""fxgrad.scipy: differentiable versions of the SciPy functions models need.

`fxgrad.scipy.linalg` (triangular solves, Cholesky solves) and `fxgrad.scipy.special`
(erf, gammaln, logsumexp, ...) mirror their SciPy namesakes over fxgrad primitives, so
they work on arrays and traced values alike.
"""
from fxgrad.scipy import linalg  # noqa: F401
from fxgrad.scipy import special  # noqa: F401
