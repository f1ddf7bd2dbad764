"""Audio features written in ``funcnet.numpy``: STFT, (mel) spectrograms, MFCCs.

They run eagerly, under ``fn.jit`` and ``fn.vmap``, on every backend, and are
differentiable.  Parameters that set shapes (``sample_rate``, ``n_fft``,
``hop_length``, ``n_mels`` ...) must be Python numbers (static under jit).

Conventions (librosa's where they make sense, and said where not):

- **Time-major output**: features are ``(..., frames, bins)``, i.e.
  librosa's ``(bins, frames)`` transposed, so a batch is ready for a dense
  or recurrent layer over time (TensorFlow's ``tf.signal`` does the same).
- **Framing**: ``center=True`` pads ``n_fft // 2`` samples at both ends
  (zeros by default, librosa >= 0.10's ``pad_mode="constant"``), so frame
  ``t`` is centred on sample ``t * hop_length`` and there are
  ``1 + len // hop_length`` frames (for an even ``n_fft``).  ``hop_length`` defaults to
  ``n_fft // 4``.
- **Window**: periodic Hann (``0.5 - 0.5 cos(2 pi n / win_length)``, as
  ``scipy.signal.get_window("hann", N)``), zero-padded to ``n_fft`` when
  ``win_length < n_fft``.
- **Spectrogram**: the power spectrogram ``|STFT|**2`` (``power=2``).
- **Mel scale**: Slaney's (librosa's default, ``htk=False``: linear below
  1 kHz, logarithmic above) with Slaney area normalisation
  (``norm="slaney"``); ``htk=True`` uses ``2595 log10(1 + f / 700)``.
- **MFCC**: ``power_to_db`` of the mel power spectrogram (``10 log10``,
  floor ``1e-10``, ``top_db=80`` below each example's peak), then an
  orthonormal DCT-II over the mel axis (a matrix product), keeping the
  first ``n_mfcc`` coefficients -- librosa's ``mfcc`` definition.
- Defaults suit 8-16 kHz speech: ``n_fft=512``, ``n_mels=40``,
  ``n_mfcc=13`` (librosa defaults to 2048 / 128 / 20 for music).

>>> import numpy as np
>>> import funcnet as fn
>>> from funcnet import data
>>> wave = np.sin(2 * np.pi * 440 * np.arange(8000) / 8000).astype(np.float32)
>>> features = fn.jit(lambda w: data.mfcc(w, sample_rate=8000))(wave)
>>> features.shape, features.dtype
((63, 13), dtype('float32'))
"""

from __future__ import annotations

import functools

import numpy as np

import funcnet as fn
import funcnet.numpy as fnp

__all__ = ["hann_window", "frame", "stft", "spectrogram", "hz_to_mel", "mel_to_hz",
           "mel_filterbank", "mel_spectrogram", "power_to_db", "dct_matrix", "mfcc"]


def _float_dtype(x) -> np.dtype:
    dtype = np.dtype(x.dtype)
    return dtype if dtype.kind == "f" else np.dtype(fn.config.default_float)


def hann_window(length: int, periodic: bool = True, dtype=np.float32) -> np.ndarray:
    """The Hann window as a NumPy array (periodic by default, as spectral analysis wants).

    >>> from funcnet import data
    >>> data.hann_window(4)
    array([0. , 0.5, 1. , 0.5], dtype=float32)
    """
    length = int(length)
    if length <= 0:
        raise ValueError(f"hann_window: length must be positive, got {length}")
    if length == 1:
        return np.ones(1, dtype)
    denominator = length if periodic else length - 1
    n = np.arange(length)
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * n / denominator)).astype(dtype)


def frame(x, frame_length: int, hop_length: int):
    """Overlapping frames of the last axis: ``(..., n_frames, frame_length)``.

    ``n_frames = 1 + (len - frame_length) // hop_length``; a gather with a
    constant index table, so it traces and batches like any fnp code.

    >>> import numpy as np
    >>> from funcnet import data
    >>> data.frame(np.arange(6), 4, 2)
    array([[0, 1, 2, 3],
           [2, 3, 4, 5]])
    """
    x = fnp.asarray(x)
    frame_length, hop_length = int(frame_length), int(hop_length)
    n = x.shape[-1]
    if hop_length <= 0:
        raise ValueError(f"frame: hop_length must be positive, got {hop_length}")
    if n < frame_length:
        raise ValueError(f"frame: the signal has {n} samples, fewer than frame_length="
                         f"{frame_length}; use center=True or a shorter frame")
    n_frames = 1 + (n - frame_length) // hop_length
    index = (np.arange(n_frames)[:, None] * hop_length + np.arange(frame_length)[None, :])
    return x[..., index]


