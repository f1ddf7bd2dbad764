"""The Numba backend: NumPy's kernels in eager mode, fused ``@njit`` kernels under ``jit``.

Arrays are ``numpy.ndarray``, and eager operations run the NumPy backend's
kernels.  The backend's value is in ``compile(graph)``:

- chains of elementwise operations (and a trailing reduction) become one
  generated kernel each, parallel above ``PARALLEL_MIN_SIZE`` elements
  (``numba_fusion.py``); matmul, convolution and everything else call the
  NumPy kernels (BLAS);
- ``lax.scan`` runs its whole loop in one compiled Numba function when every
  equation of its body can be generated (``numba_scan.py``), else as a Python
  loop over the body's compiled step;
- kernels are cached in memory by their source (the fused chain's signature)
  and on disk by Numba (``cache=True``), so another process does not
  recompile; ``FUNCNET_LOG_COMPILES=1`` logs what each compilation cost.

Install with ``pip install "funcnet[numba]"``.

>>> import numpy as np, funcnet as fn, funcnet.numpy as fnp
>>> with fn.use_backend("numba"):
...     y = fn.jit(lambda x: fnp.tanh(x) * 2.0)(np.zeros(3, np.float32))
>>> y
array([0., 0., 0.], dtype=float32)
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import logging
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from funcnet.backends.base import BackendUnavailable
from funcnet.backends.numpy_backend import NumpyBackend

log = logging.getLogger("funcnet.jit")

INSTALL_HINT = 'pip install "funcnet[numba]"'


def make_numba_backend() -> NumbaBackend:
    """Build the backend, or raise ``BackendUnavailable`` saying why it cannot run."""
    try:
        import numba  # noqa: F401
    except ImportError as exc:
        raise BackendUnavailable(
            f"the 'numba' backend needs the numba package, which cannot be imported here "
            f"({exc}); install it with: {INSTALL_HINT}") from None
    except Exception as exc:  # a broken install (e.g. a NumPy it does not support)
        raise BackendUnavailable(
            f"the 'numba' backend cannot start: importing numba failed with "
            f"{type(exc).__name__}: {exc}; reinstall it with: {INSTALL_HINT}") from None
    _prefer_wide_vectors()
    return NumbaBackend()


def _prefer_wide_vectors() -> None:
    """On CPUs with AVX-512, let LLVM use 512-bit vectors (it prefers 256 by default),
    which doubles the throughput of the fused kernels' vectorised math.

    Only possible before Numba compiles anything in this process, and only when
    the user has not chosen CPU features (``NUMBA_CPU_FEATURES``) themselves;
    ``FUNCNET_NUMBA_WIDE_VECTORS=0`` turns it off.
    """
    import numba
    from numba.core.registry import cpu_target

    if os.environ.get("FUNCNET_NUMBA_WIDE_VECTORS", "1") == "0":
        return
    if numba.config.CPU_FEATURES is not None or "_toplevel_target_context" in vars(cpu_target):
        return
    try:
        import llvmlite.binding as llvm

        features = llvm.get_host_cpu_features().flatten()
    except Exception:  # pragma: no cover - LLVM without host detection
        return
    if "+avx512f" in features.split(","):
        numba.config.CPU_FEATURES = features + ",-prefer-256-bit"


# ---------------------------------------------------------------------------
# Kernel cache: in memory by source, on disk through Numba's cache


def cache_dir() -> Path:
    """Where generated kernel sources (and Numba's cache of them) live:
    ``$FUNCNET_CACHE_DIR/numba``, by default ``~/.cache/funcnet/numba``."""
    base = os.environ.get("FUNCNET_CACHE_DIR")
    if not base:
        base = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"),
                            "funcnet")
    return Path(base) / "numba"


def _salt() -> str:
    """Changes whenever generated code could compile differently (Numba's disk cache
    tracks a kernel's own file, not the helpers it calls)."""
    import numba

    helpers = Path(__file__).with_name("numba_math.py").read_bytes()
    return f"{numba.__version__}/{hashlib.sha256(helpers).hexdigest()[:16]}"


class KernelCache:
    """Compiled kernels by source text: once per process in memory, once per
    machine on disk."""

    def __init__(self):
        self._memory: dict[str, object] = {}
        self._lock = threading.RLock()
        self._salt = None
        self._dir: Path | None = None

    def _directory(self) -> Path:
        if self._dir is None:
            d = cache_dir()
            try:
                d.mkdir(parents=True, exist_ok=True)
                probe = d / f".probe{os.getpid()}"
                probe.write_text("")
                probe.unlink()
            except OSError:
                d = Path(tempfile.mkdtemp(prefix="funcnet-numba-"))
                log.warning("funcnet numba backend: cache directory %s is not writable; "
                            "kernels are cached in %s for this process only", cache_dir(), d)
            self._dir = d
        return self._dir

    def key(self, source: str) -> str:
        if self._salt is None:
            self._salt = _salt()
        return hashlib.sha256((self._salt + "\n" + source).encode()).hexdigest()[:24]

    def get(self, source: str):
        """``(dispatcher, key)``: the ``kernel`` function defined by ``source``."""
        key = self.key(source)
        with self._lock:
            hit = self._memory.get(key)
            if hit is not None:
                return hit, key
            path = self._directory() / f"k_{key}.py"
            if not path.exists():
                tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
                tmp.write_text(source)
                os.replace(tmp, path)  # atomic: concurrent processes write the same text
            return self._import(key, path), key

    def by_key(self, key: str):
        """The kernel of an already written source (generated scan loops call kernels)."""
        with self._lock:
            hit = self._memory.get(key)
            if hit is None:
                hit = self._import(key, self._directory() / f"k_{key}.py")
            return hit

    def _import(self, key: str, path: Path):
        name = f"funcnet_numba_k_{key}"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        kernel = module.kernel
        self._memory[key] = kernel
        return kernel


_kernel_cache = KernelCache()


def kernel_by_key(key: str):
    """Used by generated scan loops to reach the fused kernels they call."""
    return _kernel_cache.by_key(key)


def _numba_type(aval, how: str):
    import numba
    from numba import types

    dt = numba.from_dtype(aval.dtype)
    if how == "scalar":
        return dt
    return types.Array(dt, aval.ndim, "A" if how == "view" else "C")


def compile_kernel(source: str, arg_types: tuple) -> tuple:
    """The dispatcher for ``source``, compiled for ``arg_types`` now (from Numba's disk
    cache when it is there).  Returns ``(dispatcher, seconds, how)`` where ``how`` is
    ``"memory"``, ``"disk"`` or ``"compiled"``."""
    t0 = time.perf_counter()
    kernel, _ = _kernel_cache.get(source)
    how = "memory"
    if arg_types is not None and arg_types not in kernel.overloads:
        hits = sum(kernel.stats.cache_hits.values())
        kernel.compile(arg_types)
        how = "disk" if sum(kernel.stats.cache_hits.values()) > hits else "compiled"
    return kernel, time.perf_counter() - t0, how


# ---------------------------------------------------------------------------
# The backend


#: ``auto``: big kernels are compiled serial and parallel, and the faster is kept after
#: timing both on the first calls; ``always``/``never`` force one.
PARALLEL = os.environ.get("FUNCNET_NUMBA_PARALLEL", "auto")


class Autotuned:
    """Calls a kernel's serial and parallel versions in turn for the first few calls,
    then only the faster (minimum time).  On an idle machine the parallel loop wins on
    big kernels; on a busy one it waits for descheduled threads and the serial one wins."""

    TRIALS = 3

    def __init__(self, serial, parallel):
        self.versions = [serial, parallel]
        self.times = [[], []]
        self.best = None

    def __call__(self, *args):
        if self.best is not None:
            return self.best(*args)
        i = 0 if len(self.times[0]) <= len(self.times[1]) else 1
        t0 = time.perf_counter()
        out = self.versions[i](*args)
        self.times[i].append(time.perf_counter() - t0)
        if len(self.times[1]) >= self.TRIALS:
            self.best = self.versions[int(min(self.times[1]) < min(self.times[0]))]
        return out

    @property
    def choice(self) -> str | None:
        """``"serial"``, ``"parallel"``, or None while still timing."""
        if self.best is None:
            return None
        return "parallel" if self.best is self.versions[1] else "serial"


class FusedCall:
    """Stands in for a primitive in the rewritten graph: one call of a fused kernel."""

    def __init__(self, kernel, n_outputs: int, label: str):
        self.name = "numba_fused"
        self.multiple_results = n_outputs > 1
        self.kernel = kernel
        self.label = label

    def __repr__(self) -> str:
        return f"numba_fused[{self.label}]"


def static_types(static: tuple) -> tuple:
    """Numba types of a kernel's leading size arguments (ints, then a shape tuple)."""
    from numba import types

    return tuple(types.UniTuple(types.int64, len(a)) if isinstance(a, tuple) else types.int64
                 for a in static)


def _predict_arg_type(var, graph, producers: dict):
    """The type a kernel operand most likely has at run time (compiled ahead of the first
    call; another type compiles on first use)."""
    if var.aval.ndim == 0:
        if any(var is v for v in graph.in_vars):
            return _numba_type(var.aval, "array")
        for v, c in zip(graph.const_vars, graph.consts):
            if v is var:
                return _numba_type(var.aval, "array" if isinstance(c, np.ndarray) else "scalar")
        prod = producers.get(id(var))
        if prod is not None and isinstance(prod, FusedCall):
            return _numba_type(var.aval, "array")
        return _numba_type(var.aval, "scalar")
    prod = producers.get(id(var))
    from funcnet.backends.numba_fusion import _VIEW_PRIMS

    if prod is not None and getattr(prod, "name", None) in _VIEW_PRIMS:
        return _numba_type(var.aval, "view")
    return _numba_type(var.aval, "array")


class NumbaBackend(NumpyBackend):
    """NumPy arrays and kernels; ``jit`` compiles fused Numba kernels."""

    name = "numba"

    def __init__(self):
        from funcnet.backends import numba_scan

        self.kernels = dict(NumpyBackend.kernels)
        self.raw_kernels = dict(NumpyBackend.raw_kernels)
        self.kernels["scan"] = self.raw_kernels["scan"] = numba_scan.scan_kernel

    def compile(self, graph, donated: frozenset = frozenset()):
        """Fuse elementwise chains into Numba kernels, then generate the Python
        function that calls them and the remaining (NumPy/BLAS) kernels."""
        from funcnet.backends.codegen import generate
        from funcnet.backends.numba_fusion import kernel_source, partition
        from funcnet.backends.numba_passes import HostOp, optimize_scans
        from funcnet.core.graph import Eqn, Graph

        t0 = time.perf_counter()
        graph = optimize_scans(graph)
        groups = partition(graph)
        member = {}
        for g in groups:
            for e in g.eqns:
                member[id(e)] = g
            if g.reduce is not None:
                member[id(g.reduce)] = g
        consumers: dict[int, set] = {}
        for e in graph.eqns:
            for v in e.inputs:
                consumers.setdefault(id(v), set()).add(id(e))
        out_ids = {id(v) for v in graph.outs}
        producers: dict[int, object] = {}
        eqns, specs = [], []
        stats = {"memory": 0, "disk": 0, "compiled": 0}
        numba_s = 0.0
        for i, e in enumerate(graph.eqns):
            g = member.get(id(e))
            if g is None:
                eqns.append(e)
                for v in e.outputs:
                    producers[id(v)] = e.prim
                continue
            if e.prim.name == "broadcast_in_dim":
                v = e.outputs[0]
                mine = {id(q) for q in g.eqns}
                if id(v) in out_ids or consumers.get(id(v), set()) - mine:
                    eqns.append(e)  # also needed outside the kernel: keep the (view) op
                    producers[id(v)] = e.prim
            if i != g.last:
                continue
            spec = kernel_source(g, parallel=None if PARALLEL != "never" else False)
            arg_types = static_types(spec.static) + tuple(
                _predict_arg_type(v, graph, producers) for v in spec.inputs)
            try:
                kernel, secs, how = compile_kernel(spec.source, arg_types)
                numba_s += secs
                stats[how] += 1
                run = functools.partial(kernel, *spec.static) if spec.static else kernel
                if spec.parallel and PARALLEL == "auto":
                    serial = kernel_source(g, parallel=False)
                    kernel_s, secs, how = compile_kernel(serial.source, arg_types)
                    numba_s += secs
                    stats[how] += 1
                    run = Autotuned(functools.partial(kernel_s, *serial.static), run)
            except Exception as exc:  # a bug in a generated kernel must not stop the program
                log.warning("numba backend: a fused kernel (%s) did not compile (%s: %s); its "
                            "operations run with NumPy", spec.label, type(exc).__name__,
                            str(exc).splitlines()[0] if str(exc) else "")
                members = list(g.eqns) + ([g.reduce] if g.reduce is not None else [])
                for q in members:
                    if q.prim.name == "broadcast_in_dim" and any(q is x for x in eqns):
                        continue
                    eqns.append(q)
                    for v in q.outputs:
                        producers[id(v)] = q.prim
                continue
            call = FusedCall(run, len(spec.outputs), spec.label)
            eqns.append(Eqn(call, list(spec.inputs), {}, list(spec.outputs)))
            for v in spec.outputs:
                producers[id(v)] = call
            specs.append(spec)
        new = Graph(graph.const_vars, graph.consts, graph.in_vars, eqns, graph.outs)

        def kernel_for(prim):
            if isinstance(prim, (FusedCall, HostOp)):
                return prim.kernel
            return self.kernel_for(prim)

        fn_, source = generate(new, kernel_for, self.out_capable, donated, name="_compiled")
        parts = [source]
        for i, spec in enumerate(specs, 1):
            mode = ("parallel and serial, the faster kept" if spec.parallel and PARALLEL == "auto"
                    else "parallel" if spec.parallel else "serial")
            parts.append(f"\n# --- fused kernel {i} of {len(specs)}: {spec.label} ({mode}) ---\n"
                         + spec.source)
        fn_.source = "\n".join(parts)
        fn_.fused_kernels = specs
        fn_.graph = new  # what was compiled: fused calls, rewritten scans
        if os.environ.get("FUNCNET_LOG_COMPILES"):
            log.warning("numba backend: compiled %s in %.3f s: %d equations -> %d fused kernels "
                        "(%d compiled, %d from the disk cache, %d reused; Numba %.3f s)",
                        getattr(graph, "name", "graph"), time.perf_counter() - t0,
                        len(graph.eqns), len(specs), stats["compiled"], stats["disk"],
                        stats["memory"], numba_s)
        return fn_


__all__ = ["NumbaBackend", "make_numba_backend", "cache_dir", "INSTALL_HINT"]
