"""Graph → Python source: one generated function per graph (no interpreter loop).

Used by ``Backend.compile``.  Every equation becomes one line calling its
kernel; intermediates are deleted right after their last use, and an
elementwise kernel that accepts ``out=`` writes into the buffer of an input
that dies at that equation (when nothing else aliases it), so a chain of
elementwise operations reuses one buffer.

>>> import funcnet as fn, funcnet.numpy as fnp
>>> f = fn.jit(lambda x: fnp.exp(x) * 2.0 + 1.0)
>>> print(f.compiled_source(fnp.ones(3)).splitlines()[0])
def _compiled(a0):
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import numpy as np


def _arr(x):
    return x if type(x) is np.ndarray else np.asarray(x)


def generate(graph, kernel_for: Callable, out_capable: frozenset, donated: frozenset = frozenset(),
             wrap_outputs: Callable | None = _arr, name: str = "_compiled"):
    """Compile ``graph`` into a Python function ``f(*inputs) -> list of outputs``.

    ``kernel_for(prim)`` returns the kernel; primitive names in ``out_capable``
    accept an ``out=`` keyword (NumPy ufuncs); ``donated`` holds indices of
    inputs whose buffers may be overwritten.  Returns ``(function, source)``.
    """
    env: dict[str, Any] = {"_arr": wrap_outputs or (lambda x: x)}
    names: dict[int, str] = {}
    counter = [0]

    def new_name(prefix="v"):
        counter[0] += 1
        return f"{prefix}{counter[0]}"

    for i, (v, c) in enumerate(zip(graph.const_vars, graph.consts)):
        names[id(v)] = f"c{i}"
        env[f"c{i}"] = c
    args = []
    for i, v in enumerate(graph.in_vars):
        names[id(v)] = f"a{i}"
        args.append(f"a{i}")

    def ref(v):
        if type(v).__name__ == "Literal":
            val = v.val
            if isinstance(val, float) and not math.isfinite(val) or isinstance(val, complex):
                key = new_name("L")
                env[key] = val
                return key
            return repr(val)
        return names[id(v)]

    # last use of each variable (graph outputs live to the end)
    last: dict[int, int] = {}
    for i, e in enumerate(graph.eqns):
        for v in e.inputs:
            last[id(v)] = i
    keep = {id(v) for v in graph.outs} | {id(v) for v in graph.const_vars}
    # alias tracking: which fresh buffers each variable may share memory with
    owned: set[int] = {id(graph.in_vars[i]) for i in donated if i < len(graph.in_vars)}
    alias: dict[int, frozenset] = {id(v): frozenset([id(v)]) for v in graph.in_vars}
    live_aliases: dict[int, int] = {id(v): 1 for v in graph.in_vars}

    lines = [f"def {name}({', '.join(args)}):"]
    for i, e in enumerate(graph.eqns):
        kname = new_name("k")
        kernel = kernel_for(e.prim)
        params = dict(e.params)
        env[kname] = functools.partial(kernel, **params) if params else kernel
        ins = ", ".join(ref(v) for v in e.inputs)
        outs = [new_name() for _ in e.outputs]
        for v, n in zip(e.outputs, outs):
            names[id(v)] = n
        dying = list({id(v): v for v in e.inputs if type(v).__name__ != "Literal"
                      and last.get(id(v)) == i and id(v) not in keep}.values())
        out_kw = ""
        if e.prim.name in out_capable and len(e.outputs) == 1 and e.outputs[0].aval.shape:
            target = e.outputs[0].aval
            for v in dying:
                if (id(v) in owned and alias.get(id(v)) == frozenset([id(v)])
                        and live_aliases.get(id(v), 0) == 1 and v.aval.shape == target.shape
                        and v.aval.dtype == target.dtype):
                    out_kw = f", out={names[id(v)]}"
                    owned.discard(id(v))
                    break
        if e.prim.multiple_results and not outs:
            lines.append(f"    {kname}({ins})")  # an effect (e.g. debug printing)
        elif e.prim.multiple_results:
            lines.append(f"    {', '.join(outs)}{',' if len(outs) == 1 else ''} = "
                         f"{kname}({ins})")
        else:
            lines.append(f"    {outs[0]} = {kname}({ins}{out_kw})")
        # bookkeeping for aliasing
        in_alias = frozenset().union(*[alias.get(id(v), frozenset()) for v in e.inputs
                                       if type(v).__name__ != "Literal"])
        for v in e.outputs:
            if e.prim.name in out_capable:
                alias[id(v)] = frozenset([id(v)])
                owned.add(id(v))
            else:
                alias[id(v)] = in_alias | {id(v)}
            for r in alias[id(v)]:
                live_aliases[r] = live_aliases.get(r, 0) + 1
        dead = list(dying)
        for v in e.outputs:
            if id(v) not in last and id(v) not in keep:
                dead.append(v)
        for v in dead:
            for r in alias.get(id(v), ()):
                live_aliases[r] = live_aliases.get(r, 1) - 1
        if dead:
            lines.append(f"    del {', '.join(names[id(v)] for v in dead)}")
    outs = ", ".join(f"_arr({ref(v)})" for v in graph.outs)
    lines.append(f"    return [{outs}]")
    source = "\n".join(lines)
    exec(compile(source, f"<funcnet jit {name}>", "exec"), env)  # noqa: S102 - our own code
    return env[name], source
