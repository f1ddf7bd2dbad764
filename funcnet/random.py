"""``funcnet.random``: counter-based pseudo-random numbers with explicit keys.

There is no global random state.  A *key* is a plain ``uint32`` array of
shape ``(2,)``; every function takes one and is a pure function of it, so
the same key gives the same numbers eagerly, under ``fn.jit``, under
``fn.vmap`` and on every backend.  Use a key once; derive fresh ones with
:func:`split` or :func:`fold_in`.

>>> import funcnet as fn
>>> from funcnet import random
>>> k = random.key(0)
>>> k
array([0, 0], dtype=uint32)
>>> k1, k2 = random.split(k)
>>> x = random.normal(k1, (3,))
>>> x.shape, x.dtype
((3,), dtype('float32'))
>>> bool((fn.jit(random.normal, static_argnums=1)(k1, (3,)) == x).all())
True

How it works
------------
Bits come from the **Threefry-2x32** block cipher (20 rounds; Salmon,
Moraes, Dror & Shaw, "Parallel random numbers: as easy as 1, 2, 3", SC 2011)
keyed by the two key words and applied to a counter made with ``iota``.
The cipher is written with funcnet's ``uint32`` primitives (add, xor,
shifts), so it traces, batches and compiles like any other computation.
The counter space of a key is divided into domains so that the streams of
:func:`bits`, :func:`split` and :func:`fold_in` never share a block:

- ``bits``: blocks ``(0, i)``; each block gives two 32-bit words;
- ``split``: block ``(1, i)`` is the ``i``-th child key (distinct children,
  because a block cipher is a permutation of its counters);
- ``fold_in``: block ``(2, 0)`` is a sub-key that then encrypts the data.

Floats from bits: a float with a ``p``-bit significand (``p`` = 11, 24, 53
for float16/32/64) takes ``p`` random bits ``k`` and returns ``k * 2**-p``,
exactly, in ``[0, 1 - 2**-p]``; float64 uses two 32-bit words.  Normals use
the **inverse CDF**: ``sqrt(2) * erfinv(v)`` with ``v`` an odd multiple of
``2**-p`` in the open interval ``(-1, 1)`` (exact, symmetric, never ±1) and
an ``erfinv`` written with funcnet primitives (Chebyshev series fitted for
this module; relative error below 1e-15 in float64, 3e-7 in float32).
"""

from __future__ import annotations

import math
import operator

import numpy as np

from funcnet.backends import to_numpy
from funcnet.config import config
from funcnet.core.aval import get_aval
from funcnet.core.trace import Tracer
from funcnet.ops import elementwise as ew
from funcnet.ops import shape as sh

__all__ = ["key", "PRNGKey", "split", "fold_in", "bits", "uniform", "normal",
           "truncated_normal", "randint", "bernoulli", "categorical", "permutation", "choice",
           "gumbel", "exponential", "threefry2x32"]

_U32 = np.dtype(np.uint32)
_U64 = np.dtype(np.uint64)
_I64 = np.dtype(np.int64)
_MASK32 = 0xFFFFFFFF

# Counter domains (the first counter word) of the three uses of a key.
_BITS_DOMAIN, _SPLIT_DOMAIN, _FOLD_DOMAIN = 0, 1, 2

# ---------------------------------------------------------------------------
# Threefry-2x32


# The rotation distances of Threefry-2x32: rounds 0-3 of each group of eight use the
# first four, rounds 4-7 the last four.
_ROTATIONS = (13, 15, 26, 6, 17, 29, 16, 24)
# Threefish's key-schedule parity constant, for 32-bit words.
_KEY_PARITY = 0x1BD11BDA


def _rotate_left(x, distance: int):
    return ew.bitwise_or(ew.shift_left(x, distance), ew.shift_right_logical(x, 32 - distance))


def _threefry_words(k0, k1, x0, x1):
    """Threefry-2x32 with 20 rounds on ``uint32`` values (broadcasting); returns two words."""
    schedule = (k0, k1, ew.bitwise_xor(ew.bitwise_xor(k0, k1), _KEY_PARITY))
    x0 = ew.add(x0, schedule[0])
    x1 = ew.add(x1, schedule[1])
    for group in range(5):  # 5 groups of 4 rounds, each followed by a key injection
        for r in range(4):
            x0 = ew.add(x0, x1)
            x1 = _rotate_left(x1, _ROTATIONS[4 * (group % 2) + r])
            x1 = ew.bitwise_xor(x1, x0)
        s = group + 1  # injection number
        x0 = ew.add(x0, schedule[s % 3])
        x1 = ew.add(ew.add(x1, schedule[(s + 1) % 3]), s)
    return x0, x1


def _key_words(k):
    """The two words of a (checked) key as 0-d ``uint32`` values."""
    return (sh.reshape(sh.slice(k, (0,), (1,)), ()), sh.reshape(sh.slice(k, (1,), (2,)), ()))


def _as_u32(x, what: str):
    """Counter words as ``uint32`` (other integers wrap modulo ``2**32``)."""
    if isinstance(x, Tracer):
        aval = get_aval(x)
        if aval.dtype.kind not in "iu":
            raise TypeError(f"threefry2x32: {what} must be uint32, got {aval.str_short()}")
        return ew.convert_element_type(x, _U32)
    if _is_int_like(x):
        return np.uint32(int(x) & _MASK32)
    from funcnet.numpy.conversion import asarray

    x = asarray(x)
    if x.dtype != _U32:
        if x.dtype.kind not in "iu":
            raise TypeError(f"threefry2x32: {what} must be uint32, got {_describe(x)}")
        x = (x.astype(np.int64) & _MASK32).astype(_U32)
    return x


