"""funcnet.nn.initializers: shapes, dtypes, determinism and statistical variance checks."""

import numpy as np
import pytest

import funcnet as fn
from funcnet import random
from funcnet.nn import initializers as init

KEY = random.key(0)

ALL = {
    "zeros": init.zeros, "ones": init.ones, "constant": init.constant(0.3),
    "normal": init.normal(), "uniform": init.uniform(), "truncated_normal":
    init.truncated_normal(), "glorot_uniform": init.glorot_uniform(),
    "glorot_normal": init.glorot_normal(), "he_uniform": init.he_uniform(),
    "he_normal": init.he_normal(), "lecun_uniform": init.lecun_uniform(),
    "lecun_normal": init.lecun_normal(), "orthogonal": init.orthogonal(),
    "variance_scaling": init.variance_scaling(0.5, "fan_out", "normal"),
}


@pytest.mark.parametrize("name", sorted(ALL))
def test_shape_dtype_determinism_and_jit(name):
    f = ALL[name]
    w = f(KEY, (4, 3))
    assert w.shape == (4, 3) and w.dtype == np.float32
    assert f(KEY, (3, 3, 2, 5), np.float64).dtype == np.float64
    np.testing.assert_array_equal(f(KEY, (4, 3)), w)
    np.testing.assert_allclose(fn.jit(lambda k: f(k, (4, 3)))(KEY), w, rtol=1e-6, atol=1e-7)


def test_default_float_is_followed():
    fn.config.default_float = "float64"
    try:
        assert init.he_normal()(KEY, (2, 2)).dtype == np.float64
    finally:
        fn.config.default_float = "float32"


def test_compute_fans():
    assert init.compute_fans((10, 20)) == (10.0, 20.0)
    assert init.compute_fans((3, 3, 16, 32)) == (144.0, 288.0)       # HWIO
    assert init.compute_fans((5, 4, 6)) == (20.0, 30.0)              # WIO
    assert init.compute_fans((7,)) == (7.0, 7.0)
    assert init.compute_fans((8, 16, 32), batch_axis=0) == (16.0, 32.0)
    assert init.compute_fans((32, 16), in_axis=-1, out_axis=-2) == (16.0, 32.0)


SHAPE = (300, 400)     # 120k draws: the sample variance is within ~1% of the truth
CONV = (3, 3, 40, 50)  # fan_in 360, fan_out 450


@pytest.mark.parametrize("name,factory,shape,variance", [
    ("glorot_uniform", init.glorot_uniform, SHAPE, 1 / 350),
    ("glorot_normal", init.glorot_normal, SHAPE, 1 / 350),
    ("he_uniform", init.he_uniform, CONV, 2 / 360),
    ("he_normal", init.he_normal, CONV, 2 / 360),
    ("lecun_uniform", init.lecun_uniform, SHAPE, 1 / 300),
    ("lecun_normal", init.lecun_normal, CONV, 1 / 360),
])
def test_named_variances(name, factory, shape, variance):
    w = np.asarray(factory()(random.key(1), shape), np.float64)
    assert abs(w.mean()) < 0.02 * np.sqrt(variance)
    assert w.var() == pytest.approx(variance, rel=0.03)


@pytest.mark.parametrize("mode,n", [("fan_in", 360), ("fan_out", 450), ("fan_avg", 405)])
@pytest.mark.parametrize("distribution", ["truncated_normal", "normal", "uniform"])
def test_variance_scaling(mode, n, distribution):
    w = np.asarray(init.variance_scaling(3.0, mode, distribution)(random.key(2), CONV))
    assert w.var() == pytest.approx(3.0 / n, rel=0.03)
    limit = {"truncated_normal": 2 * np.sqrt(3.0 / n) / 0.8796, "normal": np.inf,
             "uniform": np.sqrt(9.0 / n)}[distribution]
    assert np.abs(w).max() <= limit * (1 + 1e-6)


def test_variance_scaling_rejects_bad_options():
    with pytest.raises(ValueError, match="mode"):
        init.variance_scaling(1.0, "fan_sum", "normal")
    with pytest.raises(ValueError, match="distribution"):
        init.variance_scaling(1.0, "fan_in", "cauchy")


def test_simple_distributions():
    w = np.asarray(init.normal(0.5)(KEY, (200, 200)))
    assert w.std() == pytest.approx(0.5, rel=0.02)
    u = np.asarray(init.uniform(2.0)(KEY, (200, 200)))
    assert u.min() >= 0 and u.max() < 2.0 and u.mean() == pytest.approx(1.0, rel=0.02)
    t = np.asarray(init.truncated_normal(2.0)(KEY, (200, 200)))
    assert np.abs(t).max() < 4.0 and t.std() == pytest.approx(2.0 * 0.8796, rel=0.02)
    np.testing.assert_array_equal(init.constant(np.array([1.0, 2.0]))(KEY, (3, 2)),
                                  [[1, 2]] * 3)
    assert init.zeros(KEY, 3).shape == (3,)


@pytest.mark.parametrize("shape,axis", [((6, 4), -1), ((4, 6), -1), ((5, 5), -1),
                                        ((3, 3, 4, 8), -1), ((8, 3), 0)])
def test_orthogonal(shape, axis):
    w = np.asarray(init.orthogonal(scale=2.0, column_axis=axis)(KEY, shape, np.float64))
    assert w.shape == shape
    m = np.moveaxis(w, axis, -1).reshape(-1, shape[axis]) / 2.0
    gram = m.T @ m if m.shape[0] >= m.shape[1] else m @ m.T
    np.testing.assert_allclose(gram, np.eye(len(gram)), atol=1e-12)


def test_orthogonal_is_not_degenerate():
    a, b = (np.asarray(init.orthogonal()(random.key(s), (4, 4))) for s in (1, 2))
    assert not np.allclose(a, b)
    with pytest.raises(ValueError, match="2 dimensions"):
        init.orthogonal()(KEY, (4,))
