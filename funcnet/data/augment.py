"""Data augmentation as pure functions of a key, one example at a time.

Each function takes a key and **one** example (an image ``(height, width,
channels)`` or ``(height, width)``; a wave ``(time,)`` or ``(..., time)``)
and returns a new one; the same key gives the same result.  Written with
``funcnet.numpy`` and ``funcnet.lax``, they run eagerly, under ``fn.jit``
and under ``fn.vmap`` over a batch of keys and examples (size parameters
must be static Python numbers):

>>> import numpy as np
>>> import funcnet as fn
>>> from funcnet import data, random
>>> images = np.random.default_rng(0).random((8, 28, 28, 1), dtype=np.float32)
>>> keys = random.split(random.key(0), 8)
>>> augment = fn.jit(fn.vmap(lambda k, x: data.random_crop(k, x, 28, padding=2)))
>>> augment(keys, images).shape
(8, 28, 28, 1)

Strength zero gives the input back exactly (``padding=0`` with full-size
crops, ``p=0``, ``max_degrees=0``, ``min_scale=max_scale=1``,
``max_shift=0``, ``scale=0`` or ``snr_db=inf``).  Integer images are
resampled in floating point and rounded back to their dtype.
"""

from __future__ import annotations

import numpy as np

import funcnet as fn
import funcnet.numpy as fnp
from funcnet import lax, random

__all__ = ["random_crop", "random_flip", "random_rotation", "random_scale", "rotate", "zoom",
           "time_shift", "add_noise"]


def _pair(value, name: str) -> tuple[int, int]:
    if isinstance(value, (int, np.integer)):
        return int(value), int(value)
    try:
        a, b = value
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}") from None
    return int(a), int(b)


def _image(image, caller: str):
    image = fnp.asarray(image)
    if image.ndim < 2:
        raise ValueError(f"{caller}: expected one image (height, width[, channels]), got shape "
                         f"{image.shape}; use fn.vmap for a batch")
    return image


def _work_dtype(dtype):
    dtype = np.dtype(dtype)
    return dtype if dtype.kind == "f" else np.dtype(fn.config.default_float)


def _restore_dtype(out, dtype):
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return out
    if dtype.kind == "b":
        return out > 0.5
    info = np.iinfo(dtype)
    return fnp.clip(fnp.round(out), info.min, info.max).astype(dtype)


# ---------------------------------------------------------------------------
# crops and flips


def random_crop(key, image, size, padding=0, pad_mode: str = "constant", fill=0):
    """A ``size`` crop at a random position of ``image`` padded by ``padding`` on each side.

    ``size`` and ``padding`` are ints or ``(height, width)`` pairs.  Every
    position of the crop within the padded image is equally likely.
    ``pad_mode`` is any :func:`funcnet.numpy.pad` mode (``"constant"`` with
    ``fill``, ``"reflect"``, ``"edge"``, ...).  The classic CIFAR
    augmentation is ``random_crop(key, x, 32, padding=4)``.

    >>> import numpy as np
    >>> from funcnet import data, random
    >>> x = np.arange(16.0).reshape(4, 4, 1)
    >>> data.random_crop(random.key(0), x, 2).shape
    (2, 2, 1)
    >>> bool((data.random_crop(random.key(0), x, 4) == x).all())   # full size, no padding
    True
    """
    image = _image(image, "random_crop")
    h, w = _pair(size, "size")
    ph, pw = _pair(padding, "padding")
    if ph or pw:
        widths = [(ph, ph), (pw, pw)] + [(0, 0)] * (image.ndim - 2)
        if pad_mode == "constant":
            image = fnp.pad(image, widths, mode="constant", constant_values=fill)
        else:
            image = fnp.pad(image, widths, mode=pad_mode)
    height, width = image.shape[0], image.shape[1]
    if not (0 < h <= height and 0 < w <= width):
        raise ValueError(f"random_crop: crop size {(h, w)} does not fit in the padded image "
                         f"{(height, width)}")
    key_y, key_x = random.split(key)
    top = random.randint(key_y, (), 0, height - h + 1)
    left = random.randint(key_x, (), 0, width - w + 1)
    starts = [top, left] + [0] * (image.ndim - 2)
    return lax.dynamic_slice(image, starts, [h, w, *image.shape[2:]])


def random_flip(key, image, p: float = 0.5, axis: int = 1):
    """Flip ``image`` along ``axis`` with probability ``p`` (default: left-right, axis 1).

    Use ``axis=0`` for an up-down flip.

    >>> import numpy as np
    >>> from funcnet import data, random
    >>> x = np.array([[1.0, 2.0, 3.0]])
    >>> data.random_flip(random.key(0), x, p=1.0)
    array([[3., 2., 1.]])
    >>> data.random_flip(random.key(0), x, p=0.0)
    array([[1., 2., 3.]])
    """
    image = _image(image, "random_flip")
    flip = random.bernoulli(key, p)
    return fnp.where(flip, fnp.flip(image, axis=axis), image)