def threefry2x32(key, x0, x1):
    """Encrypt counter words ``(x0, x1)`` with Threefry-2x32 (20 rounds) under ``key``.

    The block cipher that every function here is built on, exposed for tests
    and for users who want raw counter-mode bits.  ``x0`` and ``x1`` are
    ``uint32`` arrays (or integers) that broadcast together; returns the two
    ``uint32`` output words.  Matches the Random123 known-answer vectors:

    >>> import numpy as np
    >>> from funcnet import random
    >>> y0, y1 = random.threefry2x32(np.array([0, 0], np.uint32), 0, 0)
    >>> hex(int(y0)), hex(int(y1))
    ('0x6b200159', '0x99ba4efe')
    """
    k = _check_key(key, "threefry2x32")
    k0, k1 = _key_words(k)
    y0, y1 = _threefry_words(k0, k1, _as_u32(x0, "x0"), _as_u32(x1, "x1"))
    shape = np.broadcast_shapes(np.shape(x0), np.shape(x1))
    return sh.broadcast_to(y0, shape), sh.broadcast_to(y1, shape)


def _blocks(k, domain: int, count: int):
    """Encrypt the blocks ``(domain, 0) ... (domain, count - 1)``: two ``uint32[count]``."""
    if count > 2 ** 32:
        raise ValueError(f"funcnet.random: cannot draw more than 2**33 words from one key "
                         f"(asked for {2 * count}); split the key")
    k0, k1 = _key_words(k)
    counter = sh.iota(_U32, (count,), 0)
    return _threefry_words(k0, k1, np.uint32(domain), counter)


def _bits32(k, shape: tuple):
    """``uint32`` random words of ``shape``."""
    n = math.prod(shape)
    m = (n + 1) // 2
    y0, y1 = _blocks(k, _BITS_DOMAIN, m)
    words = sh.concatenate([y0, y1], 0)
    if 2 * m != n:
        words = sh.slice(words, (0,), (n,))
    return sh.reshape(words, shape)


def _bits64(k, shape: tuple):
    """``uint64`` random words of ``shape`` (two 32-bit words each)."""
    n = math.prod(shape)
    words = _bits32(k, (2, n))
    hi = ew.convert_element_type(sh.reshape(sh.slice(words, (0, 0), (1, n)), shape), _U64)
    lo = ew.convert_element_type(sh.reshape(sh.slice(words, (1, 0), (2, n)), shape), _U64)
    return ew.bitwise_or(ew.shift_left(hi, 32), lo)


# ---------------------------------------------------------------------------
# Keys


def _describe(x) -> str:
    try:
        return get_aval(x).str_short()
    except TypeError:
        return type(x).__name__


def _check_key(k, caller: str):
    """``k`` as an array after checking that it is a key: ``uint32[2]``."""
    if isinstance(k, (bool, int, np.integer)):
        raise TypeError(f"random.{caller}: expected a key (a uint32 array of shape (2,)), got "
                        f"the integer {k!r}; make a key with random.key({k!r})")
    if not isinstance(k, Tracer) and not (hasattr(k, "shape") and hasattr(k, "dtype")):
        from funcnet.numpy.conversion import asarray

        k = asarray(k)
    aval = get_aval(k)
    if aval.shape != (2,) or aval.dtype != _U32:
        hint = ""
        if aval.dtype == _U32 and aval.ndim >= 2 and aval.shape[-1] == 2:
            hint = "; for a batch of keys use fn.vmap over the leading axis"
        raise TypeError(f"random.{caller}: expected a key of shape (2,) and dtype uint32 (from "
                        f"random.key or random.split), got an array of shape {aval.shape} and "
                        f"dtype {aval.dtype.name} ({aval.str_short()}){hint}")
    return k


def _words_of_python_int(n: int) -> tuple[int, int]:
    """Two 32-bit words of an integer in ``[-2**63, 2**64)`` (two's complement below 0)."""
    u = n % 2 ** 64
    return u >> 32, u & _MASK32


def _key_from_words(hi, lo):
    return sh.concatenate([sh.reshape(hi, (1,)), sh.reshape(lo, (1,))], 0)


def _traced_int_words(x, caller: str):
    """The high and low ``uint32`` words of a traced integer scalar (sign-extended to 64 bits)."""
    aval = get_aval(x)
    if aval.shape != ():
        raise TypeError(f"random.{caller}: expected an integer scalar, got {aval.str_short()}")
    if aval.dtype.kind not in "iub":
        raise TypeError(f"random.{caller}: expected an integer, got {aval.str_short()}")
    wide = x if aval.dtype == _U64 else ew.convert_element_type(x, _I64)
    u = ew.convert_element_type(wide, _U64)
    hi = ew.convert_element_type(ew.shift_right_logical(u, 32), _U32)
    lo = ew.convert_element_type(ew.bitwise_and(u, _MASK32), _U32)
    return hi, lo