def _window(window, win_length: int, n_fft: int, dtype):
    if isinstance(window, str):
        if window not in ("hann", "hanning"):
            raise ValueError(f"unknown window {window!r}; use 'hann' or pass an array")
        w = hann_window(win_length, dtype=dtype)
    else:
        w = np.asarray(fn.to_numpy(window), dtype=dtype)
        if w.shape != (win_length,):
            raise ValueError(f"window has shape {w.shape}, expected ({win_length},)")
    if win_length < n_fft:  # centre the window in the frame, as librosa does
        left = (n_fft - win_length) // 2
        w = np.pad(w, (left, n_fft - win_length - left))
    return w


def stft(x, n_fft: int = 512, hop_length: int | None = None, win_length: int | None = None,
         window="hann", center: bool = True, pad_mode: str = "constant"):
    """Short-time Fourier transform over the last axis: complex ``(..., frames, n_fft // 2 + 1)``.

    See the module notes for the conventions (time-major, centred frames,
    periodic Hann window).  ``window`` is ``"hann"`` or an array of
    ``win_length`` (default ``n_fft``) values; ``pad_mode`` is any
    :func:`funcnet.numpy.pad` mode (``"constant"``, ``"reflect"`` ...).

    >>> import numpy as np
    >>> from funcnet import data
    >>> s = data.stft(np.ones(1000, np.float32), n_fft=256)
    >>> s.shape, s.dtype
    ((16, 129), dtype('complex64'))
    """
    x = fnp.asarray(x)
    dtype = _float_dtype(x)
    x = x.astype(dtype)
    n_fft = int(n_fft)
    win_length = n_fft if win_length is None else int(win_length)
    hop_length = n_fft // 4 if hop_length is None else int(hop_length)
    if not 0 < win_length <= n_fft:
        raise ValueError(f"stft: need 0 < win_length <= n_fft, got {win_length}, {n_fft}")
    if center:
        pad = [(0, 0)] * (x.ndim - 1) + [(n_fft // 2, n_fft // 2)]
        x = fnp.pad(x, pad, mode=pad_mode)
    frames = frame(x, n_fft, hop_length) * _window(window, win_length, n_fft, dtype)
    return fnp.fft.rfft(frames, axis=-1)


def spectrogram(x, n_fft: int = 512, hop_length: int | None = None,
                win_length: int | None = None, window="hann", center: bool = True,
                pad_mode: str = "constant", power: float = 2.0):
    """``|stft(x)| ** power``: the power spectrogram by default, ``(..., frames, n_fft//2 + 1)``.

    >>> import numpy as np
    >>> from funcnet import data
    >>> t = np.arange(4096) / 8000
    >>> s = data.spectrogram(np.sin(2 * np.pi * 1000 * t).astype(np.float32), n_fft=256)
    >>> int(s[8].argmax())        # 1000 Hz is bin 1000 / (8000 / 256) = 32
    32
    """
    z = stft(x, n_fft, hop_length, win_length, window, center, pad_mode)
    re, im = fnp.real(z), fnp.imag(z)
    energy = re * re + im * im
    if power == 2.0:
        return energy
    if power == 1.0:
        return fnp.sqrt(energy)
    return energy ** (power / 2.0)


# ---------------------------------------------------------------------------
# mel scale

# Slaney's mel scale: linear (3 mels per 200 Hz) below 1 kHz, logarithmic above,
# with 27 mels per factor 6.4 of frequency.
_F_SP = 200.0 / 3.0
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOG_STEP = np.log(6.4) / 27.0


def hz_to_mel(hz, htk: bool = False):
    """Frequencies in Hz to mels (Slaney's scale by default, HTK's with ``htk=True``).

    >>> from funcnet import data
    >>> float(data.hz_to_mel(1000.0)), round(float(data.hz_to_mel(1000.0, htk=True)), 2)
    (15.0, 999.99)
    """
    hz = np.asarray(hz, dtype=np.float64)
    if htk:
        return 2595.0 * np.log10(1.0 + hz / 700.0)
    linear = hz / _F_SP
    logarithmic = _MIN_LOG_MEL + np.log(np.maximum(hz, _MIN_LOG_HZ) / _MIN_LOG_HZ) / _LOG_STEP
    return np.where(hz >= _MIN_LOG_HZ, logarithmic, linear)


def mel_to_hz(mels, htk: bool = False):
    """Mels to frequencies in Hz, the inverse of :func:`hz_to_mel`.

    >>> from funcnet import data
    >>> float(data.mel_to_hz(15.0)), round(float(data.mel_to_hz(data.hz_to_mel(300.0))), 6)
    (1000.0, 300.0)
    """
    mels = np.asarray(mels, dtype=np.float64)
    if htk:
        return 700.0 * (10.0 ** (mels / 2595.0) - 1.0)
    linear = mels * _F_SP
    logarithmic = _MIN_LOG_HZ * np.exp(_LOG_STEP * (np.maximum(mels, _MIN_LOG_MEL)
                                                    - _MIN_LOG_MEL))
    return np.where(mels >= _MIN_LOG_MEL, logarithmic, linear)


@functools.lru_cache(maxsize=64)
def _mel_filterbank_cached(sample_rate, n_fft, n_mels, fmin, fmax, htk, norm):
    freqs = np.linspace(0.0, sample_rate / 2.0, n_fft // 2 + 1)  # the rfft bins
    # n_mels triangles between n_mels + 2 edges evenly spaced in mels
    edges = mel_to_hz(np.linspace(hz_to_mel(fmin, htk), hz_to_mel(fmax, htk), n_mels + 2), htk)
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (freqs[None, :] - lower) / (centre - lower)
    falling = (upper - freqs[None, :]) / (upper - centre)
    weights = np.maximum(0.0, np.minimum(rising, falling))  # (n_mels, n_freqs)
    if norm == "slaney":  # equal area: divide by half the triangle's base
        weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    weights = weights.T
    weights.setflags(write=False)
    return weights


def mel_filterbank(sample_rate: float, n_fft: int, n_mels: int = 40, fmin: float = 0.0,
                   fmax: float | None = None, htk: bool = False, norm: str | None = "slaney",
                   dtype=np.float32) -> np.ndarray:
    """Triangular mel filters as a NumPy matrix ``(n_fft // 2 + 1, n_mels)``.

    Right-multiply a power spectrogram ``(..., frames, n_fft // 2 + 1)`` by it
    to get mel bands; it is librosa's ``filters.mel`` transposed (same
    Slaney or HTK scale and Slaney normalisation; ``norm=None`` gives
    triangles of peak 1).  ``fmax`` defaults to ``sample_rate / 2``.

    >>> from funcnet import data
    >>> fb = data.mel_filterbank(8000, 512, n_mels=40)
    >>> fb.shape, bool((fb >= 0).all())
    ((257, 40), True)
    """
    fmax = sample_rate / 2.0 if fmax is None else float(fmax)
    if not 0.0 <= fmin < fmax <= sample_rate / 2.0:
        raise ValueError(f"mel_filterbank: need 0 <= fmin < fmax <= sample_rate / 2, got "
                         f"fmin={fmin}, fmax={fmax}, sample_rate={sample_rate}")
    if norm not in (None, "slaney"):
        raise ValueError(f"mel_filterbank: norm must be 'slaney' or None, got {norm!r}")
    weights = _mel_filterbank_cached(float(sample_rate), int(n_fft), int(n_mels), float(fmin),
                                     fmax, bool(htk), norm)
    return weights.astype(dtype)


def mel_spectrogram(x, sample_rate: float, n_fft: int = 512, hop_length: int | None = None,
                    win_length: int | None = None, window="hann", center: bool = True,
                    pad_mode: str = "constant", power: float = 2.0, n_mels: int = 40,
                    fmin: float = 0.0, fmax: float | None = None, htk: bool = False,
                    norm: str | None = "slaney"):
    """Mel-band power spectrogram ``(..., frames, n_mels)``.

    ``spectrogram(x, ...) @ mel_filterbank(sample_rate, n_fft, n_mels, ...)``.

    >>> import numpy as np
    >>> from funcnet import data
    >>> data.mel_spectrogram(np.zeros(800, np.float32), 8000, n_fft=256).shape
    (13, 40)
    """
    s = spectrogram(x, n_fft, hop_length, win_length, window, center, pad_mode, power)
    fb = mel_filterbank(sample_rate, n_fft, n_mels, fmin, fmax, htk, norm, dtype=s.dtype)
    return fnp.matmul(s, fb)


def power_to_db(s, ref: float = 1.0, amin: float = 1e-10, top_db: float | None = 80.0):
    """``10 log10(max(s, amin) / ref)``, floored at ``top_db`` below the peak of each example.

    The peak is taken over the last two axes (frames and bins), so a batch
    gives the same result as a loop over its examples.  ``top_db=None``
    disables the floor.

    >>> import numpy as np
    >>> from funcnet import data
    >>> data.power_to_db(np.array([[1.0, 100.0, 1e-12]], np.float32))
    array([[  0.,  20., -60.]], dtype=float32)
    """
    s = fnp.asarray(s)
    if amin <= 0:
        raise ValueError(f"power_to_db: amin must be positive, got {amin}")
    db = 10.0 * fnp.log10(fnp.maximum(s, amin)) - 10.0 * float(np.log10(max(amin, ref)))
    if top_db is not None:
        if top_db < 0:
            raise ValueError(f"power_to_db: top_db must be non-negative, got {top_db}")
        axes = tuple(range(max(db.ndim - 2, 0), db.ndim))
        peak = fnp.max(db, axis=axes, keepdims=True)
        db = fnp.maximum(db, peak - top_db)
    return db


def dct_matrix(n: int, n_out: int | None = None, dtype=np.float32) -> np.ndarray:
    """The orthonormal DCT-II as a NumPy matrix ``D`` of shape ``(n, n_out)``.

    ``x @ D`` transforms the last axis of ``x`` (keeping ``n_out`` coefficients).

    ``D[k, j] = sqrt(2 / n) * cos(pi * (k + 1/2) * j / n)``, with column 0
    scaled by ``1 / sqrt(2)`` (so ``D.T @ D = I`` when ``n_out == n``), as
    ``scipy.fft.dct(x, type=2, norm="ortho")``.

    >>> import numpy as np
    >>> from funcnet import data
    >>> d = data.dct_matrix(4)
    >>> bool(np.allclose(d.T @ d, np.eye(4), atol=1e-6))
    True
    """
    n = int(n)
    n_out = n if n_out is None else int(n_out)
    if not 0 < n_out <= n:
        raise ValueError(f"dct_matrix: need 0 < n_out <= n, got n={n}, n_out={n_out}")
    k = np.arange(n)[:, None]
    j = np.arange(n_out)[None, :]
    d = np.sqrt(2.0 / n) * np.cos(np.pi * (k + 0.5) * j / n)
    d[:, 0] /= np.sqrt(2.0)
    return d.astype(dtype)


def mfcc(x, sample_rate: float, n_mfcc: int = 13, n_fft: int = 512,
         hop_length: int | None = None, win_length: int | None = None, window="hann",
         center: bool = True, pad_mode: str = "constant", n_mels: int = 40, fmin: float = 0.0,
         fmax: float | None = None, htk: bool = False, norm: str | None = "slaney",
         top_db: float | None = 80.0):
    """Mel-frequency cepstral coefficients ``(..., frames, n_mfcc)`` (librosa's definition).

    ``power_to_db(mel_spectrogram(x, ...), top_db=top_db) @ dct_matrix(n_mels, n_mfcc)``.

    >>> import numpy as np
    >>> import funcnet as fn
    >>> from funcnet import data
    >>> waves = np.random.default_rng(0).normal(size=(4, 4000)).astype(np.float32)
    >>> fn.vmap(lambda w: data.mfcc(w, 8000))(waves).shape
    (4, 32, 13)
    """
    mel = mel_spectrogram(x, sample_rate, n_fft, hop_length, win_length, window, center,
                          pad_mode, 2.0, n_mels, fmin, fmax, htk, norm)
    db = power_to_db(mel, top_db=top_db)
    return fnp.matmul(db, dct_matrix(n_mels, n_mfcc, dtype=db.dtype))