# ---------------------------------------------------------------------------
# geometric resampling (rotation, zoom) by bilinear interpolation


def _bilinear(image, src_y, src_x, fill):
    """Sample ``image`` (H, W, ...) at float coordinates ``src_y``, ``src_x`` (H, W).

    Neighbours outside the image take the value ``fill``.  Written as four
    gathers from the image flattened to ``(H * W, ...)``.
    """
    height, width = image.shape[0], image.shape[1]
    rest = image.shape[2:]
    flat = fnp.reshape(image, (height * width, *rest))
    y0 = fnp.floor(src_y)
    x0 = fnp.floor(src_x)
    wy = src_y - y0
    wx = src_x - x0
    y0 = y0.astype(np.int64)
    x0 = x0.astype(np.int64)
    extra = (slice(None), slice(None)) + (None,) * len(rest)  # broadcast over channels

    def tap(yi, xi):
        inside = (yi >= 0) & (yi < height) & (xi >= 0) & (xi < width)
        index = fnp.clip(yi, 0, height - 1) * width + fnp.clip(xi, 0, width - 1)
        values = fnp.reshape(fnp.take(flat, fnp.ravel(index), axis=0), image.shape)
        return fnp.where(inside[extra], values, fill)

    top = tap(y0, x0) * (1 - wx)[extra] + tap(y0, x0 + 1) * wx[extra]
    bottom = tap(y0 + 1, x0) * (1 - wx)[extra] + tap(y0 + 1, x0 + 1) * wx[extra]
    return top * (1 - wy)[extra] + bottom * wy[extra]


def _grid(image, dtype):
    """Pixel coordinates relative to the image centre: ``(dy, dx, cy, cx)``."""
    height, width = image.shape[0], image.shape[1]
    cy, cx = (height - 1) / 2.0, (width - 1) / 2.0
    ys = np.arange(height, dtype=dtype)[:, None] - np.asarray(cy, dtype)
    xs = np.arange(width, dtype=dtype)[None, :] - np.asarray(cx, dtype)
    dy = np.broadcast_to(ys, (height, width))
    dx = np.broadcast_to(xs, (height, width))
    return dy, dx, np.asarray(cy, dtype), np.asarray(cx, dtype)


def rotate(image, degrees, fill=0.0):
    """Rotate ``image`` about its centre by ``degrees`` (counter-clockwise as displayed).

    Bilinear interpolation; pixels that come from outside the image are
    ``fill``.  ``degrees`` may be traced (e.g. drawn from a key under
    ``fn.jit``).  ``rotate(x, 90)`` equals ``numpy.rot90(x)`` for a square
    image (up to float rounding).

    >>> import numpy as np
    >>> from funcnet import data
    >>> x = np.array([[1.0, 2.0], [3.0, 4.0]])
    >>> np.round(data.rotate(x, 90), 5)
    array([[2., 4.],
           [1., 3.]])
    """
    image = _image(image, "rotate")
    dtype = image.dtype
    work = _work_dtype(dtype)
    x = image.astype(work)
    theta = fnp.asarray(degrees, dtype=work) * (np.pi / 180.0)
    cos, sin = fnp.cos(theta), fnp.sin(theta)
    dy, dx, cy, cx = _grid(image, work)
    # the source of output pixel (dy, dx) is that point rotated clockwise by theta
    src_x = cx + cos * dx - sin * dy
    src_y = cy + sin * dx + cos * dy
    return _restore_dtype(_bilinear(x, src_y, src_x, fill), dtype)


def zoom(image, scale, fill=0.0):
    """Zoom ``image`` about its centre by ``scale`` (> 1 enlarges, < 1 shrinks), same shape.

    Bilinear interpolation; pixels that come from outside the image are
    ``fill``.  ``scale`` may be traced.

    >>> import numpy as np
    >>> from funcnet import data
    >>> x = np.zeros((5, 5)); x[2, 2] = 1.0
    >>> float(data.zoom(x, 0.5)[2, 2]), float(data.zoom(x, 2.0)[2, 3])   # centre stays put
    (1.0, 0.5)
    """
    image = _image(image, "zoom")
    dtype = image.dtype
    work = _work_dtype(dtype)
    x = image.astype(work)
    inverse = 1.0 / fnp.asarray(scale, dtype=work)
    dy, dx, cy, cx = _grid(image, work)
    return _restore_dtype(_bilinear(x, cy + dy * inverse, cx + dx * inverse, fill), dtype)