def _integer_words(x, caller: str):
    """Two ``uint32`` words standing for the integer ``x`` (Python, NumPy or traced)."""
    if isinstance(x, Tracer):
        return _traced_int_words(x, caller)
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, np.integer)):
        arr = to_numpy(x)
        if arr.shape != () or arr.dtype.kind not in "iu":
            raise TypeError(f"random.{caller}: expected an integer, got {_describe(x)}")
        x = arr.item()
    x = int(x)
    if -2 ** 63 <= x < 2 ** 64:
        hi, lo = _words_of_python_int(x)
        return np.uint32(hi), np.uint32(lo)
    # Beyond 64 bits: the low 64 bits of |x| make a key, the higher bits and the sign are
    # folded into it.  Deterministic; such seeds are not guaranteed distinct from small ones
    # (they collide only if the cipher's outputs do).
    mag = abs(x)
    k = key(mag % 2 ** 64)
    mag >>= 64
    while mag:
        k = fold_in(k, mag % 2 ** 64)
        mag >>= 64
    words = to_numpy(fold_in(k, 1 if x < 0 else 0))
    return np.uint32(words[0]), np.uint32(words[1])


def key(seed):
    """A new random key from an integer ``seed``: a ``uint32`` array of shape ``(2,)``.

    A seed in ``[-2**63, 2**64)`` becomes its 64 bits, high word first
    (negative seeds in two's complement), as JAX's ``PRNGKey`` does; larger
    integers are folded into a key deterministically.  ``seed`` may be a
    traced integer scalar (under ``jit`` or ``vmap``).

    >>> from funcnet import random
    >>> random.key(42)
    array([ 0, 42], dtype=uint32)
    >>> random.key(-1)
    array([4294967295, 4294967295], dtype=uint32)
    """
    hi, lo = _integer_words(seed, "key")
    if isinstance(hi, Tracer) or isinstance(lo, Tracer):
        return _key_from_words(hi, lo)
    from funcnet.numpy.conversion import asarray

    return asarray(np.array([hi, lo], dtype=_U32))


PRNGKey = key  # JAX's legacy name


def split(key, num: int = 2):
    """``num`` new, distinct keys from ``key``, as a ``uint32`` array of shape ``(num, 2)``.

    Children are distinct for a given parent (each is one Threefry block of a
    counter), and independent of the parent's own draws.

    >>> from funcnet import random
    >>> keys = random.split(random.key(0), 3)
    >>> keys.shape, keys.dtype
    ((3, 2), dtype('uint32'))
    >>> a, b = random.split(random.key(0))   # unpack like a tuple
    """
    k = _check_key(key, "split")
    num = operator.index(num)
    if num < 0:
        raise ValueError(f"random.split: num must be non-negative, got {num}")
    y0, y1 = _blocks(k, _SPLIT_DOMAIN, num)
    return sh.concatenate([sh.reshape(y0, (num, 1)), sh.reshape(y1, (num, 1))], 1)


def fold_in(key, data):
    """A new key from ``key`` and an integer ``data`` (Python int or traced integer scalar).

    Different ``data`` give different keys; useful to derive a key per step
    or per example without splitting: ``fold_in(key, step)``.

    >>> from funcnet import random
    >>> k = random.key(0)
    >>> bool((random.fold_in(k, 1) != random.fold_in(k, 2)).any())
    True
    """
    k = _check_key(key, "fold_in")
    hi, lo = _integer_words(data, "fold_in")
    s0, s1 = _blocks(k, _FOLD_DOMAIN, 1)
    sub = _key_from_words(sh.reshape(s0, ()), sh.reshape(s1, ()))
    return _key_from_words(*threefry2x32(sub, hi, lo))


# ---------------------------------------------------------------------------
# Argument helpers


def _shape(shape, caller: str) -> tuple:
    if shape is None:
        return ()
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, bool):
        shape = (shape,)
    try:
        out = tuple(operator.index(d) for d in shape)
    except TypeError:
        raise TypeError(f"random.{caller}: shape must be a tuple of ints, got {shape!r}") from None
    if any(d < 0 for d in out):
        raise ValueError(f"random.{caller}: negative dimensions are not allowed: {out}")
    return out


_FLOATS = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))


def _float_dtype(dtype, caller: str, allow_complex: bool = False) -> np.dtype:
    dt = config.float_dtype if dtype is None else np.dtype(dtype)
    if dt in _FLOATS or allow_complex and dt in (np.complex64, np.complex128):
        return dt
    allowed = "float16, float32 or float64" + (" (or complex)" if allow_complex else "")
    raise TypeError(f"random.{caller}: dtype must be {allowed}, got {dt}")


def _as_float(x, dtype):
    """A user's bound (Python number, array or tracer) as an array of ``dtype``."""
    if isinstance(x, Tracer):
        return ew.convert_element_type(x, dtype)
    from funcnet.numpy.conversion import asarray

    return asarray(x, dtype=dtype)


def _check_broadcast(caller: str, name: str, arg_shape: tuple, shape: tuple) -> None:
    try:
        ok = np.broadcast_shapes(arg_shape, shape) == shape
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"random.{caller}: {name} of shape {arg_shape} does not broadcast to "
                         f"the requested shape {shape}")


def _precision(dtype: np.dtype) -> int:
    """Significand bits (with the implicit one) of a float dtype: 11, 24 or 53."""
    return np.finfo(dtype).nmant + 1


def _mantissa_bits(k, shape: tuple, dtype: np.dtype):
    """Random integers in ``[0, 2**p)`` (``p`` = precision of ``dtype``), unsigned."""
    p = _precision(dtype)
    if p <= 32:
        return ew.shift_right_logical(_bits32(k, shape), 32 - p)
    return ew.shift_right_logical(_bits64(k, shape), 64 - p)


