"""``lax.scan`` on the Numba backend: the whole loop in one compiled function.

When every equation of the scan's body can be written in Numba (elementwise
chains and reductions as fused serial kernels, ``dot_general`` as ``np.dot``
(BLAS, one thread while the loop runs), ``reshape``, ``transpose``,
``broadcast_in_dim``, ``slice``, ``concatenate``, ``full``, and static basic
indexing through ``gather``/``scatter``/``scatter_add``), the loop over the
steps is generated as one ``@njit`` function: no Python work per step, which is
what makes scans with small per-step work fast.  Transposed loop constants are
copied once before the loop.  Otherwise the body is compiled like any graph
(fused kernels) and called from a Python loop that writes the stacked outputs
in place.  (``numba_passes.py`` first moves work out of scans.)

>>> import funcnet as fn, funcnet.numpy as fnp
>>> from funcnet import lax
>>> with fn.use_backend("numba"):
...     print(lax.scan(lambda c, x: (c + x, c * x), 0.0, fnp.arange(4.0))[0])
6.0
"""

from __future__ import annotations

import logging
import os
import time

import numpy as np

from funcnet.core.graph import Eqn, Graph, Literal, Var

log = logging.getLogger("funcnet.jit")

#: scan loops are compiled to Numba only below this many equations in the body
MAX_BODY_EQNS = 400


class _Identity:
    """An identity placed before a lone reduction; it starts a kernel of its own."""

    name = "stop_gradient"
    multiple_results = False
    starts_group = True


def _isolate_reductions(graph: Graph, groups) -> Graph:
    """A reduction not fused into a group gets an identity in front of it, so that the
    partition gives it a kernel of its own."""
    from funcnet.backends.numba_fusion import REDUCTIONS

    fused = {id(g.reduce) for g in groups if g.reduce is not None}
    eqns = []
    changed = False
    for e in graph.eqns:
        if e.prim.name in REDUCTIONS and id(e) not in fused and type(e.inputs[0]) is Var \
                and e.params["axes"]:
            v = e.inputs[0]
            tmp = Var(v.aval)
            eqns.append(Eqn(_Identity(), [v], {}, [tmp]))
            eqns.append(Eqn(e.prim, [tmp], e.params, e.outputs))
            changed = True
        else:
            eqns.append(e)
    if not changed:
        return graph
    return Graph(graph.const_vars, graph.consts, graph.in_vars, eqns, graph.outs)


def _dot_expr(a: str, b: str, e: Eqn, hoist=None) -> str | None:
    """``np.dot`` for a ``dot_general`` without batch dimensions.  Transposed operands
    are copied to C order first (BLAS's transposed paths are slower at these sizes);
    ``hoist(expr)`` names a loop-invariant copy made once before the loop."""
    (lc, rc), (lb, rb) = e.params["dimension_numbers"]
    x, y = e.inputs
    if lb or rb or len(lc) != 1 or x.aval.ndim > 2 or y.aval.ndim > 2:
        return None
    dts = {x.aval.dtype, y.aval.dtype, e.outputs[0].aval.dtype}
    if len(dts) != 1 or next(iter(dts)).kind != "f":
        return None

    def transposed(name):
        expr = f"np.ascontiguousarray({name}.T)"
        return hoist(name, expr) if hoist is not None else expr

    if x.aval.ndim == 2 and lc[0] == 0:
        a = transposed(a)
    if y.aval.ndim == 2 and rc[0] == 1:
        b = transposed(b)
    expr = f"np.dot({a}, {b})"
    if e.outputs[0].aval.ndim == 0:
        expr = f"as0d({expr})"
    return expr


