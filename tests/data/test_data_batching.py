"""batches / num_batches / train_test_split: coverage, reproducibility, structure."""

from __future__ import annotations

import numpy as np
import pytest

from funcnet import data, random


@pytest.mark.parametrize("n,batch_size,drop_last", [(10, 3, False), (10, 3, True), (9, 3, False),
                                                    (5, 8, False), (5, 8, True), (0, 4, False)])
def test_one_epoch_covers_every_example_once(n, batch_size, drop_last):
    x = np.arange(n)
    out = list(data.batches(random.key(0), x, batch_size, drop_last=drop_last))
    assert len(out) == data.num_batches(n, batch_size, drop_last)
    sizes = [len(b) for b in out]
    if drop_last:
        assert all(s == batch_size for s in sizes)
        seen = np.concatenate(out) if out else np.array([], int)
        assert len(set(seen.tolist())) == len(seen) == (n // batch_size) * batch_size
    else:
        assert all(s == batch_size for s in sizes[:-1])
        assert sorted(np.concatenate(out).tolist() if out else []) == list(range(n))


def test_reproducible_from_the_key_and_different_across_keys():
    x = np.arange(100)

    def epoch(k):
        return np.concatenate(list(data.batches(k, x, 16)))

    np.testing.assert_array_equal(epoch(random.key(3)), epoch(random.key(3)))
    assert not np.array_equal(epoch(random.key(3)), epoch(random.key(4)))
    assert not np.array_equal(epoch(random.key(3)), x)  # shuffled
    # the order is exactly random.permutation(key, n)
    np.testing.assert_array_equal(epoch(random.key(5)),
                                  np.asarray(random.permutation(random.key(5), 100)))


def test_pytree_structure_and_pairing():
    x = np.arange(20).reshape(10, 2)
    y = np.arange(10) * 10
    texts = np.empty(10, dtype=object)
    texts[:] = [f"t{i}" for i in range(10)]
    for xb, (yb, tb) in data.batches(random.key(1), (x, (y, texts)), 4):
        np.testing.assert_array_equal(xb[:, 0] // 2 * 10, yb)
        assert tb.tolist() == [f"t{v // 10}" for v in yb.tolist()]
    dict_batches = list(data.batches(random.key(1), {"x": x, "y": y}, 4))
    assert set(dict_batches[0]) == {"x", "y"}
    np.testing.assert_array_equal(dict_batches[0]["y"], next(iter(data.batches(random.key(1),
                                                                             y, 4))))


def test_no_shuffle_keeps_order_and_copies():
    x = np.arange(7)
    out = list(data.batches(None, x, 3, shuffle=False))
    assert [b.tolist() for b in out] == [[0, 1, 2], [3, 4, 5], [6]]
    out[0][0] = 99
    assert x[0] == 0


def test_errors_are_raised_at_call_time():
    with pytest.raises(ValueError, match="same number of examples"):
        data.batches(random.key(0), (np.zeros(3), np.zeros(4)), 2)
    with pytest.raises(ValueError, match="needs a key"):
        data.batches(None, np.zeros(3), 2)
    with pytest.raises(ValueError, match="batch_size"):
        data.batches(random.key(0), np.zeros(3), 0)
    with pytest.raises(ValueError, match="leading"):
        data.batches(random.key(0), np.float32(1.0), 1)


def test_train_test_split():
    x = np.arange(100)
    y = np.array([0] * 70 + [1] * 30)
    (x_tr, y_tr), (x_te, y_te) = data.train_test_split(random.key(0), (x, y), 0.2, stratify=y)
    assert len(x_te) == 20 and len(x_tr) == 80
    assert np.bincount(y_te).tolist() == [14, 6]
    assert sorted(np.concatenate([x_tr, x_te]).tolist()) == list(range(100))
    assert np.all(np.diff(x_tr) > 0)  # original order kept within each part
    again = data.train_test_split(random.key(0), (x, y), 0.2, stratify=y)
    np.testing.assert_array_equal(again[1][0], x_te)
    tr, te = data.train_test_split(random.key(1), x, 25)
    assert len(te) == 25 and len(tr) == 75
    with pytest.raises(ValueError, match="test_size"):
        data.train_test_split(random.key(0), x, 1.5)
