"""Audio features against a straightforward NumPy reference; jit, vmap and grad."""

from __future__ import annotations

import numpy as np
import pytest

import funcnet as fn
from funcnet import data

RNG = np.random.default_rng(0)
WAVE = RNG.normal(size=3000).astype(np.float32)


# ---------------------------------------------------------------------------
# the reference, written directly from the definitions with NumPy (float64)


def ref_stft(x, n_fft, hop, win_length=None, center=True, pad_mode="constant"):
    win_length = win_length or n_fft
    x = np.asarray(x, np.float64)
    if center:
        x = np.pad(x, n_fft // 2, mode=pad_mode)
    n = np.arange(win_length)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * n / win_length)
    left = (n_fft - win_length) // 2
    window = np.concatenate([np.zeros(left), window, np.zeros(n_fft - win_length - left)])
    count = 1 + (len(x) - n_fft) // hop
    frames = np.stack([x[t * hop:t * hop + n_fft] * window for t in range(count)])
    return np.fft.rfft(frames, axis=-1)


def ref_mel_filters(sr, n_fft, n_mels, fmin=0.0, fmax=None, htk=False, norm="slaney"):
    fmax = sr / 2 if fmax is None else fmax

    def to_mel(f):
        if htk:
            return 2595 * np.log10(1 + f / 700)
        f = np.asarray(f, float)
        return np.where(f < 1000, 3 * f / 200, 15 + 27 * np.log(np.maximum(f, 1e-9) / 1000)
                        / np.log(6.4))

    def to_hz(m):
        if htk:
            return 700 * (10 ** (m / 2595) - 1)
        return np.where(m < 15, 200 * m / 3, 1000 * 6.4 ** ((m - 15) / 27))

    edges = to_hz(np.linspace(to_mel(fmin), to_mel(fmax), n_mels + 2))
    freqs = np.arange(n_fft // 2 + 1) * sr / n_fft
    fb = np.zeros((len(freqs), n_mels))
    for m in range(n_mels):
        lo, mid, hi = edges[m], edges[m + 1], edges[m + 2]
        for k, f in enumerate(freqs):
            if lo < f <= mid:
                fb[k, m] = (f - lo) / (mid - lo)
            elif mid < f < hi:
                fb[k, m] = (hi - f) / (hi - mid)
        if norm == "slaney":
            fb[:, m] *= 2 / (hi - lo)
    return fb


def ref_mfcc(x, sr, n_mfcc=13, n_fft=512, hop=128, n_mels=40, top_db=80.0):
    power = np.abs(ref_stft(x, n_fft, hop)) ** 2
    mel = power @ ref_mel_filters(sr, n_fft, n_mels)
    db = 10 * np.log10(np.maximum(mel, 1e-10))
    db = np.maximum(db, db.max() - top_db)
    n = n_mels
    k = np.arange(n)
    basis = np.array([np.cos(np.pi * (k + 0.5) * j / n) for j in range(n_mfcc)])  # (n_mfcc, n)
    scale = np.full(n_mfcc, np.sqrt(2 / n))
    scale[0] = np.sqrt(1 / n)
    return (db @ basis.T) * scale


# ---------------------------------------------------------------------------


@pytest.mark.parametrize("n_fft,hop,win,center,pad_mode", [
    (256, 64, None, True, "constant"), (256, 100, 200, True, "reflect"),
    (128, 128, None, False, "constant"), (255, 50, None, True, "constant")])
def test_stft_matches_reference(n_fft, hop, win, center, pad_mode):
    got = data.stft(WAVE, n_fft, hop, win, center=center, pad_mode=pad_mode)
    ref = ref_stft(WAVE, n_fft, hop, win, center, pad_mode)
    assert got.shape == ref.shape and got.dtype == np.complex64
    np.testing.assert_allclose(got, ref, atol=2e-4 * np.abs(ref).max())
    if center and n_fft % 2 == 0:
        assert got.shape[0] == 1 + len(WAVE) // hop


def test_spectrogram_powers():
    z = ref_stft(WAVE, 256, 64)
    np.testing.assert_allclose(data.spectrogram(WAVE, 256, 64), np.abs(z) ** 2,
                               rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(data.spectrogram(WAVE, 256, 64, power=1.0), np.abs(z),
                               rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("sr,n_fft,n_mels,fmin,fmax,htk,norm", [
    (8000, 512, 40, 0.0, None, False, "slaney"), (16000, 400, 64, 50.0, 7000.0, False, None),
    (22050, 1024, 80, 0.0, None, True, "slaney"), (8000, 256, 20, 100.0, 3000.0, True, None)])
def test_mel_filterbank_matches_reference(sr, n_fft, n_mels, fmin, fmax, htk, norm):
    got = data.mel_filterbank(sr, n_fft, n_mels, fmin, fmax, htk, norm, dtype=np.float64)
    ref = ref_mel_filters(sr, n_fft, n_mels, fmin, fmax, htk, norm)
    np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-12)


def test_mel_scale_round_trip_and_known_values():
    f = np.array([0.0, 200.0, 999.0, 1000.0, 4000.0, 11025.0])
    for htk in (False, True):
        np.testing.assert_allclose(data.mel_to_hz(data.hz_to_mel(f, htk), htk), f, rtol=1e-12,
                                   atol=1e-9)
    np.testing.assert_allclose(data.hz_to_mel([500.0, 1000.0, 6400.0]), [7.5, 15.0, 42.0])
    np.testing.assert_allclose(data.hz_to_mel(700.0, htk=True), 2595 * np.log10(2))


def test_mel_spectrogram_and_mfcc_match_reference():
    mel = data.mel_spectrogram(WAVE, 8000, n_fft=512, hop_length=128)
    ref_mel = (np.abs(ref_stft(WAVE, 512, 128)) ** 2) @ ref_mel_filters(8000, 512, 40)
    np.testing.assert_allclose(mel, ref_mel, rtol=2e-3, atol=1e-4 * ref_mel.max())
    got = data.mfcc(WAVE, 8000)
    ref = ref_mfcc(WAVE, 8000)
    assert got.shape == ref.shape == (1 + 3000 // 128, 13)
    np.testing.assert_allclose(got, ref, atol=2e-3 * np.abs(ref).max())


def test_power_to_db_floor_is_per_example():
    a = np.array([[1.0, 1e-3]], np.float32)
    b = np.array([[1e4, 1.0]], np.float32)
    batch = data.power_to_db(np.stack([a, b]), top_db=20.0)
    np.testing.assert_allclose(batch[0], data.power_to_db(a, top_db=20.0))
    np.testing.assert_allclose(batch[1], data.power_to_db(b, top_db=20.0))
    np.testing.assert_allclose(batch[1], [[40.0, 20.0]])
    np.testing.assert_allclose(data.power_to_db(a, top_db=None), [[0.0, -30.0]], atol=1e-5)


def test_dct_matrix_is_scipys_orthonormal_dct():
    scipy_fft = pytest.importorskip("scipy.fft")
    x = RNG.normal(size=(3, 16))
    np.testing.assert_allclose(x @ data.dct_matrix(16, dtype=np.float64),
                               scipy_fft.dct(x, type=2, norm="ortho", axis=-1), atol=1e-12)
    np.testing.assert_allclose(x @ data.dct_matrix(16, 5, dtype=np.float64),
                               scipy_fft.dct(x, type=2, norm="ortho", axis=-1)[:, :5],
                               atol=1e-12)


def test_jit_vmap_and_batch_axes_agree():
    waves = RNG.normal(size=(3, 2000)).astype(np.float32)
    f = lambda w: data.mfcc(w, 8000, n_fft=256, hop_length=80)
    loop = np.stack([f(w) for w in waves])
    np.testing.assert_allclose(fn.jit(f)(waves[0]), loop[0], rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(fn.vmap(f)(waves), loop, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(f(waves), loop, rtol=1e-4, atol=1e-3)  # leading axes batch too
    jf = fn.jit(f)
    jf(waves[1])
    assert jf.trace_count == 1


def test_features_are_differentiable():
    w = RNG.normal(size=600)  # float64 for the finite-difference check

    def energy(x):
        return data.mel_spectrogram(x, 8000, n_fft=128, hop_length=64, n_mels=8).sum()

    g = fn.grad(energy)(w)
    v = RNG.normal(size=w.shape)
    eps = 1e-6
    fd = (energy(w + eps * v) - energy(w - eps * v)) / (2 * eps)
    np.testing.assert_allclose(np.dot(g, v), fd, rtol=1e-5)


def test_errors():
    with pytest.raises(ValueError, match="fewer than frame_length"):
        data.stft(np.zeros(100, np.float32), 256, center=False)
    with pytest.raises(ValueError, match="fmax"):
        data.mel_filterbank(8000, 256, fmax=5000.0)
    with pytest.raises(ValueError, match="window"):
        data.stft(WAVE, 256, window="kaiser")


def test_matches_librosa_when_installed():
    librosa = pytest.importorskip("librosa")
    ref = librosa.feature.mfcc(y=WAVE, sr=8000, n_mfcc=13, n_fft=512, hop_length=128,
                               n_mels=40)
    np.testing.assert_allclose(data.mfcc(WAVE, 8000), ref.T, atol=1e-3)
    fb = librosa.filters.mel(sr=8000, n_fft=512, n_mels=40)
    np.testing.assert_allclose(data.mel_filterbank(8000, 512, 40), fb.T, atol=1e-7)
