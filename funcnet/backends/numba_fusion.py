"""Fusion for the Numba backend: elementwise chains (and a trailing reduction)
become one generated ``@njit`` kernel each.

Three steps, used by ``NumbaBackend.compile``:

1. ``partition(graph)`` groups equations.  A group holds elementwise equations
   (the primitives of ``funcnet/ops/elementwise.py``, ``select`` and
   ``convert_element_type`` included) that produce the same shape, connected
   through their operands, plus ``broadcast_in_dim`` equations feeding them
   (absorbed as broadcasting loads); operands from outside broadcast by index
   arithmetic.  A group may end in a ``reduce_sum``/``reduce_max``/
   ``reduce_min`` of its only result.  Groups never create a cycle: a group
   stops growing once an equation outside it has consumed one of its values.
2. ``kernel_source(group)`` writes the kernel: dimensions that every operand
   treats alike are merged, so a chain over equal shapes is one flat loop;
   ``prange`` over the outermost dimension when the kernel is big enough
   (``PARALLEL_MIN_SIZE`` elements), a serial loop below (the backend times both
   versions of a big kernel on its first calls and keeps the faster: on a busy
   machine a parallel loop waits for descheduled threads).  Every value is cast
   to the dtype NumPy would compute in, so integer results are bit-identical
   to the NumPy backend's; ``exp``, ``tanh`` and ``logistic`` use the
   vectorisable versions of ``numba_math.py``.
3. ``KernelCache`` compiles each distinct source once per process (in memory,
   keyed by the source text: the fused chain's signature) and through Numba's
   on-disk cache across processes: sources are written to
   ``$FUNCNET_CACHE_DIR/numba`` (default ``~/.cache/funcnet/numba``) and
   imported from there, which is what ``cache=True`` needs.

>>> import numpy as np, funcnet as fn, funcnet.numpy as fnp
>>> f = fn.jit(lambda x: fnp.tanh(x * 2.0) + 1.0)
>>> with fn.use_backend("numba"):
...     print("@njit" in f.compiled_source(np.ones(3, np.float32)))
True
"""

from __future__ import annotations

import os

import numpy as np

from funcnet.core.aval import result_dtype
from funcnet.core.graph import Eqn, Graph, Literal, Var

#: Kernels over at least this many elements run in parallel (``prange``).
PARALLEL_MIN_SIZE = int(os.environ.get("FUNCNET_NUMBA_PARALLEL_MIN", 1 << 17))
#: A reduction whose outer loop is reduced is split into this many chunks
#: (a constant, so results do not depend on the number of threads).
REDUCTION_CHUNKS = 16

# ---------------------------------------------------------------------------
# Which equations fuse

_ARITH = {"add", "add_any", "sub", "mul", "div", "max", "min", "pow", "atan2", "rem",
          "floor_divide"}
_UNARY = {"neg", "sign", "abs", "floor", "ceil", "round", "trunc", "exp", "expm1", "log",
          "log1p", "sqrt", "cbrt", "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh",
          "tanh", "asinh", "acosh", "atanh", "logistic", "erf", "is_finite", "not",
          "stop_gradient"}
