"""Convolution and windowed reductions (pooling), with all their rules.

Primitives (each with its shape rule, JVP, transpose where linear, and
batching rule side by side):

- ``conv_general_dilated``: an N-d convolution (cross-correlation, as in
  every deep learning library) in the *canonical layout*: the input is
  ``(N, *spatial, C)``, the kernel ``(*spatial, I, O)``, the output
  ``(N, *spatial, O)``.  Parameters: ``window_strides``, ``padding`` (one
  ``(lo, hi)`` pair per spatial dimension; negative values crop),
  ``lhs_dilation`` (zeros inserted between input elements: transposed
  convolution), ``rhs_dilation`` (atrous kernels) and ``feature_group_count``
  (grouped and depthwise convolution: ``C = G * I`` and ``O % G == 0``).
  Other layouts (``"NCHW"``, ``"OIHW"``, ...) are transposes in :func:`conv`.
- ``reduce_window_sum`` and ``reduce_window_max``: sliding-window sums and
  maxima over every axis of the operand (``window_dimensions`` and
  ``window_strides`` have one entry per axis, ``padding`` one non-negative
  ``(lo, hi)`` pair per axis; a sum pads with 0, a max with -inf).
- ``select_and_gather_add`` and ``select_and_scatter_add``: the linear maps
  behind the derivative of ``reduce_window_max``.  In every window, the
  *first* maximal element of ``x`` in row-major window order is selected;
  the first gathers a tangent at the selected positions, the second (its
  transpose) adds a cotangent into them.  **Tie rule:** when several
  elements of a window share the maximum, the whole derivative of that
  window's output goes to the first of them (this differs from
  ``fnp.max``, which shares it equally among ties; for pooling, routing to
  one element keeps the backward pass a cheap scatter).

User functions: :func:`conv`, :func:`conv_general_dilated`,
:func:`conv_transpose`, :func:`reduce_window`, :func:`max_pool`,
:func:`avg_pool` (``funcnet.lax`` re-exports them).

>>> import numpy as np
>>> from funcnet.ops.convolution import conv, max_pool
>>> x = np.ones((1, 4, 4, 1), np.float32)
>>> w = np.ones((3, 3, 1, 2), np.float32)
>>> conv(x, w, padding="SAME")[0, :, :, 0]
array([[4., 6., 6., 4.],
       [6., 9., 9., 6.],
       [6., 9., 9., 6.],
       [4., 6., 6., 4.]], dtype=float32)
>>> max_pool(np.arange(16.0).reshape(1, 4, 4, 1), (2, 2))[0, :, :, 0]
array([[ 5.,  7.],
       [13., 15.]])
"""

from __future__ import annotations

import math

import numpy as np

from funcnet.core.aval import ShapedArray, get_aval, result_dtype
from funcnet.core.primitive import Primitive
from funcnet.ops import elementwise as ew
from funcnet.ops.rules import is_undefined
from funcnet.ops.shape import pad, reshape, rev, transpose
from funcnet.transforms.ad import Zero, add_tangents, zeros_like_aval

__all__ = ["conv", "conv_general_dilated", "conv_transpose", "reduce_window", "max_pool",
           "avg_pool", "conv_general_dilated_p", "reduce_window_sum_p", "reduce_window_max_p",
           "select_and_gather_add_p", "select_and_scatter_add_p"]

# ---------------------------------------------------------------------------
# Size arithmetic shared by the rules


def _dilated(n: int, d: int) -> int:
    """Length of ``n`` elements with ``d - 1`` zeros inserted between neighbours."""
    return 0 if n == 0 else (n - 1) * d + 1


def _window_count(size: int, window: int, stride: int) -> int:
    """How many windows of ``window`` elements fit in ``size`` at ``stride``."""
    return 0 if size < window else (size - window) // stride + 1


