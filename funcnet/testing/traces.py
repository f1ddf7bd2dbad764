"""``assert_traces``: check how often a jitted function was traced.

>>> import funcnet as fn, funcnet.numpy as fnp
>>> from funcnet.testing import assert_traces
>>> f = fn.jit(lambda x: x * 2)
>>> with assert_traces(f, 1):
...     _ = f(fnp.ones(2)); _ = f(fnp.zeros(2))
"""

from __future__ import annotations

from contextlib import contextmanager


@contextmanager
def assert_traces(f, n: int):
    """Assert that ``f`` (a ``jit`` function) is traced exactly ``n`` times in the block.

    For a running total, check ``f.trace_count`` directly.

    >>> import funcnet as fn, funcnet.numpy as fnp
    >>> from funcnet.testing import assert_traces
    >>> step = fn.jit(lambda w: w * 0.9)
    >>> with assert_traces(step, 1):
    ...     w = step(fnp.ones(3)); w = step(w)
    """
    if not hasattr(f, "trace_count"):
        raise TypeError(f"assert_traces needs a function made by fn.jit, got {type(f).__name__}")
    before = f.trace_count
    yield f
    got = f.trace_count - before
    if got != n:
        name = getattr(f, "__name__", "function")
        raise AssertionError(
            f"{name} was traced {got} time(s) in this block, expected {n}. Run with "
            "FUNCNET_EXPLAIN_RETRACE=1 to log what changed between traces (shapes, dtypes, "
            "weak types, static arguments).")
