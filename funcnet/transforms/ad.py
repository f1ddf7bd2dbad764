"""Automatic differentiation: forward mode (JVP), linearization, transposition.

Reverse mode is JVP + partial evaluation + transposition (STYLE.md §2): the
JVP rules run with the primal values known and the tangents symbolic, so the
tangent computation is recorded as a *linear* graph (``linearize``); walking
that graph backwards with each linear primitive's transpose rule gives the
VJP.  One rule set yields ``jvp``, ``vjp``, ``grad``, ``jacfwd``, ``jacrev``
and ``hessian``, and because every rule is written with primitives, the
results can be differentiated again.

>>> import funcnet as fn, funcnet.numpy as fnp
>>> float(fn.grad(fnp.sin)(0.0))
1.0
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from funcnet.core.aval import ShapedArray, get_aval
from funcnet.core.graph import Graph, GraphBuilder, GraphTrace, Literal, Var
from funcnet.core.primitive import Primitive
from funcnet.core.trace import Trace, Tracer, new_main, state

# ---------------------------------------------------------------------------
# Symbolic zeros and the two primitives AD itself needs


class Zero:
    """A tangent or cotangent known to be zero, without materialising it."""

    __slots__ = ("aval",)

    def __init__(self, aval: ShapedArray):
        self.aval = aval

    def __repr__(self) -> str:
        return f"Zero({self.aval.str_short()})"


zeros_p = Primitive("zeros")
zeros_p.abstract_eval = lambda *, shape, dtype: ShapedArray(shape, dtype)
zeros_p.jvp = lambda primals, tangents, *, shape, dtype: (
    zeros_p.bind(shape=shape, dtype=dtype), Zero(ShapedArray(shape, dtype)))

add_any_p = Primitive("add_any", linear=True)
add_any_p.abstract_eval = lambda x, y: x


def _add_any_jvp(primals, tangents):
    return add_any_p.bind(*primals), add_tangents(*tangents)


add_any_p.jvp = _add_any_jvp
add_any_p.transpose = lambda ct, x, y: [ct, ct]


def _add_any_batch(vals, dims):
    from funcnet.transforms.batching import bdim_at_front

    size = next(v.shape[d] for v, d in zip(vals, dims) if d is not None)
    return add_any_p.bind(*[bdim_at_front(v, d, size) for v, d in zip(vals, dims)]), 0


add_any_p.batch = _add_any_batch


def zeros_like_aval(aval: ShapedArray):
    return zeros_p.bind(shape=aval.shape, dtype=aval.dtype)


def instantiate(t):
    """Materialise a symbolic ``Zero``; other values pass through."""
    return zeros_like_aval(t.aval) if type(t) is Zero else t


def add_tangents(a, b):
    """Sum two tangents of the same shape, skipping symbolic zeros."""
    if type(a) is Zero:
        return b
    if type(b) is Zero:
        return a
    return add_any_p.bind(a, b)


def tangent_aval(aval: ShapedArray) -> ShapedArray:
    return ShapedArray(aval.shape, aval.dtype, aval.weak_type)


def is_float(dtype) -> bool:
    return np.dtype(dtype).kind in "fc"


# ---------------------------------------------------------------------------
# Forward mode


class JVPTracer(Tracer):
    """A primal value with its tangent (possibly a symbolic ``Zero``)."""

    __slots__ = ("primal", "tangent", "_aval")

    def __init__(self, trace, primal, tangent):
        self._trace = trace
        self.primal = primal
        self.tangent = tangent
        self._aval = None

    @property
    def aval(self) -> ShapedArray:
        aval = self._aval
        if aval is None:
            aval = self._aval = get_aval(self.primal)
        return aval

    def full_lower(self):
        # A value with a zero tangent is just its primal to every outer level.
        return self.primal if type(self.tangent) is Zero else self

    def concrete_value(self):
        p = self.primal
        return p.concrete_value() if isinstance(p, Tracer) else p


class JVPTrace(Trace):
    """Carries tangents alongside primals using each primitive's JVP rule."""

    __slots__ = ()

    def pure(self, val):
        return JVPTracer(self, val, Zero(get_aval(val)))

    lift = pure

    def process_primitive(self, prim, tracers, params):
        primals = [t.primal for t in tracers]
        tangents = [t.tangent for t in tracers]
        if all(type(t) is Zero for t in tangents):
            out = prim.bind(*primals, **params)
            if prim.multiple_results:
                return [JVPTracer(self, o, Zero(get_aval(o))) for o in out]
            return JVPTracer(self, out, Zero(get_aval(out)))
        rule = prim.jvp
        if rule is None:
            raise NotImplementedError(
                f"the primitive '{prim.name}' has no differentiation rule")
        primal_out, tangent_out = rule(primals, tangents, **params)
        if prim.multiple_results:
            return [JVPTracer(self, p, t) for p, t in zip(primal_out, tangent_out)]
        return JVPTracer(self, primal_out, tangent_out)

    def process_custom(self, kind, fun, rule, tracers, params):
        return rule(self, tracers, params)


def jvp_flat(fun: Callable, primals: Sequence, tangents: Sequence):
    """JVP of ``fun`` on flat lists; tangents may contain ``Zero``."""
    with new_main(JVPTrace) as main:
        trace = main.trace
        ins = [JVPTracer(trace, p, t) for p, t in zip(primals, tangents)]
        outs = [trace.full_raise(o) for o in fun(*ins)]
        return [o.primal for o in outs], [o.tangent for o in outs]


