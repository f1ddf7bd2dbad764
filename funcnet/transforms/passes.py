"""Graph passes run by ``jit`` before compiling: inlining of nested jit calls,
constant folding, common-subexpression elimination and dead-code elimination.

>>> import funcnet as fn, funcnet.numpy as fnp
>>> g = fn.jit(lambda x: fnp.sin(x) + fnp.sin(x)).lower(fnp.ones(2))
>>> [e.prim.name for e in g.eqns]
['sin', 'add']
"""

from __future__ import annotations

from typing import Any

import numpy as np

from funcnet.core.graph import Eqn, Graph, Literal, Var, _dce


def optimize(graph: Graph) -> Graph:
    """Inline nested jit calls, fold constants, eliminate common subexpressions and dead code."""
    graph = inline_calls(graph)
    graph = fold_constants(graph)
    graph = cse(graph)
    return dce(graph)


def dce(graph: Graph) -> Graph:
    """Drop equations whose outputs are never used, and unused constants."""
    eqns = _dce(graph.eqns, [v for v in graph.outs if type(v) is Var])
    used = {id(v) for e in eqns for v in e.inputs} | {id(v) for v in graph.outs}
    keep = [(v, c) for v, c in zip(graph.const_vars, graph.consts) if id(v) in used]
    return _replace(graph, [v for v, _ in keep], [c for _, c in keep], eqns, graph.outs)


def _replace(graph, const_vars, consts, eqns, outs) -> Graph:
    new = Graph(const_vars, consts, graph.in_vars, eqns, outs)
    if hasattr(graph, "out_tree"):
        new.out_tree = graph.out_tree
    return new


def _subst(env: dict, v):
    return env.get(id(v), v) if type(v) is Var else v


def inline_calls(graph: Graph) -> Graph:
    """Replace ``jit_call`` equations by the equations of the graphs they carry."""
    if not any(e.prim.name == "jit_call" for e in graph.eqns):
        return graph
    env: dict[int, Any] = {}
    const_vars, consts = list(graph.const_vars), list(graph.consts)
    eqns: list[Eqn] = []
    for e in graph.eqns:
        ins = [_subst(env, v) for v in e.inputs]
        if e.prim.name != "jit_call":
            eqns.append(Eqn(e.prim, ins, e.params, e.outputs, e.source))
            continue
        inner = inline_calls(e.params["graph"])
        inner_env: dict[int, Any] = {}
        for v, c in zip(inner.const_vars, inner.consts):
            nv = Var(v.aval)
            const_vars.append(nv)
            consts.append(c)
            inner_env[id(v)] = nv
        for v, x in zip(inner.in_vars, ins):
            inner_env[id(v)] = x
        for ie in inner.eqns:
            outs = [Var(o.aval) for o in ie.outputs]
            for o, n in zip(ie.outputs, outs):
                inner_env[id(o)] = n
            eqns.append(Eqn(ie.prim, [_subst(inner_env, v) for v in ie.inputs], ie.params,
                            outs, ie.source))
        for o, io in zip(e.outputs, inner.outs):
            env[id(o)] = _subst(inner_env, io)
    return _replace(graph, const_vars, consts, eqns, [_subst(env, v) for v in graph.outs])


def fold_constants(graph: Graph) -> Graph:
    """Evaluate at compile time the equations whose inputs are all constants."""
    from funcnet.core.trace import state

    known: dict[int, Any] = {id(v): c for v, c in zip(graph.const_vars, graph.consts)}
    const_vars, consts = list(graph.const_vars), list(graph.consts)
    eqns = []
    for e in graph.eqns:
        if e.inputs and all(type(v) is Literal or id(v) in known for v in e.inputs) and \
                e.prim.name not in _NO_FOLD and not e.prim.effectful:
            vals = [v.val if type(v) is Literal else known[id(v)] for v in e.inputs]
            out = state.kernels[e.prim](*vals, **e.params)
            outs = out if e.prim.multiple_results else [out]
            for v, x in zip(e.outputs, outs):
                if getattr(x, "dtype", None) != v.aval.dtype:
                    # Python scalars are weakly typed: give the result the graph's dtype
                    x = x.astype(v.aval.dtype) if hasattr(x, "astype") else np.asarray(
                        x, dtype=v.aval.dtype)
                known[id(v)] = x
                const_vars.append(v)
                consts.append(x)
            continue
        eqns.append(e)
    return _replace(graph, const_vars, consts, eqns, graph.outs)


# creation primitives stay in the graph: folding them would only store big constants
_NO_FOLD = frozenset({"full", "zeros", "iota"})


def _key(e: Eqn):
    if e.prim.effectful:
        return None
    ins = tuple(("L", type(v.val), v.val) if type(v) is Literal else id(v) for v in e.inputs)
    try:
        params = tuple(sorted(e.params.items()))
        hash(params)
    except TypeError:
        return None
    return (e.prim.name, ins, params)


def cse(graph: Graph) -> Graph:
    """Reuse the outputs of an identical earlier equation."""
    env: dict[int, Any] = {}
    seen: dict[Any, Eqn] = {}
    eqns = []
    for e in graph.eqns:
        ins = [_subst(env, v) for v in e.inputs]
        e = Eqn(e.prim, ins, e.params, e.outputs, e.source)
        k = _key(e)
        if k is not None and k in seen:
            for o, prev in zip(e.outputs, seen[k].outputs):
                env[id(o)] = prev
            continue
        if k is not None:
            seen[k] = e
        eqns.append(e)
    return _replace(graph, graph.const_vars, graph.consts, eqns,
                    [_subst(env, v) for v in graph.outs])
