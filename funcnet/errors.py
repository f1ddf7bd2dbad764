"""Exceptions raised by funcnet, and the source-line helpers their messages use.

>>> import funcnet as fn
>>> issubclass(fn.errors.ConcretizationError, TypeError)
True
"""

from __future__ import annotations

import os
import sys
import traceback

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


class FuncnetError(Exception):
    """Base class of funcnet's own errors."""


class ConcretizationError(FuncnetError, TypeError):
    """A traced value was used where a concrete Python value is needed.

    >>> import funcnet as fn
    >>> def f(x):
    ...     return 1.0 if x > 0 else -1.0
    >>> try:
    ...     fn.make_graph(f)(1.0)
    ... except fn.errors.ConcretizationError as e:
    ...     print("lax.cond" in str(e))
    True
    """


class UnexpectedTracerError(FuncnetError, RuntimeError):
    """A tracer escaped the transform that created it and was used later."""


def user_frame() -> traceback.FrameSummary | None:
    """The innermost stack frame that lies outside the funcnet package."""
    frame = sys._getframe(1)
    while frame is not None:
        filename = os.path.abspath(frame.f_code.co_filename)
        if not filename.startswith(_PACKAGE_DIR):
            return traceback.FrameSummary(filename, frame.f_lineno, frame.f_code.co_name)
        frame = frame.f_back
    return None


def user_line() -> str:
    """``"file:line (function): source"`` for the user's innermost frame, or ``""``."""
    fs = user_frame()
    if fs is None:
        return ""
    src = (fs.line or "").strip()
    return f"{fs.filename}:{fs.lineno} ({fs.name}): {src}"


def filter_traceback(tb):
    """Drop funcnet's internal frames from ``tb`` unless ``FUNCNET_TRACEBACK=full``."""
    if os.environ.get("FUNCNET_TRACEBACK", "filtered") == "full":
        return tb
    frames = []
    while tb is not None:
        frames.append(tb)
        tb = tb.tb_next
    keep = [f for f in frames
            if not os.path.abspath(f.tb_frame.f_code.co_filename).startswith(_PACKAGE_DIR)]
    if not keep:
        return frames[-1] if frames else None
    # Rebuild a chain from the kept frames (tb_next is writable since Python 3.7).
    for a, b in zip(keep, keep[1:]):
        a.tb_next = b
    keep[-1].tb_next = None
    return keep[0]
