"""The CuPy backend: every primitive on ``cupy.ndarray`` (NVIDIA GPUs).

Eager kernels are in ``cupy_kernels.py``.  ``compile`` fuses each maximal
chain of elementwise primitives of one shape into a single generated
``cupy.ElementwiseKernel`` (CUDA C written per primitive by
``cupy_kernels.elementwise_c``, with the exact dtypes of the graph), and
runs everything else (matmul and convolution through cuBLAS, reductions,
indexing, linear algebra, FFT) with the ordinary kernels, from one generated
Python function (``codegen.generate``).  Generated kernels are cached by
their source, and CuPy caches the compiled binaries on disk.

Asking for the backend where it cannot run raises ``BackendUnavailable``
saying why: CuPy missing (install ``funcnet[cuda]``), or no usable GPU.

The fusion plan needs no GPU, so it can be shown anywhere:

>>> import funcnet as fn, funcnet.numpy as fnp
>>> g = fn.jit(lambda x: fnp.tanh(x) * 2.0 + 1.0).lower(fnp.ones(3))
>>> [[e.prim.name for e in group] for group in fusion_groups(g)]
[['tanh', 'mul', 'add']]
>>> print(fused_kernel_source(g, fusion_groups(g)[0])[2])
float v0 = (float)(tanh((in0)));
float v1 = (float)((v0) * ((float)(2.0)));
float v2 = (float)((v1) + ((float)(1.0)));
out0 = v2;
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable

import numpy as np

from funcnet.backends.base import Backend, BackendUnavailable
from funcnet.backends.cupy_kernels import (
    FUSIBLE_PRIMITIVES,
    KERNEL_NAMES,
    c_literal,
    elementwise_c,
    make_kernels,
)

INSTALL_HINT = ('pip install "funcnet[cuda]"  (CuPy for CUDA 12; for CUDA 13 use '
                "pip install cupy-cuda13x)")

#: A fused kernel takes at most this many arrays (inputs and outputs): CUDA's kernel
#: parameter space is 4 KiB and CuPy passes each array with its shape and strides.
MAX_FUSED_ARRAYS = 28
#: ... and holds at most this many primitives.
MAX_FUSED_OPS = 128


def load_cupy():
    """Import CuPy and check that a GPU works; returns ``(cupy, cupyx)`` or raises
    ``BackendUnavailable`` saying what is missing."""
    try:
        import cupy
        import cupyx
    except ImportError as e:
        raise BackendUnavailable(
            f"the 'cupy' backend needs CuPy, which is not installed ({e}). Install it with "
            f"{INSTALL_HINT}") from None
    except Exception as e:  # a broken install: missing CUDA libraries, ...
        raise BackendUnavailable(
            f"the 'cupy' backend needs CuPy, which is installed but does not import: "
            f"{type(e).__name__}: {e}. Reinstall it with {INSTALL_HINT}") from None
    version = getattr(cupy, "__version__", "?")
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:  # CUDARuntimeError: no driver, too old a driver, no device
        raise BackendUnavailable(
            f"the 'cupy' backend needs a usable NVIDIA GPU: CuPy {version} is installed but "
            f"CUDA reports no usable device ({type(e).__name__}: {e})") from None
    if count < 1:
        raise BackendUnavailable(
            f"the 'cupy' backend needs a usable NVIDIA GPU: CuPy {version} is installed but "
            "CUDA finds no GPU on this machine")
    try:  # one allocation and one compiled kernel (NVRTC) must work
        x = cupy.arange(4, dtype=np.float32)
        if float((x * 2).sum()) != 12.0:
            raise RuntimeError("a test computation gave a wrong result")
    except Exception as e:
        raise BackendUnavailable(
            f"the 'cupy' backend found {count} GPU(s) but a test computation on it failed "
            f"({type(e).__name__}: {e}); check the CUDA driver and that CuPy matches the "
            f"installed CUDA version ({INSTALL_HINT})") from None
    return cupy, cupyx


# ---------------------------------------------------------------------------
# Fusion plan: maximal groups of elementwise equations of one output shape


def _fusible(e) -> bool:
    """Whether equation ``e`` can join a fused kernel (its C can be written exactly)."""
    if e.prim.name not in FUSIBLE_PRIMITIVES or e.prim.multiple_results or len(e.outputs) != 1:
        return False
    out = e.outputs[0].aval
    if not out.shape:
        return False  # scalar work: nothing to gain
    ins = [(v.val, None) if type(v).__name__ == "Literal" else ("x", v.aval) for v in e.inputs]
    stmts = elementwise_c(e.prim.name, "y", out, ins, e.params, literal=_any_float_literal)
    return stmts is not None


def _any_float_literal(value, dtype):
    """``c_literal``, with non-finite floats accepted (they become kernel arguments)."""
    lit = c_literal(value, dtype)
    if lit is None and np.dtype(dtype).kind == "f" and isinstance(value, (int, float)):
        return "s"
    return lit


class _Group:
    __slots__ = ("shape", "eqns", "ids", "deps", "closed", "inputs")

    def __init__(self, shape):
        self.shape = shape
        self.eqns: list = []
        self.ids: set[int] = set()          # ids of the output variables of members
        self.deps: list[_Group] = []        # open groups this one reads from
        self.closed = False
        self.inputs: dict[int, object] = {}  # external input variables, by id


def _outputs_of(eqns, ids, consumers, graph_outs) -> list:
    """Member outputs used outside the members (or returned by the graph)."""
    members = {id(e) for e in eqns}
    return [e.outputs[0] for e in eqns
            if id(e.outputs[0]) in graph_outs
            or any(c not in members for c in consumers.get(id(e.outputs[0]), ()))]


def plan_fusion(graph) -> list:
    """The graph's equations in an order where each item is an equation or a group
    (a list of two or more fusible equations of one output shape, run as one kernel).

    A group is emitted when something outside it first needs one of its values,
    after the groups it reads from; groups of different shapes never form a cycle
    (an elementwise value only flows into a shape it broadcasts to).
    """
    consumers: dict[int, list[int]] = {}
    for e in graph.eqns:
        for v in e.inputs:
            if type(v).__name__ != "Literal":
                consumers.setdefault(id(v), []).append(id(e))
    graph_outs = {id(v) for v in graph.outs}
    producer: dict[int, _Group] = {}
    open_groups: dict[tuple, _Group] = {}
    order: list = []
    closing: set[int] = set()

    def close(g: _Group) -> None:
        if g.closed:
            return
        if id(g) in closing:  # pragma: no cover - impossible for elementwise shapes
            raise AssertionError("cupy fusion: cyclic dependency between fused groups")
        closing.add(id(g))
        for d in g.deps:
            close(d)
        g.closed = True
        if open_groups.get(g.shape) is g:
            del open_groups[g.shape]
        order.append(g.eqns if len(g.eqns) > 1 else g.eqns[0])

    def fits(g: _Group, e) -> bool:
        if len(g.eqns) + 1 > MAX_FUSED_OPS:
            return False
        inputs = dict(g.inputs)
        for v in e.inputs:
            if type(v).__name__ != "Literal" and id(v) not in g.ids:
                inputs[id(v)] = v
        eqns = g.eqns + [e]
        outs = _outputs_of(eqns, None, consumers, graph_outs)
        return len(inputs) + len(outs) <= MAX_FUSED_ARRAYS

    for e in graph.eqns:
        if not _fusible(e):
            for v in e.inputs:
                g = producer.get(id(v))
                if g is not None and not g.closed:
                    close(g)
            order.append(e)
            continue
        shape = e.outputs[0].aval.shape
        g = open_groups.get(shape)
        if g is not None and not fits(g, e):
            close(g)
            g = None
        if g is None:
            g = open_groups[shape] = _Group(shape)
        for v in e.inputs:
            if type(v).__name__ == "Literal" or id(v) in g.ids:
                continue
            g.inputs[id(v)] = v
            src = producer.get(id(v))
            if src is not None and src is not g and not src.closed and src not in g.deps:
                g.deps.append(src)
        g.eqns.append(e)
        g.ids.add(id(e.outputs[0]))
        producer[id(e.outputs[0])] = g
    for g in list(open_groups.values()):
        close(g)
    return order


def fusion_groups(graph) -> list[list]:
    """The fused groups ``compile`` makes of ``graph`` (lists of equations)."""
    return [item for item in plan_fusion(graph) if isinstance(item, list)]


def fused_kernel_source(graph, eqns) -> tuple[str, str, str, list, list, list]:
    """``(in_params, out_params, body, inputs, outputs, scalars)`` of the kernel for
    the group ``eqns`` of ``graph``: the parameter lists and C body of a
    ``cupy.ElementwiseKernel``, the input and output variables, and the values of
    the scalar parameters (non-finite literals)."""
    consumers: dict[int, list[int]] = {}
    for e in graph.eqns:
        for v in e.inputs:
            if type(v).__name__ != "Literal":
                consumers.setdefault(id(v), []).append(id(e))
    outputs = _outputs_of(eqns, None, consumers, {id(v) for v in graph.outs})
    out_names = {id(v): f"out{j}" for j, v in enumerate(outputs)}
    local: dict[int, tuple[str, object]] = {}
    inputs: list = []
    scalars: list = []  # (name, dtype, value)
    body: list[str] = []

    def literal(value, dtype):
        lit = c_literal(value, dtype)
        if lit is None and np.dtype(dtype).kind == "f":
            name = f"s{len(scalars)}"
            scalars.append((name, np.dtype(dtype), float(value)))
            return name
        return lit

    for k, e in enumerate(eqns):
        ins = []
        for v in e.inputs:
            if type(v).__name__ == "Literal":
                ins.append((v.val, None))
                continue
            if id(v) not in local:
                local[id(v)] = (f"in{len(inputs)}", v.aval)
                inputs.append(v)
            ins.append(local[id(v)])
        name = f"v{k}"
        stmts = elementwise_c(e.prim.name, name, e.outputs[0].aval, ins, e.params, literal=literal)
        if stmts is None:  # pragma: no cover - plan_fusion only groups fusible equations
            raise AssertionError(f"cupy fusion: cannot write {e.prim.name} in C")
        body.extend(stmts)
        local[id(e.outputs[0])] = (name, e.outputs[0].aval)
        if id(e.outputs[0]) in out_names:
            body.append(f"{out_names[id(e.outputs[0])]} = {name};")
    in_params = ", ".join([f"{v.aval.dtype.name} in{i}" for i, v in enumerate(inputs)]
                          + [f"{dt.name} {n}" for n, dt, _ in scalars])
    out_params = ", ".join(f"{v.aval.dtype.name} out{j}" for j, v in enumerate(outputs))
    return in_params, out_params, "\n".join(body), inputs, outputs, scalars


# ---------------------------------------------------------------------------
# Stand-ins for primitives in the graph handed to codegen


class _FusedPrim:
    """One fused kernel, standing in for a primitive in the compiled graph."""

    multiple_results = True
    effectful = False
    linear = False
    impl = None

    def __init__(self, call: Callable):
        self.name = "fused_elementwise"
        self.call = call

    def __repr__(self) -> str:
        return self.name


class _CheckedPrim:
    """A primitive whose kernel's results are checked against the graph's types
    (``CupyBackend.check_types``)."""

    effectful = False
    linear = False
    impl = None

    def __init__(self, prim, kernel: Callable, out_avals, nd):
        self.name = prim.name
        self.multiple_results = prim.multiple_results
        self.prim = prim

        def call(*args, **params):
            out = kernel(*args, **params)
            outs = out if prim.multiple_results else [out]
            for i, (o, a) in enumerate(zip(outs, out_avals)):
                if not isinstance(o, nd) or tuple(o.shape) != a.shape or o.dtype != a.dtype:
                    got = (f"{type(o).__name__} {getattr(o, 'dtype', '?')}"
                           f"{list(getattr(o, 'shape', ()))}")
                    raise TypeError(
                        f"cupy backend: kernel '{prim.name}' returned {got} for output {i}, "
                        f"the graph says {a.str_short()}")
            return out

        self.call = call


class _FusedKernel:
    """Calls one generated ``ElementwiseKernel`` for a fused group."""

    def __init__(self, cp, kernel, inputs, outputs, scalars, source: str):
        self.cp = cp
        self.kernel = kernel
        self.in_dtypes = [np.dtype(v.aval.dtype) for v in inputs]
        self.out_specs = [(v.aval.shape, np.dtype(v.aval.dtype)) for v in outputs]
        self.scalars = [dt.type(val) for _, dt, val in scalars]
        self.source = source

    def __call__(self, *ins):
        cp = self.cp
        nd = cp.ndarray
        args = []
        for a, dt in zip(ins, self.in_dtypes):
            if not isinstance(a, nd):
                a = cp.asarray(np.asarray(a, dtype=dt))
            elif a.dtype != dt:
                a = a.astype(dt)
            args.append(a)
        outs = [cp.empty(shape, dt) for shape, dt in self.out_specs]
        self.kernel(*args, *self.scalars, *outs)
        return outs


def _unloaded(*args, **params):  # pragma: no cover - the class-level table is only read
    raise BackendUnavailable("the cupy backend is not loaded: use fn.set_backend('cupy')")


class CupyBackend(Backend):
    """Runs every primitive with CuPy on an NVIDIA GPU; ``jit`` fuses elementwise chains.

    ``CupyBackend()`` imports CuPy and checks the GPU (``BackendUnavailable``
    if either is missing).  ``CupyBackend(module=..., extras=...)`` builds it
    over other modules with CuPy's API (the tests use a CPU stand-in).
    ``check_types`` (default: the ``FUNCNET_CUPY_CHECK`` environment variable)
    makes compiled code check every kernel's result against the graph.
    """

    name = "cupy"
    # Class-level: the kernel names, readable without CuPy (the support matrix).
    kernels = dict.fromkeys(sorted(KERNEL_NAMES), _unloaded)
    raw_kernels = None
    out_capable = frozenset()

    def __init__(self, module=None, extras=None, name: str | None = None):
        if module is None:
            module, extras = load_cupy()
        self.cp = module
        self.cpx = extras
        if name is not None:
            self.name = name
        self.array_type = module.ndarray
        self.check_types = bool(os.environ.get("FUNCNET_CUPY_CHECK"))
        self._kernel_cache: dict = {}
        self.kernels = make_kernels(module, extras, self._primitive_kernel)

    # -- arrays ---------------------------------------------------------------------

    def asarray(self, x, dtype=None):
        """``x`` (NumPy array, scalar, nested list or device array) on the device."""
        cp = self.cp
        if isinstance(x, cp.ndarray):
            return x if dtype is None or x.dtype == np.dtype(dtype) else x.astype(dtype)
        return cp.asarray(np.asarray(x, dtype=dtype))

    def to_numpy(self, x) -> np.ndarray:
        """A host copy of a device array."""
        if isinstance(x, self.cp.ndarray):
            return x.get()
        return np.asarray(x)

    def synchronize(self) -> None:
        """Wait for the device's queued work (for timing)."""
        self.cp.cuda.Device().synchronize()

    # -- generated kernels ----------------------------------------------------------

    def elementwise_kernel(self, in_params: str, out_params: str, body: str):
        """A ``cupy.ElementwiseKernel``, cached by its source."""
        key = (in_params, out_params, body)
        kernel = self._kernel_cache.get(key)
        if kernel is None:
            digest = hashlib.sha1("\n".join(key).encode()).hexdigest()[:16]
            kernel = self._kernel_cache[key] = self.cp.ElementwiseKernel(
                in_params, out_params, body, f"funcnet_fused_{digest}", return_tuple=True)
        return kernel

    def _primitive_kernel(self, name: str, in_avals, out_aval) -> Callable:
        """The generated kernel of one primitive (the eager ``logistic``, shifts, ...)."""
        ins = [(f"in{i}", a) for i, a in enumerate(in_avals)]
        stmts = elementwise_c(name, "v0", out_aval, ins, {})
        if stmts is None:
            raise TypeError(f"cupy backend: no kernel for {name} on "
                            f"{', '.join(a.str_short() for a in in_avals)}")
        in_params = ", ".join(f"{a.dtype.name} in{i}" for i, a in enumerate(in_avals))
        kernel = self.elementwise_kernel(in_params, f"{out_aval.dtype.name} out0",
                                         "\n".join(stmts + ["out0 = v0;"]))
        return lambda *args: kernel(*args)[0]

    # -- compile --------------------------------------------------------------------

    def compile(self, graph, donated: frozenset = frozenset()) -> Callable:
        """Fuse elementwise chains into generated kernels, then generate the Python
        function that runs the graph (``codegen.generate``)."""
        from funcnet.backends.codegen import generate
        from funcnet.core.graph import Eqn, Graph

        cp = self.cp
        nd = cp.ndarray
        eqns, fused_sources = [], []
        for item in plan_fusion(graph):
            if isinstance(item, list):
                in_p, out_p, body, ins, outs, scalars = fused_kernel_source(graph, item)
                kernel = self.elementwise_kernel(in_p, out_p, body)
                source = (f"// {' '.join(e.prim.name for e in item)}\n"
                          f"// ({in_p}) -> ({out_p})\n{body}")
                call = _FusedKernel(cp, kernel, ins, outs, scalars, source)
                fused_sources.append(source)
                eqns.append(Eqn(_FusedPrim(call), ins, {}, outs))
            elif self.check_types:
                kernel = Backend.kernel_for(self, item.prim)
                prim = _CheckedPrim(item.prim, kernel, [v.aval for v in item.outputs], nd)
                eqns.append(Eqn(prim, item.inputs, item.params, item.outputs, item.source))
            else:
                eqns.append(item)
        consts = [c if isinstance(c, nd) else self.asarray(c) for c in graph.consts]
        plan = Graph(graph.const_vars, consts, graph.in_vars, eqns, graph.outs)

        def wrap_output(x):
            return x if isinstance(x, nd) else self.asarray(x)

        fn_, source = generate(plan, self.kernel_for, frozenset(), frozenset(),
                               wrap_outputs=wrap_output, name="_compiled")
        to_device = self.asarray

        def run(*args):
            return fn_(*[a if isinstance(a, nd) else to_device(a) for a in args])

        run.source = source + "".join(
            f"\n\n# fused kernel {i}: a cupy.ElementwiseKernel\n"
            + "\n".join("# " + line for line in src.splitlines())
            for i, src in enumerate(fused_sources))
        run.fused_kernels = fused_sources
        return run

    def kernel_for(self, prim) -> Callable:
        """The kernel for ``prim`` in compiled code (fused groups carry their own)."""
        if isinstance(prim, (_FusedPrim, _CheckedPrim)):
            return prim.call
        return Backend.kernel_for(self, prim)


__all__ = ["CupyBackend", "load_cupy", "plan_fusion", "fusion_groups", "fused_kernel_source",
           "INSTALL_HINT"]
