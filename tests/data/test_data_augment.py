"""Augmentations: shapes, determinism per key, vmap == loop, jit == eager, identity at zero."""

from __future__ import annotations

import numpy as np
import pytest

import funcnet as fn
from funcnet import data, random

RNG = np.random.default_rng(0)
IMAGES = RNG.random((4, 12, 10, 3), dtype=np.float32)
WAVES = RNG.normal(size=(4, 200)).astype(np.float32)
KEYS = random.split(random.key(7), 4)

# name -> (function of (key, example), examples, its strength-zero version)
CASES = {
    "crop": (lambda k, x: data.random_crop(k, x, (8, 6), padding=2), IMAGES,
             lambda k, x: data.random_crop(k, x, (12, 10))),
    "crop_reflect": (lambda k, x: data.random_crop(k, x, 12, padding=(1, 3),
                                                   pad_mode="reflect"), IMAGES[:, :12, :, :],
                     None),
    "flip": (lambda k, x: data.random_flip(k, x), IMAGES,
             lambda k, x: data.random_flip(k, x, p=0.0)),
    "rotation": (lambda k, x: data.random_rotation(k, x, 30.0), IMAGES,
                 lambda k, x: data.random_rotation(k, x, 0.0)),
    "scale": (lambda k, x: data.random_scale(k, x, 0.7, 1.3), IMAGES,
              lambda k, x: data.random_scale(k, x, 1.0, 1.0)),
    "time_shift": (lambda k, x: data.time_shift(k, x, 30), WAVES,
                   lambda k, x: data.time_shift(k, x, 0)),
    "noise_snr": (lambda k, x: data.add_noise(k, x, snr_db=5.0), WAVES,
                  lambda k, x: data.add_noise(k, x, snr_db=float("inf"))),
    "noise_scale": (lambda k, x: data.add_noise(k, x, scale=0.1), WAVES,
                    lambda k, x: data.add_noise(k, x, scale=0.0)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_deterministic_per_key_and_vmap_jit_agree(name):
    f, xs, _ = CASES[name]
    one = f(KEYS[0], xs[0])
    np.testing.assert_array_equal(one, f(KEYS[0], xs[0]))
    loop = np.stack([f(k, x) for k, x in zip(KEYS, xs)])
    batched = fn.vmap(f)(KEYS, xs)
    np.testing.assert_allclose(batched, loop, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fn.jit(f)(KEYS[0], xs[0]), one, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fn.jit(fn.vmap(f))(KEYS, xs), loop, rtol=1e-5, atol=1e-6)
    assert batched.dtype == xs.dtype
    # different keys give different results (for these sizes, with overwhelming probability)
    assert any(not np.array_equal(loop[0], loop[i]) for i in range(1, 4))


@pytest.mark.parametrize("name", sorted(n for n in CASES if CASES[n][2] is not None))
def test_identity_at_zero_strength(name):
    _, xs, zero = CASES[name]
    for k, x in zip(KEYS, xs):
        np.testing.assert_array_equal(zero(k, x), x)
    np.testing.assert_array_equal(fn.jit(fn.vmap(zero))(KEYS, xs), xs)


def test_crop_is_a_window_of_the_padded_image():
    x = np.arange(36.0, dtype=np.float32).reshape(6, 6, 1)
    padded = np.pad(x, ((2, 2), (2, 2), (0, 0)))
    seen = set()
    for i in range(40):
        c = np.asarray(data.random_crop(random.key(i), x, 6, padding=2))
        hits = [(r, s) for r in range(5) for s in range(5)
                if np.array_equal(padded[r:r + 6, s:s + 6], c)]
        assert hits, "the crop is not a window of the padded image"
        seen.add(hits[0])
    assert len(seen) > 10  # offsets vary
    with pytest.raises(ValueError, match="does not fit"):
        data.random_crop(random.key(0), x, 7)


def test_flip_and_rotation_geometry():
    x = RNG.random((5, 5, 2)).astype(np.float32)
    flipped = [np.asarray(data.random_flip(random.key(i), x)) for i in range(20)]
    assert all(np.array_equal(f, x) or np.array_equal(f, x[:, ::-1]) for f in flipped)
    assert any(np.array_equal(f, x[:, ::-1]) for f in flipped)
    np.testing.assert_array_equal(data.random_flip(random.key(0), x, p=1.0, axis=0), x[::-1])
    np.testing.assert_allclose(data.rotate(x, 90.0), np.rot90(x), atol=1e-5)
    np.testing.assert_allclose(data.rotate(x, -90.0), np.rot90(x, -1), atol=1e-5)
    np.testing.assert_allclose(data.rotate(x, 180.0), x[::-1, ::-1], atol=1e-5)
    # a half-pixel shift of zoom: pixels outside come from the fill value
    filled = data.zoom(np.ones((4, 4)), 0.5, fill=-1.0)
    assert filled[0, 0] == -1.0 and filled[1, 1] == 1.0


def test_rotation_bilinear_matches_numpy_reference():
    x = RNG.random((7, 9)).astype(np.float64)
    angle = 23.0
    out = np.asarray(data.rotate(x, angle, fill=0.5))
    h, w = x.shape
    cy, cx = (h - 1) / 2, (w - 1) / 2
    t = np.deg2rad(angle)
    ref = np.empty_like(x)
    for i in range(h):
        for j in range(w):
            sx = cx + np.cos(t) * (j - cx) - np.sin(t) * (i - cy)
            sy = cy + np.sin(t) * (j - cx) + np.cos(t) * (i - cy)
            y0, x0 = int(np.floor(sy)), int(np.floor(sx))
            acc = 0.0
            for yy, wy in ((y0, 1 - (sy - y0)), (y0 + 1, sy - y0)):
                for xx, wx in ((x0, 1 - (sx - x0)), (x0 + 1, sx - x0)):
                    v = x[yy, xx] if 0 <= yy < h and 0 <= xx < w else 0.5
                    acc += wy * wx * v
            ref[i, j] = acc
    np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-12)


def test_integer_images_keep_their_dtype():
    x = (RNG.random((8, 8, 1)) * 255).astype(np.uint8)
    for f in (lambda k: data.random_rotation(k, x, 20.0),
              lambda k: data.random_scale(k, x, 0.8, 1.2),
              lambda k: data.random_crop(k, x, 6, padding=1),
              lambda k: data.random_flip(k, x)):
        out = f(random.key(0))
        assert out.dtype == np.uint8
    np.testing.assert_array_equal(data.random_rotation(random.key(0), x, 0.0), x)


def test_time_shift_and_noise_semantics():
    w = np.arange(1.0, 11.0, dtype=np.float32)
    for i in range(10):
        s = np.asarray(data.time_shift(random.key(i), w, 3))
        shifts = [d for d in range(-3, 4)
                  if np.array_equal(s, np.roll(np.pad(w, 3), d)[3:-3])]
        assert len(shifts) == 1
    stereo = np.stack([w, -w])  # (channels, time): the last axis is time
    s = np.asarray(data.time_shift(random.key(1), stereo, 2))
    np.testing.assert_array_equal(s[0], -s[1])
    noisy = np.asarray(data.add_noise(random.key(0), np.zeros(20000, np.float32), scale=0.3))
    assert abs(noisy.std() - 0.3) < 0.01
    with pytest.raises(TypeError, match="exactly one"):
        data.add_noise(random.key(0), w)
    with pytest.raises(TypeError, match="exactly one"):
        data.add_noise(random.key(0), w, snr_db=3.0, scale=1.0)


def test_traced_strength_under_jit():
    x = IMAGES[0]
    rot = fn.jit(lambda a: data.rotate(x, a))
    np.testing.assert_allclose(rot(np.float32(12.0)), data.rotate(x, 12.0), atol=1e-6)
    noise = fn.jit(lambda k, s: data.add_noise(k, WAVES[0], snr_db=s))
    np.testing.assert_allclose(noise(KEYS[0], np.float32(3.0)),
                               data.add_noise(KEYS[0], WAVES[0], snr_db=3.0), rtol=1e-5,
                               atol=1e-6)
