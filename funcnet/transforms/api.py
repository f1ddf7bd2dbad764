"""The public differentiation and tracing transforms over pytrees.

``grad``, ``value_and_grad``, ``vjp``, ``jvp``, ``linearize``, ``jacfwd``,
``jacrev``, ``hessian``, ``make_graph`` and ``eval_shape``: each flattens its
pytree arguments, runs the flat machinery of ``ad.py`` / ``core.graph`` and
rebuilds the pytree results.

>>> import funcnet as fn, funcnet.numpy as fnp
>>> g = fn.grad(lambda w: fnp.sum(w ** 2))
>>> g(fnp.array([1.0, 2.0]))
array([2., 4.], dtype=float32)
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from funcnet.core import pytree
from funcnet.core.aval import ShapedArray, get_aval, scalar_dtype
from funcnet.core.graph import Graph, GraphBuilder, GraphTrace
from funcnet.core.trace import Tracer, new_main
from funcnet.errors import filter_traceback
from funcnet.transforms import ad

_SCALARS = (bool, int, float, complex)


def _as_array(x):
    """Leaves entering a transform: Python scalars become 0-d arrays of funcnet's dtype."""
    if type(x) in _SCALARS:
        return np.asarray(x, dtype=scalar_dtype(x))
    if isinstance(x, (list, np.generic)):
        return np.asarray(x)
    return x


def _check_leaf(x, where: str):
    if isinstance(x, Tracer) or hasattr(x, "shape") and hasattr(x, "dtype"):
        return
    raise TypeError(f"{where}: {type(x).__name__} is not an array "
                    f"(value {x!r:.60}); transforms take arrays, scalars and pytrees of them")


def user_errors(fun: Callable) -> Callable:
    """Re-raise exceptions with funcnet's internal frames filtered out."""

    @functools.wraps(fun)
    def wrapper(*args, **kwargs):
        try:
            return fun(*args, **kwargs)
        except Exception as e:
            raise e.with_traceback(filter_traceback(e.__traceback__)) from None

    return wrapper


def _argnums_tuple(argnums, nargs: int, fname: str) -> tuple[int, ...]:
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    for i in nums:
        if not isinstance(i, int) or not -nargs <= i < nargs:
            raise ValueError(f"{fname}: argnums={argnums!r} is out of range for {nargs} "
                             "positional argument(s)")
    return tuple(i % nargs for i in nums)


def _check_differentiable(tree, argnum: int, fname: str) -> None:
    for path, leaf in pytree.flatten_with_path(tree)[0]:
        dt = get_aval(leaf).dtype
        if dt.kind not in "fc":
            where = f"argument {argnum}" + (pytree.keystr(path) if path else "")
            raise TypeError(
                f"{fname} requires real- or complex-valued inputs to differentiate, but "
                f"{where} has dtype {dt.name}. Convert it with .astype(float), or mark it "
                "non-differentiable by leaving it out of argnums.")


def _flat_fun(fun, args, kwargs, argnums, in_tree):
    """A function of the flat differentiable leaves that rebuilds ``fun``'s arguments."""
    counts = [0]

    def flat(*leaves):
        dyn = in_tree.unflatten(leaves)
        full = list(args)
        for i, a in zip(argnums, dyn):
            full[i] = a
        counts[0] += 1
        return fun(*full, **kwargs)

    return flat


