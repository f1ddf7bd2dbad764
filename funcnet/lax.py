"""``funcnet.lax``: structured control flow, convolution, pooling and slicing.

Loops and branches written with these functions are traced once into a
primitive that carries a graph, so they stay small under ``jit`` and are
differentiable and batchable (see ``docs/transforms.md`` for the rules).

>>> import funcnet.numpy as fnp
>>> from funcnet import lax
>>> float(lax.fori_loop(0, 5, lambda i, acc: acc + i, 0.0))
10.0
"""

from __future__ import annotations

from collections.abc import Callable, Sequence  # noqa: F401
from typing import Any

import numpy as np

from funcnet.core import pytree
from funcnet.core.aval import ShapedArray, get_aval
from funcnet.core.trace import Tracer
from funcnet.errors import ConcretizationError
from funcnet.numpy.conversion import as_array
from funcnet.ops import control_flow as cf
from funcnet.ops import elementwise as ew
from funcnet.ops import shape as sh
from funcnet.ops.convolution import (avg_pool, conv, conv_general_dilated, conv_transpose,
                                     max_pool, reduce_window)
from funcnet.ops.elementwise import stop_gradient
from funcnet.transforms.api import trace_closed

__all__ = ["scan", "fori_loop", "while_loop", "bounded_while_loop", "cond", "switch",
           "stop_gradient", "dynamic_slice", "dynamic_update_slice", "select", "iota", "conv",
           "conv_general_dilated", "conv_transpose", "reduce_window", "max_pool", "avg_pool"]


def _leaf_avals(leaves):
    return [get_aval(as_array(x)) for x in leaves]


def _check_same_tree(what: str, name: str, expected, got) -> None:
    if expected != got:
        raise TypeError(f"{what} of {name} must keep the carry's structure: it was {expected}, "
                        f"the function returned {got}")


# ---------------------------------------------------------------------------
# scan


def scan(f: Callable, init: Any, xs: Any = None, length: int | None = None,
         reverse: bool = False, unroll: int = 1):
    """Loop ``carry, y = f(carry, x)`` over the leading axis of ``xs``, stacking the ``y``.

    ``init`` and ``xs`` are pytrees; ``xs=None`` needs ``length``.  With
    ``reverse=True`` the loop runs from the end (``ys`` stay in index order).
    ``unroll=k`` runs ``k`` steps per loop iteration (less overhead per step).
    Reverse-mode differentiable (back-propagation through time).

    >>> import funcnet.numpy as fnp
    >>> from funcnet import lax
    >>> carry, ys = lax.scan(lambda c, x: (c + x, c), 0.0, fnp.array([1.0, 2.0, 3.0]))
    >>> float(carry), ys
    (6.0, array([0., 1., 3.], dtype=float32))
    """
    name = cf.loop_name(f)
    init_raw, init_tree = pytree.flatten(init)
    init_leaves = [as_array(x) for x in init_raw]
    xs_leaves, xs_tree = pytree.flatten(xs)
    xs_leaves = [as_array(x) for x in xs_leaves]
    lengths = {np.shape(x)[0] if np.ndim(x) else None for x in xs_leaves}
    if None in lengths:
        raise ValueError(f"scan over {name}: every xs leaf needs a leading axis to scan over")
    if length is None:
        if not lengths:
            raise ValueError(f"scan over {name}: pass length= when xs is None")
        if len(lengths) > 1:
            raise ValueError(f"scan over {name}: xs leaves have different leading sizes "
                             f"{sorted(lengths)}")
        length = lengths.pop()
    elif lengths and lengths != {length}:
        raise ValueError(f"scan over {name}: length={length} but xs have leading sizes "
                         f"{sorted(lengths)}")
    unroll = max(int(unroll), 1)
    if unroll > 1 and length >= unroll:
        return _scan_unrolled(f, init, xs, length, reverse, unroll)
    store = {}

    def body(*args):
        carry = init_tree.unflatten(args[:len(init_leaves)])
        x = xs_tree.unflatten(args[len(init_leaves):])
        out = f(carry, x)
        if not (isinstance(out, tuple) and len(out) == 2):
            raise TypeError(f"scan body {name} must return a pair (carry, y), got "
                            f"{type(out).__name__}")
        new_carry, y = out
        c_leaves, c_tree = pytree.flatten(new_carry)
        _check_same_tree("the carry", name, init_tree, c_tree)
        y_leaves, store["y_tree"] = pytree.flatten(y)
        return [_match_dtype(c, a) for c, a in zip(c_leaves, carry_avals)] + y_leaves

    carry_avals = [ShapedArray(a.shape, a.dtype) for a in _leaf_avals(init_leaves)]
    x_avals = [ShapedArray(a.shape[1:], a.dtype) for a in _leaf_avals(xs_leaves)]
    graph, consts = trace_closed(body, carry_avals + x_avals)
    if _promote_weak(init_raw, init_leaves, carry_avals, graph.out_avals[:len(init_leaves)]):
        graph, consts = trace_closed(body, carry_avals + x_avals)
    outs = cf.scan_p.bind(*consts, *init_leaves, *xs_leaves, body=graph,
                          num_consts=len(consts), num_carry=len(init_leaves), length=length,
                          reverse=bool(reverse), name=name)
    n = len(init_leaves)
    return init_tree.unflatten(outs[:n]), store["y_tree"].unflatten(outs[n:])


