"""The graph IR (funcnet's jaxpr): variables, equations, printing, type checks,
and ``GraphTrace``, the interpreter that records primitives into a graph.

>>> import funcnet as fn, funcnet.numpy as fnp
>>> print(fn.make_graph(lambda x: fnp.sin(x) * 2.0)(fnp.ones(3)))
{ lambda ; a:float32[3]. let
    b:float32[3] = sin a
    c:float32[3] = mul b 2.0
  in (c,) }
"""

from __future__ import annotations

import itertools
from typing import Any

from funcnet.core.aval import ShapedArray, get_aval
from funcnet.core.trace import Trace, Tracer, abstract_eval_checked, full_lower, state
from funcnet.errors import user_frame


class Var:
    """A graph variable: identity plus an abstract value."""

    __slots__ = ("aval",)

    def __init__(self, aval: ShapedArray):
        self.aval = aval


class Literal:
    """A Python scalar written directly into an equation."""

    __slots__ = ("val", "aval")

    def __init__(self, val, aval: ShapedArray):
        self.val = val
        self.aval = aval

    def __repr__(self) -> str:
        return repr(self.val)


class Eqn:
    """``outputs = prim[params](*inputs)``; ``source`` is the user's line."""

    __slots__ = ("prim", "inputs", "params", "outputs", "source")

    def __init__(self, prim, inputs, params, outputs, source=None):
        self.prim = prim
        self.inputs = inputs
        self.params = params
        self.outputs = outputs
        self.source = source


class Graph:
    """A traced program: ``const_vars`` (bound to ``consts``), ``in_vars``, ``eqns``, ``outs``."""

    def __init__(self, const_vars, consts, in_vars, eqns, outs):
        self.const_vars = list(const_vars)
        self.consts = list(consts)
        self.in_vars = list(in_vars)
        self.eqns = list(eqns)
        self.outs = list(outs)

    @property
    def in_avals(self) -> list[ShapedArray]:
        return [v.aval for v in self.in_vars]

    @property
    def out_avals(self) -> list[ShapedArray]:
        return [v.aval for v in self.outs]

    def __str__(self) -> str:
        return pp_graph(self)

    __repr__ = __str__


def _param_str(v) -> str:
    if callable(v) and hasattr(v, "__name__"):
        return v.__name__
    if isinstance(v, Graph):
        return "{ ... }"
    return str(v)


def pp_graph(graph: Graph, indent: int = 0) -> str:
    """A readable, jaxpr-like listing of ``graph``."""
    names: dict[int, str] = {}
    counter = itertools.count()

    def name(v) -> str:
        if isinstance(v, Literal):
            return repr(v.val)
        if id(v) not in names:
            i = next(counter)
            s = ""
            while True:
                s = chr(ord("a") + i % 26) + s
                i = i // 26 - 1
                if i < 0:
                    break
            names[id(v)] = s
        return names[id(v)]

    def decl(v) -> str:
        return f"{name(v)}:{v.aval.str_short()}"

    pad = " " * indent
    consts = " ".join(decl(v) for v in graph.const_vars)
    ins = " ".join(decl(v) for v in graph.in_vars)
    lines = [f"{pad}{{ lambda {consts}; {ins}. let"]
    for e in graph.eqns:
        outs = " ".join(decl(v) for v in e.outputs)
        params = ""
        if e.params:
            params = "[" + " ".join(f"{k}={_param_str(v)}" for k, v in e.params.items()) + "]"
        args = " ".join(name(v) for v in e.inputs)
        lines.append(f"{pad}    {outs} = {e.prim.name}{params} {args}".rstrip())
    outs = ", ".join(name(v) for v in graph.outs)
    lines.append(f"{pad}  in ({outs},) }}")
    return "\n".join(lines)


def typecheck_graph(graph: Graph) -> None:
    """Check every equation's recorded output types against its shape rule."""
    env: set[int] = {id(v) for v in graph.const_vars} | {id(v) for v in graph.in_vars}
    for e in graph.eqns:
        for v in e.inputs:
            if isinstance(v, Var) and id(v) not in env:
                raise TypeError(f"{e.prim.name}: input variable used before it is defined")
        out = e.prim.abstract_eval(*[v.aval for v in e.inputs], **e.params)
        out = out if e.prim.multiple_results else [out]
        got = [v.aval for v in e.outputs]
        if [(a.shape, a.dtype) for a in out] != [(a.shape, a.dtype) for a in got]:
            raise TypeError(f"{e.prim.name}: recorded types {got} differ from the "
                            f"shape rule's {out}")
        env.update(id(v) for v in e.outputs)
    for v in graph.outs:
        if isinstance(v, Var) and id(v) not in env:
            raise TypeError("graph output is not defined")


def eval_graph(graph: Graph, consts, args) -> list:
    """Interpret ``graph`` by binding each primitive (so it composes with transforms)."""
    env: dict[Var, Any] = dict(zip(graph.const_vars, consts))
    env.update(zip(graph.in_vars, args))
    blame = state.wrap_kernel is not None  # debug_nans: keep the traced source lines
    for e in graph.eqns:
        invals = [v.val if type(v) is Literal else env[v] for v in e.inputs]
        if blame and e.source is not None and state.source_override is None:
            state.source_override = e.source
            try:
                out = e.prim.bind(*invals, **e.params)
            finally:
                state.source_override = None
        else:
            out = e.prim.bind(*invals, **e.params)
        if e.prim.multiple_results:
            env.update(zip(e.outputs, out))
        else:
            env[e.outputs[0]] = out
    return [v.val if type(v) is Literal else env[v] for v in graph.outs]


