"""Debugging aids: ``debug_nans`` (find the first operation that makes a NaN/inf)
and ``print`` (print traced values under any transform).

>>> import funcnet as fn, funcnet.numpy as fnp
>>> with fn.debug_nans():
...     try:
...         fnp.log(fnp.array([-1.0]))
...     except FloatingPointError as e:
...         print(str(e).splitlines()[0])
debug_nans: the primitive 'log' produced nan from finite operands (float32[1]) -> float32[1]
"""

from __future__ import annotations

import builtins
import os
import traceback
from contextlib import contextmanager

import numpy as np

from funcnet.backends.base import refresh, to_numpy
from funcnet.core import pytree
from funcnet.core.primitive import Primitive
from funcnet.core.trace import state
from funcnet.errors import reraise_filtered, user_frame

__all__ = ["debug_nans", "print", "BackwardOf"]


class BackwardOf:
    """Marks a source line as that of the forward operation of a backward-pass equation.

    >>> from funcnet.debug import BackwardOf
    >>> BackwardOf(None).frame is None
    True
    """

    __slots__ = ("frame",)

    def __init__(self, frame):
        self.frame = frame


def _describe(frame) -> str:
    if isinstance(frame, BackwardOf):
        return (_describe(frame.frame)
                + "\n  (the NaN/inf arose in the backward pass of that operation)")
    if isinstance(frame, traceback.FrameSummary):
        return f"{frame.filename}:{frame.lineno} ({frame.name}): {(frame.line or '').strip()}"
    return "unknown location"


def _nonfinite(x) -> tuple[int, int, str] | None:
    dt = getattr(x, "dtype", None)
    if dt is None or np.dtype(dt).kind not in "fc":
        return None
    a = x if isinstance(x, np.ndarray) else to_numpy(x)
    bad = ~np.isfinite(a)
    n = int(np.count_nonzero(bad))
    if not n:
        return None
    kinds = sorted({"nan" if np.isnan(v) else "inf" for v in np.asarray(a)[bad].ravel()[:64]})
    return n, a.size, "/".join(kinds)


def _short(x) -> str:
    from funcnet.core.aval import get_aval

    try:
        return get_aval(x).str_short()
    except TypeError:
        return type(x).__name__


def _checking(prim: Primitive, kernel):
    if prim.name in ("jit_call", "scan", "while", "cond", "custom_vjp_lin", "checkpoint_lin"):
        return kernel  # their bodies run through the checking kernels themselves

    def checked(*args, **params):
        with np.errstate(all="ignore"):  # this check reports it, with a better message
            out = kernel(*args, **params)
        outs = out if prim.multiple_results else (out,)
        for o in outs:
            bad = _nonfinite(o)
            if bad is None:
                continue
            if any(_nonfinite(a) for a in args):
                continue  # propagated from an input: not the origin
            n, size, kinds = bad
            where = state.source_override or user_frame()
            err = FloatingPointError(
                f"debug_nans: the primitive '{prim.name}' produced {kinds} from finite "
                f"operands ({', '.join(_short(a) for a in args)}) -> {_short(o)}"
                + (f" [{n} of {size} values]" if size > 1 else "")
                + f"\n  forward operation at: {_describe(where)}")
            reraise_filtered(err)
        return out

    return checked


@contextmanager
def debug_nans(enabled: bool = True):
    """Raise ``FloatingPointError`` at the first primitive that turns finite values
    into NaN or inf — eager, under ``jit`` (equation by equation) or in a
    backward pass, whose error names the forward operation's source line.

    Also switched on for the whole process by ``FUNCNET_DEBUG_NANS=1``.  It
    slows everything down: use it to find a problem, not in production.
    ``jit`` functions traced before it was switched on are traced again.

    >>> import funcnet as fn, funcnet.numpy as fnp
    >>> with fn.debug_nans():
    ...     float(fn.grad(lambda x: fnp.sqrt(x))(4.0))
    0.25
    """
    prev = state.wrap_kernel
    state.wrap_kernel = _checking if enabled else None
    refresh()
    try:
        yield
    finally:
        state.wrap_kernel = prev
        refresh()


def _enable_from_environment() -> None:
    if os.environ.get("FUNCNET_DEBUG_NANS", "") not in ("", "0"):
        state.wrap_kernel = _checking
        refresh()


# ---------------------------------------------------------------------------
# print

debug_print_p = Primitive("debug_print", multiple_results=True)
debug_print_p.effectful = True
debug_print_p.abstract_eval = lambda *avals, fmt, tree: []


def _print_impl(*args, fmt, tree):
    a, k = tree.unflatten([to_numpy(x) for x in args])
    builtins.print(fmt.format(*a, **k))
    return []


def _print_jvp(primals, tangents, *, fmt, tree):
    debug_print_p.bind(*primals, fmt=fmt, tree=tree)
    return [], []


def _print_batch(vals, dims, *, fmt, tree):
    from funcnet.transforms.batching import bdim_at_front

    size = next(np.shape(v)[d] for v, d in zip(vals, dims) if d is not None)
    debug_print_p.bind(*[bdim_at_front(v, d, size) for v, d in zip(vals, dims)], fmt=fmt,
                       tree=tree)
    return [], []


debug_print_p.impl = _print_impl
debug_print_p.jvp = _print_jvp
debug_print_p.batch = _print_batch
debug_print_p.transpose = lambda cts, *args, fmt, tree: [None] * len(args)
debug_print_p.linear = True  # has no outputs, so nothing to transpose


def print(fmt: str, *args, **kwargs) -> None:  # noqa: A001 - mirrors jax.debug.print
    """Print ``fmt.format(*args, **kwargs)`` with the *values* of traced arrays,
    when the computation runs — eagerly, under ``jit`` (every call), ``grad``
    (the forward values) or ``vmap`` (the whole batch at once).

    >>> import funcnet as fn, funcnet.numpy as fnp
    >>> f = fn.jit(lambda x: (fn.debug.print("x is {}", x), x * 2)[1])
    >>> _ = f(fnp.array([1.0, 2.0]))
    x is [1. 2.]
    """
    leaves, tree = pytree.flatten((args, kwargs))
    debug_print_p.bind(*leaves, fmt=fmt, tree=tree)


_enable_from_environment()
