"""Hypothesis strategies for property tests of code built on funcnet.

Hypothesis is a test extra (``pip install funcnet[test]``), not a dependency
of funcnet: it is imported only when one of these functions is called.

>>> import numpy as np
>>> from hypothesis import given, settings
>>> from funcnet.testing import arrays, shapes
>>> @settings(max_examples=20)
... @given(arrays(shapes(max_dims=2)))
... def test_abs_is_nonnegative(x):
...     assert np.all(np.abs(x) >= 0)
>>> test_abs_is_nonnegative()
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["arrays", "shapes", "broadcastable_shapes", "pytrees", "default_elements"]

#: Default element bounds: floats in [-FLOAT_BOUND, FLOAT_BOUND], integers in
#: [-INT_BOUND, INT_BOUND] (unsigned: [0, INT_BOUND]).
FLOAT_BOUND = 10.0
INT_BOUND = 10


def _hypothesis():
    """``(strategies, extra.numpy)`` from Hypothesis, or an ImportError that says how."""
    try:
        import hypothesis.extra.numpy as hnp
        import hypothesis.strategies as st
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("funcnet.testing's strategies need Hypothesis, a test extra: "
                          "pip install 'funcnet[test]' (or pip install hypothesis)") from e
    return st, hnp


def _is_strategy(x: Any) -> bool:
    st, _ = _hypothesis()
    return isinstance(x, st.SearchStrategy)


def default_elements(dtype):
    """The default element strategy for ``dtype``: moderate, finite values.

    Floats lie in ``[-10, 10]`` (no NaN, infinity or subnormals), signed
    integers in ``[-10, 10]``, unsigned in ``[0, 10]``, booleans either way.

    >>> from hypothesis import given, settings
    >>> @settings(max_examples=20)
    ... @given(default_elements(np.int32))
    ... def test(i):
    ...     assert -10 <= i <= 10
    >>> test()
    """
    st, _ = _hypothesis()
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return st.floats(-FLOAT_BOUND, FLOAT_BOUND, width=8 * dtype.itemsize,
                         allow_nan=False, allow_infinity=False, allow_subnormal=False)
    if dtype.kind == "c":
        return st.complex_numbers(max_magnitude=FLOAT_BOUND, width=8 * dtype.itemsize,
                                  allow_nan=False, allow_infinity=False, allow_subnormal=False)
    if dtype.kind == "i":
        return st.integers(-INT_BOUND, INT_BOUND)
    if dtype.kind == "u":
        return st.integers(0, INT_BOUND)
    if dtype.kind == "b":
        return st.booleans()
    raise TypeError(f"no default elements for dtype {dtype}; pass elements=")


def arrays(shape, dtype=np.float64, elements=None):
    """A strategy for NumPy arrays of ``dtype`` and ``shape``.

    ``shape`` is an int, a tuple or a strategy of shapes (such as
    :func:`shapes`); ``dtype`` a dtype or a strategy of dtypes.  ``elements``
    defaults to :func:`default_elements` (finite values in ``[-10, 10]``).

    >>> from hypothesis import given, settings
    >>> @settings(max_examples=20)
    ... @given(arrays((2, 3), np.float32))
    ... def test(x):
    ...     assert x.shape == (2, 3) and x.dtype == np.float32
    ...     assert np.all(np.abs(x) <= 10)
    >>> test()
    """
    st, hnp = _hypothesis()
    if _is_strategy(dtype):
        return dtype.flatmap(lambda dt: arrays(shape, dt, elements))
    dtype = np.dtype(dtype)
    if elements is None:
        elements = default_elements(dtype)
    return hnp.arrays(dtype, shape, elements=elements)


def shapes(min_dims: int = 0, max_dims: int = 4, min_side: int = 0, max_side: int = 5):
    """A strategy for array shapes (tuples) with ``min_dims..max_dims`` sides in
    ``min_side..max_side``.  Scalars (``()``) and empty sides (``0``) are
    included by default.

    >>> from hypothesis import given, settings
    >>> @settings(max_examples=30)
    ... @given(shapes(min_dims=1, max_dims=3, max_side=4))
    ... def test(s):
    ...     assert 1 <= len(s) <= 3 and all(0 <= d <= 4 for d in s)
    >>> test()
    """
    _, hnp = _hypothesis()
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side,
                            max_side=max_side)


def broadcastable_shapes(shape, min_dims: int = 0, max_dims: int | None = None,
                         min_side: int = 1, max_side: int = 5):
    """A strategy for shapes that broadcast with ``shape`` (a tuple or a strategy of
    tuples; with a strategy, a pair ``(shape, other)`` is not returned, only ``other``).

    Each side is 1, or equals ``shape``'s side where ``shape``'s side is not 1,
    or lies in ``min_side..max_side`` where ``shape``'s side is 1 or missing.
    ``max_dims`` defaults to ``max(len(shape), min_dims) + 2``.

    >>> from hypothesis import given, settings
    >>> @settings(max_examples=30)
    ... @given(broadcastable_shapes((3, 1, 4)))
    ... def test(s):
    ...     np.broadcast_shapes((3, 1, 4), s)
    >>> test()
    """
    _, hnp = _hypothesis()
    if _is_strategy(shape):
        return shape.flatmap(lambda s: broadcastable_shapes(s, min_dims, max_dims,
                                                             min_side, max_side))
    shape = tuple(int(d) for d in shape)
    if max_dims is None:
        max_dims = max(len(shape), min_dims) + 2
    return hnp.broadcastable_shapes(shape, min_dims=min_dims, max_dims=max_dims,
                                    min_side=min_side, max_side=max_side)


_KEY_ALPHABET = "abcdefghijklmnopqrstuvwxyz_"


def pytrees(leaves, max_depth: int = 3, max_children: int = 3):
    """A strategy for pytrees: nested dicts, lists and tuples whose leaves come
    from the strategy ``leaves``.

    ``max_depth`` bounds the nesting of containers (``0`` gives a bare leaf);
    each container has at most ``max_children`` children and may be empty.
    Dict keys are short lowercase strings.

    >>> import funcnet as fn
    >>> from hypothesis import given, settings, strategies as st
    >>> @settings(max_examples=30)
    ... @given(pytrees(st.integers(0, 9), max_depth=2))
    ... def test(t):
    ...     assert all(isinstance(x, int) for x in fn.tree.leaves(t))
    >>> test()
    """
    st, _ = _hypothesis()
    if not _is_strategy(leaves):
        raise TypeError(f"pytrees(leaves): leaves must be a Hypothesis strategy, got "
                        f"{type(leaves).__name__}")
    if max_depth < 0:
        raise ValueError(f"pytrees: max_depth must be >= 0, got {max_depth}")
    keys = st.text(_KEY_ALPHABET, min_size=1, max_size=4)
    tree = leaves
    for _ in range(max_depth):
        children = tree
        tree = st.one_of(
            leaves,
            st.lists(children, max_size=max_children),
            st.lists(children, max_size=max_children).map(tuple),
            st.dictionaries(keys, children, max_size=max_children),
        )
    return tree
