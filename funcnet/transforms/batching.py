"""``vmap``: vectorisation by a batching interpreter.

A ``BatchTracer`` carries a value with one extra axis (``bdim``) or none
(``bdim is None``: the same for every example).  Each primitive's batching
rule ``batch(args, dims, **params) -> (out, out_dim)`` computes the batched
result with ordinary primitives, so ``vmap`` composes with ``grad``, ``jit``
and itself.

>>> import funcnet as fn, funcnet.numpy as fnp
>>> fn.vmap(lambda x: fnp.sum(x * x))(fnp.ones((3, 2)))
array([2., 2., 2.], dtype=float32)
"""

from __future__ import annotations

import numpy as np

from funcnet.core.aval import ShapedArray, get_aval
from funcnet.core.trace import Trace, Tracer, new_main

not_mapped = None


class BatchTracer(Tracer):
    """A batched value: ``val`` has the batch axis at ``bdim`` (or none)."""

    __slots__ = ("val", "bdim")

    def __init__(self, trace, val, bdim: int | None):
        self._trace = trace
        self.val = val
        self.bdim = bdim

    @property
    def aval(self) -> ShapedArray:
        aval = get_aval(self.val)
        if self.bdim is None:
            return aval
        shape = list(aval.shape)
        del shape[self.bdim]
        return ShapedArray(tuple(shape), aval.dtype, aval.weak_type)

    def full_lower(self):
        return self.val if self.bdim is None else self


class BatchTrace(Trace):
    """Applies each primitive's batching rule; ``main.global_data`` is the axis size."""

    __slots__ = ()

    def pure(self, val):
        return BatchTracer(self, val, not_mapped)

    lift = pure

    def process_primitive(self, prim, tracers, params):
        vals = [t.val for t in tracers]
        dims = [t.bdim for t in tracers]
        if all(d is None for d in dims):
            out = prim.bind(*vals, **params)
            if prim.multiple_results:
                return [BatchTracer(self, o, None) for o in out]
            return BatchTracer(self, out, None)
        rule = prim.batch
        if rule is None:
            raise NotImplementedError(f"vmap: the primitive '{prim.name}' has no batching rule")
        out, out_dim = rule(vals, dims, **params)
        if prim.multiple_results:
            return [BatchTracer(self, o, d) for o, d in zip(out, out_dim)]
        return BatchTracer(self, out, out_dim)

    def process_custom(self, kind, fun, rule, tracers, params):
        batch = params.get("batch")
        if batch is None:  # checkpoint: run the function itself
            return fun(*tracers)
        vals = [t.val for t in tracers]
        dims = [t.bdim for t in tracers]
        if all(d is None for d in dims):  # nothing batched: the call goes down unchanged
            from funcnet.transforms.custom import _bind_custom

            return [BatchTracer(self, o, None) for o in _bind_custom(kind, fun, rule, vals,
                                                                      params)]
        # a custom function with its rule batched (see transforms/custom.py)
        return [BatchTracer(self, o, 0) for o in batch(vals, dims, self.main.global_data)]


def batch_flat(fun, in_vals, in_dims, axis_size: int):
    """Run ``fun`` batched; returns ``(out_vals, out_dims)``."""
    with new_main(BatchTrace, axis_size) as main:
        trace = main.trace
        ins = [BatchTracer(trace, v, d) if d is not None else v for v, d in zip(in_vals, in_dims)]
        outs = [trace.full_raise(o) for o in fun(*ins)]
        return [o.val for o in outs], [o.bdim for o in outs]


# ---------------------------------------------------------------------------
# Helpers used by batching rules (written with primitives, so they trace)


def moveaxis(x, src: int, dst: int):
    from funcnet.ops.shape import transpose

    if src == dst:
        return x
    nd = np.ndim(x)
    perm = [i for i in range(nd) if i != src]
    perm.insert(dst, src)
    return transpose(x, tuple(perm))


def bdim_at_front(x, bdim: int | None, size: int):
    """Move ``x``'s batch axis to the front, broadcasting an unbatched ``x``."""
    from funcnet.ops.shape import broadcast_in_dim

    if bdim is None:
        shape = tuple(np.shape(x))
        return broadcast_in_dim(x, (size,) + shape, tuple(range(1, len(shape) + 1)))
    return moveaxis(x, bdim, 0)


def axis_size_of(vals, dims) -> int:
    for v, d in zip(vals, dims):
        if d is not None:
            return np.shape(v)[d]
    raise ValueError("no batched operand")


def batch_elementwise(prim):
    """Batching rule for an elementwise primitive with NumPy broadcasting."""

    def rule(vals, dims, **params):
        ranks = [np.ndim(v) - (d is not None) for v, d in zip(vals, dims)]
        r = max(ranks)
        args = []
        from funcnet.ops.shape import reshape

        for v, d, rk in zip(vals, dims, ranks):
            if d is None:
                args.append(v)
                continue
            v = moveaxis(v, d, 0)
            shape = tuple(np.shape(v))
            if rk < r:
                v = reshape(v, shape[:1] + (1,) * (r - rk) + shape[1:])
            args.append(v)
        return prim.bind(*args, **params), 0

    return rule


def shift_axes_rule(prim, axis_params: tuple[str, ...] = (), tuple_params: tuple[str, ...] = (),
                    perm_params: tuple[str, ...] = ()):
    """Rule for a unary primitive with axis parameters: batch axis to the front, axes + 1."""

    def rule(vals, dims, **params):
        (x,), (d,) = vals, dims
        x = moveaxis(x, d, 0)
        new = dict(params)
        for k in axis_params:
            new[k] = params[k] + 1
        for k in tuple_params:
            new[k] = tuple(a + 1 for a in params[k])
        for k in perm_params:
            new[k] = (0,) + tuple(a + 1 for a in params[k])
        out = prim.bind(x, **new)
        if prim.multiple_results:
            return out, [0] * len(out)
        return out, 0

    return rule


