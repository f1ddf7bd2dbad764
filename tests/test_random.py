"""funcnet.random: Threefry against known answers and an independent reference,
key handling, jit/vmap invariance, dtype rules, statistics and errors."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import funcnet as fn
import funcnet.numpy as fnp
from funcnet import random
from funcnet.random import _erfinv, _largest_below

pytestmark = pytest.mark.filterwarnings("error")  # no NumPy overflow/invalid warnings

M32 = 0xFFFFFFFF

# ---------------------------------------------------------------------------
# An independent, deliberately plain Threefry-2x32-20 on Python ints.


def reference_threefry(k0: int, k1: int, c0: int, c1: int) -> tuple[int, int]:
    rotations = [13, 15, 26, 6, 17, 29, 16, 24]
    keys = [k0, k1, 0x1BD11BDA ^ k0 ^ k1]
    a = (c0 + keys[0]) & M32
    b = (c1 + keys[1]) & M32
    for rnd in range(20):
        a = (a + b) & M32
        rot = rotations[rnd % 8]
        b = ((b << rot) | (b >> (32 - rot))) & M32
        b ^= a
        if rnd % 4 == 3:
            inj = rnd // 4 + 1
            a = (a + keys[inj % 3]) & M32
            b = (b + keys[(inj + 1) % 3] + inj) & M32
    return a, b


def as_key(k0: int, k1: int):
    return np.array([k0, k1], dtype=np.uint32)


# Random123's kat_vectors for threefry2x32 with 20 rounds: (key, counter) -> output.
KNOWN_ANSWERS = [
    ((0x00000000, 0x00000000), (0x00000000, 0x00000000), (0x6B200159, 0x99BA4EFE)),
    ((0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF), (0x1CB996FC, 0xBB002BE7)),
    ((0x13198A2E, 0x03707344), (0x243F6A88, 0x85A308D3), (0xC4923A9C, 0x483DF7A0)),
]


@pytest.mark.parametrize("key_words,counter,expected", KNOWN_ANSWERS)
def test_threefry_known_answers(key_words, counter, expected):
    y0, y1 = random.threefry2x32(as_key(*key_words), np.uint32(counter[0]),
                                 np.uint32(counter[1]))
    assert (int(y0), int(y1)) == expected
    assert reference_threefry(*key_words, *counter) == expected
    jy0, jy1 = fn.jit(random.threefry2x32)(as_key(*key_words), np.uint32(counter[0]),
                                           np.uint32(counter[1]))
    assert (int(jy0), int(jy1)) == expected


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, M32), min_size=4, max_size=4),
       st.lists(st.integers(0, M32), min_size=2, max_size=2))
def test_threefry_matches_reference(words, extra):
    k0, k1, c0, c1 = words
    x0 = np.array([c0, extra[0], 0, M32], np.uint32)
    x1 = np.array([c1, extra[1], M32, 0], np.uint32)
    y0, y1 = random.threefry2x32(as_key(k0, k1), x0, x1)
    assert y0.dtype == y1.dtype == np.uint32
    for i in range(4):
        assert (int(y0[i]), int(y1[i])) == reference_threefry(k0, k1, int(x0[i]), int(x1[i]))


def test_threefry_batches_and_broadcasts():
    k = random.key(77)
    x0 = np.arange(4, dtype=np.uint32)
    batched = fn.vmap(lambda a: random.threefry2x32(k, a, np.uint32(9)))(x0)
    direct = random.threefry2x32(k, x0, 9)
    assert np.array_equal(batched[0], direct[0]) and np.array_equal(batched[1], direct[1])
    keys = random.split(k, 3)
    per_key = fn.vmap(lambda kk: random.threefry2x32(kk, 1, 2))(keys)
    for i in range(3):
        ref = reference_threefry(int(keys[i, 0]), int(keys[i, 1]), 1, 2)
        assert (int(per_key[0][i]), int(per_key[1][i])) == ref
    with pytest.raises(TypeError, match="uint32"):
        random.threefry2x32(k, np.float32(1), 0)


def test_keys_are_data_for_jit():
    f = fn.jit(lambda k: random.normal(k, (3,)))
    outs = [f(k) for k in random.split(random.key(0), 4)]
    assert f.trace_count == 1
    assert len({tuple(o.tolist()) for o in outs}) == 4


def test_bits_are_threefry_of_a_counter():
    # bits(key, (2m,)) = [y0 of blocks (0, 0..m-1), then their y1]
    k = random.key(1234)
    m = 5
    words = random.bits(k, (2 * m,))
    expected = [reference_threefry(int(k[0]), int(k[1]), 0, i) for i in range(m)]
    assert words.tolist() == [e[0] for e in expected] + [e[1] for e in expected]
    # An odd count drops the last word of the second half.
    assert random.bits(k, (2 * m - 1,)).tolist() == words.tolist()[:-1]


def test_no_warnings_from_wrapping_uint32_arithmetic():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        random.bits(as_key(M32, M32), (7,))
        random.bits(as_key(M32, M32), ())


# ---------------------------------------------------------------------------
# Keys


@pytest.mark.parametrize("seed,words", [
    (0, (0, 0)), (42, (0, 42)), (2 ** 32, (1, 0)), (2 ** 32 + 7, (1, 7)), (-1, (M32, M32)),
    (2 ** 64 - 1, (M32, M32)), (-2 ** 63, (0x80000000, 0)), (np.int64(5), (0, 5)),
    (np.uint64(2 ** 63), (0x80000000, 0)), (np.array(9), (0, 9)),
])
def test_key_words(seed, words):
    k = random.key(seed)
    assert k.shape == (2,) and k.dtype == np.uint32
    assert tuple(int(w) for w in k) == words
    assert random.PRNGKey is random.key


def test_key_of_large_ints_is_deterministic_and_distinct():
    seeds = [2 ** 64, 2 ** 64 + 1, -2 ** 64, 2 ** 100, -(2 ** 100), 3 ** 90, 0, 1]
    keys = [tuple(random.key(s).tolist()) for s in seeds]
    assert len(set(keys)) == len(seeds)
    assert keys == [tuple(random.key(s).tolist()) for s in seeds]


def test_key_from_traced_seed_matches_python_int():
    for seed in (0, 7, -1, -123456789012, 2 ** 40 + 3):
        assert np.array_equal(fn.jit(random.key)(np.int64(seed)), random.key(seed))
    seeds = np.array([0, 5, -3, 2 ** 33], np.int64)
    batched = fn.vmap(random.key)(seeds)
    assert np.array_equal(batched, np.stack([random.key(int(s)) for s in seeds]))
    assert np.array_equal(fn.jit(random.key)(np.int32(-2)), random.key(-2))


@pytest.mark.parametrize("bad", [1.5, True, "0", np.array([1, 2])])
def test_key_rejects_non_integer_seeds(bad):
    with pytest.raises(TypeError, match="random.key"):
        random.key(bad)


def test_split_is_deterministic_and_distinct():
    k = random.key(0)
    keys = random.split(k, 1000)
    assert keys.shape == (1000, 2) and keys.dtype == np.uint32
    rows = {tuple(r) for r in keys.tolist()}
    assert len(rows) == 1000 and tuple(k.tolist()) not in rows
    assert np.array_equal(keys, random.split(k, 1000))
    assert random.split(k, 0).shape == (0, 2)
    a, b = random.split(k)
    assert not np.array_equal(a, b)
    # children are not the parent's own draws
    assert not np.array_equal(random.split(k, 1)[0], random.bits(k, (2,)))
    # a child's children differ from its siblings
    grandchildren = random.split(a, 3)
    assert not {tuple(r) for r in grandchildren.tolist()} & rows


def test_fold_in_distinct_and_consistent():
    k = random.key(3)
    folded = [tuple(random.fold_in(k, i).tolist()) for i in range(500)]
    assert len(set(folded)) == 500
    assert tuple(random.fold_in(k, 7).tolist()) == folded[7]
    # traced data (vmap and jit) equals the Python int
    data = np.arange(5)
    assert np.array_equal(fn.vmap(random.fold_in, in_axes=(None, 0))(k, data),
                          np.array(folded[:5], np.uint32))
    assert tuple(fn.jit(random.fold_in)(k, np.int64(9)).tolist()) == folded[9]
    # fold_in streams stay apart from split's and from other keys'
    assert not set(folded) & {tuple(r) for r in random.split(k, 500).tolist()}
    assert random.fold_in(k, 2 ** 70).shape == (2,)
    assert not np.array_equal(random.fold_in(k, -1), random.fold_in(k, 1))


# ---------------------------------------------------------------------------
# Every sampler: jit and vmap invariance, dtypes


def _samplers():
    return {
        "bits": lambda k: random.bits(k, (5,)),
        "bits64": lambda k: random.bits(k, (3,), np.uint64),
        "bits8": lambda k: random.bits(k, (4,), np.uint8),
        "split": lambda k: random.split(k, 3),
        "fold_in": lambda k: random.fold_in(k, 11),
        "uniform": lambda k: random.uniform(k, (7,)),
        "uniform_range": lambda k: random.uniform(k, (2, 3), minval=-2.0, maxval=5.0),
        "uniform64": lambda k: random.uniform(k, (3,), np.float64),
        "normal": lambda k: random.normal(k, (2, 3)),
        "normal64": lambda k: random.normal(k, (3,), np.float64),
        "normal_c64": lambda k: random.normal(k, (3,), np.complex64),
        "truncated_normal": lambda k: random.truncated_normal(k, -1.0, 2.0, (4,)),
        "randint": lambda k: random.randint(k, (6,), -3, 17),
        "randint_u8": lambda k: random.randint(k, (6,), 0, 256, dtype=np.uint8),
        "bernoulli": lambda k: random.bernoulli(k, 0.3, (5,)),
        "categorical": lambda k: random.categorical(k, np.log(np.array([0.2, 0.3, 0.5]))),
        "categorical_batch": lambda k: random.categorical(k, np.zeros((2, 4), np.float32),
                                                          shape=(3, 2)),
        "permutation": lambda k: random.permutation(k, 6),
        "permutation_array": lambda k: random.permutation(k, np.arange(12.0).reshape(4, 3)),
        "choice": lambda k: random.choice(k, 5, (3,)),
        "choice_noreplace": lambda k: random.choice(k, 8, (4,), replace=False),
        "choice_p": lambda k: random.choice(k, np.arange(4) * 10, (3,),
                                            p=np.array([0.1, 0.2, 0.3, 0.4])),
        "choice_p_noreplace": lambda k: random.choice(k, 4, (2,), replace=False,
                                                      p=np.array([0.1, 0.2, 0.3, 0.4])),
        "gumbel": lambda k: random.gumbel(k, (3,)),
        "exponential": lambda k: random.exponential(k, (3,)),
    }


SAMPLERS = _samplers()


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_jit_gives_bit_identical_draws(name):
    f = SAMPLERS[name]
    k = random.key(2024)
    eager = f(k)
    jitted = fn.jit(f)(k)
    assert isinstance(eager, np.ndarray) and eager.dtype == jitted.dtype
    assert np.array_equal(eager, jitted)
    assert np.array_equal(eager, f(k))  # pure: same key, same draws


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_vmap_over_keys_equals_loop(name):
    f = SAMPLERS[name]
    keys = random.split(random.key(7), 3)
    batched = fn.vmap(f)(keys)
    loop = np.stack([f(k) for k in keys])
    assert batched.dtype == loop.dtype
    assert np.array_equal(batched, loop)
    assert np.array_equal(fn.jit(fn.vmap(f))(keys), loop)


def test_vmap_over_parameters_equals_loop():
    k = random.key(5)
    lows = np.array([0.0, 10.0, -3.0], np.float32)
    out = fn.vmap(lambda lo: random.uniform(k, (4,), minval=lo, maxval=lo + 1.0))(lows)
    assert np.array_equal(out, np.stack([random.uniform(k, (4,), minval=lo, maxval=lo + 1.0)
                                         for lo in lows]))
    highs = np.array([1, 2, 1000])
    out = fn.vmap(lambda hi: random.randint(k, (8,), 0, hi))(highs)
    assert np.array_equal(out, np.stack([random.randint(k, (8,), 0, int(h)) for h in highs]))
    ps = np.array([0.0, 1.0, 0.5], np.float32)
    out = fn.vmap(lambda p: random.bernoulli(k, p, (6,)))(ps)
    assert not out[0].any() and out[1].all()
    assert np.array_equal(out[2], random.bernoulli(k, np.float32(0.5), (6,)))


def test_different_shapes_and_keys_give_different_draws():
    k1, k2 = random.split(random.key(0))
    assert not np.array_equal(random.uniform(k1, (8,)), random.uniform(k2, (8,)))
    assert random.uniform(k1, ()).shape == ()
    assert isinstance(random.uniform(k1, ()), np.ndarray)
    assert random.normal(k1, (0, 3)).shape == (0, 3)
    assert random.bits(k1, 4).shape == (4,)


@pytest.mark.parametrize("fn_name", ["uniform", "normal", "gumbel", "exponential"])
def test_float_dtype_rules(fn_name):
    f = getattr(random, fn_name)
    k = random.key(0)
    assert f(k, (3,)).dtype == np.float32
    assert f(k, (3,), np.float64).dtype == np.float64
    assert f(k, (3,), np.float16).dtype == np.float16
    old = fn.config.default_float
    try:
        fn.config.default_float = "float64"
        assert f(k, (3,)).dtype == np.float64
    finally:
        fn.config.default_float = old
    with pytest.raises(TypeError, match="dtype"):
        f(k, (3,), np.int32)


def test_other_dtype_rules():
    k = random.key(0)
    assert random.truncated_normal(k, -1.0, 1.0, (3,)).dtype == np.float32
    assert random.truncated_normal(k, -1.0, 1.0, (3,), np.float64).dtype == np.float64
    assert random.randint(k, (3,), 0, 5).dtype == np.int64
    for dt in (np.int8, np.int32, np.uint8, np.uint16, np.uint64):
        assert random.randint(k, (3,), 0, 5, dt).dtype == dt
    assert random.bernoulli(k, 0.5, (3,)).dtype == np.bool_
    assert random.bernoulli(k, np.float64(0.5), (3,)).shape == (3,)
    assert random.categorical(k, np.zeros(3)).dtype == np.int64
    assert random.permutation(k, 4).dtype == np.int64
    assert random.normal(k, (3,), np.complex128).dtype == np.complex128
    for dt in (np.uint8, np.uint16, np.uint32, np.uint64):
        assert random.bits(k, (3,), dt).dtype == dt
    with pytest.raises(TypeError, match="uint"):
        random.bits(k, (3,), np.int32)
    # float64 uniforms use 53 random bits: not all multiples of 2**-24
    u = random.uniform(k, (100,), np.float64)
    assert np.any(u * 2 ** 24 != np.floor(u * 2 ** 24))


# ---------------------------------------------------------------------------
# Statistics (deterministic keys, tolerances of several standard errors)

N = 100_000


def _check_moments(x, mean, var, z=5.0):
    x = np.asarray(x, np.float64)
    n = x.size
    assert abs(x.mean() - mean) < z * math.sqrt(var / n), (x.mean(), mean)
    fourth = np.mean((x - x.mean()) ** 4)
    assert abs(x.var() - var) < z * math.sqrt(max(fourth - var ** 2, 1e-12) / n), (x.var(), var)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_uniform_statistics(dtype):
    u = random.uniform(random.key(1), (N,), dtype)
    assert u.min() >= 0 and u.max() < 1
    _check_moments(u, 0.5, 1 / 12)
    counts = np.bincount((u * 20).astype(int), minlength=20)
    expected = N / 20
    assert ((counts - expected) ** 2 / expected).sum() < 63.7  # chi2(19) at p = 1e-6


def test_uniform_range_and_upper_bound_excluded():
    k = random.key(2)
    u = random.uniform(k, (N,), minval=-3.0, maxval=5.0)
    assert u.min() >= -3.0 and u.max() < 5.0
    _check_moments(u, 1.0, 64 / 12)
    # 3 * (1 - 2**-24) rounds to 3.0 in float32: the clamp keeps draws below maxval
    top = random.uniform(k, (N,), minval=0.0, maxval=3.0)
    assert top.max() < 3.0
    lo = np.array([[0.0], [10.0]], np.float32)
    v = random.uniform(k, (2, 1000), minval=lo, maxval=lo + 1)
    assert (v[0] < 1).all() and (v[1] >= 10).all() and (v[1] < 11).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_largest_below_is_nextafter(dtype):
    info = np.finfo(dtype)
    vals = np.array([1.0, 2.0, 3.0, 0.75, -1.0, -2.0, -3.0, -0.1, 1e30, -1e-30, 1.5, 0.0,
                     info.max, -info.max, info.tiny, -info.tiny, 3 * info.tiny,
                     info.smallest_subnormal, -info.smallest_subnormal], dtype)
    rng = np.random.default_rng(0)
    vals = np.concatenate([vals, rng.standard_normal(1000).astype(dtype) * 10.0 ** rng.integers(
        -30, 30, 1000).astype(dtype)])
    vals = vals[np.isfinite(vals)]
    got = _largest_below(vals, np.dtype(dtype))  # (and no warnings, even at -max)
    with np.errstate(over="ignore"):
        assert np.array_equal(got, np.nextafter(vals, dtype(-np.inf)))
    special = _largest_below(np.array([np.inf, -np.inf], dtype), np.dtype(dtype))
    assert special[0] == np.inf and special[1] == -np.inf


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_normal_statistics(dtype):
    x = random.normal(random.key(3), (N,), dtype)
    assert np.isfinite(x).all()
    _check_moments(x, 0.0, 1.0)
    # the empirical CDF against Phi at a few points (Kolmogorov-style bound)
    for t in (-2.0, -1.0, -0.3, 0.0, 0.5, 1.5, 2.5):
        phi = 0.5 * (1 + math.erf(t / math.sqrt(2)))
        assert abs(np.mean(x <= t) - phi) < 5 * math.sqrt(phi * (1 - phi) / N)
    # symmetry of the construction: a draw and its mirror are equally likely
    assert abs(np.mean(x > 0) - 0.5) < 5 * math.sqrt(0.25 / N)


def test_complex_normal_statistics():
    z = random.normal(random.key(4), (N,), np.complex64)
    _check_moments(z.real, 0.0, 0.5)
    _check_moments(z.imag, 0.0, 0.5)
    assert abs(np.corrcoef(z.real, z.imag)[0, 1]) < 0.02


def test_truncated_normal_statistics():
    lo, hi = -0.5, 2.0
    x = random.truncated_normal(random.key(5), lo, hi, (N,))
    assert x.min() > lo and x.max() < hi
    phi = lambda t: math.exp(-t * t / 2) / math.sqrt(2 * math.pi)
    cdf = lambda t: 0.5 * (1 + math.erf(t / math.sqrt(2)))
    z = cdf(hi) - cdf(lo)
    mean = (phi(lo) - phi(hi)) / z
    var = 1 + (lo * phi(lo) - hi * phi(hi)) / z - mean ** 2
    _check_moments(x, mean, var)
    # far tail (computed in float64) and one-sided bounds
    tail = random.truncated_normal(random.key(6), 4.0, 5.0, (1000,))
    assert tail.min() > 4.0 and tail.max() < 5.0 and tail.mean() < 4.5
    half = random.truncated_normal(random.key(7), 0.0, np.inf, (N,))
    assert half.min() > 0 and np.isfinite(half).all()
    assert abs(half.mean() - math.sqrt(2 / math.pi)) < 0.01
    # array bounds broadcast; the default shape is theirs
    b = random.truncated_normal(random.key(8), np.array([-1.0, 0.0]), np.array([[0.0], [1.0]]))
    assert b.shape == (2, 2)


def test_randint_chi_square_and_bounds():
    r = random.randint(random.key(9), (N,), 0, 10)
    assert r.min() == 0 and r.max() == 9
    counts = np.bincount(r, minlength=10)
    expected = N / 10
    assert ((counts - expected) ** 2 / expected).sum() < 44.8  # chi2(9) at p = 1e-6
    neg = random.randint(random.key(10), (N,), -7, -2)
    assert set(np.unique(neg).tolist()) == {-7, -6, -5, -4, -3}
    # array bounds and a range wider than 32 bits
    r2 = random.randint(random.key(11), (3, 1000), np.array([[0], [100], [-(2 ** 40)]]),
                        np.array([[1], [103], [2 ** 40]]))
    assert (r2[0] == 0).all() and set(np.unique(r2[1]).tolist()) == {100, 101, 102}
    assert r2[2].min() < -(2 ** 38) and r2[2].max() > 2 ** 38
    # bounds beyond the dtype are clipped to it
    u8 = random.randint(random.key(12), (N,), -10, 1000, dtype=np.uint8)
    assert u8.min() == 0 and u8.max() == 255
    assert random.randint(random.key(12), (4,), 0, 2 ** 64, dtype=np.uint64).dtype == np.uint64
    full64 = random.randint(random.key(13), (1000,), -(2 ** 63), 2 ** 63 - 1)
    assert full64.min() < -(2 ** 61) and full64.max() > 2 ** 61


def test_bernoulli_statistics():
    for p in (0.1, 0.5, 0.9):
        b = random.bernoulli(random.key(14), p, (N,))
        assert abs(b.mean() - p) < 5 * math.sqrt(p * (1 - p) / N)
    ps = np.array([0.0, 0.25, 1.0], np.float32)
    b = random.bernoulli(random.key(15), ps)
    assert b.shape == (3,) and not b[0] and b[2]
    many = random.bernoulli(random.key(16), ps, (N, 3))
    assert abs(many[:, 1].mean() - 0.25) < 0.01


def test_categorical_frequencies_match_softmax():
    logits = np.array([1.0, -0.5, 0.0, 2.0, -np.inf], np.float32)
    probs = np.exp(logits) / np.exp(logits).sum()
    s = random.categorical(random.key(17), logits, shape=(N,))
    freq = np.bincount(s, minlength=5) / N
    assert freq[4] == 0
    assert np.all(np.abs(freq - probs) < 5 * np.sqrt(probs * (1 - probs) / N) + 1e-12)
    # batches along another axis
    batch = np.stack([np.log([0.7, 0.3]), np.log([0.1, 0.9])], axis=1)  # (2 classes, 2 rows)
    sb = random.categorical(random.key(18), batch, axis=0, shape=(N, 2))
    assert sb.shape == (N, 2)
    assert abs(sb[:, 0].mean() - 0.3) < 0.01 and abs(sb[:, 1].mean() - 0.9) < 0.01


def test_gumbel_and_exponential_statistics():
    g = random.gumbel(random.key(19), (N,))
    _check_moments(g, 0.5772156649, math.pi ** 2 / 6)
    e = random.exponential(random.key(20), (N,))
    assert e.min() >= 0
    _check_moments(e, 1.0, 1.0)


def test_permutation_is_a_permutation():
    k = random.key(21)
    for n in (0, 1, 2, 17, 1000):
        p = random.permutation(k, n)
        assert sorted(p.tolist()) == list(range(n))
    x = np.arange(24).reshape(6, 4)
    rows = random.permutation(k, x)
    assert sorted(map(tuple, rows.tolist())) == sorted(map(tuple, x.tolist()))
    cols = random.permutation(k, x, axis=-1)
    assert np.array_equal(np.sort(cols, axis=1), x) and cols.shape == x.shape
    ind = random.permutation(k, x, axis=0, independent=True)
    assert np.array_equal(np.sort(ind, axis=0), x)
    # independent=True permutes columns differently (with overwhelming probability)
    assert any(not np.array_equal(ind[:, 0] - x[:, 0], ind[:, j] - x[:, j]) for j in range(1, 4))


def test_permutations_are_uniform():
    keys = random.split(random.key(22), 6000)
    perms = fn.vmap(lambda k: random.permutation(k, 3))(keys)
    codes = perms[:, 0] * 9 + perms[:, 1] * 3 + perms[:, 2]
    _, counts = np.unique(codes, return_counts=True)
    assert len(counts) == 6
    assert ((counts - 1000) ** 2 / 1000).sum() < 35.9  # chi2(5) at p = 1e-6


def test_choice():
    k = random.key(23)
    c = random.choice(k, 10, (4, 2), replace=False)
    assert c.shape == (4, 2) and len(set(c.ravel().tolist())) == 8
    assert sorted(random.choice(k, 5, (5,), replace=False).tolist()) == list(range(5))
    a = np.arange(30).reshape(3, 10)
    picked = random.choice(k, a, (4,), replace=False, axis=1)
    assert picked.shape == (3, 4) and len(set(picked[0].tolist())) == 4
    assert np.array_equal(picked[1] - picked[0], np.full(4, 10))
    assert random.choice(k, a, (2, 5)).shape == (2, 5, 10)
    # probabilities: zero-probability entries never appear; frequencies follow p
    p = np.array([0.0, 0.1, 0.2, 0.7], np.float32)
    s = random.choice(k, 4, (N,), p=p)
    freq = np.bincount(s, minlength=4) / N
    assert freq[0] == 0 and np.all(np.abs(freq - p) < 0.01)
    unnormalised = random.choice(k, 4, (N,), p=p * 3)
    assert np.abs(np.bincount(unnormalised, minlength=4) / N - p).max() < 0.01
    nr = fn.vmap(lambda kk: random.choice(kk, 4, (3,), replace=False, p=p))(random.split(k, 500))
    assert all(len(set(row)) == 3 and 0 not in row for row in nr.tolist())
    # replacement without p is uniform
    u = random.choice(k, 5, (N,))
    counts = np.bincount(u, minlength=5)
    assert ((counts - N / 5) ** 2 / (N / 5)).sum() < 30.7  # chi2(4) at p = 1e-6 is 30.9


# ---------------------------------------------------------------------------
# erfinv (the inverse CDF behind normal and truncated_normal)


def _erfinv_inputs(dtype):
    rng = np.random.default_rng(0)
    dense = rng.uniform(-1, 1, 20000)
    tail = 1 - 10.0 ** -rng.uniform(0, 16, 5000)
    x = np.concatenate([dense, tail, -tail, [0.0, 1e-300, -0.5, 0.999, -(1 - 2.0 ** -53)]])
    x = x.astype(dtype)
    return x[np.abs(x) < 1]


def test_erfinv_accuracy_against_scipy():
    special = pytest.importorskip("scipy.special")
    x64 = _erfinv_inputs(np.float64)
    ref = special.erfinv(x64)
    got = _erfinv(x64)
    assert got.dtype == np.float64
    rel = np.abs(got - ref) / np.maximum(np.abs(ref), 1e-300)
    assert rel.max() < 1e-14
    x32 = _erfinv_inputs(np.float32)
    got32 = _erfinv(x32)
    ref32 = special.erfinv(x32.astype(np.float64))
    assert got32.dtype == np.float32
    assert (np.abs(got32 - ref32) / np.maximum(np.abs(ref32), 1e-38)).max() < 1e-6


def test_erfinv_inverts_erf():
    # scipy-free: erf(erfinv(x)) == x, to float64 rounding amplified by erf's slope
    x = np.concatenate([np.linspace(-0.999999, 0.999999, 2001), [1e-200, -1e-10]])
    y = _erfinv(x)
    back = np.array([math.erf(v) for v in y])
    slope = 2 / math.sqrt(math.pi) * np.exp(-y * y)
    bound = 4e-16 * np.maximum(np.abs(x), 1e-300) + 3e-16 * slope * np.abs(y)
    assert np.all(np.abs(back - x) <= bound)
    assert np.array_equal(_erfinv(np.array([1.0, -1.0], np.float32)), [np.inf, -np.inf])
    assert np.isnan(_erfinv(np.array([1.5, np.nan]))).all()
    assert _erfinv(np.array([0.5], np.float16)).dtype == np.float16


def test_erfinv_has_a_correct_gradient():
    x = 0.3
    want = math.sqrt(math.pi) / 2 * math.exp(float(_erfinv(np.float64(x))) ** 2)
    assert np.isclose(fn.grad(_erfinv)(np.float64(x)), want, rtol=1e-12)


# ---------------------------------------------------------------------------
# Gradients flow through the deterministic parts


def test_gradients_through_samplers():
    k = random.key(24)
    g = fn.grad(lambda hi: fnp.sum(random.uniform(k, (5,), minval=0.0, maxval=hi)))(2.0)
    assert np.isclose(g, np.sum(random.uniform(k, (5,))), rtol=1e-6)
    eps = random.normal(k, (3,))
    g = fn.grad(lambda mu: fnp.sum(mu + 2.0 * random.normal(k, (3,))))(np.zeros(3, np.float32))
    assert np.array_equal(g, np.ones(3, np.float32))
    g = fn.grad(lambda s: fnp.sum(s * random.normal(k, (3,))))(np.ones(3, np.float32))
    assert np.array_equal(g, eps)


# ---------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize("bad,fragment", [
    (np.zeros(3, np.uint32), r"\(3,\)"),
    (np.zeros((4, 2), np.uint32), r"\(4, 2\).*vmap"),
    (np.zeros(2, np.int64), "int64"),
    (np.zeros(2, np.float32), "float32"),
    ([0, 0], "int64"),
    (0, r"random.key\(0\)"),
])
def test_bad_keys_are_rejected_with_a_clear_error(bad, fragment):
    for f in (lambda k: random.uniform(k, (2,)), lambda k: random.split(k),
              lambda k: random.fold_in(k, 1), lambda k: random.normal(k)):
        with pytest.raises(TypeError, match=fragment):
            f(bad)
    with pytest.raises(TypeError, match=r"shape \(2,\) and dtype uint32|random.key"):
        fn.jit(lambda k: random.bits(k, (2,)))(bad if not isinstance(bad, int) else np.int64(0))


def test_argument_errors():
    k = random.key(0)
    with pytest.raises(ValueError, match="minval must be less than maxval"):
        random.randint(k, (3,), 5, 5)
    with pytest.raises(ValueError, match="minval must be less than maxval"):
        random.randint(k, (3,), np.array([0, 3, 9]), 4)
    with pytest.raises(TypeError, match="integer"):
        random.randint(k, (3,), 0, 5, dtype=np.float32)
    with pytest.raises(TypeError, match="integers"):
        random.randint(k, (3,), 0.5, 5)
    with pytest.raises(ValueError, match="negative"):
        random.uniform(k, (-1, 2))
    with pytest.raises(ValueError, match="does not broadcast"):
        random.uniform(k, (3,), minval=np.zeros(4, np.float32))
    with pytest.raises(ValueError, match="without replacement"):
        random.choice(k, 3, (4,), replace=False)
    with pytest.raises(ValueError, match="p must have shape"):
        random.choice(k, 3, (2,), p=np.ones(4) / 4)
    with pytest.raises(ValueError, match="batch shape"):
        random.categorical(k, np.zeros((3, 4)), shape=(2,))
    with pytest.raises(ValueError, match="non-negative"):
        random.split(k, -1)
    with pytest.raises(TypeError, match="fold_in"):
        random.fold_in(k, 1.5)


def test_traced_randint_bounds_in_wrong_order_give_minval():
    k = random.key(0)
    out = fn.jit(lambda lo, hi: random.randint(k, (4,), lo, hi))(np.int64(5), np.int64(2))
    assert np.array_equal(out, np.full(4, 5))


def test_no_global_state_and_no_shuffle():
    assert not hasattr(random, "shuffle")
    a = random.normal(random.key(0), (3,))
    random.normal(random.key(1), (3,))
    assert np.array_equal(a, random.normal(random.key(0), (3,)))
    for name in random.__all__:
        assert getattr(random, name).__doc__ and ">>>" in getattr(random, name).__doc__, name