_COMPARE = {"eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}
_LOGIC = {"and": "&", "or": "|", "xor": "^"}
_SHIFTS = {"shift_left", "shift_right_logical"}
ELEMENTWISE = _ARITH | _UNARY | set(_COMPARE) | set(_LOGIC) | _SHIFTS | {
    "select", "convert_element_type"}
REDUCTIONS = {"reduce_sum": "sum", "reduce_max": "max", "reduce_min": "min"}
#: primitives that return views (their results are usually not C-contiguous)
_VIEW_PRIMS = {"transpose", "broadcast_in_dim", "slice", "rev", "dynamic_slice"}

_MATH = {"expm1": "math.expm1", "log": "math.log", "log1p": "math.log1p",
         "sqrt": "math.sqrt", "sin": "math.sin", "cos": "math.cos", "tan": "math.tan",
         "asin": "math.asin", "acos": "math.acos", "atan": "math.atan", "sinh": "math.sinh",
         "cosh": "math.cosh", "asinh": "math.asinh", "acosh": "math.acosh",
         "atanh": "math.atanh", "erf": "math.erf", "cbrt": "np.cbrt", "floor": "np.floor",
         "ceil": "np.ceil", "trunc": "np.trunc", "round": "np.rint"}
_FAST = {"exp": "exp", "tanh": "tanh", "logistic": "logistic"}  # numba_math.<name>_f32/_f64


def _dtype_ok(dt: np.dtype) -> bool:
    return dt.kind in "biu" or (dt.kind == "f" and dt.itemsize in (4, 8))


def _is_var(v) -> bool:
    return type(v) is Var


def fusible(e: Eqn) -> bool:
    """Whether equation ``e`` can be part of a fused elementwise kernel."""
    name = e.prim.name
    if name == "broadcast_in_dim":
        bd = e.params["broadcast_dimensions"]
        return (_dtype_ok(e.inputs[0].aval.dtype) and list(bd) == sorted(bd)
                and len(set(bd)) == len(bd))
    if name not in ELEMENTWISE or len(e.outputs) != 1:
        return False
    out = e.outputs[0].aval.dtype
    if not _dtype_ok(out) or not all(_dtype_ok(v.aval.dtype) for v in e.inputs):
        return False
    ins = [v.aval.dtype for v in e.inputs]
    if name == "convert_element_type":
        return not (ins[0].kind == "f" and out.kind in "iu")  # NumPy leaves NaN/overflow open
    if name in ("pow", "atan2") or name in _MATH or name in _FAST:
        return out.kind == "f" or name in ("floor", "ceil", "trunc", "round")
    if name in ("rem", "floor_divide"):
        return out.kind == "f" or (out.kind in "iu" and out.itemsize <= 4)
    if name in ("sub", "neg", "sign"):
        return out.kind != "b"
    if name in _SHIFTS:
        return out.kind in "iu"
    return True


# ---------------------------------------------------------------------------
# Partition


class Group:
    """Equations fused into one kernel over the iteration shape ``shape``."""

    def __init__(self, shape: tuple):
        self.shape = shape
        self.eqns: list[Eqn] = []
        self.sealed = False
        self.reduce: Eqn | None = None
        self.outputs: list[Var] = []
        self.last = -1  # index (in the graph) where the kernel call is emitted

    @property
    def compute_count(self) -> int:
        return sum(e.prim.name not in ("broadcast_in_dim", "stop_gradient") for e in self.eqns)

    def worth_fusing(self) -> bool:
        size = int(np.prod(self.shape, dtype=np.int64))
        if size == 0 or self.compute_count == 0:
            return False
        if self.reduce is not None or self.compute_count >= 2:
            return True
        return size >= PARALLEL_MIN_SIZE


def partition(graph: Graph, fuse_all: bool = False) -> list[Group]:
    """Group the fusible equations of ``graph``.  Groups not worth a kernel are dropped
    unless ``fuse_all`` (a scan body compiled into one loop needs every one)."""
    owner: dict[int, Group] = {}  # id(var) -> group of the equation that produced it
    groups: list[Group] = []
    eqns = graph.eqns
    consumers: dict[int, list[int]] = {}
    for i, e in enumerate(eqns):
        for v in e.inputs:
            if _is_var(v):
                consumers.setdefault(id(v), []).append(i)
    graph_outs = {id(v) for v in graph.outs}
    pos = {id(e): i for i, e in enumerate(eqns)}

    def alive(g):
        while getattr(g, "merged_into", None) is not None:
            g = g.merged_into
        return g

    for i, e in enumerate(eqns):
        producers = {}
        for v in e.inputs:
            if _is_var(v) and id(v) in owner:
                g = alive(owner[id(v)])
                producers[id(g)] = g
        if fusible(e):
            shape = tuple(e.outputs[0].aval.shape)
            if e.prim.name == "broadcast_in_dim":
                # absorbed only if every consumer could take it as a broadcasting load
                uses = consumers.get(id(e.outputs[0]), [])
                if id(e.outputs[0]) in graph_outs or not uses or not all(
                        fusible(eqns[j]) and eqns[j].prim.name != "broadcast_in_dim"
                        and tuple(eqns[j].outputs[0].aval.shape) == shape for j in uses):
                    for g in producers.values():
                        g.sealed = True
                    continue
            joinable = [g for g in producers.values()
                        if g.shape == shape and not g.sealed and e.prim.name != "broadcast_in_dim"
                        and not getattr(e.prim, "starts_group", False)]
            for g in producers.values():
                if g not in joinable:
                    g.sealed = True
            if joinable:
                target = joinable[0]
                for g in joinable[1:]:
                    target.eqns.extend(g.eqns)
                    g.eqns = []
                    g.merged_into = target
                target.eqns.sort(key=lambda q: pos[id(q)])
            else:
                target = Group(shape)
                groups.append(target)
            target.eqns.append(e)
            target.last = i
            owner[id(e.outputs[0])] = target
        else:
            for g in producers.values():
                g.sealed = True
    groups = [g for g in groups if g.eqns and getattr(g, "merged_into", None) is None]
    for g in groups:
        g.last = max(pos[id(q)] for q in g.eqns)
        members = {id(q) for q in g.eqns}
        outs = []
        for q in g.eqns:
            if q.prim.name == "broadcast_in_dim":
                continue
            v = q.outputs[0]
            if id(v) in graph_outs or any(id(eqns[j]) not in members
                                          for j in consumers.get(id(v), [])):
                outs.append(v)
        g.outputs = outs
    # a trailing reduction of a group's only result joins the group
    by_out = {id(g.outputs[0]): g for g in groups if len(g.outputs) == 1}
    for i, e in enumerate(eqns):
        if e.prim.name not in REDUCTIONS or not _is_var(e.inputs[0]):
            continue
        g = by_out.get(id(e.inputs[0]))
        v = e.inputs[0]
        if (g is None or g.reduce is not None or id(v) in graph_outs
                or len(consumers.get(id(v), [])) != 1 or not e.params["axes"]
                or not _dtype_ok(v.aval.dtype) or v.aval.dtype.kind == "b"
                or (g.compute_count == 0 and not fuse_all)):
            continue
        g.reduce = e
        g.outputs = [e.outputs[0]]
        g.last = i
    if fuse_all:
        return [g for g in groups if (g.compute_count or g.reduce is not None)
                and int(np.prod(g.shape, dtype=np.int64))]
    return [g for g in groups if g.worth_fusing()]


# ---------------------------------------------------------------------------
# Kernel source


def _np_type(dt: np.dtype) -> str:
    return "np.bool_" if dt.kind == "b" else f"np.{dt.name}"


def _cast(expr: str, src: np.dtype, dst: np.dtype) -> str:
    if src == dst:
        return expr
    if dst.kind == "b":
        return f"({expr} != 0)"
    return f"{_np_type(dst)}({expr})"


def _unsigned(dt: np.dtype) -> np.dtype:
    return np.dtype(f"u{dt.itemsize}")


class _Emitter:
    """Builds the text of one kernel."""

    def __init__(self, group: Group):
        self.g = group
        self.consts: dict[tuple, str] = {}
        self.const_lines: list[str] = []
        self.helpers: set[str] = set()
        self.body: list[str] = []      # statements inside the innermost loop
        self.counter = 0

    def const(self, value, dtype: np.dtype) -> str:
        key = (repr(value), dtype.str)
        if key not in self.consts:
            name = f"K{len(self.consts)}"
            self.consts[key] = name
            if isinstance(value, float) and not np.isfinite(value):
                text = "np.nan" if np.isnan(value) else ("np.inf" if value > 0 else "-np.inf")
            else:
                text = repr(value)
            if dtype.kind == "b":
                self.const_lines.append(f"{name} = {bool(value)!r}")
            else:
                self.const_lines.append(f"{name} = {_np_type(dtype)}({text})")
        return self.consts[key]

    def tmp(self) -> str:
        self.counter += 1
        return f"t{self.counter}"

    def emit(self, expr: str) -> str:
        name = self.tmp()
        self.body.append(f"{name} = {expr}")
        return name


def _fast(name: str, dt: np.dtype) -> str:
    return f"{_FAST[name]}_f{dt.itemsize * 8}"


def _emit_eqn(em: _Emitter, e: Eqn, vals: list[str]) -> str:
    """The expression for equation ``e`` given its operands' value names."""
    name = e.prim.name
    out = e.outputs[0].aval.dtype
    in_dts = [v.aval.dtype for v in e.inputs]

    def as_(i, dt):
        v = e.inputs[i]
        if type(v) is Literal:
            return em.const(v.val, dt)
        return _cast(vals[i], in_dts[i], dt)

    def wrap(expr):
        # Numba computes small integers in 64 bits: cast back (wrapping like NumPy).  Float
        # operations on operands of one float type already give that type.
        return expr if out.kind in "bf" else f"{_np_type(out)}({expr})"

    def cast_out(expr):  # library functions: pin the result type
        return expr if out.kind == "b" else f"{_np_type(out)}({expr})"

    if name == "convert_element_type":
        return _cast(as_(0, in_dts[0]), in_dts[0], out)
    if name == "stop_gradient":
        return as_(0, out)
    if name == "select":
        return f"({as_(1, out)} if {as_(0, in_dts[0])} else {as_(2, out)})"
    if name in _COMPARE:
        comp = result_dtype(*[v.aval for v in e.inputs])[0]
        return f"({as_(0, comp)} {_COMPARE[name]} {as_(1, comp)})"
    if name == "is_finite":
        return f"np.isfinite({as_(0, in_dts[0])})" if in_dts[0].kind == "f" else "True"
    args = [as_(i, out) for i in range(len(e.inputs))]
    if name in _LOGIC:
        return wrap(f"({args[0]} {_LOGIC[name]} {args[1]})")
    if name == "not":
        return f"(not {args[0]})" if out.kind == "b" else wrap(f"(~{args[0]})")
    if name in ("add", "add_any"):
        return f"({args[0]} | {args[1]})" if out.kind == "b" else wrap(f"({args[0]} + {args[1]})")
    if name == "mul":
        return f"({args[0]} & {args[1]})" if out.kind == "b" else wrap(f"({args[0]} * {args[1]})")
    if name == "sub":
        return wrap(f"({args[0]} - {args[1]})")
    if name == "div":
        return wrap(f"({args[0]} / {args[1]})")
    if name in ("max", "min"):
        a, b = em.emit(args[0]), em.emit(args[1])
        op = ">=" if name == "max" else "<="
        if out.kind == "f":  # NaN from either side propagates, as in NumPy
            return f"({a} if ({a} {op} {b} or {a} != {a}) else {b})"
        return f"({a} if {a} {op} {b} else {b})"
    if name == "pow":
        y = e.inputs[1]
        if type(y) is Literal and float(y.val) in (0.0, 1.0, 2.0, 3.0, 4.0, -1.0, -2.0) \
                and not isinstance(y.val, complex):
            k = int(y.val)
            x = em.emit(args[0])
            one = em.const(1.0, out)
            return {0: one, 1: x, 2: f"({x} * {x})", 3: f"({x} * {x} * {x})",
                    4: f"(({x} * {x}) * ({x} * {x}))", -1: f"({one} / {x})",
                    -2: f"({one} / ({x} * {x}))"}[k]
        return cast_out(f"({args[0]} ** {args[1]})")
    if name == "atan2":
        return cast_out(f"math.atan2({args[0]}, {args[1]})")
    if name == "rem":
        return wrap(f"({args[0]} % {args[1]})")
    if name == "floor_divide":
        return wrap(f"({args[0]} // {args[1]})")
    if name == "neg":
        return wrap(f"(-{args[0]})")
    if name == "sign":
        x = em.emit(args[0])
        if out.kind == "f":
            one, mone = em.const(1.0, out), em.const(-1.0, out)
            return f"({one} if {x} > 0 else ({mone} if {x} < 0 else {x}))"
        if out.kind == "u":
            return wrap(f"(1 if {x} > 0 else 0)")
        return wrap(f"(1 if {x} > 0 else (-1 if {x} < 0 else 0))")
    if name == "abs":
        if out.kind == "f":
            return f"abs({args[0]})"
        if out.kind in "ub":
            return args[0]
        x = em.emit(args[0])
        return wrap(f"(-{x} if {x} < 0 else {x})")
    if name in ("floor", "ceil", "trunc", "round") and out.kind != "f":
        return args[0]
    if name in _FAST:
        fn_ = _fast(name, out)
        em.helpers.add(fn_)
        return f"{fn_}({args[0]})"
    if name in _MATH:
        return cast_out(f"{_MATH[name]}({args[0]})")
    if name in _SHIFTS:
        bits = out.itemsize * 8
        a, b = args
        b = em.emit(b)
        in_range = f"({b} >= 0 and {b} < {bits})" if out.kind == "i" else f"({b} < {bits})"
        zero = em.const(0, out)
        if name == "shift_left":
            return f"({wrap(f'{a} << {b}')} if {in_range} else {zero})"
        u = _unsigned(out)
        shifted = f"{_np_type(u)}({a}) >> {_np_type(u)}({b})"
        return f"({wrap(shifted)} if {in_range} else {zero})"
    raise NotImplementedError(name)  # pragma: no cover - fusible() rules it out


_COSTLY = (set(_MATH) | set(_FAST) | {"pow", "atan2"}) - {"floor", "ceil", "trunc", "round",
                                                          "sqrt"}


def group_cost(group: Group) -> int:
    """Rough arithmetic per element: 8 per transcendental function, 2 per division or
    reduction step, 1 per other operation."""
    cost = 2 if group.reduce is not None else 0
    for e in group.eqns:
        name = e.prim.name
        if name in ("broadcast_in_dim", "stop_gradient"):
            continue
        if name in _COSTLY:
            cost += 8
        elif name in ("div", "rem", "floor_divide", "sqrt"):
            cost += 2
        else:
            cost += 1
    return cost


def _padded(shape: tuple, ndim: int) -> tuple:
    return (1,) * (ndim - len(shape)) + tuple(shape)


class KernelSpec:
    """A kernel's source and how to call it."""

    def __init__(self, source: str, inputs: list, outputs: list, parallel: bool,
                 label: str, static: tuple = ()):
        self.source = source
        self.static = static      # leading arguments: loop sizes, then the output shape
        self.inputs = inputs      # graph variables passed as arguments, in order
        self.outputs = outputs    # graph variables it returns
        self.parallel = parallel
        self.label = label


def kernel_source(group: Group, parallel: bool | None = None) -> KernelSpec:
    """The generated source of ``group``'s kernel (a function called ``kernel``): with
    ``prange`` when ``parallel`` (default: when it has ``PARALLEL_MIN_SIZE`` elements)."""
    S = group.shape
    nd = len(S)
    em = _Emitter(group)
    members = {id(e.outputs[0]) for e in group.eqns}
    # -- operand views: (argument index, broadcast pattern over S) ---------------
    args: list[Var] = []
    arg_index: dict[int, int] = {}
    views: list[tuple[int, tuple]] = []   # (arg, padded shape over S)
    view_of: dict[tuple, int] = {}

    def view(v, shape) -> int:
        if id(v) not in arg_index:
            arg_index[id(v)] = len(args)
            args.append(v)
        key = (arg_index[id(v)], tuple(shape))
        if key not in view_of:
            view_of[key] = len(views)
            views.append(key)
        return view_of[key]

    uses: list[tuple[Eqn, list]] = []  # per member: (eqn, [("view", k) | ("val", var) | lit])
    for e in group.eqns:
        if e.prim.name == "broadcast_in_dim":
            x = e.inputs[0]
            expanded = [1] * nd
            for i, d in enumerate(e.params["broadcast_dimensions"]):
                expanded[d] = x.aval.shape[i]
            uses.append((e, [("view", view(x, expanded))]))
            continue
        ops = []
        for v in e.inputs:
            if type(v) is Literal:
                ops.append(("lit", v))
            elif id(v) in members:
                ops.append(("val", v))
            else:
                ops.append(("view", view(v, _padded(v.aval.shape, nd))))
        uses.append((e, ops))
    # -- loop dimensions: drop size-1 dims, merge neighbours treated alike -------
    red_axes = set(group.reduce.params["axes"]) if group.reduce is not None else set()
    dims = [d for d in range(nd) if S[d] != 1]

    def sig(d):
        return (d in red_axes,) + tuple(shape[d] == S[d] for _, shape in views)

    loops: list[list[int]] = []
    for d in dims:
        if loops and sig(loops[-1][-1]) == sig(d):
            loops[-1].append(d)
        else:
            loops.append([d])
    L = [int(np.prod([S[d] for d in grp], dtype=np.int64)) for grp in loops]
    reduced = [grp[0] in red_axes for grp in loops]
    if not L:
        L, reduced, loops = [1], [bool(red_axes)], [[]]
    n = len(L)
    idx = [f"i{j}" for j in range(n)]
    # Loop sizes are arguments (n0, n1, ...; the output shape is ``shp``), so one
    # compiled kernel serves every shape with this broadcasting pattern.
    N = [f"n{j}" for j in range(n)]

    def tup(items) -> str:
        items = list(items)
        return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"

    # -- prologue: arguments as views with the loop shape (1 where broadcast) ----
    pro = []
    view_expr = []
    for k, (a, shape) in enumerate(views):
        full = [all(shape[d] == S[d] for d in grp) and bool(grp) for grp in loops]
        if not any(full):
            pro.append(f"s{k} = load0(a{a})")
            view_expr.append(f"s{k}")
        else:
            vshape = tup(N[j] if full[j] else "1" for j in range(n))
            pro.append(f"v{k} = as_c(a{a}).reshape({vshape})")
            sub = ", ".join(idx[j] if full[j] else "0" for j in range(n))
            view_expr.append(f"v{k}[{sub}]")
    # -- body: one statement per member ---------------------------------------------
    value: dict[int, str] = {}
    loaded: dict[int, str] = {}

    def load(k):
        if k not in loaded:
            loaded[k] = em.emit(view_expr[k]) if view_expr[k].startswith("v") else view_expr[k]
        return loaded[k]

    for e, ops in uses:
        if e.prim.name == "broadcast_in_dim":
            value[id(e.outputs[0])] = load(ops[0][1])
            continue
        vals = []
        for kind, x in ops:
            if kind == "lit":
                vals.append(None)
            elif kind == "val":
                vals.append(value[id(x)])
            else:
                vals.append(load(x))
        value[id(e.outputs[0])] = em.emit(_emit_eqn(em, e, vals))
    size = int(np.prod(S, dtype=np.int64))
    if parallel is None:
        # threads pay off on big kernels with enough arithmetic per element (a cheap
        # memory-bound chain like ``p - lr * g`` gains little from a second core)
        parallel = size >= PARALLEL_MIN_SIZE and size * group_cost(group) >= 8 * PARALLEL_MIN_SIZE
    out_shape = tuple(group.outputs[0].aval.shape)
    params = N + (["shp"] if out_shape else [])
    static = tuple(L) + ((out_shape,) if out_shape else ())
    shp = "shp" if out_shape else "()"
    lines = [f"def kernel({', '.join(params + [f'a{i}' for i in range(len(args))])}):"]
    lines += ["    " + p for p in pro]
    rng = "prange" if parallel else "range"
    if group.reduce is None:
        outs = group.outputs
        for j, o in enumerate(outs):
            lines.append(f"    o{j} = np.empty({tup(N)}, {_np_type(o.aval.dtype)})")
        ind = "    "
        for j in range(n):
            lines.append(f"{ind}for {idx[j]} in {rng if j == 0 else 'range'}({N[j]}):")
            ind += "    "
        lines += [ind + s for s in em.body]
        sub = ", ".join(idx)
        for j, o in enumerate(outs):
            lines.append(f"{ind}o{j}[{sub}] = {value[id(o)]}")
        rets = [f"o{j}.reshape({shp})" for j, o in enumerate(outs)]
        ret = rets[0] if len(rets) == 1 else f"({', '.join(rets)})"
        lines.append(f"    return {ret}")
    else:
        lines += _reduction_lines(group, em, value, N, reduced, idx, parallel, tup, shp)
    header = ["import math", "import numpy as np", "from numba import njit, prange",
              "from funcnet.backends.numba_math import as_c, load0"
              + "".join(f", {h}" for h in sorted(em.helpers))]
    deco = f"@njit(parallel={parallel}, error_model='numpy', cache=True, nogil=True)"
    source = "\n".join(header + [""] + em.const_lines + ["", "", deco] + lines) + "\n"
    names = [e.prim.name for e in group.eqns if e.prim.name != "broadcast_in_dim"]
    if group.reduce is not None:
        names.append(group.reduce.prim.name)
    label = "+".join(names[:6]) + ("+..." if len(names) > 6 else "")
    return KernelSpec(source, args, list(group.outputs), parallel, label, static)


def _reduction_lines(group, em, value, N, reduced, idx, parallel, tup, shp) -> list[str]:
    """The loops of a kernel that ends in a reduction.

    With the outermost loop kept, ``prange`` runs over it and each iteration
    owns its accumulators.  With it reduced, the outer loop is cut into
    ``REDUCTION_CHUNKS`` chunks with partial results, combined at the end in a
    fixed order (the same result whatever the number of threads).  Trailing
    reduced loops accumulate in a local scalar.  float32 sums accumulate in
    float64.
    """
    red = group.reduce
    kind = REDUCTIONS[red.prim.name]
    src = red.inputs[0]
    dt = src.aval.dtype
    out_dt = red.outputs[0].aval.dtype
    if kind == "sum":
        acc_dt = np.dtype(np.float64) if dt.kind == "f" else (
            np.dtype(np.uint64) if dt.kind == "u" else np.dtype(np.int64))
        init = em.const(0, acc_dt)
    else:
        acc_dt = dt
        if dt.kind == "f":
            init = em.const(float("-inf") if kind == "max" else float("inf"), dt)
        else:
            info = np.iinfo(dt)
            init = em.const(int(info.min if kind == "max" else info.max), dt)
    at = _np_type(acc_dt)
    ot = _np_type(out_dt)
    val = value[id(src)]

    def combine(acc, v):
        if kind == "sum":
            return f"{acc} + {_cast(v, dt, acc_dt)}"
        op = ">=" if kind == "max" else "<="
        if dt.kind == "f":
            return f"({acc} if ({acc} {op} {v} or {acc} != {acc}) else {v})"
        return f"({acc} if {acc} {op} {v} else {v})"

    n = len(N)
    kept = [j for j in range(n) if not reduced[j]]
    last_kept = kept[-1] if kept else -1
    kshape = [N[j] for j in kept]
    ksub = ", ".join(idx[j] for j in kept)
    chunked = reduced[0]
    nch = "nch"
    lines = []
    ind = "    "
    if chunked:
        lines.append(f"{ind}nch = min({REDUCTION_CHUNKS}, {N[0]})")
        lines.append(f"{ind}part = np.empty({tup(['nch'] + kshape)}, {at})")
        lines.append(f"{ind}for c in {'prange' if parallel else 'range'}({nch}):")
        ind += "    "
        if kept:
            lines.append(f"{ind}part[c] = {init}")
        target = f"part[c, {ksub}]" if kept else "part[c]"
    else:
        lines.append(f"{ind}acc = np.empty({tup(kshape)}, {at})")
        target = f"acc[{ksub}]"
    needs_init = not chunked and any(reduced[j] for j in range(last_kept))
    loop_ind = []
    for j in range(n):
        if j == last_kept + 1:
            lines.append(f"{ind}r = {init}")
        if chunked and j == 0:
            rng = f"range((c * {N[0]}) // {nch}, ((c + 1) * {N[0]}) // {nch})"
        else:
            rng = f"{'prange' if (j == 0 and parallel) else 'range'}({N[j]})"
        loop_ind.append(ind)
        lines.append(f"{ind}for {idx[j]} in {rng}:")
        ind += "    "
        if j == 0 and needs_init:
            lines.append(f"{ind}acc[{idx[0]}] = {init}")
    lines += [ind + s for s in em.body]
    if not any(reduced):  # only size-1 axes are reduced
        lines.append(f"{ind}{target} = {_cast(val, dt, acc_dt)}")
    elif last_kept == n - 1:
        lines.append(f"{ind}{target} = {combine(target, val)}")
    else:
        lines.append(f"{ind}r = {combine('r', val)}")
        after = loop_ind[last_kept + 1]
        if last_kept == -1 or not (chunked or needs_init):  # each target written once
            lines.append(f"{after}{target} = r")
        else:
            lines.append(f"{after}{target} = {combine(target, 'r')}")
    if not chunked:
        lines.append(f"    return acc.astype({ot}).reshape({shp})")
    elif not kept:
        lines.append("    res = part[0]")
        lines.append(f"    for c in range(1, {nch}):")
        lines.append(f"        res = {combine('res', 'part[c]')}")
        lines.append(f"    out = np.empty(1, {ot})")
        lines.append("    out[0] = res")
        lines.append(f"    return out.reshape({shp})")
    else:
        size = " * ".join(kshape)
        lines.append(f"    pf = part.reshape(({nch}, {size}))")
        lines.append(f"    out = np.empty({size}, {ot})")
        lines.append(f"    for q in range({size}):")
        lines.append("        res = pf[0, q]")
        lines.append(f"        for c in range(1, {nch}):")
        lines.append(f"            res = {combine('res', 'pf[c, q]')}")
        lines.append("        out[q] = res")
        lines.append(f"    return out.reshape({shp})")
    return lines