def _same_padding(size: int, window: int, stride: int) -> tuple[int, int]:
    """``"SAME"`` padding: the output has ``ceil(size / stride)`` elements; extra
    padding goes to the high side when the total is odd (as in TensorFlow/JAX)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + window - size, 0)
    return total // 2, total - total // 2


def _padding_pairs(padding, sizes, windows, strides, what: str) -> tuple:
    """Resolve ``"SAME"``/``"VALID"``/explicit pairs to a tuple of ``(lo, hi)``."""
    n = len(sizes)
    if isinstance(padding, str):
        mode = padding.upper()
        if mode == "VALID":
            return ((0, 0),) * n
        if mode == "SAME":
            return tuple(_same_padding(s, w, st) for s, w, st in zip(sizes, windows, strides))
        raise ValueError(f"{what}: padding must be 'SAME', 'VALID' or a sequence of (lo, hi) "
                         f"pairs, got {padding!r}")
    try:
        pairs = tuple((int(lo), int(hi)) for lo, hi in padding)
    except (TypeError, ValueError):
        raise ValueError(f"{what}: padding must be 'SAME', 'VALID' or a sequence of (lo, hi) "
                         f"pairs, got {padding!r}") from None
    if len(pairs) != n:
        raise ValueError(f"{what}: padding has {len(pairs)} (lo, hi) pairs but {n} are needed")
    return pairs


def _int_tuple(value, n: int, name: str, what: str, default: int = 1) -> tuple:
    """``None`` → ``(default,) * n``; an int → ``(value,) * n``; a sequence of ``n`` ints."""
    if value is None:
        return (default,) * n
    if isinstance(value, (int, np.integer)):
        out = (int(value),) * n
    else:
        out = tuple(int(v) for v in value)
    if len(out) != n:
        raise ValueError(f"{what}: {name} has {len(out)} entries but {n} are needed")
    if any(v < 1 for v in out):
        raise ValueError(f"{what}: {name} must be positive, got {out}")
    return out


def _as_array(x):
    from funcnet.numpy.conversion import as_array

    return as_array(x)


# ---------------------------------------------------------------------------
# conv_general_dilated (canonical layout: lhs (N, *S, C), rhs (*K, I, O), out (N, *S', O))

conv_general_dilated_p = Primitive("conv_general_dilated")


def _conv(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation, feature_group_count):
    """Bind the convolution primitive (canonical layout, all parameters explicit)."""
    return conv_general_dilated_p.bind(
        lhs, rhs, window_strides=tuple(window_strides),
        padding=tuple((int(lo), int(hi)) for lo, hi in padding),
        lhs_dilation=tuple(lhs_dilation), rhs_dilation=tuple(rhs_dilation),
        feature_group_count=int(feature_group_count))


def _conv_out_spatial(in_spatial, k_spatial, window_strides, padding, lhs_dilation,
                      rhs_dilation) -> tuple:
    return tuple(
        _window_count(_dilated(h, ld) + lo + hi, _dilated(k, rd), s)
        for h, k, s, (lo, hi), ld, rd in zip(in_spatial, k_spatial, window_strides, padding,
                                             lhs_dilation, rhs_dilation))


def _conv_abstract_eval(lhs, rhs, *, window_strides, padding, lhs_dilation, rhs_dilation,
                        feature_group_count):
    name = "conv_general_dilated"
    if lhs.ndim < 3 or lhs.ndim != rhs.ndim:
        raise ValueError(f"{name}: the input (N, *spatial, C) and kernel (*spatial, I, O) need "
                         f"the same rank >= 3, got {lhs.str_short()} and {rhs.str_short()}")
    ns = lhs.ndim - 2
    for pname, val in (("window_strides", window_strides), ("padding", padding),
                       ("lhs_dilation", lhs_dilation), ("rhs_dilation", rhs_dilation)):
        if len(val) != ns:
            raise ValueError(f"{name}: {pname}={val} needs {ns} entries for {ns} spatial "
                             "dimension(s)")
    if any(v < 1 for v in window_strides + lhs_dilation + rhs_dilation):
        raise ValueError(f"{name}: strides and dilations must be positive")
    if lhs.dtype != rhs.dtype:
        raise TypeError(f"{name} requires operands of one dtype, got {lhs.str_short()} and "
                        f"{rhs.str_short()}")
    g = feature_group_count
    c, (i, o) = lhs.shape[-1], rhs.shape[-2:]
    if g < 1 or c != g * i or o % g:
        raise ValueError(
            f"{name}: input features ({c}) must equal feature_group_count ({g}) x kernel input "
            f"features ({i}), and kernel output features ({o}) must be divisible by "
            f"feature_group_count; got input {lhs.str_short()}, kernel {rhs.str_short()}")
    if any(k < 1 for k in rhs.shape[:ns]):
        raise ValueError(f"{name}: the kernel's spatial sizes must be positive, got "
                         f"{rhs.str_short()}")
    out = _conv_out_spatial(lhs.shape[1:-1], rhs.shape[:ns], window_strides, padding,
                            lhs_dilation, rhs_dilation)
    return ShapedArray((lhs.shape[0],) + out + (o,), lhs.dtype, lhs.weak_type and rhs.weak_type)


def _conv_jvp(primals, tangents, **params):
    lhs, rhs = primals
    t_lhs, t_rhs = tangents
    ans = conv_general_dilated_p.bind(lhs, rhs, **params)
    out = Zero(ShapedArray(np.shape(ans), ans.dtype))
    if type(t_lhs) is not Zero:  # bilinear: d(x * w) = dx * w + x * dw
        out = add_tangents(out, conv_general_dilated_p.bind(t_lhs, rhs, **params))
    if type(t_rhs) is not Zero:
        out = add_tangents(out, conv_general_dilated_p.bind(lhs, t_rhs, **params))
    return ans, out


def _conv_transpose_lhs(ct, rhs, lhs_aval, window_strides, padding, lhs_dilation, rhs_dilation,
                        feature_group_count):
    """Cotangent of the input: the cotangent, dilated by the strides, correlated with the
    spatially flipped kernel whose in/out features are swapped (group by group).

    With ``Ke`` the dilated kernel size, output position ``j`` read padded input
    positions ``j*s + k*rd``; input element ``h`` sits at padded position
    ``lo + h*ld``.  Reading the cotangent dilated by ``s`` at
    ``h*ld + k'*rd - (Ke - 1 - lo)`` with the flipped kernel collects exactly
    the pairs ``(j, k)`` that touched it, so the padding is ``Ke - 1 - lo``
    below, and above whatever makes ``H`` windows at stride ``ld``.
    """
    ns = lhs_aval.ndim - 2
    in_sp, ct_sp = lhs_aval.shape[1:-1], tuple(ct.shape[1:-1])
    k_sp = tuple(np.shape(rhs)[:ns])
    if 0 in ct_sp or 0 in lhs_aval.shape or 0 in tuple(ct.shape):
        return zeros_like_aval(lhs_aval)
    pads = []
    for h, k, ho, s, (lo, _), ld, rd in zip(in_sp, k_sp, ct_sp, window_strides, padding,
                                            lhs_dilation, rhs_dilation):
        ke = _dilated(k, rd)
        p_lo = ke - 1 - lo
        p_hi = (h - 1) * ld + ke - p_lo - _dilated(ho, s)
        pads.append((p_lo, p_hi))
    g = feature_group_count
    i, o = np.shape(rhs)[-2:]
    # kernel (*K, I, G*Og) -> (*K, Og, G*I), flipped in space
    w = reshape(rhs, k_sp + (i, g, o // g))
    w = transpose(w, tuple(range(ns)) + (ns + 2, ns + 1, ns))
    w = rev(reshape(w, k_sp + (o // g, g * i)), tuple(range(ns)))
    return _conv(ct, w, lhs_dilation, pads, window_strides, rhs_dilation, g)


def _conv_transpose_rhs(ct, lhs, rhs_aval, window_strides, padding, lhs_dilation, rhs_dilation,
                        feature_group_count):
    """Cotangent of the kernel: a convolution of the input with the cotangent.

    ``dw[k, i, o] = sum_{n, j} xpad[n, j*s + k*rd, g(o)*I + i] * ct[n, j, o]``: the
    input, laid out as ``(I, *S, G*N)`` (batch ``I``, features ``N`` per group),
    convolved with the cotangent as a kernel ``(*S', N, O)`` at stride ``rd`` with
    kernel dilation ``s`` and ``feature_group_count=G`` gives ``(I, *K, O)``.
    """
    ns = rhs_aval.ndim - 2
    lhs_shape = tuple(np.shape(lhs))
    n, in_sp, c = lhs_shape[0], lhs_shape[1:-1], lhs_shape[-1]
    ct_sp = tuple(ct.shape[1:-1])
    k_sp = rhs_aval.shape[:ns]
    if 0 in ct_sp or 0 in lhs_shape or 0 in rhs_aval.shape:
        return zeros_like_aval(rhs_aval)
    g = feature_group_count
    i = c // g
    x = reshape(lhs, (n,) + in_sp + (g, i))
    x = transpose(x, (ns + 2,) + tuple(range(1, ns + 1)) + (ns + 1, 0))
    x = reshape(x, (i,) + in_sp + (g * n,))
    kernel = transpose(ct, tuple(range(1, ns + 1)) + (0, ns + 1))
    pads = []
    for h, k, ho, s, (lo, _), ld, rd in zip(in_sp, k_sp, ct_sp, window_strides, padding,
                                            lhs_dilation, rhs_dilation):
        pads.append((lo, (k - 1) * rd + _dilated(ho, s) - _dilated(h, ld) - lo))
    out = _conv(x, kernel, rhs_dilation, pads, lhs_dilation, window_strides, g)
    return transpose(out, tuple(range(1, ns + 1)) + (0, ns + 1))


def _conv_transpose(ct, lhs, rhs, *, window_strides, padding, lhs_dilation, rhs_dilation,
                    feature_group_count):
    args = (window_strides, padding, lhs_dilation, rhs_dilation, feature_group_count)
    if is_undefined(lhs) and is_undefined(rhs):
        raise TypeError("conv_general_dilated of two linear values is not linear")
    if is_undefined(lhs):
        return [_conv_transpose_lhs(ct, rhs, lhs.aval, *args), None]
    return [None, _conv_transpose_rhs(ct, lhs, rhs.aval, *args)]


conv_general_dilated_p.abstract_eval = _conv_abstract_eval
conv_general_dilated_p.jvp = _conv_jvp
conv_general_dilated_p.transpose = _conv_transpose
conv_general_dilated_p.linear = True  # in each operand separately, like dot_general

# ---------------------------------------------------------------------------
# Layouts: dimension-number strings such as ("NCHW", "OIHW", "NCHW")


def _spatial_letters(ns: int) -> str:
    return "DHW"[3 - ns:] if ns <= 3 else "ABEFGJKLMPQRSTUVXYZ"[:ns]


def _default_dimension_numbers(ns: int, channels_last: bool) -> tuple[str, str, str]:
    sp = _spatial_letters(ns)
    if channels_last:
        return "N" + sp + "C", sp + "IO", "N" + sp + "C"
    return "NC" + sp, "OI" + sp, "NC" + sp


def _layout_perms(dimension_numbers, ndim: int, what: str):
    """Permutations to the canonical layouts and back, from dimension-number strings.

    Spatial dimensions are matched by letter; their order is the kernel spec's.
    Returns ``(lhs_perm, rhs_perm, out_perm)``: ``transpose(lhs, lhs_perm)`` is
    ``(N, *S, C)``, ``transpose(rhs, rhs_perm)`` is ``(*K, I, O)``, and
    ``transpose(canonical_out, out_perm)`` is the requested output layout.
    """
    try:
        lhs_spec, rhs_spec, out_spec = (str(s) for s in dimension_numbers)
    except (TypeError, ValueError):
        raise ValueError(f"{what}: dimension_numbers must be three strings such as "
                         f"('NHWC', 'HWIO', 'NHWC'), got {dimension_numbers!r}") from None
    spatial = [ch for ch in rhs_spec if ch not in "IO"]
    problems = []
    for spec, special in ((lhs_spec, "NC"), (rhs_spec, "IO"), (out_spec, "NC")):
        if (len(spec) != ndim or len(set(spec)) != ndim or any(ch not in spec for ch in special)
                or sorted(ch for ch in spec if ch not in special) != sorted(spatial)):
            problems.append(spec)
    if problems:
        raise ValueError(
            f"{what}: dimension_numbers {tuple(dimension_numbers)} do not describe rank-{ndim} "
            "operands (each spec names every axis once: 'N', 'C' and the spatial letters for "
            "the input and output, 'I', 'O' and the same spatial letters for the kernel)")
    lhs_perm = ((lhs_spec.index("N"),) + tuple(lhs_spec.index(ch) for ch in spatial)
                + (lhs_spec.index("C"),))
    rhs_perm = tuple(rhs_spec.index(ch) for ch in spatial) + (rhs_spec.index("I"),
                                                               rhs_spec.index("O"))
    canon = "N" + "".join(spatial) + "C"
    out_perm = tuple(canon.index(ch) for ch in out_spec)
    return lhs_perm, rhs_perm, out_perm


def _common_dtype(x, w):
    dtype, _ = result_dtype(get_aval(x), get_aval(w))
    return ew.convert_element_type(x, dtype), ew.convert_element_type(w, dtype)


def conv(x, w, strides=None, padding="VALID", lhs_dilation=None, rhs_dilation=None,
         dimension_numbers=None, feature_group_count: int = 1):
    """N-d convolution (cross-correlation) of ``x`` with the kernel ``w``.

    - ``strides``: one int per spatial dimension (or one int for all; default 1).
    - ``padding``: ``"VALID"``, ``"SAME"`` (output size ``ceil(in / stride)``,
      computed on the lhs-dilated input) or explicit ``[(lo, hi), ...]``
      (negative values crop).
    - ``lhs_dilation``: zeros inserted between input elements (transposed
      convolution); ``rhs_dilation``: between kernel taps (atrous convolution).
    - ``dimension_numbers``: three layout strings ``(input, kernel, output)``;
      ``None`` means channels-last: ``("NHWC", "HWIO", "NHWC")`` in 2-d,
      ``("NWC", "WIO", "NWC")`` in 1-d, ``("NDHWC", "DHWIO", "NDHWC")`` in 3-d.
      Any permutation works, such as ``("NCHW", "OIHW", "NCHW")``; spatial
      axes are matched by letter.
    - ``feature_group_count``: ``G`` groups (input features ``C = G * I`` for a
      kernel with ``I`` input features; ``G = C`` is a depthwise convolution).

    Operands are promoted to a common dtype.  Differentiable to any order in
    both operands, batchable with ``vmap``, jittable.

    >>> import numpy as np
    >>> x = np.arange(5.0).reshape(1, 5, 1)                # NWC
    >>> w = np.array([1.0, 0.0, -1.0]).reshape(3, 1, 1)    # WIO
    >>> conv(x, w)[0, :, 0]
    array([-2., -2., -2.])
    >>> conv(x, w, strides=2, padding="SAME")[0, :, 0]
    array([-1., -2.,  3.])
    >>> conv(np.ones((2, 3, 8, 8)), np.ones((4, 3, 3, 3)),
    ...      dimension_numbers=("NCHW", "OIHW", "NCHW")).shape
    (2, 4, 6, 6)
    """
    x, w = _common_dtype(_as_array(x), _as_array(w))
    ndim = len(np.shape(x))
    if ndim < 3 or len(np.shape(w)) != ndim:
        raise ValueError(f"conv: the input and kernel need the same rank >= 3 (batch, spatial "
                         f"dims, features), got shapes {tuple(np.shape(x))} and "
                         f"{tuple(np.shape(w))}")
    ns = ndim - 2
    if dimension_numbers is None:
        dimension_numbers = _default_dimension_numbers(ns, channels_last=True)
    lhs_perm, rhs_perm, out_perm = _layout_perms(dimension_numbers, ndim, "conv")
    x = transpose(x, lhs_perm)
    w = transpose(w, rhs_perm)
    strides = _int_tuple(strides, ns, "strides", "conv")
    lhs_dilation = _int_tuple(lhs_dilation, ns, "lhs_dilation", "conv")
    rhs_dilation = _int_tuple(rhs_dilation, ns, "rhs_dilation", "conv")
    in_sp = tuple(_dilated(d, ld) for d, ld in zip(np.shape(x)[1:-1], lhs_dilation))
    k_sp = tuple(_dilated(d, rd) for d, rd in zip(np.shape(w)[:ns], rhs_dilation))
    pads = _padding_pairs(padding, in_sp, k_sp, strides, "conv")
    out = _conv(x, w, strides, pads, lhs_dilation, rhs_dilation, int(feature_group_count))
    return transpose(out, out_perm)


def conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=None,
                         rhs_dilation=None, dimension_numbers=None,
                         feature_group_count: int = 1):
    """JAX's ``lax.conv_general_dilated`` signature: like :func:`conv`, but with
    channels-first defaults (``dimension_numbers=None`` means
    ``("NCHW", "OIHW", "NCHW")`` in 2-d, ``("NCW", "OIW", "NCW")`` in 1-d).

    >>> import numpy as np
    >>> conv_general_dilated(np.ones((1, 2, 5, 5)), np.ones((3, 2, 3, 3)), (1, 1),
    ...                      "SAME").shape
    (1, 3, 5, 5)
    """
    if dimension_numbers is None:
        dimension_numbers = _default_dimension_numbers(len(np.shape(lhs)) - 2,
                                                       channels_last=False)
    return conv(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation,
                dimension_numbers, feature_group_count)


def _conv_transpose_pads(k: int, s: int, padding: str) -> tuple[int, int]:
    """Padding of the lhs-dilated input that makes :func:`conv_transpose` the
    gradient of a strided ``conv`` with the same string padding: ``"SAME"``
    gives ``in * s`` outputs, ``"VALID"`` gives ``in * s + max(k - s, 0)``."""
    if padding == "VALID":
        return k - 1, max(k, s) - 1
    fwd_lo = max(k - s, 0) // 2  # the forward SAME conv's low padding
    return k - 1 - fwd_lo, s - 1 + fwd_lo


def conv_transpose(x, w, strides=None, padding="VALID", rhs_dilation=None,
                   dimension_numbers=None, transpose_kernel: bool = False):
    """Transposed ("deconvolution") convolution: ``conv`` with ``lhs_dilation=strides``.

    ``padding`` ``"SAME"`` multiplies each spatial size by its stride;
    ``"VALID"`` gives ``in * stride + max(k - stride, 0)``; explicit pairs pad
    the dilated input directly.  With ``transpose_kernel=True`` the kernel is
    flipped in space and its ``I``/``O`` axes swapped, which makes the result
    the gradient of ``conv(., w, strides, padding)`` with respect to its
    input (for ``w`` in the same ``dimension_numbers`` layout).

    >>> import numpy as np
    >>> conv_transpose(np.ones((1, 3, 3, 2)), np.ones((3, 3, 2, 4)), strides=(2, 2),
    ...                padding="SAME").shape
    (1, 6, 6, 4)
    """
    x, w = _common_dtype(_as_array(x), _as_array(w))
    ndim = len(np.shape(x))
    if ndim < 3 or len(np.shape(w)) != ndim:
        raise ValueError(f"conv_transpose: the input and kernel need the same rank >= 3, got "
                         f"shapes {tuple(np.shape(x))} and {tuple(np.shape(w))}")
    ns = ndim - 2
    if dimension_numbers is None:
        dimension_numbers = _default_dimension_numbers(ns, channels_last=True)
    _, rhs_perm, _ = _layout_perms(dimension_numbers, ndim, "conv_transpose")
    strides = _int_tuple(strides, ns, "strides", "conv_transpose")
    rhs_dilation = _int_tuple(rhs_dilation, ns, "rhs_dilation", "conv_transpose")
    k_sp = tuple(_dilated(np.shape(w)[rhs_perm[i]], rd) for i, rd in enumerate(rhs_dilation))
    if isinstance(padding, str):
        mode = padding.upper()
        if mode not in ("SAME", "VALID"):
            raise ValueError(f"conv_transpose: padding must be 'SAME', 'VALID' or (lo, hi) "
                             f"pairs, got {padding!r}")
        pads = tuple(_conv_transpose_pads(k, s, mode) for k, s in zip(k_sp, strides))
    else:
        pads = _padding_pairs(padding, k_sp, k_sp, strides, "conv_transpose")
    if transpose_kernel:
        w = rev(w, tuple(rhs_perm[:ns]))
        spec = list(str(dimension_numbers[1]))
        i_ax, o_ax = spec.index("I"), spec.index("O")
        perm = list(range(ndim))
        perm[i_ax], perm[o_ax] = o_ax, i_ax
        w = transpose(w, tuple(perm))
    return conv(x, w, (1,) * ns, pads, strides, rhs_dilation, dimension_numbers)


# ---------------------------------------------------------------------------
# Windowed reductions: reduce_window_sum, reduce_window_max


def _window_params_check(name, x, window_dimensions, window_strides, padding):
    if not (len(window_dimensions) == len(window_strides) == len(padding) == x.ndim):
        raise ValueError(f"{name}: window_dimensions {window_dimensions}, window_strides "
                         f"{window_strides} and padding {padding} need one entry per axis of "
                         f"{x.str_short()}")
    if any(w < 1 for w in window_dimensions) or any(s < 1 for s in window_strides):
        raise ValueError(f"{name}: window sizes and strides must be positive, got "
                         f"{window_dimensions} and {window_strides}")
    if any(lo < 0 or hi < 0 for lo, hi in padding):
        raise ValueError(f"{name}: padding must be non-negative, got {padding}")


def _window_out_shape(shape, window_dimensions, window_strides, padding) -> tuple:
    return tuple(_window_count(d + lo + hi, w, s)
                 for d, w, s, (lo, hi) in zip(shape, window_dimensions, window_strides, padding))


def _reduce_window_abstract_eval(name):
    def rule(x, *, window_dimensions, window_strides, padding):
        _window_params_check(name, x, window_dimensions, window_strides, padding)
        shape = _window_out_shape(x.shape, window_dimensions, window_strides, padding)
        return ShapedArray(shape, x.dtype, x.weak_type)

    return rule


def _window_params(window_dimensions, window_strides, padding) -> dict:
    return dict(window_dimensions=tuple(int(w) for w in window_dimensions),
                window_strides=tuple(int(s) for s in window_strides),
                padding=tuple((int(lo), int(hi)) for lo, hi in padding))


reduce_window_sum_p = Primitive("reduce_window_sum")
reduce_window_max_p = Primitive("reduce_window_max")
reduce_window_sum_p.abstract_eval = _reduce_window_abstract_eval("reduce_window_sum")
reduce_window_max_p.abstract_eval = _reduce_window_abstract_eval("reduce_window_max")


def _reduce_window_sum(x, window_dimensions, window_strides, padding):
    return reduce_window_sum_p.bind(x, **_window_params(window_dimensions, window_strides,
                                                        padding))


def _reduce_window_max(x, window_dimensions, window_strides, padding):
    return reduce_window_max_p.bind(x, **_window_params(window_dimensions, window_strides,
                                                        padding))


def _reduce_window_sum_jvp(primals, tangents, **params):
    (x,), (t,) = primals, tangents
    ans = reduce_window_sum_p.bind(x, **params)
    if type(t) is Zero:
        return ans, Zero(get_aval(ans))
    return ans, reduce_window_sum_p.bind(t, **params)


def _reduce_window_sum_transpose(ct, x, *, window_dimensions, window_strides, padding):
    """Each input element receives the cotangents of every window that holds it:
    the cotangent dilated by the strides, padded by ``W - 1 - lo`` below, summed
    over windows of the same size at stride 1."""
    shape = x.aval.shape
    if 0 in tuple(ct.shape) or 0 in shape:
        return [zeros_like_aval(x.aval)]
    cfg = []
    for d, w, s, (lo, _), n in zip(shape, window_dimensions, window_strides, padding, ct.shape):
        p_lo = w - 1 - lo
        cfg.append((p_lo, d + w - 1 - p_lo - _dilated(n, s), s - 1))
    padded = pad(ct, np.zeros((), ct.dtype), tuple(cfg))
    ones = (1,) * len(shape)
    return [_reduce_window_sum(padded, window_dimensions, ones, ((0, 0),) * len(shape))]


reduce_window_sum_p.jvp = _reduce_window_sum_jvp
reduce_window_sum_p.transpose = _reduce_window_sum_transpose
reduce_window_sum_p.linear = True


def _reduce_window_max_jvp(primals, tangents, **params):
    (x,), (t,) = primals, tangents
    ans = reduce_window_max_p.bind(x, **params)
    if type(t) is Zero:
        return ans, Zero(get_aval(ans))
    return ans, select_and_gather_add_p.bind(t, x, **params)


reduce_window_max_p.jvp = _reduce_window_max_jvp

# ---------------------------------------------------------------------------
# select_and_gather_add(t, x): t at the first maximum of x in each window (linear in t)
# select_and_scatter_add(s, x): s added at the first maximum of x in each window (linear in s)

select_and_gather_add_p = Primitive("select_and_gather_add")
select_and_scatter_add_p = Primitive("select_and_scatter_add")


def _sga_abstract_eval(t, x, *, window_dimensions, window_strides, padding):
    _window_params_check("select_and_gather_add", x, window_dimensions, window_strides, padding)
    if t.shape != x.shape:
        raise ValueError(f"select_and_gather_add: the tangent {t.str_short()} and the operand "
                         f"{x.str_short()} must have one shape")
    shape = _window_out_shape(x.shape, window_dimensions, window_strides, padding)
    return ShapedArray(shape, t.dtype, t.weak_type)


def _ssa_abstract_eval(s, x, *, window_dimensions, window_strides, padding):
    _window_params_check("select_and_scatter_add", x, window_dimensions, window_strides,
                         padding)
    expected = _window_out_shape(x.shape, window_dimensions, window_strides, padding)
    if s.shape != expected:
        raise ValueError(f"select_and_scatter_add: the source {s.str_short()} must have the "
                         f"window-output shape {expected} of the operand {x.str_short()}")
    return ShapedArray(x.shape, s.dtype, s.weak_type)


def _linear_in_first_jvp(prim):
    """JVP of a primitive linear in its first operand and locally constant in the
    second (the selection only changes where ``x`` has ties)."""

    def jvp(primals, tangents, **params):
        ans = prim.bind(*primals, **params)
        t = tangents[0]
        if type(t) is Zero:
            return ans, Zero(get_aval(ans))
        return ans, prim.bind(t, primals[1], **params)

    return jvp


def _sga_transpose(ct, t, x, **params):
    return [select_and_scatter_add_p.bind(ct, x, **params), None]


def _ssa_transpose(ct, s, x, **params):
    return [select_and_gather_add_p.bind(ct, x, **params), None]


select_and_gather_add_p.abstract_eval = _sga_abstract_eval
select_and_gather_add_p.jvp = _linear_in_first_jvp(select_and_gather_add_p)
select_and_gather_add_p.transpose = _sga_transpose
select_and_gather_add_p.linear = True
select_and_scatter_add_p.abstract_eval = _ssa_abstract_eval
select_and_scatter_add_p.jvp = _linear_in_first_jvp(select_and_scatter_add_p)
select_and_scatter_add_p.transpose = _ssa_transpose
select_and_scatter_add_p.linear = True

# ---------------------------------------------------------------------------
# User functions: reduce_window, max_pool, avg_pool

_KINDS = {"max": "max", "maximum": "max", "amax": "max", "sum": "sum", "add": "sum",
          "min": "min", "minimum": "min", "amin": "min"}


def _computation_kind(computation) -> str:
    name = computation if isinstance(computation, str) else getattr(computation, "__name__", "")
    kind = _KINDS.get(str(name).lower())
    if kind is None:
        raise ValueError(
            "reduce_window: computation must be a maximum (fnp.maximum, max, 'max'), a sum "
            f"(fnp.add, operator.add, 'sum') or a minimum (fnp.minimum, min, 'min'), got "
            f"{computation!r}")
    return kind


def _valid_counts(shape, window_dimensions, window_strides, padding) -> np.ndarray:
    """How many non-padding elements each window holds (static: shapes only)."""
    out_shape = _window_out_shape(shape, window_dimensions, window_strides, padding)
    counts = np.ones((), np.int64)
    for d, w, s, (lo, _), n in zip(shape, window_dimensions, window_strides, padding,
                                   out_shape):
        start = np.arange(n) * s - lo  # first input index of each window
        per_axis = np.minimum(start + w, d) - np.maximum(start, 0)
        counts = np.multiply.outer(counts, np.maximum(per_axis, 0))
    return counts


def _is_identity(init_value, kind: str, dtype) -> bool:
    if not isinstance(init_value, (int, float, np.generic, np.ndarray)) or np.ndim(init_value):
        return False
    v = init_value.item() if hasattr(init_value, "item") else init_value
    if kind == "sum":
        return v == 0
    dtype = np.dtype(dtype)
    if kind == "max":
        return v == -math.inf or (dtype.kind in "iu" and v == np.iinfo(dtype).min)
    return v == math.inf or (dtype.kind in "iu" and v == np.iinfo(dtype).max)


def _full_params(x, window_dimensions, window_strides, padding, what):
    shape = tuple(np.shape(x))
    nd = len(shape)
    window_dimensions = _int_tuple(window_dimensions, nd, "window_dimensions", what)
    window_strides = _int_tuple(window_strides, nd, "window_strides", what)
    pads = _padding_pairs(padding, shape, window_dimensions, window_strides, what)
    return window_dimensions, window_strides, pads


def reduce_window(x, init_value, computation, window_dimensions, window_strides=None,
                  padding="VALID"):
    """Reduce every window of ``x`` with ``computation`` (max, sum or min).

    ``window_dimensions`` and ``window_strides`` (default 1) have one entry
    per axis of ``x``; ``padding`` is ``"VALID"``, ``"SAME"`` or one
    non-negative ``(lo, hi)`` pair per axis.  As in XLA, ``init_value`` starts
    every reduction and fills the padding; with the identity (``-inf`` for
    max, ``0`` for sum, ``inf`` for min) it changes nothing.
    ``computation`` is recognised by name: ``fnp.maximum``, ``np.maximum``,
    ``max`` or ``"max"``; ``fnp.add``, ``operator.add`` or ``"sum"``;
    ``fnp.minimum``, ``min`` or ``"min"``.  Arbitrary reducers are not
    supported.  Derivatives of max/min windows follow the tie rule in the
    module docstring (the first extremal element of a window gets it all).

    >>> import numpy as np
    >>> x = np.array([1.0, 3.0, 2.0, 5.0, 4.0])
    >>> reduce_window(x, -np.inf, "max", (2,), (1,))
    array([3., 3., 5., 5.])
    >>> reduce_window(x, 0.0, "sum", (3,), (2,), padding="SAME")
    array([ 4., 10.,  9.])
    """
    x = _as_array(x)
    kind = _computation_kind(computation)
    wd, ws, pads = _full_params(x, window_dimensions, window_strides, padding, "reduce_window")
    identity = _is_identity(init_value, kind, x.dtype)
    if kind == "sum":
        out = _reduce_window_sum(x, wd, ws, pads)
        if identity:
            return out
        # init starts the sum and fills each padding slot the window covers
        slots = math.prod(wd) - _valid_counts(np.shape(x), wd, ws, pads) + 1
        return ew.add(out, ew.mul(slots.astype(x.dtype), init_value))
    if kind == "min":
        out = ew.neg(_reduce_window_max(ew.neg(x), wd, ws, pads))
        return out if identity else ew.minimum(out, init_value)
    out = _reduce_window_max(x, wd, ws, pads)
    return out if identity else ew.maximum(out, init_value)


def _pool_params(x, window, strides, padding, what):
    nd = len(np.shape(x))
    ns = nd - 2
    if ns < 1:
        raise ValueError(f"{what}: the input must be (N, *spatial, C) with at least one spatial "
                         f"dimension, got shape {tuple(np.shape(x))}")
    window = _int_tuple(window, ns, "window", what)
    strides = window if strides is None else _int_tuple(strides, ns, "strides", what)
    wd, ws = (1,) + window + (1,), (1,) + strides + (1,)
    if isinstance(padding, str):
        pads = _padding_pairs(padding, tuple(np.shape(x)), wd, ws, what)
    else:
        pads = ((0, 0),) + _padding_pairs(padding, tuple(np.shape(x))[1:-1], window, strides,
                                          what) + ((0, 0),)
    return wd, ws, pads


def max_pool(x, window, strides=None, padding="VALID"):
    """Max pooling of a channels-last ``x`` of shape ``(N, *spatial, C)``.

    ``window`` and ``strides`` give one int per spatial dimension (or one int
    for all); ``strides`` defaults to ``window`` (non-overlapping windows);
    ``padding`` is ``"VALID"``, ``"SAME"`` or ``[(lo, hi), ...]`` per spatial
    dimension (padding never wins the max).  The derivative of each window
    goes to its first maximal element (row-major order within the window).

    >>> import numpy as np
    >>> x = np.array([[1.0, 2.0, 0.0], [4.0, 3.0, -1.0]]).reshape(1, 2, 3, 1)
    >>> max_pool(x, (2, 2), strides=(1, 1))[0, :, :, 0]
    array([[4., 3.]])
    >>> max_pool(x, 2, padding="SAME").shape
    (1, 1, 2, 1)
    """
    x = _as_array(x)
    return _reduce_window_max(x, *_pool_params(x, window, strides, padding, "max_pool"))


def avg_pool(x, window, strides=None, padding="VALID", count_include_pad: bool = True):
    """Average pooling of a channels-last ``x`` of shape ``(N, *spatial, C)``.

    Arguments as in :func:`max_pool`.  With ``count_include_pad=True`` (the
    default, as in Flax and PyTorch) every window sum is divided by the
    window size; with ``False``, by the number of non-padding elements it
    covers (a window of padding only gives 0).  Integer inputs are averaged
    in ``config.default_float``.

    >>> import numpy as np
    >>> x = np.arange(4.0).reshape(1, 4, 1)
    >>> avg_pool(x, 2)[0, :, 0]
    array([0.5, 2.5])
    >>> avg_pool(x, 3, strides=1, padding="SAME", count_include_pad=False)[0, :, 0]
    array([0.5, 1. , 2. , 2.5])
    """
    from funcnet.config import config

    x = _as_array(x)
    if np.dtype(x.dtype).kind not in "fc":
        x = ew.convert_element_type(x, config.float_dtype)
    wd, ws, pads = _pool_params(x, window, strides, padding, "avg_pool")
    total = _reduce_window_sum(x, wd, ws, pads)
    if count_include_pad or all(p == (0, 0) for p in pads):
        return ew.div(total, np.asarray(math.prod(wd), x.dtype))
    counts = np.maximum(_valid_counts(np.shape(x), wd, ws, pads), 1)  # padding-only: 0
    return ew.div(total, counts.astype(x.dtype))


# ---------------------------------------------------------------------------
# Batching rules (vmap)


def _install_batching_rules() -> None:
    from funcnet.transforms.batching import bdim_at_front, moveaxis

    def conv_rule(vals, dims, *, window_strides, padding, lhs_dilation, rhs_dilation,
                  feature_group_count):
        (x, w), (dx, dw) = vals, dims
        params = (window_strides, padding, lhs_dilation, rhs_dilation)
        g = feature_group_count
        if dw is None:  # fold the batch into N
            x = moveaxis(x, dx, 0)
            b, n = np.shape(x)[:2]
            out = _conv(reshape(x, (b * n,) + tuple(np.shape(x)[2:])), w, *params, g)
            return reshape(out, (b, n) + tuple(np.shape(out)[1:])), 0
        w = moveaxis(w, dw, 0)
        b, k_sp = np.shape(w)[0], tuple(np.shape(w)[1:-2])
        i, o = np.shape(w)[-2:]
        ns = len(k_sp)
        # kernel (B, *K, I, G*Og) -> (*K, I, G*B*Og): the batch joins the output
        # features inside each group
        w = reshape(w, (b,) + k_sp + (i, g, o // g))
        w = transpose(w, tuple(range(1, ns + 2)) + (ns + 2, 0, ns + 3))
        if dx is None:
            out = _conv(x, reshape(w, k_sp + (i, g * b * (o // g))), *params, g)
            lead = tuple(np.shape(out)[:-1])
            out = reshape(out, lead + (g, b, o // g))
            out = transpose(out, tuple(range(ns + 1)) + (ns + 2, ns + 1, ns + 3))
            return reshape(out, lead + (b, o)), ns + 1
        # both batched: B * G groups; input features (B, C) flattened
        x = moveaxis(x, dx, 0)
        n, in_sp, c = np.shape(x)[1], tuple(np.shape(x)[2:-1]), np.shape(x)[-1]
        x = transpose(x, tuple(range(1, ns + 2)) + (0, ns + 2))
        x = reshape(x, (n,) + in_sp + (b * c,))
        w = transpose(w, tuple(range(ns + 1)) + (ns + 2, ns + 1, ns + 3))  # (*K, I, B, G, Og)
        out = _conv(x, reshape(w, k_sp + (i, b * o)), *params, b * g)
        lead = tuple(np.shape(out)[:-1])
        return reshape(out, lead + (b, o)), ns + 1

    def prepend_window(params):
        return dict(window_dimensions=(1,) + params["window_dimensions"],
                    window_strides=(1,) + params["window_strides"],
                    padding=((0, 0),) + params["padding"])

    def reduce_rule(prim):
        def rule(vals, dims, **params):
            return prim.bind(moveaxis(vals[0], dims[0], 0), **prepend_window(params)), 0

        return rule

    def select_rule(prim):
        def rule(vals, dims, **params):
            size = next(np.shape(v)[d] for v, d in zip(vals, dims) if d is not None)
            a, x = (bdim_at_front(v, d, size) for v, d in zip(vals, dims))
            return prim.bind(a, x, **prepend_window(params)), 0

        return rule

    conv_general_dilated_p.batch = conv_rule
    reduce_window_sum_p.batch = reduce_rule(reduce_window_sum_p)
    reduce_window_max_p.batch = reduce_rule(reduce_window_max_p)
    select_and_gather_add_p.batch = select_rule(select_and_gather_add_p)
    select_and_scatter_add_p.batch = select_rule(select_and_scatter_add_p)


_install_batching_rules()
