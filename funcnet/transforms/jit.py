"""``jit``: trace once per signature to a graph, optimise it, compile it per backend.

``jit_call`` is itself a primitive that carries its graph, so ``grad(jit(f))``
(the JVP rule inlines the graph), ``vmap(jit(f))`` (the batching rule traces a
batched graph and compiles that) and ``jit(grad(jit(f)))`` (nested calls are
inlined by the passes) need no special case.

>>> import funcnet as fn, funcnet.numpy as fnp
>>> f = fn.jit(lambda x: fnp.sum(x ** 2))
>>> float(f(fnp.ones(3))), f.trace_count
(3.0, 1)
>>> _ = f(fnp.zeros(3)); f.trace_count   # same signature: no new trace
1
"""

from __future__ import annotations

import functools
import logging
import os
import warnings
from collections import OrderedDict, namedtuple
from collections.abc import Callable, Sequence

import numpy as np

from funcnet.core import pytree
from funcnet.core.aval import ShapedArray, get_aval
from funcnet.core.graph import Graph, closure_convert, eval_graph, typecheck_graph
from funcnet.core.primitive import Primitive
from funcnet.core.trace import Tracer, state
from funcnet.transforms import ad
from funcnet.transforms.passes import optimize

log = logging.getLogger("funcnet.jit")

CacheInfo = namedtuple("CacheInfo", "hits misses maxsize currsize")

#: A single trace with more equations than this triggers a warning.
LARGE_TRACE = 20000

# ---------------------------------------------------------------------------
# The jit_call primitive

jit_call_p = Primitive("jit_call", multiple_results=True)
jit_call_p.abstract_eval = lambda *avals, graph, name, donated: graph.out_avals


def compiled_for(graph: Graph, donated: frozenset = frozenset()):
    """The active backend's compiled callable for ``graph`` (cached on the graph)."""
    from funcnet.backends.base import get_backend

    backend = get_backend()
    if state.wrap_kernel is not None:  # debug_nans: run equation by equation, checked
        return functools.partial(_run_checked, graph)
    cache = graph.__dict__.setdefault("_compiled", {})
    key = (backend.name, donated)
    fn_ = cache.get(key)
    if fn_ is None:
        fn_ = cache[key] = backend.compile(graph, donated=donated)
        if os.environ.get("FUNCNET_LOG_COMPILES"):
            log.warning("compiled %s for backend %s (%d equations)",
                        getattr(graph, "name", "graph"), backend.name, len(graph.eqns))
    return fn_


def _run_checked(graph: Graph, *args):
    """Interpret ``graph`` with the checking kernels, blaming each equation's source line."""
    from funcnet.core.graph import Literal

    env = dict(zip(graph.const_vars, graph.consts))
    env.update(zip(graph.in_vars, args))
    for e in graph.eqns:
        vals = [v.val if type(v) is Literal else env[v] for v in e.inputs]
        prev, state.source_override = state.source_override, e.source
        try:
            out = state.kernels[e.prim](*vals, **e.params)
        finally:
            state.source_override = prev
        env.update(zip(e.outputs, out if e.prim.multiple_results else [out]))
    return [v.val if type(v) is Literal else env[v] for v in graph.outs]


def _jit_call_impl(*args, graph, name, donated):
    return compiled_for(graph, donated)(*args)


def _jit_call_jvp(primals, tangents, *, graph, name, donated):
    # Differentiate through the graph's equations (they trace like user code).
    return ad.jvp_flat(lambda *xs: eval_graph(graph, graph.consts, xs), primals, tangents)


def _jit_call_batch(vals, dims, *, graph, name, donated):
    from funcnet.transforms.api import trace_to_graph
    from funcnet.transforms.batching import axis_size_of, batch_flat, bdim_at_front

    size = axis_size_of(vals, dims)
    key = (tuple(dims), size)
    cache = graph.__dict__.setdefault("_batched", {})
    bgraph = cache.get(key)
    if bgraph is None:
        def batched(*xs):
            outs, out_dims = batch_flat(lambda *ys: eval_graph(graph, graph.consts, ys),
                                        list(xs), list(dims), size)
            return [bdim_at_front(o, d, size) for o, d in zip(outs, out_dims)]

        bgraph = cache[key] = optimize(trace_to_graph(batched, [get_aval(v) for v in vals],
                                                      keep_custom=True))
    outs = jit_call_p.bind(*vals, graph=bgraph, name=name, donated=frozenset())
    return outs, [0] * len(outs)


jit_call_p.impl = _jit_call_impl
jit_call_p.jvp = _jit_call_jvp
jit_call_p.batch = _jit_call_batch


# ---------------------------------------------------------------------------
# The public transform


def _leaf_signature(x):
    t = type(x)
    if t is np.ndarray:
        return (x.shape, x.dtype, False)
    if t in (bool, int, float, complex):
        return ((), t, True)
    aval = get_aval(x)
    return (aval.shape, aval.dtype, aval.weak_type)