def _unit_uniform(k, shape: tuple, dtype: np.dtype):
    """Uniform on the grid ``{0, 2**-p, ..., 1 - 2**-p}``, exactly."""
    p = _precision(dtype)
    return ew.mul(ew.convert_element_type(_mantissa_bits(k, shape, dtype), dtype), 2.0 ** -p)


def _symmetric_open(k, shape: tuple, dtype: np.dtype):
    """Uniform on the odd multiples of ``2**-p`` in ``(-1, 1)``: exact, symmetric, never ±1."""
    p = _precision(dtype)
    m = ew.convert_element_type(_mantissa_bits(k, shape, dtype), _I64)
    odd = ew.add(ew.mul(m, 2), 1 - 2 ** p)  # 2m + 1 - 2**p: odd, |odd| < 2**p
    return ew.mul(ew.convert_element_type(odd, dtype), 2.0 ** -p)


def _largest_below(x, dtype: np.dtype):
    """The largest float of ``dtype`` below ``x``, as ``np.nextafter(x, -inf)`` (infinities stay).

    ``|x| * 2**-p`` lies between half a spacing and one spacing below ``x``, so
    ``x - |x| * 2**-p`` rounds to the neighbour; near zero the spacing is the
    smallest subnormal.
    """
    lowest = float(np.finfo(dtype).min)
    ordinary = ew.bitwise_and(ew.is_finite(x), ew.gt(x, lowest))
    x_safe = ew.select(ordinary, x, 0.0)  # inf, nan and the lowest float are handled below
    step = ew.maximum(ew.mul(ew.abs(x_safe), 2.0 ** -_precision(dtype)),
                      float(np.finfo(dtype).smallest_subnormal))
    below = ew.sub(x_safe, step)
    # A negative power of two ties and rounds back to x; twice the step is exact there.
    below = ew.select(ew.lt(below, x_safe), below, ew.sub(x_safe, ew.mul(step, 2.0)))
    below = ew.select(ew.eq(x, lowest), sh.full(get_aval(x).shape, -float("inf"), dtype), below)
    return ew.select(ew.bitwise_or(ordinary, ew.eq(x, lowest)), below, x)


def _smallest_above(x, dtype: np.dtype):
    return ew.neg(_largest_below(ew.neg(x), dtype))


# ---------------------------------------------------------------------------
# erfinv, written with primitives.
#
# erfinv(x) = x * P(v), with P smooth in v = w = -log((1 - x) * (1 + x)) for w < 6.25 and
# in v = sqrt(w) beyond (the idea of M. Giles, "Approximating the erfinv function", 2010).
# Each piece of P is a Chebyshev series on its interval, obtained for this module by
# interpolating erfinv(x) / x at 40 Chebyshev points with 40-digit arithmetic (mpmath)
# and dropping the coefficients below 2e-17.  Float32 evaluation drops those below 1e-9.

_ERFINV_PIECES = (
    # (variable, lower end, upper end, Chebyshev coefficients)
    ("w", 0.0, 6.25, (
        1.6304220989459326, 0.7315674456742257, -0.021235032142504585,
        -0.0065808875424494635, 0.0019488711426908524, -0.00014158343386374536,
        -4.9292864636180004e-05, 1.4752887929042498e-05, -6.111918603258194e-07,
        -5.106997335480761e-07, 1.159027723297735e-07, 1.4907998843194937e-09,
        -5.244776785530681e-09, 8.51790549109762e-10, 7.917020592973908e-11,
        -5.0994281737154326e-11, 5.436227530231317e-12, 1.292282189751795e-12,
        -4.656064719044143e-13, 2.4256976317675218e-14, 1.6403697972051414e-14,
        -3.94956069090147e-15, -3.9036001761416307e-17, 1.83129083527959e-16,
        -3.03580260263594e-17)),
    ("s", 2.5, 4.0, (
        3.085744844023102, 0.7524837268921277, 0.0019842584172056767,
        -0.000534561900101604, 0.0001302806745904227, -2.943377534710642e-05,
        5.231051543788091e-06, -5.385189635316591e-07, -2.922686732135409e-08,
        2.3903569231251557e-08, -4.411209869554094e-09, 2.2053622855049448e-10,
        8.095391923249493e-11, -2.1642011149793333e-11, 1.9364299208504444e-12,
        1.9183918173325102e-13, -8.245551635697369e-14, 1.0402388222104601e-14,
        2.9484539267546553e-17, -2.4669496593190295e-16, 4.5962728850225956e-17)),
    ("s", 4.0, 6.25, (
        4.976098221510014, 1.13632640639631, -7.894657288651023e-05,
        -7.40393876674932e-05, 1.4487997116092317e-05, -2.0897638359601916e-06,
        2.708361680705596e-07, -3.4653657974355744e-08, 4.986112173302154e-09,
        -9.387771499414535e-10, 2.281197598612107e-10, -6.021669188625184e-11,
        1.5059720227547474e-11, -3.3171481893899954e-12, 6.053913177507823e-13,
        -8.100093655534797e-14, 4.055619417592386e-15, 1.6557915132272534e-15,
        -6.461302524305988e-16, 1.3347514306746326e-16)),
)


