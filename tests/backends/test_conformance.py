"""One conformance suite for every backend: each case runs eagerly and under ``jit`` on
the backend given by the ``backend_name`` fixture (``tests/conftest.py``) and must
match the NumPy backend, the specification: same dtypes and shapes, integer, bool
and random-bit results bit for bit, floats within the dtype's tolerance.

A registered backend that cannot run here (no package, no GPU) is skipped with the
reason.
"""

from __future__ import annotations

import os
import sys
import warnings

import numpy as np
import pytest

import funcnet as fn
import funcnet.numpy as fnp
from funcnet import lax, random

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "numpy"))
from optable import BINARY, UNARY, assert_like_numpy  # noqa: E402

RNG = np.random.default_rng(1)
F32 = np.float32


def _f32(*shape):
    return RNG.standard_normal(shape).astype(F32)


def _mlp_loss(p, x, y):
    h = fnp.tanh(x @ p["w1"] + p["b1"])
    logits = h @ p["w2"]
    return fnp.mean((logits - y) ** 2)


_MLP = ({"w1": _f32(5, 8), "b1": _f32(8), "w2": _f32(8, 3)}, _f32(6, 5), _f32(6, 3))

_UNARY = {op.name: op for op in UNARY}
_BINARY = {op.name: op for op in BINARY}
_X = np.linspace(-3, 3, 24).astype(F32).reshape(4, 6)
_I = RNG.integers(-50, 50, (4, 6)).astype(np.int8)
_U = RNG.integers(0, 2**32, (4, 6), dtype=np.uint32)

# name -> (function, arguments, float tolerance scale, exact)
CASES = {
    # elementwise chains (fused on the compiling backends), with broadcasting
    "gelu": (lambda x: 0.5 * x * (1 + fnp.tanh(0.7978845608 * (x + 0.044715 * x ** 3))),
             (_X,), 1.0, False),
    "unary_math": (lambda x: [_UNARY[n].fn(x * 0.5) for n in
                              ("exp", "log1p", "sin", "arctan", "tanh", "sqrt", "abs", "floor")],
                   (np.abs(_X),), 2.0, False),
    "binary_bcast": (lambda x, y: [_BINARY[n].fn(x, y) for n in
                                   ("add", "divide", "maximum", "power", "arctan2", "less")],
                     (np.abs(_X) + 0.5, np.linspace(0.5, 2, 6).astype(F32)), 4.0, False),
    "int8_wrap": (lambda a, b: [a * b + 100, a // (b | 1), a % 7, a << 3, ~a & b, a > b],
                  (_I, _I[::-1].copy()), 1.0, True),
    "uint32_bits": (lambda u: [u * np.uint32(2654435761) ^ (u >> 7), (u << 13) | (u >> 19)],
                    (_U,), 1.0, True),
    "where_cast": (lambda x, i: fnp.where(x > 0, x.astype(np.int32) + i, i * 2).astype(F32),
                   (_X, _I), 1.0, False),
    # reductions, contractions, shapes, indexing
    "reductions": (lambda x: [fnp.sum(fnp.exp(x), axis=1), fnp.max(x * 2, axis=0),
                              fnp.mean(x), fnp.argmax(x, axis=1), fnp.min(x, axis=(0, 1))],
                   (_X,), 2.0, False),
    "matmul_einsum": (lambda a, b: [a @ b, fnp.einsum("ij,kj->ik", a, a), fnp.dot(a[0], b)],
                      (_f32(4, 6), _f32(6, 3)), 4.0, False),
    "shapes": (lambda x: [x.T.reshape(3, 8), fnp.concatenate([x, x * 2], axis=0),
                          fnp.pad(x, ((1, 0), (0, 2))), x[::-1, 1:4], fnp.broadcast_to(x[:1],
                                                                                        (3, 6))],
               (_X,), 1.0, False),
    "indexing": (lambda x, i: [x[i], fnp.at(x)[i, 2].add(1.0), fnp.take_along_axis(
        x, fnp.argsort(x, axis=1), axis=1)], (_X, np.array([3, 0, 3])), 1.0, False),
    # transforms
    "grad_mlp": (lambda p, x, y: fn.value_and_grad(_mlp_loss)(p, x, y), _MLP, 8.0, False),
    "vmap_grad": (lambda p, x, y: fn.vmap(fn.grad(_mlp_loss), in_axes=(None, 0, 0))(
        p, x[:, None], y[:, None]), _MLP, 8.0, False),
    "jacfwd": (lambda x: fn.jacfwd(lambda v: fnp.sin(v) * v[::-1])(x), (_X[0],), 2.0, False),
    # control flow
    "scan": (lambda xs: lax.scan(lambda c, x: (c * 0.9 + fnp.tanh(x), c.sum()), fnp.zeros(6),
                                 xs), (_f32(5, 6),), 4.0, False),
    "fori_cond": (lambda x: lax.fori_loop(0, 4, lambda i, c: lax.cond(
        i % 2 == 0, lambda v: v * 2.0, lambda v: v - 1.0, c), x), (_X,), 1.0, False),
    "conv": (lambda x, w: lax.conv_general_dilated(x, w, (1, 1), "SAME"),
             (_f32(2, 3, 5, 5), _f32(4, 3, 3, 3)), 8.0, False),  # NCHW, OIHW
    # random bits: bit-identical everywhere
    "random": (lambda k: [random.bits(k, (7,)), random.uniform(random.fold_in(k, 1), (4,)),
                          random.randint(random.split(k)[1], (5,), -3, 9),
                          random.normal(k, (3, 2))], (random.key(3),), 4.0, True),
}


def _run(f, args):
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [fn.to_numpy(v) for v in fn.tree.leaves(f(*args))]


def _compare(got, ref, scale, exact):
    assert len(got) == len(ref)
    for g, r in zip(got, ref):
        if exact and r.dtype.kind in "biu":
            assert g.dtype == r.dtype and g.shape == r.shape
            np.testing.assert_array_equal(g, r)
        elif exact and r.dtype.kind == "f" and g.dtype == r.dtype and r.size and \
                np.array_equal(g, r):
            continue  # bit-identical (random uniform draws)
        else:
            assert_like_numpy(g, r, scale, check_type=False)


@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_numpy_backend(backend_name, case):
    f, args, scale, exact = CASES[case]
    with fn.use_backend("numpy"):
        ref = _run(f, args)
    eager = _run(f, args)
    jitted = _run(fn.jit(f), args)
    _compare(eager, ref, scale, exact)
    _compare(jitted, ref, scale, exact)


def test_random_draws_bit_identical(backend_name):
    """Random bits, uniform draws and integers are the same bits on every backend."""
    k = random.key(2024)
    draw = fn.jit(lambda k: [random.bits(k, (64,)), random.uniform(k, (9,)),
                             random.randint(k, (9,), 0, 1000), random.bits(k, (4,), np.uint64)])
    with fn.use_backend("numpy"):
        ref = _run(draw, (k,))
    for g, r in zip(_run(draw, (k,)), ref):
        assert g.dtype == r.dtype
        np.testing.assert_array_equal(g, r)