def _eqn_expr(e: Eqn, ins: list[str], hoist=None) -> str | None:
    """Numba source for a non-fused equation, or None when it has none."""
    name = e.prim.name
    p = e.params
    out = e.outputs[0].aval if e.outputs else None
    if name == "dot_general":
        return _dot_expr(ins[0], ins[1], e, hoist)
    if name == "reshape":
        return f"as_c({ins[0]}).reshape({tuple(p['new_sizes'])!r})"
    if name == "transpose":
        return f"np.ascontiguousarray(np.transpose({ins[0]}, {tuple(p['permutation'])!r}))"
    if name == "broadcast_in_dim":
        x = e.inputs[0].aval
        expanded = [1] * len(p["shape"])
        for i, d in enumerate(p["broadcast_dimensions"]):
            expanded[d] = x.shape[i]
        return (f"np.ascontiguousarray(np.broadcast_to(as_c({ins[0]}).reshape("
                f"{tuple(expanded)!r}), {tuple(p['shape'])!r}))")
    if name == "stop_gradient":
        return ins[0]
    if name in ("full", "zeros"):
        if out.dtype.kind not in "biuf":
            return None
        fill = p.get("fill_value", 0)
        if isinstance(fill, float) and not np.isfinite(fill):
            fill = "np.nan" if np.isnan(fill) else ("np.inf" if fill > 0 else "-np.inf")
        return f"np.full({tuple(p['shape'])!r}, {fill}, np.{out.dtype.name})"
    if name == "slice":
        idx = ", ".join(f"{s}:{t}:{st}" for s, t, st in zip(p["start_indices"],
                                                            p["limit_indices"], p["strides"]))
        return f"np.ascontiguousarray({ins[0]}[{idx}])" if idx else ins[0]
    if name == "concatenate":
        return f"np.concatenate(({', '.join(ins)},), {p['dimension']})"
    if name == "gather" and len(ins) == 1:
        idx = _basic_index(p["spec"])
        if idx is None:
            return None
        return f"as0d({ins[0]}[{idx}])" if out.ndim == 0 else \
            f"np.ascontiguousarray({ins[0]}[{idx}])"
    return None


def _basic_index(spec) -> str | None:
    """Source text of a static index (slices and integers), or None."""
    parts = []
    for entry in spec:
        if entry[0] == "int":
            parts.append(str(int(entry[1])))
        elif entry[0] == "slice":
            parts.append(":".join("" if v is None else str(int(v)) for v in entry[1:4]))
        else:
            return None
    return ", ".join(parts) + ("," if len(parts) == 1 else "")


def _scatter_lines(e: Eqn, ins: list[str], target: str) -> list[str] | None:
    """``scatter``/``scatter_add`` with a static index: a copy, then one assignment."""
    if e.prim.name not in ("scatter", "scatter_add") or len(ins) != 2:
        return None
    idx = _basic_index(e.params["spec"])
    if idx is None:
        return None
    op = "+=" if e.prim.name == "scatter_add" else "="
    return [f"{target} = {ins[0]}.copy()", f"{target}[{idx}] {op} {ins[1]}"]