def _describe_change(old_key, new_key, paths) -> str:
    o_tree, o_sig, o_static, o_backend, o_dbg = old_key
    n_tree, n_sig, n_static, n_backend, n_dbg = new_key
    if o_dbg != n_dbg:
        return "debug_nans was switched " + ("on" if n_dbg else "off")
    if o_backend != n_backend:
        return f"the backend changed from {o_backend} to {n_backend}"
    if o_static != n_static:
        return f"a static argument changed: {o_static} -> {n_static}"
    if o_tree != n_tree:
        return f"the argument structure changed: {o_tree} -> {n_tree}"
    for path, a, b in zip(paths, o_sig, n_sig):
        if a != b:
            what = []
            if a[0] != b[0]:
                what.append(f"shape {a[0]} -> {b[0]}")
            if a[1] != b[1]:
                what.append(f"dtype {getattr(a[1], '__name__', a[1])} -> "
                            f"{getattr(b[1], '__name__', b[1])}")
            if a[2] != b[2]:
                what.append(f"weak type {a[2]} -> {b[2]}")
            return f"{path}: " + ", ".join(what)
    return "no difference found"


class JittedFunction:
    """The callable returned by ``jit``; see ``jit``'s docstring."""

    def __init__(self, fun: Callable, static_argnums: Sequence[int], static_argnames: Sequence[str],
                 donate_argnums: Sequence[int], maxsize: int):
        functools.update_wrapper(self, fun)
        self.fun = fun
        self.static_argnums = tuple(static_argnums)
        self.static_argnames = tuple(static_argnames)
        self.donate_argnums = tuple(donate_argnums)
        self.maxsize = maxsize
        self._cache: OrderedDict = OrderedDict()
        self._hits = 0
        self._misses = 0
        self.trace_count = 0
        self._last_key = None

    # -- signature ---------------------------------------------------------

    def _split(self, args, kwargs):
        name = getattr(self.fun, "__name__", "function")
        nargs = len(args)
        statics = set(i % nargs for i in self.static_argnums if -nargs <= i < nargs)
        static_vals = []
        for i in sorted(statics):
            v = args[i]
            try:
                hash(v)
            except TypeError:
                raise TypeError(
                    f"jit: static argument {i} of {name} has an unhashable value of type "
                    f"{type(v).__name__}; static arguments must be hashable (use a tuple "
                    "instead of a list, or make it a dynamic argument)") from None
            static_vals.append((i, v))
        static_kw = []
        dyn_kwargs = {}
        for k, v in kwargs.items():
            if k in self.static_argnames:
                try:
                    hash(v)
                except TypeError:
                    raise TypeError(f"jit: static argument {k!r} of {name} has an unhashable "
                                    f"value of type {type(v).__name__}") from None
                static_kw.append((k, v))
            else:
                dyn_kwargs[k] = v
        dyn_args = tuple(a for i, a in enumerate(args) if i not in statics)
        dyn_index = [i for i in range(nargs) if i not in statics]
        return dyn_args, dyn_kwargs, (tuple(static_vals), tuple(sorted(static_kw))), dyn_index

    def _entry(self, args, kwargs):
        from funcnet.backends.base import get_backend

        dyn_args, dyn_kwargs, static_key, dyn_index = self._split(args, kwargs)
        leaves, treedef = pytree.flatten((dyn_args, dyn_kwargs))
        key = (treedef, tuple(_leaf_signature(x) for x in leaves), static_key,
               get_backend().name, state.wrap_kernel is not None)
        entry = self._cache.get(key)
        if entry is not None:
            self._hits += 1
            self._cache.move_to_end(key)
            return entry, leaves
        self._misses += 1
        if self._last_key is not None and os.environ.get("FUNCNET_EXPLAIN_RETRACE"):
            paths = [self._arg_path(p, dyn_index) for p, _ in
                     pytree.flatten_with_path((dyn_args, dyn_kwargs))[0]]
            log.warning("jit: re-tracing %s because %s", getattr(self.fun, "__name__", "function"),
                        _describe_change(self._last_key, key, paths))
        entry = self._trace(args, static_key, dyn_index, dyn_kwargs, leaves, treedef)
        if entry[3]:
            return entry, leaves  # closes over traced values: valid for this call only
        self._cache[key] = entry
        self._last_key = key
        if len(self._cache) > self.maxsize:
            self._cache.popitem(last=False)
        return entry, leaves

    @staticmethod
    def _arg_path(path, dyn_index) -> str:
        if not path:
            return "argument"
        if path[0].idx == 0 and len(path) > 1:
            pos = dyn_index[path[1].idx]
            return f"argument {pos}{pytree.keystr(path[2:])}"
        return f"keyword argument {pytree.keystr(path[1:])}"

    def _trace(self, args, static_key, dyn_index, dyn_kwargs, leaves, treedef):
        from funcnet.transforms.api import trace_to_graph

        static_args = dict(static_key[0])
        static_kwargs = dict(static_key[1])
        store = {}

        def flat(*xs):
            dyn_a, dyn_k = treedef.unflatten(xs)
            full, it = [], iter(dyn_a)
            for i in range(len(args)):
                full.append(static_args[i] if i in static_args else next(it))
            out = self.fun(*full, **dyn_k, **static_kwargs)
            out_leaves, store["tree"] = pytree.flatten(out)
            return out_leaves

        avals = [ShapedArray(s, d if isinstance(d, np.dtype) else get_aval(d(0)).dtype, w)
                 for s, d, w in (_leaf_signature(x) for x in leaves)] if leaves else []
        graph = trace_to_graph(flat, avals, keep_custom=True)
        self.trace_count += 1
        name = getattr(self.fun, "__name__", "function")
        if len(graph.eqns) > LARGE_TRACE:
            warnings.warn(
                f"jit: tracing {name} produced {len(graph.eqns)} equations; a Python loop is "
                "probably being unrolled. Use lax.scan or lax.fori_loop to keep the graph "
                "small and compile fast.", stacklevel=4)
        out_tree = store["tree"]
        # Values closed over from an enclosing transform must be operands.
        graph, tracer_consts = closure_convert(graph, lambda c: isinstance(c, Tracer))
        graph = optimize(graph)
        typecheck_graph(graph)
        graph.name = name
        donated = frozenset(
            i for i, (p, _) in enumerate(pytree.flatten_with_path(treedef.unflatten(leaves))[0])
            if p and p[0].idx == 0 and len(p) > 1
            and dyn_index[p[1].idx] in {d % max(len(args), 1) for d in self.donate_argnums})
        return graph, out_tree, donated, tracer_consts

    # -- calling -------------------------------------------------------------

    def __call__(self, *args, **kwargs):
        from funcnet.transforms.api import _as_array

        (graph, out_tree, donated, tracer_consts), leaves = self._entry(args, kwargs)
        leaves = [x if isinstance(x, (np.ndarray, Tracer)) else _as_array(x) for x in leaves]
        outs = jit_call_p.bind(*tracer_consts, *leaves, graph=graph, name=graph.name,
                               donated=donated)
        return out_tree.unflatten(outs)

    def lower(self, *args, **kwargs) -> Graph:
        """The optimised graph for these arguments (``str()`` prints it)."""
        return self._entry(args, kwargs)[0][0]

    def compiled_source(self, *args, **kwargs) -> str:
        """The Python source the active backend generated for these arguments."""
        graph, _, donated, _ = self._entry(args, kwargs)[0]
        return compiled_for(graph, donated).source

    def cache_info(self) -> CacheInfo:
        """Cache hits, misses, maximum and current size."""
        return CacheInfo(self._hits, self._misses, self.maxsize, len(self._cache))

    def clear_cache(self) -> None:
        """Forget every traced signature."""
        self._cache.clear()

    def __get__(self, obj, objtype=None):
        return self if obj is None else functools.partial(self, obj)