# ---------------------------------------------------------------------------
# Linearization (JVP with symbolic tangents) and transposition


def linearize_flat(fun: Callable, primals: Sequence):
    """Run ``fun`` on ``primals`` and record its tangent map as a linear graph.

    Returns ``(primal_outs, graph)``; ``graph`` maps input tangents to output
    tangents.  Integer inputs get a zero tangent and no graph input... they
    still appear as inputs so that positions line up.
    """
    builder = GraphBuilder(record_source=state.wrap_kernel is not None)
    with new_main(GraphTrace, builder) as pe_main:
        pe_trace = pe_main.trace
        tangent_ins = [pe_trace.new_arg(tangent_aval(get_aval(p))) for p in primals]
        with new_main(JVPTrace) as jmain:
            jtrace = jmain.trace
            ins = [JVPTracer(jtrace, p, t if is_float(t.aval.dtype) else Zero(t.aval))
                   for p, t in zip(primals, tangent_ins)]
            outs = [jtrace.full_raise(o) for o in fun(*ins)]
            primal_outs = [o.primal for o in outs]
            tangent_outs = [o.tangent for o in outs]
        tangent_outs = [None if type(t) is Zero else t for t in tangent_outs]
        # No dead-code pass: the transpose skips equations without cotangents anyway.
        graph = builder.build(tangent_ins, [0.0 if t is None else t for t in tangent_outs],
                              dce=False)
        # Outputs with a symbolic zero tangent have no linear dependence.
        graph.outs = [None if t is None else v for t, v in zip(tangent_outs, graph.outs)]
    return primal_outs, graph


class UndefinedPrimal:
    """Marks the linear argument of a primitive during transposition."""

    __slots__ = ("aval",)

    def __init__(self, aval: ShapedArray):
        self.aval = aval

    shape = property(lambda self: self.aval.shape)
    dtype = property(lambda self: self.aval.dtype)
    ndim = property(lambda self: len(self.aval.shape))

    def __repr__(self) -> str:
        return f"UndefinedPrimal({self.aval.str_short()})"


def is_undefined(x) -> bool:
    return type(x) is UndefinedPrimal


def backward_pass(graph: Graph, cts: Sequence) -> list:
    """Transpose the linear ``graph``: cotangents of outputs → of inputs.

    ``None`` in ``cts`` means a zero cotangent.  Input cotangents that stay
    zero come back as ``None``.
    """
    consts = dict(zip(graph.const_vars, graph.consts))
    ct_env: dict[Var, Any] = {}

    def accum(v, ct):
        if ct is None or type(v) is not Var or v in consts:
            return
        if ct.dtype != v.aval.dtype:
            from funcnet.ops.elementwise import convert_element_type

            ct = convert_element_type(ct, v.aval.dtype)
        prev = ct_env.get(v)
        ct_env[v] = ct if prev is None else add_any_p.bind(prev, ct)

    for v, ct in zip(graph.outs, cts):
        if v is not None:
            accum(v, ct)
    pop = ct_env.pop
    for eqn in reversed(graph.eqns):
        if eqn.prim.multiple_results:
            cts_out = [pop(v, None) for v in eqn.outputs]
            if all(c is None for c in cts_out):
                continue
            ct_arg = [zeros_like_aval(v.aval) if c is None else c
                      for v, c in zip(eqn.outputs, cts_out)]
        else:
            ct_arg = pop(eqn.outputs[0], None)
            if ct_arg is None:
                continue
        invals = []
        for v in eqn.inputs:
            if type(v) is Literal:
                invals.append(v.val)
            else:
                c = consts.get(v, _MISSING)
                invals.append(UndefinedPrimal(v.aval) if c is _MISSING else c)
        rule = eqn.prim.transpose
        if rule is None:
            raise NotImplementedError(
                f"reverse-mode differentiation of '{eqn.prim.name}' is not supported "
                "(it has no transpose rule)")
        if eqn.source is not None:  # debug_nans: blame the forward operation's line
            from funcnet.debug import BackwardOf

            prev, state.source_override = state.source_override, BackwardOf(eqn.source)
            try:
                cts_in = rule(ct_arg, *invals, **eqn.params)
            finally:
                state.source_override = prev
        else:
            cts_in = rule(ct_arg, *invals, **eqn.params)
        for v, x, ct in zip(eqn.inputs, invals, cts_in):
            if ct is not None and type(x) is UndefinedPrimal:
                accum(v, ct)
    return [ct_env.get(v) for v in graph.in_vars]


_MISSING = object()


def vjp_flat(fun: Callable, primals: Sequence):
    """``(primal_outs, f_vjp)`` with ``f_vjp(cts) -> input cts`` (``None`` = zero)."""
    primal_outs, graph = linearize_flat(fun, primals)
    return primal_outs, lambda cts: backward_pass(graph, cts)


__all__ = ["Zero", "JVPTracer", "JVPTrace", "UndefinedPrimal", "jvp_flat",
           "linearize_flat", "vjp_flat", "backward_pass", "instantiate", "add_tangents",
           "zeros_like_aval", "is_undefined", "zeros_p", "add_any_p"]