def _chebyshev_series(u, coeffs):
    """``sum_k coeffs[k] T_k(u)`` by Clenshaw's recurrence (stable for ``|u| <= 1``).

    ``u`` is an array; ``coeffs`` are Python floats (at least two).
    """
    two_u = ew.mul(u, 2.0)
    b1, b2 = coeffs[-1], None  # b_{k+1}, b_{k+2}
    for c in reversed(coeffs[1:-1]):
        nxt = ew.add(ew.mul(two_u, b1), c)
        if b2 is not None:
            nxt = ew.sub(nxt, b2)
        b1, b2 = nxt, b1
    out = ew.add(ew.mul(u, b1), coeffs[0])
    return out if b2 is None else ew.sub(out, b2)


def _erfinv(x):
    """Inverse error function of a float16/32/64 array (±inf at ±1, nan outside [-1, 1])."""
    dtype = get_aval(x).dtype
    if dtype == np.float16:
        return ew.convert_element_type(_erfinv(ew.convert_element_type(x, np.float32)), dtype)
    tol = 1e-9 if dtype == np.float32 else 0.0
    t = ew.abs(x)
    one_minus_x2 = ew.mul(ew.sub(1.0, t), ew.add(t, 1.0))
    w = ew.neg(ew.log(ew.maximum(one_minus_x2, float(np.finfo(dtype).tiny))))
    s = ew.sqrt(w)
    result = None
    for var, lo, hi, coeffs in reversed(_ERFINV_PIECES):
        last = max(i for i, c in enumerate(coeffs) if i < 2 or abs(c) >= tol)
        coeffs = coeffs[:last + 1]
        v = w if var == "w" else s
        u = ew.mul(ew.sub(v, (lo + hi) / 2), 2.0 / (hi - lo))
        piece = _chebyshev_series(u, coeffs)
        if result is None:
            result = piece
        else:
            result = ew.select(ew.lt(v, hi), piece, result)
    out = ew.mul(x, result)
    shape = get_aval(x).shape
    inf = sh.full(shape, float("inf"), dtype)
    out = ew.select(ew.eq(t, 1.0), ew.select(ew.gt(x, 0.0), inf, ew.neg(inf)), out)
    return ew.select(ew.gt(t, 1.0), sh.full(shape, float("nan"), dtype), out)


# ---------------------------------------------------------------------------
# Distributions


def bits(key, shape=(), dtype=np.uint32):
    """Uniformly random unsigned integers (all bits random) of ``shape``.

    ``dtype`` is ``uint8``, ``uint16``, ``uint32`` (default) or ``uint64``.

    >>> import numpy as np
    >>> from funcnet import random
    >>> random.bits(random.key(0), (2,)).dtype
    dtype('uint32')
    >>> random.bits(random.key(0), (2,), np.uint64).dtype
    dtype('uint64')
    """
    k = _check_key(key, "bits")
    shape = _shape(shape, "bits")
    dt = np.dtype(dtype)
    if dt.kind != "u" or dt.itemsize > 8:
        raise TypeError(f"random.bits: dtype must be uint8, uint16, uint32 or uint64, got {dt}")
    if dt == _U64:
        return _bits64(k, shape)
    return ew.convert_element_type(_bits32(k, shape), dt)


def uniform(key, shape=(), dtype=None, minval=0.0, maxval=1.0):
    """Uniform floats in ``[minval, maxval)`` (``dtype`` defaults to ``fn.config.default_float``).

    The ``[0, 1)`` draw takes as many random bits as the significand holds
    (24 for float32, 53 for float64) and is exact; it is then scaled to
    ``[minval, maxval)`` (and clamped below ``maxval`` against rounding).
    ``minval`` and ``maxval`` may be arrays that broadcast to ``shape``.

    >>> from funcnet import random
    >>> u = random.uniform(random.key(0), (1000,), minval=-2.0, maxval=3.0)
    >>> u.dtype, bool(u.min() >= -2.0), bool(u.max() < 3.0)
    (dtype('float32'), True, True)
    """
    k = _check_key(key, "uniform")
    shape = _shape(shape, "uniform")
    dtype = _float_dtype(dtype, "uniform")
    u = _unit_uniform(k, shape, dtype)
    if type(minval) is float and type(maxval) is float and minval == 0.0 and maxval == 1.0:
        return u
    lo, hi = _as_float(minval, dtype), _as_float(maxval, dtype)
    _check_broadcast("uniform", "minval", get_aval(lo).shape, shape)
    _check_broadcast("uniform", "maxval", get_aval(hi).shape, shape)
    out = ew.add(ew.mul(u, ew.sub(hi, lo)), lo)
    out = ew.maximum(ew.minimum(out, _largest_below(hi, dtype)), lo)
    return sh.broadcast_to(out, shape)


