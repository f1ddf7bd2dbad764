"""The interpreter stack: main traces, ``Trace``, ``Tracer`` and ``bind``.

Transforms are interpreters stacked by *level* (the design of JAX's Autodidax
notes).  ``bind`` finds the highest-level trace among its arguments and lets it
process the primitive; a trace processes a primitive by binding simpler
primitives one level down.  When no transform is active (``state.eager``),
``Primitive.bind`` calls the backend kernel directly.

>>> from funcnet.core.trace import state
>>> state.eager
True
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any

import numpy as np

from funcnet.errors import (
    ConcretizationError,
    UnexpectedTracerError,
    reraise_filtered,
    rule_error,
    user_line,
)


class MainTrace:
    """One active interpreter: its level, its ``Trace`` class and shared data."""

    __slots__ = ("level", "trace_type", "global_data", "alive", "trace")

    def __init__(self, level: int, trace_type: type, global_data: Any):
        self.level = level
        self.trace_type = trace_type
        self.global_data = global_data
        self.alive = True
        self.trace = trace_type(self)

    def __repr__(self) -> str:
        return f"MainTrace({self.level}, {self.trace_type.__name__})"


class _State:
    """Global interpreter state (the stack and the current kernel table)."""

    def __init__(self) -> None:
        self.stack: list[MainTrace] = []
        self.dynamic: MainTrace | None = None
        self.eager = True
        self.kernels: dict = {}
        #: when set (by ``funcnet.debug``), ``wrap_kernel(prim, kernel)`` checks results
        self.wrap_kernel = None
        #: the forward operation's source line while its transpose runs (debug_nans)
        self.source_override = None


state = _State()


class Trace:
    """Base interpreter.  Subclasses define ``pure``, ``lift``, ``process_primitive``."""

    __slots__ = ("main",)

    def __init__(self, main: MainTrace):
        self.main = main

    def pure(self, val):
        raise NotImplementedError

    lift = pure

    def full_raise(self, val):
        if not isinstance(val, Tracer):
            return self.pure(val)
        vmain = val._trace.main
        if vmain is self.main:
            return val
        if vmain.level < self.main.level:
            return self.lift(val)
        raise UnexpectedTracerError(
            f"a tracer from {vmain} was used inside {self.main}, which is below it: "
            "a traced value escaped the transform that created it")

    def process_primitive(self, prim, tracers, params):
        raise NotImplementedError

    def process_custom(self, kind: str, fun, rule, tracers, params):
        """Hook for ``custom_jvp``/``custom_vjp`` calls; default: inline ``fun``."""
        return fun(*tracers)


class EvalTrace(Trace):
    """Level 0: call the backend kernel."""

    __slots__ = ()

    def pure(self, val):
        return val

    lift = pure

    def process_primitive(self, prim, tracers, params):
        return state.kernels[prim](*tracers, **params)


state.stack.append(MainTrace(0, EvalTrace, None))
state.dynamic = state.stack[0]


def _refresh_eager() -> None:
    state.eager = len(state.stack) == 1 and state.dynamic is state.stack[0]


@contextmanager
def new_main(trace_type: type, global_data: Any = None, dynamic: bool = False):
    """Push a new interpreter on the stack for the duration of the block."""
    main = MainTrace(len(state.stack), trace_type, global_data)
    state.stack.append(main)
    prev_dynamic = state.dynamic
    if dynamic:
        state.dynamic = main
    state.eager = False
    try:
        yield main
    finally:
        state.stack.pop()
        state.dynamic = prev_dynamic
        main.alive = False
        _refresh_eager()


def find_top_trace(args) -> Trace:
    top = state.dynamic
    for x in args:
        if isinstance(x, Tracer):
            m = x._trace.main
            if not m.alive:
                raise UnexpectedTracerError(_escaped_message(x))
            if m.level > top.level:
                top = m
    return top.trace


def check_no_escaped_tracers(args) -> None:
    """Raise ``UnexpectedTracerError`` if a tracer of a finished transform is among ``args``."""
    for x in args:
        if isinstance(x, Tracer) and not x._trace.main.alive:
            raise UnexpectedTracerError(_escaped_message(x))


def _operand_str(args) -> str:
    from funcnet.core.aval import get_aval

    out = []
    for a in args:
        try:
            out.append(get_aval(a).str_short())
        except TypeError:
            out.append(type(a).__name__)
    return ", ".join(out) or "no operands"


def kernel_failed(prim, args, params, e: Exception):
    """Explain a kernel's failure: escaped tracers, or the shape rule's own message."""
    check_no_escaped_tracers(args)
    from funcnet.core.aval import get_aval

    try:
        avals = [get_aval(a) for a in args]
        if prim.abstract_eval is not None:
            prim.abstract_eval(*avals, **params)
    except (ValueError, TypeError, IndexError) as rule_exc:
        reraise_filtered(rule_error(prim.name, _operand_str(args), rule_exc))
    if hasattr(e, "add_note"):
        where = user_line()
        e.add_note(f"in funcnet primitive '{prim.name}' with operands {_operand_str(args)}"
                   + (f"\n  at: {where}" if where else ""))
    reraise_filtered(e)


def abstract_eval_checked(prim, avals, params):
    """``prim.abstract_eval`` with errors that name the primitive, operands and user line."""
    try:
        return prim.abstract_eval(*avals, **params)
    except (ValueError, TypeError, IndexError) as e:
        reraise_filtered(rule_error(prim.name, ", ".join(a.str_short() for a in avals), e))


def bind_slow(prim, args, params):
    top = state.dynamic
    for x in args:
        if isinstance(x, Tracer):
            m = x._trace.main
            if m.level > top.level:
                top = m
            elif not m.alive:
                raise UnexpectedTracerError(_escaped_message(x))
    if top.level == 0:
        try:
            return state.kernels[prim](*args, **params)
        except Exception as e:
            kernel_failed(prim, args, params, e)
    if not top.alive:
        raise UnexpectedTracerError(_escaped_message(args[0]))
    trace = top.trace
    tracers = [x if isinstance(x, Tracer) and x._trace.main is top else trace.full_raise(x)
               for x in args]
    out = trace.process_primitive(prim, tracers, params)
    if prim.multiple_results:
        return [o.full_lower() if isinstance(o, Tracer) else o for o in out]
    return out.full_lower() if isinstance(out, Tracer) else out


def full_lower(x):
    return x.full_lower() if isinstance(x, Tracer) else x


def _escaped_message(t: Tracer) -> str:
    return (f"a {t.aval.str_short()} tracer created by "
            f"{t._trace.main.trace_type.__name__} was used after that transform "
            "returned: a traced value leaked out of the function being transformed "
            "(for example stored in a global or a closure). Return it as an output "
            "instead." + (f"\n  used at: {user_line()}" if user_line() else ""))


class Tracer:
    """A value flowing through an interpreter; behaves like an array.

    The array interface (operators, methods, indexing) is attached by
    ``funcnet.numpy`` so that ``core`` stays free of array math.
    """

    __slots__ = ("_trace",)
    __array_priority__ = 1000
    # NumPy defers to us: ``np_array * tracer`` calls ``tracer.__rmul__``.
    __array_ufunc__ = None

    @property
    def aval(self):
        raise NotImplementedError

    shape = property(lambda self: self.aval.shape)
    dtype = property(lambda self: self.aval.dtype)
    ndim = property(lambda self: len(self.aval.shape))
    size = property(lambda self: self.aval.size)
    weak_type = property(lambda self: self.aval.weak_type)

    def __len__(self) -> int:
        if not self.aval.shape:
            raise TypeError("len() of a 0-d traced array")
        return self.aval.shape[0]

    def full_lower(self):
        return self

    def concrete_value(self):
        """The concrete value behind this tracer, or raise ``ConcretizationError``."""
        if not self._trace.main.alive:
            raise UnexpectedTracerError(_escaped_message(self))
        raise ConcretizationError(_concretization_message(self))

    def __bool__(self) -> bool:
        return bool(self.concrete_value())

    def __int__(self) -> int:
        return int(self.concrete_value())

    def __float__(self) -> float:
        return float(self.concrete_value())

    def __complex__(self) -> complex:
        return complex(self.concrete_value())

    def __index__(self) -> int:
        return int(np.asarray(self.concrete_value()).__index__())

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self.concrete_value(), dtype=dtype)

    def item(self):
        return np.asarray(self.concrete_value()).item()

    def tolist(self):
        return np.asarray(self.concrete_value()).tolist()

    __hash__ = None  # tracers are unhashable, like arrays

    def __iter__(self):
        if not self.aval.shape:
            raise TypeError("iteration over a 0-d traced array")
        return (self[i] for i in range(self.aval.shape[0]))

    def __repr__(self) -> str:
        return f"{type(self).__name__}<{self.aval.str_short()}>"


def _concretization_message(t: Tracer) -> str:
    where = user_line()
    name = t._trace.main.trace_type.__name__
    return (
        f"a traced value ({t.aval.str_short()}, under {name}) was used where a "
        "concrete Python value is needed (bool(), int(), float(), np.asarray() "
        "or an `if`/`while` on it). Under jit/vmap its value is not known while "
        "tracing. Use funcnet.lax.cond / lax.switch / fnp.where for data-dependent "
        "branches, lax.while_loop / fori_loop for loops, or mark the argument "
        "static with jit(..., static_argnums=...)."
        + (f"\n  at: {where}" if where else ""))