def vmap_axes_error(what: str, detail: str) -> ValueError:
    return ValueError(f"vmap {what}: {detail}")


__all__ = ["BatchTracer", "BatchTrace", "batch_flat", "moveaxis", "bdim_at_front",
           "batch_elementwise", "shift_axes_rule", "axis_size_of", "not_mapped"]


# ---------------------------------------------------------------------------
# The public transform


def _axes_for_leaves(axes, tree, treedef_of_args, what: str, names: list[str]):
    """Broadcast the ``in_axes``/``out_axes`` prefix ``axes`` to the leaves of ``tree``."""
    from funcnet.core import pytree

    if axes is None or isinstance(axes, int):
        return [axes] * treedef_of_args.num_leaves
    is_leaf = lambda a: a is None  # noqa: E731
    try:
        axis_leaves, prefix = pytree.flatten(axes, is_leaf=is_leaf)
        subtrees = prefix.flatten_up_to(tree)
        return [ax for ax, sub in zip(axis_leaves, subtrees)
                for _ in range(len(pytree.leaves(sub)))]
    except ValueError as e:
        raise ValueError(f"vmap {what} must be an int, None, or a pytree prefix of the "
                         f"{'arguments' if what == 'in_axes' else 'outputs'}: {e}") from None


def vmap(fun, in_axes=0, out_axes=0, axis_size: int | None = None):
    """Vectorise ``fun`` over a batch axis of its arguments.

    ``in_axes``: an int, ``None`` (not batched), or a pytree prefix of the
    positional arguments (a tuple with one entry per argument); negative axes
    count from the end.  Keyword arguments are batched along axis 0.
    ``out_axes`` likewise for the outputs.  ``axis_size`` is needed only when
    no argument is batched.

    >>> import funcnet as fn, funcnet.numpy as fnp
    >>> w = fnp.ones((3, 2))
    >>> fn.vmap(lambda w, x: w @ x, in_axes=(None, 0))(w, fnp.ones((5, 2))).shape
    (5, 3)
    """
    import functools

    from funcnet.core import pytree
    from funcnet.core.aval import get_aval

    if isinstance(in_axes, list):
        in_axes = tuple(in_axes)

    @functools.wraps(fun)
    def vmapped(*args, **kwargs):
        axes_arg = in_axes
        if isinstance(axes_arg, tuple) and len(axes_arg) != len(args):
            raise ValueError(f"vmap in_axes has {len(axes_arg)} entries but the function was "
                             f"called with {len(args)} positional argument(s)")
        leaves, treedef = pytree.flatten((args, kwargs))
        arg_leaves, arg_tree = pytree.flatten(args)
        if axes_arg is None or isinstance(axes_arg, int):
            arg_axes = [axes_arg] * len(arg_leaves)
        else:
            arg_axes = _axes_for_leaves(axes_arg, args, arg_tree, "in_axes", [])
        kw_axes = [0] * (len(leaves) - len(arg_leaves))
        axes = list(arg_axes) + kw_axes
        paths = [f"argument {p[0].idx}{pytree.keystr(p[1:])}" if p else "argument"
                 for p, _ in pytree.flatten_with_path(args)[0]]
        paths += [f"keyword argument {pytree.keystr(p)}"
                  for p, _ in pytree.flatten_with_path(kwargs)[0]]
        dims, size = [], axis_size
        for leaf, ax, where in zip(leaves, axes, paths):
            if ax is None:
                dims.append(None)
                continue
            if not isinstance(ax, int):
                raise TypeError(f"vmap in_axes for {where} must be an int or None, got {ax!r}")
            nd = len(get_aval(leaf).shape)
            if not -nd <= ax < nd:
                raise ValueError(f"vmap in_axes={ax} is out of range for {where}, which has "
                                 f"shape {get_aval(leaf).shape}")
            ax %= nd
            n = get_aval(leaf).shape[ax]
            if size is None:
                size = n
            elif n != size:
                raise ValueError(f"vmap got inconsistent sizes for the mapped axis: {where} has "
                                 f"size {n} along in_axes={ax}, but the batch size is {size}")
            dims.append(ax)
        if size is None:
            raise ValueError("vmap needs axis_size when no argument is batched (in_axes all None)")
        store = {}

        def flat(*xs):
            a, k = treedef.unflatten(xs)
            out_leaves, store["tree"] = pytree.flatten(fun(*a, **k))
            return out_leaves

        from funcnet.transforms.api import _as_array

        out_vals, out_dims = batch_flat(flat, [_as_array(x) for x in leaves], dims, size)
        out_tree = store["tree"]
        outs = out_tree.unflatten(out_vals)
        o_axes = ([out_axes] * len(out_vals) if out_axes is None or isinstance(out_axes, int)
                  else _axes_for_leaves(out_axes, outs, out_tree, "out_axes", []))
        out_paths = [pytree.keystr(p) for p, _ in pytree.flatten_with_path(outs)[0]]
        results = []
        for v, d, ax, where in zip(out_vals, out_dims, o_axes, out_paths):
            if ax is None:
                if d is not None:
                    raise ValueError(f"vmap out_axes=None for output {where or '(root)'}, but "
                                     "that output depends on the batched inputs")
                results.append(v)
                continue
            v = bdim_at_front(v, d, size)
            nd = np.ndim(v)
            if not -nd <= ax < nd:
                raise ValueError(f"vmap out_axes={ax} is out of range for output "
                                 f"{where or '(root)'} of rank {nd}")
            results.append(moveaxis(v, 0, ax % nd))
        return out_tree.unflatten(results)

    return vmapped