def vjp(fun: Callable, *primals: Any, has_aux: bool = False):
    """``(out, vjp_fn)``: ``vjp_fn(cotangent)`` returns one cotangent per primal.

    >>> import funcnet as fn, funcnet.numpy as fnp
    >>> out, f_vjp = fn.vjp(fnp.sin, 0.0)
    >>> f_vjp(fnp.ones(()))
    (array(1., dtype=float32),)
    """
    leaves, in_tree = pytree.flatten(primals)
    leaves = [_as_array(x) for x in leaves]
    out_store = {}

    def flat(*xs):
        out = fun(*in_tree.unflatten(xs))
        aux_leaves = []
        if has_aux:
            out, aux = _split_aux(out, "vjp")
            aux_leaves, out_store["aux_tree"] = pytree.flatten(aux)
        out_leaves, out_tree = pytree.flatten(out)
        out_store["tree"] = out_tree
        out_store["n"] = len(out_leaves)
        return out_leaves + aux_leaves  # aux rides along without a cotangent

    all_leaves, f_all = ad.vjp_flat(flat, leaves)
    n_out = out_store["n"]
    out_leaves, aux_vals = all_leaves[:n_out], all_leaves[n_out:]
    f_flat = lambda cts: f_all(list(cts) + [None] * len(aux_vals))  # noqa: E731
    out_tree = out_store["tree"]
    out_avals = [get_aval(o) for o in out_leaves]

    def vjp_fn(ct):
        ct_leaves, ct_tree = pytree.flatten(ct)
        if ct_tree != out_tree:
            raise ValueError(f"vjp_fn: the cotangent's structure {ct_tree} differs from the "
                             f"output's {out_tree}")
        for i, (c, a) in enumerate(zip(ct_leaves, out_avals)):
            if tuple(np.shape(c)) != a.shape:
                raise ValueError(f"vjp_fn: cotangent leaf {i} has shape {np.shape(c)} but the "
                                 f"primal output has shape {a.shape}")
        cts = f_flat([_as_array(c) for c in ct_leaves])
        cts = [ad.zeros_like_aval(get_aval(p)) if c is None else c
               for c, p in zip(cts, leaves)]
        return in_tree.unflatten(cts)

    out = out_tree.unflatten(out_leaves)
    if has_aux:
        return out, vjp_fn, out_store["aux_tree"].unflatten(aux_vals)
    return out, vjp_fn


def _split_aux(out, fname):
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
        raise TypeError(f"{fname}(..., has_aux=True) requires the function to return a pair "
                        f"(output, aux), got {type(out).__name__}")
    return out[0], out[1]


def value_and_grad(fun: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False):
    """A function returning ``(value, grad)`` (or ``((value, aux), grad)``).

    >>> import funcnet as fn, funcnet.numpy as fnp
    >>> v, g = fn.value_and_grad(lambda x, y: x * y, argnums=(0, 1))(2.0, 3.0)
    >>> float(v), [float(t) for t in g]
    (6.0, [3.0, 2.0])
    """
    fname = getattr(fun, "__name__", "function")

    @functools.wraps(fun)
    def value_and_grad_f(*args, **kwargs):
        nums = _argnums_tuple(argnums, len(args), "grad")
        dyn = tuple(args[i] for i in nums)
        for i, a in zip(nums, dyn):
            _check_differentiable(a, i, "grad")
        leaves, in_tree = pytree.flatten(dyn)
        leaves = [_as_array(x) for x in leaves]
        aux_store = {}

        def flat(*xs):
            full = list(args)
            for i, a in zip(nums, in_tree.unflatten(xs)):
                full[i] = a
            out = fun(*full, **kwargs)
            aux_leaves = []
            if has_aux:
                out, aux = _split_aux(out, "grad")
                aux_leaves, aux_store["tree"] = pytree.flatten(aux)
            aval = get_aval(out) if not isinstance(out, (tuple, list, dict)) else None
            if aval is None or aval.shape != ():
                got = (f"an output of shape {aval.shape} and dtype {aval.dtype}" if aval
                       else f"a {type(out).__name__}")
                raise TypeError(
                    f"grad requires a scalar output, but {fname} returned {got}. Use "
                    "jacrev or vjp for non-scalar outputs, or reduce it (e.g. .sum()).")
            if aval.dtype.kind not in "fc":
                raise TypeError(f"grad requires a floating-point output, but {fname} returned "
                                f"dtype {aval.dtype}")
            # aux values ride along as outputs with no cotangent: they come back as values
            return [out, *aux_leaves]

        try:
            (ans, *aux_vals), f_vjp = ad.vjp_flat(flat, leaves)
            ct = np.ones((), dtype=get_aval(ans).dtype)
            cts = f_vjp([ct] + [None] * len(aux_vals))
        except Exception as e:
            raise e.with_traceback(filter_traceback(e.__traceback__)) from None
        cts = [ad.zeros_like_aval(get_aval(p)) if c is None else c for c, p in zip(cts, leaves)]
        grads = in_tree.unflatten(cts)
        grads = grads[0] if isinstance(argnums, int) else grads
        if has_aux:
            return (ans, aux_store["tree"].unflatten(aux_vals)), grads
        return ans, grads

    return value_and_grad_f