def normal(key, shape=(), dtype=None):
    """Standard normal samples (``dtype`` defaults to ``fn.config.default_float``).

    Computed by the inverse CDF, ``sqrt(2) * erfinv(v)`` with ``v`` uniform
    on an exact symmetric grid in ``(-1, 1)``, so every draw is finite (at
    most about 5.4 in magnitude for float32, 8.3 for float64, 3.5 for float16).  A complex
    ``dtype`` gives independent real and imaginary parts of variance 1/2.

    >>> from funcnet import random
    >>> x = random.normal(random.key(1), (10000,))
    >>> x.dtype, abs(float(x.mean())) < 0.05, abs(float(x.std()) - 1) < 0.05
    (dtype('float32'), True, True)
    """
    k = _check_key(key, "normal")
    shape = _shape(shape, "normal")
    dtype = _float_dtype(dtype, "normal", allow_complex=True)
    if dtype.kind == "c":
        from funcnet.ops.fft import complex_

        real_dtype = np.dtype(dtype.char.lower())
        parts = _normal(k, (2,) + shape, real_dtype)
        re = sh.reshape(sh.slice(parts, (0,) * (len(shape) + 1), (1,) + shape), shape)
        im = sh.reshape(sh.slice(parts, (1,) + (0,) * len(shape), (2,) + shape), shape)
        return complex_(ew.mul(re, math.sqrt(0.5)), ew.mul(im, math.sqrt(0.5)))
    return _normal(k, shape, dtype)


def _normal(k, shape, dtype):
    return ew.mul(_erfinv(_symmetric_open(k, shape, dtype)), math.sqrt(2.0))


def truncated_normal(key, lower, upper, shape=None, dtype=None):
    """Standard normal samples conditioned to lie in ``(lower, upper)``.

    ``lower`` and ``upper`` broadcast to ``shape`` (by default their broadcast
    shape).  The inverse CDF is evaluated in float64 whatever ``dtype`` is,
    so bounds up to about 8 standard deviations out work; the result is
    clamped into the open interval in ``dtype``.

    >>> from funcnet import random
    >>> x = random.truncated_normal(random.key(0), -1.0, 2.0, (1000,))
    >>> bool(x.min() > -1.0), bool(x.max() < 2.0), x.dtype
    (True, True, dtype('float32'))
    """
    k = _check_key(key, "truncated_normal")
    dtype = _float_dtype(dtype, "truncated_normal")
    f64 = np.dtype(np.float64)
    lo, hi = _as_float(lower, f64), _as_float(upper, f64)
    bshape = np.broadcast_shapes(get_aval(lo).shape, get_aval(hi).shape)
    shape = bshape if shape is None else _shape(shape, "truncated_normal")
    _check_broadcast("truncated_normal", "lower", get_aval(lo).shape, shape)
    _check_broadcast("truncated_normal", "upper", get_aval(hi).shape, shape)
    a = ew.erf(ew.mul(lo, math.sqrt(0.5)))
    b = ew.erf(ew.mul(hi, math.sqrt(0.5)))
    # v uniform in the open interval (a, b): an odd multiple of 2**-53 in (0, 1), scaled.
    m = ew.convert_element_type(ew.shift_right_logical(_bits64(k, shape), 12), _I64)
    unit = ew.mul(ew.convert_element_type(ew.add(ew.mul(m, 2), 1), f64), 2.0 ** -53)
    v = ew.add(a, ew.mul(unit, ew.sub(b, a)))
    z = ew.convert_element_type(ew.mul(_erfinv(v), math.sqrt(2.0)), dtype)
    lo_d, hi_d = _as_float(lower, dtype), _as_float(upper, dtype)
    z = ew.minimum(ew.maximum(z, _smallest_above(lo_d, dtype)), _largest_below(hi_d, dtype))
    return sh.broadcast_to(z, shape)


def _integer_bound(x, low: int, high: int, wide: np.dtype):
    """An integer bound clipped to ``[low, high]`` as an array of ``wide`` (int64/uint64)."""
    info = np.iinfo(wide)
    low, high = max(low, int(info.min)), min(high, int(info.max))
    if isinstance(x, Tracer):
        dt = get_aval(x).dtype
        if dt.kind not in "iu":
            raise TypeError(f"random.randint: bounds must be integers, got {_describe(x)}")
        if dt.kind == "u" and dt.itemsize == 8 and wide == _I64:
            x = ew.minimum(x, np.uint64(high))  # before the conversion could wrap it
        elif dt.kind == "i" and wide == _U64:
            x = ew.maximum(x, dt.type(0))
        x = ew.convert_element_type(x, wide)
        return ew.minimum(ew.maximum(x, wide.type(low)), wide.type(high))
    values = _python_ints(x)
    from funcnet.numpy.conversion import asarray

    clipped = np.asarray(np.vectorize(lambda v: min(max(v, low), high), otypes=[object])(values),
                         dtype=object)
    return asarray(clipped.astype(wide))


def _python_ints(x):
    """A concrete integer bound as an object array of Python ints (no overflow)."""
    arr = to_numpy(x) if not isinstance(x, int) else None
    if arr is not None and arr.dtype.kind not in "iuO":
        raise TypeError(f"random.randint: bounds must be integers, got {_describe(x)}")
    values = np.asarray(x if arr is None else arr, dtype=object)
    if values.dtype == object and not all(_is_int_like(v) for v in values.flat):
        raise TypeError(f"random.randint: bounds must be integers, got {x!r}")
    return np.vectorize(int, otypes=[object])(values) if values.size else values