class GraphTracer(Tracer):
    """A symbolic value: an abstract value and the graph variable it stands for."""

    # ``gvar``, not ``var``: a tracer's ``.var()`` is the array method (variance)
    __slots__ = ("aval", "gvar")

    def __init__(self, trace, aval: ShapedArray, var):
        self._trace = trace
        self.aval = aval
        self.gvar = var


class GraphBuilder:
    """Collects equations and constants while a ``GraphTrace`` records."""

    def __init__(self, record_source: bool = False, custom_hook=None):
        self.eqns: list[Eqn] = []
        self.const_vars: list[Var] = []
        self.consts: list[Any] = []
        self._const_ids: dict[int, GraphTracer] = {}
        self.record_source = record_source
        #: records custom_jvp/custom_vjp/checkpoint calls as equations (``jit``)
        self.custom_hook = custom_hook

    def const_tracer(self, trace, val) -> GraphTracer:
        if type(val) in (int, float, bool, complex):
            return GraphTracer(trace, get_aval(val), Literal(val, get_aval(val)))
        t = self._const_ids.get(id(val))
        if t is None:
            aval = get_aval(val)
            var = Var(aval)
            self.const_vars.append(var)
            self.consts.append(val)
            t = GraphTracer(trace, aval, var)
            self._const_ids[id(val)] = t
        return t

    def build(self, in_tracers, outs, dce: bool = True, trace=None) -> Graph:
        """Make the graph from input tracers to outputs (tracers or constants)."""
        if trace is None and in_tracers:
            trace = in_tracers[0]._trace
        out_vars = []
        for o in outs:
            if isinstance(o, GraphTracer) and trace is not None and o._trace.main is trace.main:
                out_vars.append(o.gvar)
            else:
                out_vars.append(self.const_tracer(trace, o).gvar)
        if not dce:
            return Graph(self.const_vars, self.consts, [t.gvar for t in in_tracers], self.eqns,
                         out_vars)
        eqns = _dce(self.eqns, out_vars)
        used = {id(v) for e in eqns for v in e.inputs} | {id(v) for v in out_vars}
        keep = [(v, c) for v, c in zip(self.const_vars, self.consts) if id(v) in used]
        return Graph([v for v, _ in keep], [c for _, c in keep],
                     [t.gvar for t in in_tracers], eqns, out_vars)


def closure_convert(graph: Graph, which=None) -> tuple[Graph, list]:
    """Turn constants into leading inputs; returns the new graph and those constants.

    ``which(const) -> bool`` selects the constants to convert (default: all).
    Constants that are tracers of an outer transform must become explicit
    operands, so that the outer transform sees them.
    """
    moved_v, moved_c, kept_v, kept_c = [], [], [], []
    for v, c in zip(graph.const_vars, graph.consts):
        if which is None or which(c):
            moved_v.append(v)
            moved_c.append(c)
        else:
            kept_v.append(v)
            kept_c.append(c)
    new = Graph(kept_v, kept_c, moved_v + graph.in_vars, graph.eqns, graph.outs)
    return new, moved_c


def _dce(eqns: list[Eqn], outs) -> list[Eqn]:
    live = {id(v) for v in outs}
    kept = []
    for e in reversed(eqns):
        if e.prim.effectful or any(id(v) in live for v in e.outputs):
            kept.append(e)
            live.update(id(v) for v in e.inputs if type(v) is Var)
    kept.reverse()
    return kept


class GraphTrace(Trace):
    """Records every primitive it is given into ``main.global_data`` (a ``GraphBuilder``)."""

    __slots__ = ()

    def new_arg(self, aval: ShapedArray) -> GraphTracer:
        return GraphTracer(self, aval, Var(aval))

    def pure(self, val):
        return self.main.global_data.const_tracer(self, val)

    lift = pure

    def process_custom(self, kind, fun, rule, tracers, params):
        hook = self.main.global_data.custom_hook
        if hook is None:
            return fun(*tracers)
        return hook(self, kind, fun, rule, tracers, params)

    def process_primitive(self, prim, tracers, params):
        avals_out = abstract_eval_checked(prim, [t.aval for t in tracers], params)
        builder = self.main.global_data
        if prim.multiple_results:
            outs = [GraphTracer(self, a, Var(a)) for a in avals_out]
        else:
            outs = [GraphTracer(self, avals_out, Var(avals_out))]
        source = None
        if builder.record_source:
            source = state.source_override or user_frame()
        builder.eqns.append(Eqn(prim, [t.gvar for t in tracers], params,
                                [o.gvar for o in outs], source))
        return outs if prim.multiple_results else outs[0]


__all__ = ["Var", "Literal", "Eqn", "Graph", "GraphTracer", "GraphTrace", "GraphBuilder",
           "eval_graph", "pp_graph", "typecheck_graph", "full_lower"]