def grad(fun: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False):
    """The gradient of a scalar-valued ``fun`` with respect to argument(s) ``argnums``.

    >>> import funcnet as fn, funcnet.numpy as fnp
    >>> float(fn.grad(fn.grad(fnp.sin))(0.0))
    -0.0
    """
    vg = value_and_grad(fun, argnums, has_aux)

    @functools.wraps(fun)
    def grad_f(*args, **kwargs):
        out, g = vg(*args, **kwargs)
        return (g, out[1]) if has_aux else g

    return grad_f


def jvp(fun: Callable, primals: Sequence, tangents: Sequence):
    """Forward mode: ``(fun(*primals), J @ tangents)``.

    >>> import funcnet as fn, funcnet.numpy as fnp
    >>> y, t = fn.jvp(fnp.sin, (0.0,), (2.0,))
    >>> float(y), float(t)
    (0.0, 2.0)
    """
    if not isinstance(primals, (tuple, list)) or not isinstance(tangents, (tuple, list)):
        raise TypeError("jvp takes primals and tangents as tuples or lists, got "
                        f"{type(primals).__name__} and {type(tangents).__name__}")
    p_leaves, p_tree = pytree.flatten(tuple(primals))
    t_leaves, t_tree = pytree.flatten(tuple(tangents))
    if p_tree != t_tree:
        raise ValueError(f"jvp: primals {p_tree} and tangents {t_tree} differ in structure")
    p_leaves = [_as_array(x) for x in p_leaves]
    t_leaves = [_as_array(x) for x in t_leaves]
    for i, (p, t) in enumerate(zip(p_leaves, t_leaves)):
        if tuple(np.shape(p)) != tuple(np.shape(t)):
            raise ValueError(f"jvp: primal leaf {i} has shape {np.shape(p)} but its tangent "
                             f"has shape {np.shape(t)}")
    store = {}

    def flat(*xs):
        out_leaves, store["tree"] = pytree.flatten(fun(*p_tree.unflatten(xs)))
        return out_leaves

    tangents_in = [t if get_aval(p).dtype.kind in "fc" else ad.Zero(get_aval(p))
                   for p, t in zip(p_leaves, t_leaves)]
    outs, touts = ad.jvp_flat(flat, p_leaves, tangents_in)
    touts = [ad.instantiate(t) for t in touts]
    tree = store["tree"]
    return tree.unflatten(outs), tree.unflatten(touts)


def linearize(fun: Callable, *primals: Any):
    """``(fun(*primals), f_jvp)`` where ``f_jvp(*tangents)`` evaluates the linear map.

    >>> import funcnet as fn, funcnet.numpy as fnp
    >>> y, f_jvp = fn.linearize(fnp.exp, 0.0)
    >>> float(f_jvp(3.0))
    3.0
    """
    from funcnet.core.graph import eval_graph

    leaves, in_tree = pytree.flatten(primals)
    leaves = [_as_array(x) for x in leaves]
    store = {}

    def flat(*xs):
        out_leaves, store["tree"] = pytree.flatten(fun(*in_tree.unflatten(xs)))
        return out_leaves

    outs, graph = ad.linearize_flat(flat, leaves)
    from funcnet.transforms.passes import dce

    live = [v for v in graph.outs if v is not None]
    graph_live = dce(Graph(graph.const_vars, graph.consts, graph.in_vars, graph.eqns, live))
    out_tree = store["tree"]
    out_avals = [get_aval(o) for o in outs]

    def f_jvp(*tangents):
        t_leaves, t_tree = pytree.flatten(tangents)
        if t_tree != in_tree:
            raise ValueError(f"f_jvp: tangents {t_tree} differ in structure from primals "
                             f"{in_tree}")
        vals = iter(eval_graph(graph_live, graph_live.consts, [_as_array(t) for t in t_leaves]))
        res = [ad.zeros_like_aval(a) if v is None else next(vals)
               for v, a in zip(graph.outs, out_avals)]
        return out_tree.unflatten(res)

    return out_tree.unflatten(outs), f_jvp


# ---------------------------------------------------------------------------
# Jacobians: vmap of the linear map over a basis of unit vectors


def _basis(leaves) -> tuple[int, list]:
    """One unit vector per element of the flattened ``leaves``, stacked on axis 0."""
    sizes = [int(np.size(x)) for x in leaves]
    total = sum(sizes)
    dtype = np.result_type(*[get_aval(x).dtype for x in leaves])
    eye = np.eye(total, dtype=dtype)
    basis, start = [], 0
    for x, n in zip(leaves, sizes):
        block = eye[:, start:start + n].reshape((total,) + tuple(np.shape(x)))
        basis.append(block.astype(get_aval(x).dtype))
        start += n
    return total, basis