def randint(key, shape, minval, maxval, dtype=np.int64):
    """Uniform integers in ``[minval, maxval)`` (``maxval`` exclusive), as in JAX.

    ``dtype`` defaults to ``int64``, funcnet's default integer (``fnp``
    integer arrays are int64).  Bounds may be arrays that broadcast to
    ``shape`` and are clipped to the range of ``dtype``.  Concrete bounds
    with ``minval >= maxval`` raise ``ValueError``; traced ones give
    ``minval`` there.  Each value is a 64-bit random word reduced modulo
    the range, so the bias is below ``range / 2**64``.

    >>> from funcnet import random
    >>> r = random.randint(random.key(0), (1000,), 0, 10)
    >>> r.dtype, int(r.min()), int(r.max())
    (dtype('int64'), 0, 9)
    """
    k = _check_key(key, "randint")
    shape = _shape(shape, "randint")
    dtype = np.dtype(dtype)
    if dtype.kind not in "iu" or dtype.itemsize > 8:
        raise TypeError(f"random.randint: dtype must be an integer dtype, got {dtype}")
    if not isinstance(minval, Tracer) and not isinstance(maxval, Tracer):
        if np.any(_python_ints(minval) >= _python_ints(maxval)):
            raise ValueError(f"random.randint: minval must be less than maxval (maxval is "
                             f"exclusive), got minval={minval!r}, maxval={maxval!r}")
    info = np.iinfo(dtype)
    wide = _U64 if dtype == _U64 else _I64
    lo = _integer_bound(minval, int(info.min), int(info.max), wide)
    hi = _integer_bound(maxval, int(info.min), int(info.max) + 1, wide)
    _check_broadcast("randint", "minval", get_aval(lo).shape, shape)
    _check_broadcast("randint", "maxval", get_aval(hi).shape, shape)
    lo_u = ew.convert_element_type(lo, _U64)
    span = ew.sub(ew.convert_element_type(hi, _U64), lo_u)  # wraps: exact for hi > lo
    span = ew.select(ew.gt(hi, lo), span, np.uint64(1))
    offset = ew.rem(_bits64(k, shape), span)
    out = ew.convert_element_type(ew.convert_element_type(ew.add(lo_u, offset), wide), dtype)
    return sh.broadcast_to(out, shape)


def bernoulli(key, p=0.5, shape=None):
    """Booleans that are ``True`` with probability ``p`` (``shape`` defaults to ``p``'s).

    >>> from funcnet import random
    >>> b = random.bernoulli(random.key(0), 0.3, (10000,))
    >>> b.dtype, abs(float(b.mean()) - 0.3) < 0.02
    (dtype('bool'), True)
    """
    k = _check_key(key, "bernoulli")
    p_aval = get_aval(p) if isinstance(p, Tracer) or hasattr(p, "dtype") else None
    if p_aval is None:
        p = _as_float(p, config.float_dtype)
        p_aval = get_aval(p)
    dtype = p_aval.dtype if p_aval.dtype.kind == "f" else config.float_dtype
    shape = p_aval.shape if shape is None else _shape(shape, "bernoulli")
    _check_broadcast("bernoulli", "p", p_aval.shape, shape)
    return sh.broadcast_to(ew.lt(_unit_uniform(k, shape, dtype),
                                 ew.convert_element_type(p, dtype)), shape)


def gumbel(key, shape=(), dtype=None):
    """Standard Gumbel samples, ``-log(-log(u))`` (``dtype`` defaults to default_float).

    >>> from funcnet import random
    >>> g = random.gumbel(random.key(0), (10000,))
    >>> abs(float(g.mean()) - 0.5772) < 0.05
    True
    """
    k = _check_key(key, "gumbel")
    shape = _shape(shape, "gumbel")
    dtype = _float_dtype(dtype, "gumbel")
    u = ew.maximum(_unit_uniform(k, shape, dtype), float(np.finfo(dtype).tiny))
    return ew.neg(ew.log(ew.neg(ew.log(u))))


def exponential(key, shape=(), dtype=None):
    """Standard exponential samples, ``-log(1 - u)`` (``dtype`` defaults to default_float).

    >>> from funcnet import random
    >>> e = random.exponential(random.key(0), (10000,))
    >>> bool(e.min() >= 0), abs(float(e.mean()) - 1) < 0.05
    (True, True)
    """
    k = _check_key(key, "exponential")
    shape = _shape(shape, "exponential")
    dtype = _float_dtype(dtype, "exponential")
    return ew.neg(ew.log1p(ew.neg(_unit_uniform(k, shape, dtype))))


def categorical(key, logits, axis: int = -1, shape=None):
    """Indices drawn with probabilities ``softmax(logits)`` along ``axis`` (Gumbel-max).

    ``shape`` defaults to ``logits``' shape without ``axis`` (the batch
    shape); a longer ``shape`` draws several samples per batch entry and must
    end with a shape that broadcasts against the batch shape.  Results are
    int64.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import random
    >>> logits = fnp.array([0.0, -fnp.inf, 2.0])   # class 1 has probability 0
    >>> s = random.categorical(random.key(0), logits, shape=(1000,))
    >>> s.dtype, bool((s != 1).all())
    (dtype('int64'), True)
    """
    from funcnet.numpy.conversion import as_array
    from funcnet.numpy.reductions import argmax
    from funcnet.ops.rules import normalize_axis

    k = _check_key(key, "categorical")
    logits = as_array(logits)
    aval = get_aval(logits)
    if aval.ndim == 0:
        raise ValueError("random.categorical: logits must have at least one dimension")
    axis = normalize_axis(axis, aval.ndim)
    batch_shape = aval.shape[:axis] + aval.shape[axis + 1:]
    if shape is None:
        shape = batch_shape
    else:
        shape = _shape(shape, "categorical")
        if len(shape) < len(batch_shape):
            raise ValueError(f"random.categorical: shape {shape} is shorter than the batch "
                             f"shape {batch_shape} of the logits")
        _check_broadcast("categorical", "the logits' batch shape", batch_shape,
                         shape[len(shape) - len(batch_shape):])
    prefix = shape[:len(shape) - len(batch_shape)]
    noise_shape = list(shape[len(prefix):])
    noise_shape.insert(axis, aval.shape[axis])
    dtype = aval.dtype if aval.dtype in _FLOATS else config.float_dtype
    noise = gumbel(k, prefix + tuple(noise_shape), dtype)
    return argmax(ew.add(noise, ew.convert_element_type(logits, dtype)), axis=len(prefix) + axis)