def jit(fun: Callable | None = None, static_argnums: int | Sequence[int] = (),
        static_argnames: str | Sequence[str] = (), donate_argnums: int | Sequence[int] = (),
        maxsize: int = 256):
    """Compile ``fun``: trace it once per argument signature, optimise, generate code.

    The signature is the pytree structure, shapes, dtypes and weak types of the
    arguments, the values of static arguments, and the active backend; a call
    with a seen signature runs the compiled code without tracing.  Values of
    ``static_argnums``/``static_argnames`` must be hashable.  Inputs named by
    ``donate_argnums`` may have their buffers reused for the result (do not
    use them after the call).  ``f.lower(*args)`` returns the optimised graph,
    ``f.trace_count`` and ``f.cache_info()`` report retracing, and
    ``FUNCNET_EXPLAIN_RETRACE=1`` logs why each new trace happened.

    >>> import funcnet as fn, funcnet.numpy as fnp
    >>> @fn.jit
    ... def step(w, x):
    ...     return w - 0.1 * fn.grad(lambda w: fnp.sum((x @ w) ** 2))(w)
    >>> step(fnp.ones(2), fnp.ones((3, 2))).shape
    (2,)
    """
    if fun is None:
        return lambda f: jit(f, static_argnums, static_argnames, donate_argnums, maxsize)
    sa = (static_argnums,) if isinstance(static_argnums, int) else tuple(static_argnums)
    sn = (static_argnames,) if isinstance(static_argnames, str) else tuple(static_argnames)
    dn = (donate_argnums,) if isinstance(donate_argnums, int) else tuple(donate_argnums)
    return JittedFunction(fun, sa, sn, dn, maxsize)


__all__ = ["jit", "JittedFunction", "jit_call_p", "CacheInfo", "compiled_for"]