def _split_rows(stacked, shapes, lead_first: bool):
    """Cut a ``[total, ...]`` stack of rows into one block per leaf of ``shapes``."""
    from funcnet.ops.shape import reshape, transpose
    from funcnet.ops.shape import slice as slice_

    blocks, start = [], 0
    rest = tuple(np.shape(stacked))[1:]
    for shape in shapes:
        n = int(np.prod(shape, dtype=np.int64))
        blk = slice_(stacked, (start,) + (0,) * len(rest), (start + n,) + rest)
        if lead_first:
            blk = reshape(blk, tuple(shape) + rest)
        else:
            blk = transpose(blk, tuple(range(1, len(rest) + 1)) + (0,))
            blk = reshape(blk, rest + tuple(shape))
        blocks.append(blk)
        start += n
    return blocks


def _jac_setup(fun, argnums, args, fname):
    nums = _argnums_tuple(argnums, len(args), fname)
    dyn = tuple(args[i] for i in nums)
    for i, a in zip(nums, dyn):
        _check_differentiable(a, i, fname)
    leaves, in_tree = pytree.flatten(dyn)
    leaves = [_as_array(x) for x in leaves]

    def f_flat(*xs):
        full = list(args)
        for i, a in zip(nums, in_tree.unflatten(xs)):
            full[i] = a
        return fun(*full)

    def wrap_in(per_leaf):
        tree = in_tree.unflatten(per_leaf)
        return tree[0] if isinstance(argnums, int) else tree

    return leaves, f_flat, wrap_in


def jacfwd(fun: Callable, argnums: int | Sequence[int] = 0):
    """The Jacobian of ``fun`` by forward mode: ``vmap`` of its JVP over input directions.

    The result has the output's structure, each leaf holding the input's
    structure, with shape ``out.shape + in.shape`` (as in JAX).

    >>> import funcnet as fn, funcnet.numpy as fnp
    >>> fn.jacfwd(lambda x: x ** 2)(fnp.array([1.0, 2.0]))
    array([[2., 0.],
           [0., 4.]], dtype=float32)
    """
    from funcnet.transforms.batching import vmap

    @functools.wraps(fun)
    def jac_f(*args):
        leaves, f_flat, wrap_in = _jac_setup(fun, argnums, args, "jacfwd")
        out, f_jvp = linearize(f_flat, *leaves)
        _, basis = _basis(leaves)
        cols = vmap(f_jvp)(*basis)  # each output leaf: [n_in, *out.shape]
        out_leaves, out_tree = pytree.flatten(out)
        col_leaves = out_tree.flatten_up_to(cols)
        in_shapes = [np.shape(x) for x in leaves]
        return out_tree.unflatten([
            wrap_in(_split_rows(c, in_shapes, False))
            for c in col_leaves])

    return jac_f


def jacrev(fun: Callable, argnums: int | Sequence[int] = 0):
    """The Jacobian of ``fun`` by reverse mode: ``vmap`` of its VJP over output directions.

    >>> import funcnet as fn, funcnet.numpy as fnp
    >>> fn.jacrev(lambda x: fnp.sum(x) * x)(fnp.array([1.0, 2.0]))
    array([[4., 1.],
           [2., 5.]], dtype=float32)
    """
    from funcnet.transforms.batching import vmap

    @functools.wraps(fun)
    def jac_f(*args):
        leaves, f_flat, wrap_in = _jac_setup(fun, argnums, args, "jacrev")
        out, f_vjp = vjp(f_flat, *leaves)
        out_leaves, out_tree = pytree.flatten(out)
        _, basis = _basis(out_leaves)
        rows = vmap(lambda *b: f_vjp(out_tree.unflatten(b)))(*basis)  # per input leaf
        out_shapes = [np.shape(o) for o in out_leaves]
        per_in = [_split_rows(r, out_shapes, True) for r in rows]
        return out_tree.unflatten([wrap_in([blocks[k] for blocks in per_in])
                                   for k in range(len(out_leaves))])

    return jac_f


def hessian(fun: Callable, argnums: int | Sequence[int] = 0):
    """The Hessian ``jacfwd(jacrev(fun))``.

    >>> import funcnet as fn, funcnet.numpy as fnp
    >>> fn.hessian(lambda x: fnp.sum(x ** 3))(fnp.array([1.0, 2.0]))
    array([[ 6.,  0.],
           [ 0., 12.]], dtype=float32)
    """
    return jacfwd(jacrev(fun, argnums), argnums)