def _is_int_like(x) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))


def permutation(key, x, axis: int = 0, independent: bool = False):
    """A random permutation of ``range(x)`` (an int) or of ``x`` along ``axis``.

    Sorts by random 64-bit keys (ties, which have probability below
    ``n**2 / 2**65``, keep their order).  With ``independent=True`` every
    slice along ``axis`` is permuted independently.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import random
    >>> p = random.permutation(random.key(0), 5)
    >>> sorted(p.tolist())
    [0, 1, 2, 3, 4]
    >>> random.permutation(random.key(0), fnp.ones((4, 3)), axis=1).shape
    (4, 3)
    """
    from funcnet.numpy.conversion import as_array
    from funcnet.numpy.indexing import take, take_along_axis
    from funcnet.numpy.manipulation import argsort
    from funcnet.ops.rules import normalize_axis

    k = _check_key(key, "permutation")
    if _is_int_like(x):
        n = int(x)
        if n < 0:
            raise ValueError(f"random.permutation: n must be non-negative, got {n}")
        return argsort(_bits64(k, (n,)))
    x = as_array(x)
    aval = get_aval(x)
    if aval.ndim == 0:
        raise TypeError("random.permutation: x must be an int or an array with at least one "
                        "dimension")
    axis = normalize_axis(axis, aval.ndim)
    if independent:
        return take_along_axis(x, argsort(_bits64(k, aval.shape), axis=axis), axis)
    return take(x, argsort(_bits64(k, (aval.shape[axis],))), axis=axis)


def choice(key, a, shape=(), replace: bool = True, p=None, axis: int = 0):
    """Random samples from ``range(a)`` (an int) or from ``a`` along ``axis``.

    ``p`` gives the probabilities (normalised here) of the ``n`` entries.
    Without replacement, the ``prod(shape)`` samples are distinct entries:
    the head of a random permutation, or, with ``p``, the top of Gumbel-
    perturbed log-probabilities.  With replacement and ``p`` the sampling is
    by the inverse CDF (memory ``prod(shape) * n``).  The result has shape
    ``a.shape[:axis] + shape + a.shape[axis+1:]``.

    >>> from funcnet import random
    >>> c = random.choice(random.key(0), 10, (5,), replace=False)
    >>> len(set(c.tolist()))
    5
    """
    from funcnet.numpy.conversion import as_array
    from funcnet.numpy.indexing import take
    from funcnet.numpy.manipulation import argsort
    from funcnet.numpy.reductions import cumsum
    from funcnet.numpy.reductions import sum as fsum
    from funcnet.ops.rules import normalize_axis

    k = _check_key(key, "choice")
    shape = _shape(shape, "choice")
    if _is_int_like(a):
        n = int(a)
        if n < 0:
            raise ValueError(f"random.choice: a must be non-negative, got {n}")
    else:
        a = as_array(a)
        a_aval = get_aval(a)
        if a_aval.ndim == 0:
            raise ValueError("random.choice: a must be an int or an array with at least one "
                             "dimension")
        axis = normalize_axis(axis, a_aval.ndim)
        n = a_aval.shape[axis]
    count = math.prod(shape)
    if n == 0 and count > 0:
        raise ValueError("random.choice: cannot take a sample from an empty population")
    if not replace and count > n:
        raise ValueError(f"random.choice: cannot take {count} samples without replacement from "
                         f"a population of {n}")
    if p is None:
        if replace:
            idx = randint(k, shape, 0, max(n, 1))
        else:
            perm = argsort(_bits64(k, (n,)))
            idx = sh.reshape(sh.slice(perm, (0,), (count,)), shape)
    else:
        p = as_array(p)
        p_aval = get_aval(p)
        if p_aval.shape != (n,):
            raise ValueError(f"random.choice: p must have shape ({n},) to match the population, "
                             f"got {p_aval.shape}")
        dtype = p_aval.dtype if p_aval.dtype in _FLOATS else config.float_dtype
        p = ew.convert_element_type(p, dtype)
        if replace:
            cdf = cumsum(p)
            total = sh.reshape(sh.slice(cdf, (n - 1,), (n,)), ())
            r = ew.mul(_unit_uniform(k, shape, dtype), total)
            below = ew.le(sh.reshape(cdf, (1,) * len(shape) + (n,)),
                          sh.reshape(r, shape + (1,)))
            idx = ew.minimum(fsum(below, axis=-1), n - 1)
        else:
            positive = ew.gt(p, 0.0)
            logp = ew.select(positive, ew.log(ew.select(positive, p, 1.0)), float("-inf"))
            scores = ew.add(gumbel(k, (n,), dtype), logp)
            top = argsort(ew.neg(scores))
            idx = sh.reshape(sh.slice(top, (0,), (count,)), shape)
    if _is_int_like(a):
        return idx
    return take(a, idx, axis=axis)