def _loop_source(body: Graph, num_consts: int, num_carry: int, length: int,
                 reverse: bool) -> tuple[str, list] | None:
    """The source of the scan loop, and the kernels it calls; None if some equation of the
    body cannot be written in Numba."""
    from funcnet.backends.numba_backend import compile_kernel
    from funcnet.backends.numba_fusion import _dtype_ok, kernel_source, partition

    if len(body.eqns) > MAX_BODY_EQNS:
        return None
    for v in body.in_vars + [v for v in body.outs if type(v) is Var]:
        if not _dtype_ok(v.aval.dtype):
            return None
    groups = partition(body, fuse_all=True)
    graph = _isolate_reductions(body, groups)
    if graph is not body:
        groups = partition(graph, fuse_all=True)
    member = {}
    for g in groups:
        for e in g.eqns:
            member[id(e)] = g
        if g.reduce is not None:
            member[id(g.reduce)] = g
    names: dict[int, str] = {}
    n_c = len(graph.const_vars)
    params = [f"g{i}" for i in range(n_c)] + [f"a{i}" for i in range(len(graph.in_vars))]
    for i, v in enumerate(graph.const_vars):
        names[id(v)] = f"g{i}"
    carry_names = [f"k{j}" for j in range(num_carry)]
    for i, v in enumerate(graph.in_vars):
        if i < num_consts:
            names[id(v)] = f"a{i}"
        elif i < num_consts + num_carry:
            names[id(v)] = carry_names[i - num_consts]
        else:
            names[id(v)] = f"x{i}"
    counter = [0]

    def ref(v):
        if type(v) is Literal:
            val = v.val
            if isinstance(val, float) and not np.isfinite(val):
                return "np.nan" if np.isnan(val) else ("np.inf" if val > 0 else "-np.inf")
            return repr(val)
        return names[id(v)]

    kernels = []  # (global name, key)
    body_lines = []
    pre_lines = []
    invariant = {f"a{i}" for i in range(num_consts)} | {f"g{i}" for i in range(n_c)}
    hoisted: dict[str, str] = {}

    def hoist(name, expr):
        if name not in invariant:
            return expr
        if expr not in hoisted:
            hoisted[expr] = f"h{len(hoisted)}"
            pre_lines.append(f"    {hoisted[expr]} = {expr}")
        return hoisted[expr]

    users: dict[int, set] = {}
    for e in graph.eqns:
        for v in e.inputs:
            users.setdefault(id(v), set()).add(id(e))
    for i, e in enumerate(graph.eqns):
        g = member.get(id(e))
        if g is not None:
            if i != g.last:
                if e.prim.name == "broadcast_in_dim":
                    mine = {id(q) for q in g.eqns}
                    v = e.outputs[0]
                    if users.get(id(v), set()) - mine or any(v is o for o in graph.outs):
                        counter[0] += 1
                        names[id(v)] = f"t{counter[0]}"
                        body_lines.append(f"t{counter[0]} = {_eqn_expr(e, [ref(e.inputs[0])])}")
                continue
            spec = kernel_source(g, parallel=False)  # per-step work: serial
            kernel, key = _compile_lazily(compile_kernel, spec.source)
            kname = f"f{len(kernels)}"
            kernels.append((kname, key))
            outs = []
            for v in spec.outputs:
                counter[0] += 1
                names[id(v)] = f"t{counter[0]}"
                outs.append(names[id(v)])
            call_args = [repr(a) for a in spec.static] + [ref(v) for v in spec.inputs]
            call = f"{kname}({', '.join(call_args)})"
            body_lines.append(f"{', '.join(outs)} = {call}")
            continue
        if len(e.outputs) != 1 or not all(_dtype_ok(v.aval.dtype) for v in e.outputs):
            return None
        counter[0] += 1
        target = f"t{counter[0]}"
        ins = [ref(v) for v in e.inputs]
        stmts = _scatter_lines(e, ins, target)
        if stmts is None:
            expr = _eqn_expr(e, ins, hoist)
            if expr is None:
                return None
            stmts = [f"{target} = {expr}"]
        names[id(e.outputs[0])] = target
        body_lines.extend(stmts)
    y_vars = graph.outs[num_carry:]
    lines = [f"def kernel({', '.join(params)}):"]
    for j, v in enumerate(y_vars):
        a = v.aval
        lines.append(f"    y{j} = np.empty({(length,) + tuple(a.shape)!r}, np.{a.dtype.name})")
    for j in range(num_carry):
        lines.append(f"    k{j} = as_c(a{num_consts + j})")
    lines += pre_lines
    lines.append(f"    for it in range({length}):")
    lines.append(f"        i = {length - 1} - it" if reverse else "        i = it")
    for i, v in enumerate(graph.in_vars[num_consts + num_carry:], num_consts + num_carry):
        lines.append(f"        x{i} = a{i}[i:i + 1].reshape(())" if v.aval.ndim == 0
                     else f"        x{i} = a{i}[i]")
    lines += ["        " + s for s in body_lines]
    new_carry = [ref(v) for v in graph.outs[:num_carry]]
    for j, v in enumerate(graph.outs[:num_carry]):
        a = v.aval
        expr = new_carry[j]
        if type(v) is Literal:
            expr = f"np.full({tuple(a.shape)!r}, {expr}, np.{a.dtype.name})"
        lines.append(f"        n{j} = as_c({expr})")
    for j, v in enumerate(y_vars):
        val = ref(v)
        if v.aval.ndim == 0 and type(v) is not Literal:
            val = f"load0({val})"
        lines.append(f"        y{j}[i] = {val}")
    for j in range(num_carry):
        lines.append(f"        k{j} = n{j}")
    rets = carry_names + [f"y{j}" for j in range(len(y_vars))]
    lines.append(f"    return ({', '.join(rets)},)")
    header = ["import numpy as np", "from numba import njit",
              "from funcnet.backends.numba_backend import kernel_by_key",
              "from funcnet.backends.numba_math import as_c, as0d, load0", ""]
    header += [f"{k} = kernel_by_key({key!r})" for k, key in kernels]
    deco = "@njit(error_model='numpy', cache=True, nogil=True)"
    return "\n".join(header + ["", "", deco] + lines) + "\n", kernels


def _compile_lazily(compile_kernel, source):
    kernel, _, _ = compile_kernel(source, None)
    from funcnet.backends.numba_backend import _kernel_cache

    return kernel, _kernel_cache.key(source)


