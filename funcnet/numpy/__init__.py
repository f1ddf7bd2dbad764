"""``funcnet.numpy``: a NumPy-compatible API whose functions trace, differentiate,
batch and compile.  Each function is composed from funcnet's primitives.

>>> import funcnet.numpy as fnp
>>> fnp.sqrt(fnp.array([4.0, 9.0]))
array([2., 3.], dtype=float32)
"""

from funcnet.numpy import array_methods as _array_methods  # noqa: F401  (attaches methods)
from funcnet.numpy.conversion import array, asarray
from funcnet.numpy.creation import (arange, empty, empty_like, eye, full, full_like, identity,
                                    linspace, meshgrid, ones, ones_like, tri, tril, triu, zeros,
                                    zeros_like)
from funcnet.numpy.dtypes import (bool_, complex64, complex128, dtype, e, finfo, float16,
                                  float32, float64, floating, iinfo, inexact, inf, int8, int16,
                                  int32, int64, integer, issubdtype, nan, newaxis, number, pi,
                                  result_type, uint8, uint32, uint64)
from funcnet.numpy.indexing import at, nonzero, take, take_along_axis
from funcnet.numpy.manipulation import (argsort, array_split, atleast_1d, atleast_2d,
                                        broadcast_arrays, broadcast_shapes, broadcast_to,
                                        concatenate, expand_dims, flip, hstack, moveaxis, ndim,
                                        pad, ravel, repeat, reshape, roll, shape, size, sort,
                                        split, squeeze, stack, swapaxes, tile, transpose, vstack)
from funcnet.numpy.math import (abs, absolute, add, arccos, arccosh, arcsin, arcsinh, arctan,
                                arctan2, arctanh, around, bitwise_and, bitwise_not, bitwise_or,
                                bitwise_xor, cbrt, ceil, clip, cos, cosh, divide, equal, exp,
                                exp2, expm1, floor, floor_divide, fmax, fmin, greater,
                                greater_equal, hypot, invert, isfinite, isinf, isnan,
                                left_shift, less, less_equal, log, log1p, log2, log10,
                                logaddexp, logical_and, logical_not, logical_or, logical_xor,
                                masked_apply, maximum, minimum, mod, multiply, nan_to_num,
                                negative, not_equal, positive, power, reciprocal, remainder,
                                right_shift, round, sign, sin, sinh, sqrt, square, subtract, tan,
                                tanh, true_divide, trunc, where)
from funcnet.numpy import fft, linalg  # noqa: F401  (the fnp.fft and fnp.linalg namespaces)
from funcnet.numpy.einsum import einsum  # binds the function over the submodule of that name
from funcnet.numpy.fft import conj, conjugate, imag, real
from funcnet.numpy.products import (diag, diagonal, dot, inner, matmul, outer, tensordot, trace,
                                    vdot)
from funcnet.numpy.reductions import (all, amax, amin, any, argmax, argmin, cumprod, cumsum,
                                      max, mean, median, min, prod, std, sum, var)

__all__ = [n for n in dir() if not n.startswith("_")]