def random_rotation(key, image, max_degrees: float, fill=0.0):
    """Rotate ``image`` by an angle drawn uniformly from ``[-max_degrees, max_degrees]``.

    See :func:`rotate` (bilinear sampling, ``fill`` outside the image).

    >>> import numpy as np
    >>> from funcnet import data, random
    >>> x = np.random.default_rng(0).random((6, 6, 3))
    >>> data.random_rotation(random.key(0), x, 15.0).shape
    (6, 6, 3)
    >>> bool((data.random_rotation(random.key(0), x, 0.0) == x).all())
    True
    """
    image = _image(image, "random_rotation")
    work = _work_dtype(image.dtype)
    angle = random.uniform(key, (), work, minval=-max_degrees, maxval=max_degrees)
    return rotate(image, angle, fill)


def random_scale(key, image, min_scale: float, max_scale: float, fill=0.0):
    """Zoom ``image`` by a factor drawn uniformly from ``[min_scale, max_scale]``.

    See :func:`zoom`; ``min_scale=max_scale=1`` returns the image.

    >>> import numpy as np
    >>> from funcnet import data, random
    >>> x = np.random.default_rng(0).random((6, 6))
    >>> data.random_scale(random.key(0), x, 0.8, 1.2).shape
    (6, 6)
    >>> bool((data.random_scale(random.key(0), x, 1.0, 1.0) == x).all())
    True
    """
    image = _image(image, "random_scale")
    if not 0 < min_scale <= max_scale:
        raise ValueError(f"random_scale: need 0 < min_scale <= max_scale, got {min_scale}, "
                         f"{max_scale}")
    work = _work_dtype(image.dtype)
    factor = random.uniform(key, (), work, minval=min_scale, maxval=max_scale)
    return zoom(image, factor, fill)


# ---------------------------------------------------------------------------
# audio


def time_shift(key, wave, max_shift: int):
    """Shift ``wave`` in time by a whole number of samples drawn from ``[-max_shift, max_shift]``.

    Time is the last axis.  Samples shifted out are lost and the gap is
    filled with zeros (no wrap-around).

    >>> import numpy as np
    >>> from funcnet import data, random
    >>> w = np.arange(1.0, 6.0)
    >>> shifted = data.time_shift(random.key(3), w, 2)
    >>> shifted.shape, bool((data.time_shift(random.key(3), w, 0) == w).all())
    ((5,), True)
    """
    wave = fnp.asarray(wave)
    if wave.ndim < 1:
        raise ValueError("time_shift: expected a wave with a time axis, got a scalar")
    max_shift = int(max_shift)
    if max_shift < 0:
        raise ValueError(f"time_shift: max_shift must be non-negative, got {max_shift}")
    if max_shift == 0:
        return wave
    shift = random.randint(key, (), -max_shift, max_shift + 1)
    padded = fnp.pad(wave, [(0, 0)] * (wave.ndim - 1) + [(max_shift, max_shift)])
    # output[t] = wave[t - shift] = padded[t - shift + max_shift]
    starts = [0] * (wave.ndim - 1) + [max_shift - shift]
    return lax.dynamic_slice(padded, starts, wave.shape)


def add_noise(key, wave, snr_db=None, scale=None):
    """Add Gaussian noise to ``wave``, at a signal-to-noise ratio or with a fixed scale.

    Give exactly one of ``snr_db`` (noise power = mean signal power /
    ``10 ** (snr_db / 10)``; ``inf`` adds nothing) or ``scale`` (the noise's
    standard deviation; ``0`` adds nothing).  Both may be traced.

    >>> import numpy as np
    >>> from funcnet import data, random
    >>> w = np.sin(np.linspace(0, 20, 8000)).astype(np.float32)
    >>> noisy = data.add_noise(random.key(0), w, snr_db=10.0)
    >>> snr = 10 * np.log10(np.mean(w ** 2) / np.mean((noisy - w) ** 2))
    >>> bool(abs(snr - 10.0) < 0.5)
    True
    """
    if (snr_db is None) == (scale is None):
        raise TypeError("add_noise: give exactly one of snr_db or scale")
    wave = fnp.asarray(wave)
    work = _work_dtype(wave.dtype)
    x = wave.astype(work)
    noise = random.normal(key, x.shape, work)
    if scale is not None:
        std = fnp.asarray(scale, dtype=work)
    else:
        power = fnp.mean(x * x)
        std = fnp.sqrt(power / fnp.power(10.0, fnp.asarray(snr_db, dtype=work) / 10.0))
    return _restore_dtype(x + std * noise, wave.dtype)
