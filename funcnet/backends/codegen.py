"""Graph → Python source: one generated function per graph (no interpreter loop).

Used by ``Backend.compile``.  Every equation becomes one line calling its
kernel; intermediates are deleted right after their last use, and an
elementwise kernel that accepts ``out=`` writes into the buffer of an input
that dies at that equation (when nothing else aliases it), so a chain of
elementwise operations reuses one buffer.

For a primitive that ``packs_operands`` (a collective such as ``allreduce``,
which reduces one flat buffer per dtype), the operands that only it uses and
that ``out=``-capable kernels produce are written by those kernels straight
into consecutive slices of one buffer per dtype, allocated once; the kernel
is told so (``packed=True``) and works on that buffer in place instead of
copying the operands into a new one.

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


def _packing_plan(graph, out_capable: frozenset, keep: set) -> tuple[dict, dict, dict, dict]:
    """Where ``packs_operands`` equations get their operands laid out in one buffer per dtype.

    Returns ``(slot, allocate, copies, packed)``: ``slot[id(var)] = (buffer,
    offset)`` for each operand that its producer writes straight into a
    buffer (made by an ``out=``-capable single-output equation, used once, by
    this equation); ``allocate[eqn index]`` the buffers ``(name, size, dtype)``
    to allocate before that equation; ``copies[eqn index]`` the other operands
    ``(position, buffer, offset)`` copied into their slices just before it;
    ``packed[eqn index]`` the buffers that equation consumes (it gets
    ``packed=True``).  A dtype group none of whose operands qualifies is left
    to the kernel.
    """
    producer: dict[int, int] = {}
    uses: dict[int, int] = {}
    for i, e in enumerate(graph.eqns):
        for v in e.inputs:
            uses[id(v)] = uses.get(id(v), 0) + 1
        if e.prim.name in out_capable and len(e.outputs) == 1:
            producer[id(e.outputs[0])] = i
    slot: dict[int, tuple[str, int]] = {}
    allocate: dict[int, list] = {}
    copies: dict[int, list] = {}
    packed: dict[int, list] = {}
    for i, e in enumerate(graph.eqns):
        if not getattr(e.prim, "packs_operands", False):
            continue
        groups: dict[np.dtype, list] = {}
        for position, v in enumerate(e.inputs):
            groups.setdefault(np.dtype(v.aval.dtype), []).append(position)
        for dtype, positions in groups.items():
            direct = {p for p in positions if type(e.inputs[p]).__name__ != "Literal"
                      and id(e.inputs[p]) in producer and uses[id(e.inputs[p])] == 1
                      and id(e.inputs[p]) not in keep}
            if not direct:
                continue
            name = f"pack{i}_{len(packed.get(i, ()))}"
            offset = 0
            for p in positions:
                if p in direct:
                    slot[id(e.inputs[p])] = (name, offset)
                else:
                    copies.setdefault(i, []).append((p, name, offset))
                offset += math.prod(e.inputs[p].aval.shape)
            first = min(producer[id(e.inputs[p])] for p in direct)
            allocate.setdefault(first, []).append((name, offset, dtype.name))
            packed.setdefault(i, []).append(name)
    return slot, allocate, copies, packed


def generate(graph, kernel_for: Callable, out_capable: frozenset, donated: frozenset = frozenset(),
             wrap_outputs: Callable | None = _arr, name: str = "_compiled"):
    """Compile ``graph`` into a Python function ``f(*inputs) -> list of outputs``.

    ``kernel_for(prim)`` returns the kernel; primitive names in ``out_capable``
    accept an ``out=`` keyword (NumPy ufuncs); ``donated`` holds indices of
    inputs whose buffers may be overwritten.  Returns ``(function, source)``.
    """
    env: dict[str, Any] = {"_arr": wrap_outputs or (lambda x: x), "_empty": np.empty,
                           "_copyto": np.copyto}
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

    slot, allocate, copies, packed = _packing_plan(graph, out_capable, keep)

    lines = [f"def {name}({', '.join(args)}):"]
    for i, e in enumerate(graph.eqns):
        for buf, size, dtype in allocate.get(i, ()):
            lines.append(f"    {buf} = _empty({size}, {dtype!r})")
        kname = new_name("k")
        kernel = kernel_for(e.prim)
        params = dict(e.params)
        in_refs = [ref(v) for v in e.inputs]
        views = []
        if i in packed:
            params["packed"] = True
            for position, buf, offset in copies.get(i, ()):
                shape = tuple(e.inputs[position].aval.shape)
                view = new_name("p")
                lines.append(f"    {view} = {buf}[{offset}:{offset + math.prod(shape)}]"
                             f".reshape({shape!r}); _copyto({view}, {in_refs[position]})")
                in_refs[position] = view
                views.append(view)
        env[kname] = functools.partial(kernel, **params) if params else kernel
        ins = ", ".join(in_refs)
        outs = [new_name() for _ in e.outputs]
        for v, n in zip(e.outputs, outs):
            names[id(v)] = n
        dying = list({id(v): v for v in e.inputs if type(v).__name__ != "Literal"
                      and last.get(id(v)) == i and id(v) not in keep}.values())
        out_kw = ""
        if e.outputs and id(e.outputs[0]) in slot:  # into its slice of a packed buffer
            buf, offset = slot[id(e.outputs[0])]
            target = e.outputs[0].aval
            end = offset + math.prod(target.shape)
            out_kw = f", out={buf}[{offset}:{end}].reshape({tuple(target.shape)!r})"
        elif e.prim.name in out_capable and len(e.outputs) == 1 and e.outputs[0].aval.shape:
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
            if e.prim.name in out_capable and id(v) not in slot:
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
        dead_names = [names[id(v)] for v in dead] + packed.get(i, []) + views
        if dead_names:
            lines.append(f"    del {', '.join(dead_names)}")
    outs = ", ".join(f"_arr({ref(v)})" for v in graph.outs)
    lines.append(f"    return [{outs}]")
    source = "\n".join(lines)
    exec(compile(source, f"<funcnet jit {name}>", "exec"), env)  # noqa: S102 - our own code
    return env[name], source
