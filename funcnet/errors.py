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
    """Keep only the user's frames of ``tb`` unless ``FUNCNET_TRACEBACK=full``.

    If every frame is funcnet's own, the innermost one is kept.
    """
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


_HIDDEN_NOTE = ("(funcnet's internal frames are hidden from this traceback; "
                "set FUNCNET_TRACEBACK=full to see them)")


def reraise_filtered(e: BaseException):
    """Re-raise ``e`` with funcnet's internal frames removed from its traceback."""
    if os.environ.get("FUNCNET_TRACEBACK", "filtered") != "full" and hasattr(e, "add_note"):
        if _HIDDEN_NOTE not in getattr(e, "__notes__", ()):
            e.add_note(_HIDDEN_NOTE)
    raise e.with_traceback(filter_traceback(e.__traceback__))


def rule_error(prim_name: str, operands: str, e: Exception) -> Exception:
    """A clear error for a failed shape/dtype rule: the primitive, the operand types
    and the user's source line.  Returns the new exception (of ``e``'s type)."""
    msg = str(e)
    if msg.startswith(prim_name + ":"):
        msg = msg[len(prim_name) + 1:].strip()
    where = user_line()
    text = f"{prim_name} of {operands}: {msg}" + (f"\n  at: {where}" if where else "")
    try:
        new = type(e)(text)
    except Exception:  # an exception type with a different constructor
        new = ValueError(text)
    new.__suppress_context__ = True
    return new