# ---------------------------------------------------------------------------
# Tracing to a graph


class ShapeDtypeStruct:
    """A shape and dtype standing in for an array (``eval_shape``'s result and input).

    >>> import funcnet as fn
    >>> fn.ShapeDtypeStruct((2, 3), "float32")
    ShapeDtypeStruct(shape=(2, 3), dtype=float32)
    """

    __slots__ = ("shape", "dtype", "weak_type")

    def __init__(self, shape, dtype, weak_type: bool = False):
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.weak_type = weak_type

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __repr__(self) -> str:
        return f"ShapeDtypeStruct(shape={self.shape}, dtype={self.dtype.name})"

    def __eq__(self, other) -> bool:
        return (isinstance(other, ShapeDtypeStruct) and self.shape == other.shape
                and self.dtype == other.dtype)

    def __hash__(self) -> int:
        return hash((self.shape, self.dtype))


def trace_to_graph(fun: Callable, in_avals: Sequence[ShapedArray], keep_custom: bool = False):
    """Trace flat ``fun`` on abstract inputs to a ``Graph``.

    With ``keep_custom`` (``jit``), calls of ``custom_jvp``/``custom_vjp``/
    ``checkpoint`` functions stay single equations that keep their rules.
    """
    hook = None
    if keep_custom:
        from funcnet.transforms.custom import record_custom_call as hook
    builder = GraphBuilder(record_source=True, custom_hook=hook)
    with new_main(GraphTrace, builder, dynamic=True) as main:
        trace = main.trace
        ins = [trace.new_arg(a) for a in in_avals]
        outs = fun(*ins)
        outs = [trace.full_raise(o) for o in outs]
        graph = builder.build(ins, outs, trace=trace)
    return graph


def trace_closed(fun: Callable, in_avals: Sequence[ShapedArray]) -> tuple[Graph, list]:
    """Trace flat ``fun`` to a graph whose constants are moved to leading inputs.

    Returns ``(graph, consts)``: call the graph with ``consts + args``.  Used
    by control-flow primitives, whose bodies may close over traced values.
    """
    from funcnet.core.graph import closure_convert

    return closure_convert(trace_to_graph(fun, in_avals))


def _avals_of(leaves):
    out = []
    for x in leaves:
        if isinstance(x, ShapeDtypeStruct):
            out.append(ShapedArray(x.shape, x.dtype, x.weak_type))
        else:
            out.append(get_aval(x))
    return out


def make_graph(fun: Callable, static_argnums: int | Sequence[int] = ()):
    """A function that traces ``fun`` on its arguments and returns the ``Graph``.

    >>> import funcnet as fn, funcnet.numpy as fnp
    >>> g = fn.make_graph(lambda x, y: x @ y)(fnp.ones((2, 3)), fnp.ones((3,)))
    >>> [str(a) for a in g.out_avals]
    ['ShapedArray(float32[2])']
    """
    statics = (static_argnums,) if isinstance(static_argnums, int) else tuple(static_argnums)

    @functools.wraps(fun)
    def make(*args, **kwargs):
        nums = tuple(i for i in range(len(args)) if i not in statics)
        leaves, in_tree = pytree.flatten(tuple(args[i] for i in nums))
        store = {}

        def flat(*xs):
            full = list(args)
            for i, a in zip(nums, in_tree.unflatten(xs)):
                full[i] = a
            out_leaves, store["tree"] = pytree.flatten(fun(*full, **kwargs))
            return out_leaves

        graph = trace_to_graph(flat, _avals_of(leaves))
        graph.out_tree = store["tree"]
        return graph

    return make


def eval_shape(fun: Callable, *args: Any, **kwargs: Any):
    """The output's shapes and dtypes as ``ShapeDtypeStruct`` leaves, without computing.

    >>> import funcnet as fn, funcnet.numpy as fnp
    >>> fn.eval_shape(lambda x: x.sum(0), fn.ShapeDtypeStruct((4, 3), "float32"))
    ShapeDtypeStruct(shape=(3,), dtype=float32)
    """
    graph = make_graph(fun)(*args, **kwargs)
    return graph.out_tree.unflatten(
        [ShapeDtypeStruct(a.shape, a.dtype, a.weak_type) for a in graph.out_avals])