def _arg_types(body, num_consts, num_carry, length, graph_consts):
    import numba
    from numba import types

    tys = []
    for c in graph_consts:
        a = np.asarray(c)
        tys.append(types.Array(numba.from_dtype(a.dtype), a.ndim, "C"))
    for i, a in enumerate(body.in_avals):
        shape = a.shape if i < num_consts + num_carry else (length,) + a.shape
        tys.append(types.Array(numba.from_dtype(a.dtype), len(shape), "C"))
    return tuple(tys)


def _scan_loop(body, num_consts, num_carry, length, reverse):
    """The compiled loop for this scan (cached on the body graph), or None."""
    cache = body.__dict__.setdefault("_numba_loops", {})
    key = (num_consts, num_carry, length, reverse)
    if key in cache:
        return cache[key]
    from funcnet.backends.numba_backend import compile_kernel

    t0 = time.perf_counter()
    loop, why = None, "an equation of the body has no Numba translation"
    try:
        made = _loop_source(body, num_consts, num_carry, length, reverse)
        if made is not None:
            source, _ = made
            tys = _arg_types(body, num_consts, num_carry, length, body.consts)
            loop, secs, how = compile_kernel(source, tys)
            loop.funcnet_source = source
    except Exception as exc:  # a body Numba cannot compile: run it as a Python loop
        why = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        log.debug("numba scan: falling back to a Python loop (%s)", why)
        loop = None
    cache[key] = loop
    if os.environ.get("FUNCNET_LOG_COMPILES"):
        how = "one Numba loop" if loop is not None else f"a Python loop ({why})"
        log.warning("numba backend: scan over %d steps: %s, in %.3f s", length, how,
                    time.perf_counter() - t0)
    return loop


_blas_local = []


def _find_blas_local():
    """``openblas_set_num_threads_local`` of the BLAS that Numba's ``np.dot`` calls
    (SciPy's OpenBLAS), or None."""
    if _blas_local:
        return _blas_local[0]
    fn_ = None
    try:
        import ctypes
        import glob

        import scipy

        libs = os.path.join(os.path.dirname(os.path.dirname(scipy.__file__)), "scipy.libs")
        for path in glob.glob(os.path.join(libs, "libscipy_openblas*.so*")):
            lib = ctypes.CDLL(path)
            fn_ = getattr(lib, "openblas_set_num_threads_local", None)
            if fn_ is not None:
                fn_.restype = ctypes.c_int
                fn_.argtypes = [ctypes.c_int]
                break
    except Exception:  # pragma: no cover - another BLAS: leave its threads alone
        fn_ = None
    _blas_local.append(fn_)
    return fn_


class single_threaded_blas:
    """One BLAS thread (in this thread only) while a scan loop runs: its products are
    small, and BLAS threads spinning next to NumPy's BLAS threads cost more than they
    gain."""

    def __enter__(self):
        self.fn = _find_blas_local()
        self.old = self.fn(1) if self.fn is not None else None
        return self

    def __exit__(self, *exc):
        if self.fn is not None and self.old is not None and self.old >= 0:
            self.fn(self.old)
        return False


def _compiled_body(body):
    from funcnet.backends.base import load

    cache = body.__dict__.setdefault("_numba_step", {})
    fn_ = cache.get("step")
    if fn_ is None:
        fn_ = cache["step"] = load("numba").compile(body)
    return fn_


def scan_kernel(*args, body, num_consts, num_carry, length, reverse, name):
    """Run a scan: one compiled Numba loop when possible, else the body's compiled
    step in a Python loop with the stacked outputs written in place."""
    loop = _scan_loop(body, num_consts, num_carry, length, reverse) if length else None
    if loop is not None:
        args = [a if type(a) is np.ndarray and a.flags.c_contiguous and a.flags.writeable
                else np.array(a, order="C") for a in args]
        consts = [np.array(c, order="C") for c in body.consts]
        with single_threaded_blas():
            return list(loop(*consts, *args))
    consts = list(args[:num_consts])
    carry = list(args[num_consts:num_consts + num_carry])
    xs = list(args[num_consts + num_carry:])
    step = _compiled_body(body)
    y_avals = body.out_avals[num_carry:]
    ys = [np.empty((length,) + a.shape, a.dtype) for a in y_avals]
    order = range(length - 1, -1, -1) if reverse else range(length)
    for i in order:
        outs = step(*consts, *carry, *[x[i] for x in xs])
        carry = outs[:num_carry]
        for buf, y in zip(ys, outs[num_carry:]):
            buf[i] = y
    return [np.asarray(c) for c in carry] + ys
