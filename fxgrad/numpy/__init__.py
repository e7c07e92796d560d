"""fxgrad.numpy: numpy's API over fxgrad primitives, for arrays and traced values alike.

`import fxgrad.numpy as fnp` and write numpy code: every function accepts numpy arrays,
Python scalars and tracers, returns numpy arrays when nothing is traced and tracers
otherwise. Dtypes follow numpy, with Python scalars weakly typed (`x_f32 * 2.0` stays
float32). Importing this package also gives tracers their operators and methods and
lets plain numpy functions with an fxgrad.numpy equivalent (`np.sin(t)`, `np.sum(t)`)
dispatch here.

>>> import fxgrad as fx, fxgrad.numpy as fnp
>>> fx.grad(lambda x: fnp.sum(fnp.sin(x) * 2.0))(fnp.zeros(2))
array([2., 2.])
"""
import numpy as _np

from fxgrad.numpy import array_methods as _array_methods
from fxgrad.numpy._promote import result_type
from fxgrad.numpy.creation import (arange, array, asarray, copy, empty, empty_like, eye, full,
                                   full_like, identity, linspace, logspace, meshgrid, ones,
                                   ones_like, tri, zeros, zeros_like)
from fxgrad.numpy.dot import dot, inner, kron, matmul, outer, tensordot, vdot
from fxgrad.numpy.einsum import einsum
from fxgrad.numpy.elementwise import (abs, absolute, add, around, astype, cbrt, ceil, clip, cos,
                                      cosh, deg2rad, degrees, divide, equal, exp, exp2, expm1,
                                      fabs, fix, float_power, floor, floor_divide, greater,
                                      greater_equal, isclose, isfinite, isinf, isnan, less,
                                      less_equal, log, log1p, log2, log10, logaddexp,
                                      logaddexp2, logical_and, logical_not, logical_or,
                                      logical_xor, maximum, minimum, mod, multiply, negative,
                                      not_equal, positive, power, rad2deg, radians, reciprocal,
                                      remainder, rint, round, sign, sin, sinh, sqrt, square,
                                      subtract, tan, tanh, true_divide, trunc, where)
from fxgrad.numpy.indexing import (diag, diagonal, take, take_along_axis, trace, tril, triu)
from fxgrad.numpy.reductions import (all, allclose, amax, amin, any, argmax, argmin, average,
                                     count_nonzero, cumsum, max, mean, min, prod, ptp, std,
                                     sum, var)
from fxgrad.numpy.shaping import (append, array_split, atleast_1d, atleast_2d, atleast_3d,
                                  broadcast_arrays, broadcast_to, column_stack, concatenate,
                                  diff, dstack, expand_dims, flip, fliplr, flipud, hsplit,
                                  hstack, moveaxis, ndim, pad, ravel, repeat, reshape, roll,
                                  shape, size, split, squeeze, stack, swapaxes, tile, transpose,
                                  vsplit, vstack)
from fxgrad.numpy import linalg

# numpy's constants, dtypes and dtype utilities, as they are
pi, e, inf, nan, euler_gamma, newaxis = _np.pi, _np.e, _np.inf, _np.nan, _np.euler_gamma, None
bool_, int8, int16, int32, int64 = _np.bool_, _np.int8, _np.int16, _np.int32, _np.int64
uint8, uint16, uint32, uint64 = _np.uint8, _np.uint16, _np.uint32, _np.uint64
float16, float32, float64 = _np.float16, _np.float32, _np.float64
complex64, complex128 = _np.complex64, _np.complex128
dtype, finfo, iinfo, ndarray = _np.dtype, _np.finfo, _np.iinfo, _np.ndarray
promote_types, can_cast, issubdtype = _np.promote_types, _np.can_cast, _np.issubdtype
number, integer, signedinteger, unsignedinteger = (_np.number, _np.integer, _np.signedinteger,
                                                   _np.unsignedinteger)
floating, inexact, complexfloating = _np.floating, _np.inexact, _np.complexfloating
broadcast_shapes = _np.broadcast_shapes

__all__ = sorted(name for name in globals() if not name.startswith("_"))

_array_methods.install()