def _promote_weak(raw, leaves, avals, out_avals) -> bool:
    """A carry started from a Python scalar takes the dtype the body gives it (as in JAX).

    Updates ``leaves`` and ``avals`` in place; returns True if the body must be re-traced.
    """
    changed = False
    for i, (r, a, o) in enumerate(zip(raw, avals, out_avals)):
        if get_aval(r).weak_type and o.dtype != a.dtype and o.shape == a.shape:
            leaves[i] = ew.convert_element_type(leaves[i], o.dtype)
            avals[i] = ShapedArray(a.shape, o.dtype)
            changed = True
    return changed


def _match_dtype(value, aval):
    """Keep a weakly typed carry (a Python scalar's) at the carry's dtype."""
    v_aval = get_aval(value)
    if v_aval.dtype != aval.dtype and v_aval.weak_type:
        return ew.convert_element_type(value, aval.dtype)
    return value


def _scan_unrolled(f, init, xs, length, reverse, unroll):
    from funcnet.core.pytree import map as tree_map

    main = length - length % unroll

    def block(carry, xblock):
        ys = []
        order = range(unroll - 1, -1, -1) if reverse else range(unroll)
        for k in order:
            carry, y = f(carry, tree_map(lambda a: a[k], xblock))
            ys.append((k, y))
        ys.sort(key=lambda p: p[0])
        from funcnet.numpy.manipulation import stack

        return carry, tree_map(lambda *leaves: stack(leaves), *[y for _, y in ys])

    def cut(lo, hi):
        return tree_map(lambda a: a[lo:hi], xs)

    def blocks(x):
        return tree_map(lambda a: sh.reshape(a, (main // unroll, unroll) + tuple(np.shape(a))[1:]),
                        x)

    from funcnet.numpy.manipulation import concatenate

    rest = length - main
    if not reverse:
        carry, ys_main = scan(block, init, blocks(cut(0, main)), length=main // unroll)
        ys_main = tree_map(lambda a: sh.reshape(a, (main,) + tuple(np.shape(a))[2:]), ys_main)
        if not rest:
            return carry, ys_main
        carry, ys_rest = scan(f, carry, cut(main, length), length=rest)
        return carry, tree_map(lambda a, b: concatenate([a, b]), ys_main, ys_rest)
    carry, ys_rest = (init, None)
    if rest:
        carry, ys_rest = scan(f, init, cut(main, length), length=rest, reverse=True)
    carry, ys_main = scan(block, carry, blocks(cut(0, main)), length=main // unroll,
                          reverse=True)
    ys_main = tree_map(lambda a: sh.reshape(a, (main,) + tuple(np.shape(a))[2:]), ys_main)
    if ys_rest is None:
        return carry, ys_main
    return carry, tree_map(lambda a, b: concatenate([a, b]), ys_main, ys_rest)


# ---------------------------------------------------------------------------
# loops


def _concrete_int(x):
    if isinstance(x, Tracer):
        try:
            return int(x.concrete_value())
        except ConcretizationError:
            return None
    return int(x)


def fori_loop(lower, upper, body_fun: Callable, init_val: Any):
    """``val = body_fun(i, val)`` for ``i`` in ``range(lower, upper)``.

    With concrete bounds this is a ``scan`` (reverse-differentiable); with
    traced bounds, a ``while_loop`` (forward-mode differentiable only).

    >>> from funcnet import lax
    >>> float(lax.fori_loop(1, 4, lambda i, x: x * i, 1.0))
    6.0
    """
    lo, hi = _concrete_int(lower), _concrete_int(upper)
    if lo is not None and hi is not None:
        n = max(hi - lo, 0)

        def step(carry, i):
            # a weakly typed index, as in JAX: ``carry + i`` keeps the carry's dtype
            return body_fun(ew.convert_element_type(i, np.int64, weak_type=True), carry), None

        idx = np.arange(lo, lo + n, dtype=np.int64)
        return scan(step, init_val, idx, length=n)[0]

    def cond_fun(state):
        return ew.lt(state[0], state[1])

    def body(state):
        i, u, val = state
        return (ew.add(i, 1), u, body_fun(i, val))

    i0 = ew.convert_element_type(as_array(lower), np.int64)
    u0 = ew.convert_element_type(as_array(upper), np.int64)
    return while_loop(cond_fun, body, (i0, u0, init_val))[2]


def while_loop(cond_fun: Callable, body_fun: Callable, init_val: Any):
    """``while cond_fun(val): val = body_fun(val)``, traced once.

    Forward-mode differentiable; reverse mode raises an error that points to
    ``bounded_while_loop``.

    >>> from funcnet import lax
    >>> int(lax.while_loop(lambda x: x < 100, lambda x: x * 2, 1))
    128
    """
    name = cf.loop_name(body_fun)
    raw, tree = pytree.flatten(init_val)
    leaves = [as_array(x) for x in raw]
    avals = [ShapedArray(a.shape, a.dtype) for a in _leaf_avals(leaves)]

    def cond_flat(*xs):
        p = as_array(cond_fun(tree.unflatten(xs)))
        a = get_aval(p)
        if a.shape != () or a.dtype.kind not in "b":
            if a.shape == () and a.dtype.kind in "iu":
                p = ew.ne(p, 0)
            else:
                raise TypeError(f"while_loop {name}: cond_fun must return a boolean scalar, "
                                f"got {a.str_short()}")
        return [p]

    def body_flat(*xs):
        out_leaves, out_tree = pytree.flatten(body_fun(tree.unflatten(xs)))
        _check_same_tree("the loop value", name, tree, out_tree)
        return [_match_dtype(o, a) for o, a in zip(out_leaves, avals)]

    bg, bc = trace_closed(body_flat, avals)
    if _promote_weak(raw, leaves, avals, bg.out_avals):
        bg, bc = trace_closed(body_flat, avals)
    cg, cc = trace_closed(cond_flat, avals)
    outs = cf.while_p.bind(*cc, *bc, *leaves, cond=cg, body=bg, num_cond_consts=len(cc),
                           num_body_consts=len(bc), name=name)
    return tree.unflatten(outs)


def bounded_while_loop(cond_fun: Callable, body_fun: Callable, init_val: Any, max_steps: int):
    """A ``while_loop`` of at most ``max_steps`` iterations, reverse-differentiable.

    Runs ``max_steps`` scan steps; once ``cond_fun`` is false the value stops
    changing.  The body is still evaluated on finished steps (its result is
    discarded), so it must not fail there.

    >>> import funcnet as fn
    >>> from funcnet import lax
    >>> f = lambda x: lax.bounded_while_loop(lambda v: v < 10.0, lambda v: v * 2.0, x, 8)
    >>> float(f(1.5)), float(fn.grad(f)(1.5))
    (12.0, 8.0)
    """
    from funcnet.core.pytree import map as tree_map

    def step(val, _):
        go = as_array(cond_fun(val))
        new = body_fun(val)
        return tree_map(lambda a, b: ew.select(go, a, b), new, val), None

    return scan(step, init_val, None, length=int(max_steps))[0]


# ---------------------------------------------------------------------------
# branches


def switch(index, branches: Sequence[Callable], *operands):
    """Apply ``branches[index](*operands)`` (``index`` clamped into range).

    Under ``vmap`` with a batched index every branch runs and the results
    are selected per example.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import lax
    >>> float(lax.switch(1, [fnp.sin, fnp.cos, fnp.exp], 0.0))
    1.0
    """
    if not branches:
        raise ValueError("switch needs at least one branch")
    leaves, tree = pytree.flatten(operands)
    leaves = [as_array(x) for x in leaves]
    avals = _leaf_avals(leaves)
    trees = []

    def make(fun):
        def flat(*xs):
            out_leaves, out_tree = pytree.flatten(fun(*tree.unflatten(xs)))
            trees.append(out_tree)
            return out_leaves

        return flat

    traced = [trace_closed(make(b), avals) for b in branches]
    for k, t in enumerate(trees[1:], 1):
        if t != trees[0]:
            raise TypeError(f"switch/cond branches must return the same structure: branch 0 "
                            f"returns {trees[0]}, branch {k} returns {t}")
    index = as_array(index)
    if get_aval(index).dtype.kind == "b":
        index = ew.convert_element_type(index, np.int64)
    outs = cf.bind_cond(index, traced, leaves)
    return trees[0].unflatten(outs)


def cond(pred, true_fun: Callable, false_fun: Callable, *operands):
    """``true_fun(*operands)`` if ``pred`` else ``false_fun(*operands)``, traced once.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import lax
    >>> float(lax.cond(fnp.array(3.0) > 0, lambda x: x * 2, lambda x: -x, 3.0))
    6.0
    """
    p = as_array(pred)
    if get_aval(p).shape != ():
        raise TypeError(f"cond's predicate must be a scalar, got shape {get_aval(p).shape}; "
                        "for elementwise choices use fnp.where")
    if get_aval(p).dtype.kind != "b":
        p = ew.ne(p, 0)
    return switch(ew.convert_element_type(p, np.int64), [false_fun, true_fun], *operands)


# ---------------------------------------------------------------------------
# slicing and small helpers


def _starts(start_indices):
    return [ew.convert_element_type(as_array(s), np.int64) for s in start_indices]


def dynamic_slice(operand, start_indices: Sequence, slice_sizes: Sequence[int]):
    """``operand[s0:s0+n0, ...]`` with traced starts, clamped into range as in JAX.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import lax
    >>> lax.dynamic_slice(fnp.arange(6), [4], [3])
    array([3, 4, 5])
    """
    return sh.dynamic_slice(as_array(operand), _starts(start_indices), tuple(slice_sizes))


def dynamic_update_slice(operand, update, start_indices: Sequence):
    """``operand`` with ``update`` written at traced ``start_indices`` (clamped).

    >>> import funcnet.numpy as fnp
    >>> from funcnet import lax
    >>> lax.dynamic_update_slice(fnp.zeros(4), fnp.ones(2), [1])
    array([0., 1., 1., 0.], dtype=float32)
    """
    operand = as_array(operand)
    update = ew.convert_element_type(as_array(update), get_aval(operand).dtype)
    return sh.dynamic_update_slice(operand, update, _starts(start_indices))


def select(pred, on_true, on_false):
    """Elementwise ``on_true`` where ``pred`` else ``on_false`` (same as ``fnp.where``).

    >>> import funcnet.numpy as fnp
    >>> from funcnet import lax
    >>> lax.select(fnp.array([True, False]), fnp.ones(2), fnp.zeros(2))
    array([1., 0.], dtype=float32)
    """
    return ew.select(as_array(pred), on_true, on_false)


def iota(dtype, size: int):
    """``[0, 1, ..., size - 1]`` of ``dtype``.

    >>> from funcnet import lax
    >>> lax.iota("int32", 3)
    array([0, 1, 2], dtype=int32)
    """
    return sh.iota(dtype, (int(size),), 0)

