"""Control-flow primitives that carry graphs: ``cond``, ``scan``, ``while``.

Each body is traced once to a graph (with the values it closes over moved to
explicit operands), so transforms see through it:

- JVP: a primal loop/branch plus a *tangent* one whose body is the JVP of the
  original body and which outputs tangents only (so linearization keeps the
  primal computation out of the linear program);
- transpose (reverse mode) for ``cond`` and ``scan``: the branches / the
  backward recurrence are the VJPs of the bodies; ``while`` cannot be
  reversed (its trip count is unknown) and says so;
- batching: bodies are batched; a batched ``cond`` predicate becomes a select
  of both branches, a batched ``while`` predicate a masked loop.

>>> import funcnet as fn, funcnet.numpy as fnp
>>> from funcnet import lax
>>> lax.scan(lambda c, x: (c + x, c * x), 0.0, fnp.arange(4.0))[0]
array(6., dtype=float32)
"""

from __future__ import annotations

import numpy as np

from funcnet.core.aval import ShapedArray, get_aval
from funcnet.core.graph import Graph, eval_graph
from funcnet.core.primitive import Primitive
from funcnet.errors import user_line
from funcnet.transforms import ad
from funcnet.transforms.ad import UndefinedPrimal, Zero, is_undefined


def _same_types(a, b) -> bool:
    return [(x.shape, x.dtype) for x in a] == [(x.shape, x.dtype) for x in b]


def _types(avals) -> str:
    return "(" + ", ".join(a.str_short() for a in avals) + ")"


def _tangent_aval(aval):
    return ShapedArray(aval.shape, aval.dtype)


def _is_float(aval) -> bool:
    return aval.dtype.kind in "fc"


def _trace(fun, avals):
    from funcnet.transforms.api import trace_closed

    return trace_closed(fun, avals)


def _run(graph, args):
    """Evaluate a (closure-converted) graph with ``bind`` so it composes."""
    return eval_graph(graph, graph.consts, args)


def _compiled(graph):
    from funcnet.transforms.jit import compiled_for

    return compiled_for(graph)


# ===========================================================================
# cond / switch

cond_p = Primitive("cond", multiple_results=True)


def _cond_abstract_eval(index, *avals, branches, consts_per_branch):
    if index.shape != () or index.dtype.kind not in "iub":
        raise TypeError(f"cond/switch index must be an integer or bool scalar, got "
                        f"{index.str_short()}")
    outs = branches[0].out_avals
    for k, b in enumerate(branches[1:], 1):
        if not _same_types(b.out_avals, outs):
            raise TypeError(f"cond/switch branches must return the same types: branch 0 returns "
                            f"{_types(outs)}, branch {k} returns {_types(b.out_avals)}")
    return [_tangent_aval(a) for a in outs]


def _clamp(index, n):
    return min(max(int(index), 0), n - 1)


def _cond_impl(index, *ops, branches, consts_per_branch):
    i = _clamp(index, len(branches))
    return _compiled(branches[i])(*_branch_args(ops, i, consts_per_branch))


def _branch_args(ops, i, consts_per_branch):
    """Operands are every branch's constants, then the shared operands."""
    start = sum(consts_per_branch[:i])
    total = sum(consts_per_branch)
    return list(ops[start:start + consts_per_branch[i]]) + list(ops[total:])


def bind_cond(index, branch_graphs_consts, ops):
    graphs = tuple(g for g, _ in branch_graphs_consts)
    counts = tuple(len(c) for _, c in branch_graphs_consts)
    consts = [c for _, cs in branch_graphs_consts for c in cs]
    return cond_p.bind(index, *consts, *ops, branches=graphs, consts_per_branch=counts)


def _cond_jvp(primals, tangents, *, branches, consts_per_branch):
    index, *ops = primals
    _, *tops = tangents
    primal_out = cond_p.bind(index, *ops, branches=branches, consts_per_branch=consts_per_branch)
    nz = [type(t) is not Zero for t in tops]
    if not any(nz):
        return primal_out, [Zero(get_aval(o)) for o in primal_out]
    n_ops = len(ops)
    avals = [get_aval(o) for o in ops]

    def tangent_branch(i):
        def f(*args):
            prim_ops, t_ops = args[:n_ops], args[n_ops:]
            it = iter(t_ops)
            tin = [next(it) if z else Zero(_tangent_aval(a)) for z, a in zip(nz, avals)]
            _, touts = ad.jvp_flat(lambda *xs: _run(branches[i], _branch_args(
                xs, i, consts_per_branch)), prim_ops, tin)
            return [ad.instantiate(t) for t in touts]

        return _trace(f, avals + [_tangent_aval(a) for a, z in zip(avals, nz) if z])

    traced = [tangent_branch(i) for i in range(len(branches))]
    t_ops = [ad.instantiate(t) for t, z in zip(tops, nz) if z]
    touts = bind_cond(index, traced, list(ops) + t_ops)
    return primal_out, touts


def _cond_transpose(cts, index, *ops, branches, consts_per_branch):
    if is_undefined(index):
        raise TypeError("cond is not linear in its index")
    lin = [is_undefined(o) for o in ops]
    known = [o for o, lf in zip(ops, lin) if not lf]
    k_avals = [get_aval(o) for o in known]
    l_avals = [o.aval for o in ops if is_undefined(o)]
    out_avals = branches[0].out_avals
    cts = [ad.zeros_like_aval(a) if c is None or type(c) is Zero else c
           for c, a in zip(cts, out_avals)]

    def transposed_branch(i):
        def f(*args):
            kn, ct = args[:len(known)], args[len(known):]

            def linear_part(*lin_vals):
                it_k, it_l = iter(kn), iter(lin_vals)
                full = [next(it_l) if lf else next(it_k) for lf in lin]
                return _run(branches[i], _branch_args(full, i, consts_per_branch))

            _, f_vjp = ad.vjp_flat(linear_part, [ad.zeros_like_aval(a) for a in l_avals])
            res = f_vjp(list(ct))
            return [ad.zeros_like_aval(a) if r is None else r for r, a in zip(res, l_avals)]

        return _trace(f, k_avals + [_tangent_aval(a) for a in out_avals])

    traced = [transposed_branch(i) for i in range(len(branches))]
    lin_cts = iter(bind_cond(index, traced, known + cts))
    return [None] + [next(lin_cts) if lf else None for lf in lin]


def _cond_batch(vals, dims, *, branches, consts_per_branch):
    from funcnet.ops import elementwise as ew
    from funcnet.ops.shape import reshape
    from funcnet.transforms.batching import axis_size_of, batch_flat, bdim_at_front

    index, *ops = vals
    di, *dops = dims
    size = axis_size_of(vals, dims)
    n = len(branches)

    def batched_branch(i, op_vals):
        outs, out_dims = batch_flat(
            lambda *xs: _run(branches[i], _branch_args(xs, i, consts_per_branch)),
            list(op_vals), list(dops), size)
        return [bdim_at_front(o, d, size) for o, d in zip(outs, out_dims)]

    if di is None:
        op_avals = [get_aval(o) for o in ops]
        traced = [_trace(lambda *xs, i=i: batched_branch(i, xs), op_avals) for i in range(n)]
        counts = tuple(len(c) for _, c in traced)
        consts = [c for _, cs in traced for c in cs]
        outs = cond_p.bind(index, *consts, *ops, branches=tuple(g for g, _ in traced),
                           consts_per_branch=counts)
        return outs, [0] * len(outs)
    # A batched predicate: evaluate every branch and select per example.
    index = bdim_at_front(index, di, size)
    index = ew.maximum(ew.minimum(ew.convert_element_type(index, np.int64), n - 1), 0)
    results = [batched_branch(i, ops) for i in range(n)]
    out = results[0]
    for k in range(1, n):
        chosen = []
        for a, b in zip(out, results[k]):
            mask = reshape(ew.eq(index, k), (size,) + (1,) * (np.ndim(a) - 1))
            chosen.append(ew.select(mask, b, a))
        out = chosen
    return out, [0] * len(out)


cond_p.abstract_eval = _cond_abstract_eval
cond_p.impl = _cond_impl
cond_p.jvp = _cond_jvp
cond_p.transpose = _cond_transpose
cond_p.batch = _cond_batch
cond_p.linear = True  # linear in its non-index operands when the branches are


# ===========================================================================
# scan

scan_p = Primitive("scan", multiple_results=True)


def _split3(seq, a, b):
    return list(seq[:a]), list(seq[a:a + b]), list(seq[a + b:])


def _split_counts(seq, counts):
    out, start = [], 0
    for n in counts:
        out.append(list(seq[start:start + n]))
        start += n
    return out


def _scan_abstract_eval(*avals, body, num_consts, num_carry, length, reverse, name):
    consts, carry, xs = _split3(avals, num_consts, num_carry)
    outs = body.out_avals
    if not _same_types(outs[:num_carry], carry):
        raise TypeError(
            f"scan body {name} must return a carry of the same types as its input: got "
            f"{_types(carry)} in, {_types(outs[:num_carry])} out (cast with .astype to keep "
            "the carry's dtype fixed)")
    for x in xs:
        if not x.shape or x.shape[0] != length:
            raise ValueError(f"scan over {name}: every xs leaf needs leading axis {length}, "
                             f"got {x.str_short()}")
    return ([_tangent_aval(a) for a in carry]
            + [ShapedArray((length,) + a.shape, a.dtype) for a in outs[num_carry:]])


def _scan_impl(*args, body, num_consts, num_carry, length, reverse, name):
    from funcnet.ops.shape import concatenate, full, reshape

    consts, carry, xs = _split3(args, num_consts, num_carry)
    step = _compiled(body)
    ys = []
    order = range(length - 1, -1, -1) if reverse else range(length)
    for i in order:
        outs = step(*consts, *carry, *[x[i] for x in xs])
        carry = outs[:num_carry]
        ys.append(outs[num_carry:])
    if reverse:
        ys.reverse()
    y_avals = body.out_avals[num_carry:]
    stacked = []
    for k, a in enumerate(y_avals):
        if length == 0:
            stacked.append(full((0,) + a.shape, 0, a.dtype))
        else:
            stacked.append(concatenate([reshape(y[k], (1,) + a.shape) for y in ys], 0))
    return list(carry) + stacked


def _nonzero_fixpoint(body, num_consts, num_carry, avals, nz_consts, nz_carry, nz_xs):
    """Which carry tangents are non-zero once the loop has run (a fixed point)."""
    nz_carry = list(nz_carry)
    while True:
        tin = [ad.Zero(_tangent_aval(a)) if not z else None
               for a, z in zip(avals, nz_consts + nz_carry + nz_xs)]
        from funcnet.transforms.api import trace_to_graph

        out_nz = []

        def probe(*xs):
            tangents = [Zero(_tangent_aval(a)) if t is not None else x
                        for a, t, x in zip(avals, tin, xs)]
            _, touts = ad.jvp_flat(lambda *ys: _run(body, ys), xs, tangents)
            out_nz.extend(type(t) is not Zero for t in touts[:num_carry])
            return [ad.instantiate(t) for t in touts]

        trace_to_graph(probe, avals)
        new = [a or (b and _is_float(av)) for a, b, av in
               zip(nz_carry, out_nz, avals[num_consts:num_consts + num_carry])]
        if new == nz_carry:
            return nz_carry
        nz_carry = new


def _scan_jvp(primals, tangents, *, body, num_consts, num_carry, length, reverse, name):
    consts, carry, xs = _split3(primals, num_consts, num_carry)
    params = dict(body=body, num_consts=num_consts, num_carry=num_carry, length=length,
                  reverse=reverse, name=name)
    primal_out = scan_p.bind(*primals, **params)
    t_consts, t_carry, t_xs = _split3(tangents, num_consts, num_carry)
    nz_c = [type(t) is not Zero for t in t_consts]
    nz_x = [type(t) is not Zero for t in t_xs]
    nz_k = [type(t) is not Zero for t in t_carry]
    if not any(nz_c + nz_x + nz_k):
        return primal_out, [Zero(get_aval(o)) for o in primal_out]
    body_avals = body.in_avals
    nz_k = _nonzero_fixpoint(body, num_consts, num_carry, body_avals, nz_c, nz_k, nz_x)
    c_av, k_av, x_av = _split3(body_avals, num_consts, num_carry)
    n_tc, n_tk = sum(nz_c), sum(nz_k)

    def tangent_body(*args):
        cp, ct, kp, kt, xp, xt = _split_counts(
            args, [num_consts, n_tc, num_carry, n_tk, len(x_av), sum(nz_x)])

        def fill(vals, nz, avs):
            it = iter(vals)
            return [next(it) if z else Zero(_tangent_aval(a)) for z, a in zip(nz, avs)]

        tin = fill(ct, nz_c, c_av) + fill(kt, nz_k, k_av) + fill(xt, nz_x, x_av)
        outs, touts = ad.jvp_flat(lambda *ys: _run(body, ys), list(cp) + list(kp) + list(xp),
                                  tin)
        carry_p = outs[:num_carry]
        carry_t = [ad.instantiate(t) for t, z in zip(touts[:num_carry], nz_k) if z]
        ys_t = [ad.instantiate(t) for t in touts[num_carry:]]
        return list(carry_p) + carry_t + ys_t

    tb_avals = (c_av + [_tangent_aval(a) for a, z in zip(c_av, nz_c) if z] + k_av
                + [_tangent_aval(a) for a, z in zip(k_av, nz_k) if z] + x_av
                + [_tangent_aval(a) for a, z in zip(x_av, nz_x) if z])
    tbody, tconsts = _trace(tangent_body, tb_avals)
    t_args = (list(tconsts) + consts + [t for t, z in zip(t_consts, nz_c) if z]
              + carry + [ad.instantiate(t) for t, z in zip(t_carry, nz_k) if z]
              + xs + [t for t, z in zip(t_xs, nz_x) if z])
    outs = scan_p.bind(*t_args, body=tbody, num_consts=len(tconsts) + num_consts + n_tc,
                       num_carry=num_carry + n_tk, length=length, reverse=reverse, name=name)
    it_k = iter(outs[num_carry:num_carry + n_tk])
    carry_t = [next(it_k) if z else Zero(get_aval(o))
               for z, o in zip(nz_k, primal_out[:num_carry])]
    return primal_out, carry_t + list(outs[num_carry + n_tk:])


def _scan_transpose(cts, *args, body, num_consts, num_carry, length, reverse, name):
    """Reverse mode: a forward scan for the non-linear carries, then a reversed scan
    of the body's VJP (back-propagation through time)."""
    from funcnet.ops import elementwise as ew  # noqa: F401 - used through add_tangents

    consts, carry, xs = _split3(args, num_consts, num_carry)
    lin_c = [is_undefined(a) for a in consts]
    lin_k = [is_undefined(a) for a in carry]
    lin_x = [is_undefined(a) for a in xs]
    # A carry that starts from a known value (an instantiated zero tangent) but
    # is combined with linear inputs is linear from the first step on.
    while True:
        dep = _dependence(body, lin_c + lin_k + lin_x)[:num_carry]
        new = [a or b for a, b in zip(lin_k, dep)]
        if new == lin_k:
            break
        lin_k = new
    carry = [UndefinedPrimal(get_aval(a)) if lf and not is_undefined(a) else a
             for a, lf in zip(carry, lin_k)]
    c_av, k_av, x_av = _split3(body.in_avals, num_consts, num_carry)
    kc = [a for a, lf in zip(consts, lin_c) if not lf]
    kk = [a for a, lf in zip(carry, lin_k) if not lf]
    kx = [a for a, lf in zip(xs, lin_x) if not lf]
    lc_av = [a for a, lf in zip(c_av, lin_c) if lf]
    lk_av = [a for a, lf in zip(k_av, lin_k) if lf]
    lx_av = [a for a, lf in zip(x_av, lin_x) if lf]
    kc_av = [a for a, lf in zip(c_av, lin_c) if not lf]
    kk_av = [a for a, lf in zip(k_av, lin_k) if not lf]
    kx_av = [a for a, lf in zip(x_av, lin_x) if not lf]
    y_av = body.out_avals[num_carry:]

    def merge(known, linear, flags):
        ik, il = iter(known), iter(linear)
        return [next(il) if f else next(ik) for f in flags]

    def body_split(kc_, lc_, kk_, lk_, kx_, lx_):
        outs = _run(body, merge(kc_, lc_, lin_c) + merge(kk_, lk_, lin_k) + merge(kx_, lx_, lin_x))
        return outs[:num_carry], outs[num_carry:]

    # 1. forward: the non-linear carries at every step (residuals)
    def fwd_body(*a):
        kc_, kk_, kx_ = _split3(a, len(kc), len(kk))
        zeros = lambda avs: [ad.zeros_like_aval(v) for v in avs]  # noqa: E731
        new_carry, _ = body_split(kc_, zeros(lc_av), kk_, zeros(lk_av), kx_, zeros(lx_av))
        new_known = [c for c, lf in zip(new_carry, lin_k) if not lf]
        return new_known + list(kk_)

    fbody, fconsts = _trace(fwd_body, kc_av + kk_av + kx_av)
    fouts = scan_p.bind(*fconsts, *kc, *kk, *kx, body=fbody, num_consts=len(fconsts) + len(kc),
                        num_carry=len(kk), length=length, reverse=reverse, name=name)
    residual_carries = fouts[len(kk):]

    # 2. backward: reverse scan of the step's VJP w.r.t. its linear inputs
    ct_carry_out = [c for c, lf in zip(cts[:num_carry], lin_k) if lf]
    ct_carry_out = [ad.zeros_like_aval(a) if c is None or type(c) is Zero else c
                    for c, a in zip(ct_carry_out, lk_av)]
    ct_ys = [ad.zeros_like_aval(ShapedArray((length,) + a.shape, a.dtype))
             if c is None or type(c) is Zero else c for c, a in zip(cts[num_carry:], y_av)]

    def bwd_body(*a):
        n1, n2 = len(kc), len(lc_av)
        kc_ = a[:n1]
        ct_c_acc = a[n1:n1 + n2]
        ct_k = a[n1 + n2:n1 + n2 + len(lk_av)]
        rest = a[n1 + n2 + len(lk_av):]
        kx_, kk_, cty = rest[:len(kx)], rest[len(kx):len(kx) + len(kk)], rest[len(kx) + len(kk):]

        def linear_step(*lin):
            lc_, lk_, lx_ = _split3(lin, len(lc_av), len(lk_av))
            new_carry, ys = body_split(kc_, lc_, kk_, lk_, kx_, lx_)
            return [c for c, lf in zip(new_carry, lin_k) if lf] + list(ys)

        zeros = [ad.zeros_like_aval(v) for v in lc_av + lk_av + lx_av]
        _, f_vjp = ad.vjp_flat(linear_step, zeros)
        res = f_vjp(list(ct_k) + list(cty))
        res = [ad.zeros_like_aval(v) if r is None else r
               for r, v in zip(res, lc_av + lk_av + lx_av)]
        d_c, d_k, d_x = _split3(res, len(lc_av), len(lk_av))
        acc = [ad.add_any_p.bind(x, y) for x, y in zip(ct_c_acc, d_c)]
        return acc + list(d_k) + list(d_x)

    b_avals = (kc_av + [_tangent_aval(a) for a in lc_av] + [_tangent_aval(a) for a in lk_av]
               + kx_av + kk_av + [_tangent_aval(a) for a in y_av])
    bbody, bconsts = _trace(bwd_body, b_avals)
    acc0 = [ad.zeros_like_aval(_tangent_aval(a)) for a in lc_av]
    bouts = scan_p.bind(*bconsts, *kc, *acc0, *ct_carry_out, *kx, *residual_carries, *ct_ys,
                        body=bbody, num_consts=len(bconsts) + len(kc),
                        num_carry=len(acc0) + len(lk_av), length=length, reverse=not reverse,
                        name=name)
    ct_consts = iter(bouts[:len(acc0)])
    ct_init = iter(bouts[len(acc0):len(acc0) + len(lk_av)])
    ct_xs = iter(bouts[len(acc0) + len(lk_av):])
    return ([next(ct_consts) if lf else None for lf in lin_c]
            + [next(ct_init) if lf else None for lf in lin_k]
            + [next(ct_xs) if lf else None for lf in lin_x])


def _dependence(graph: Graph, flags) -> list[bool]:
    """Which outputs of ``graph`` depend on the inputs marked in ``flags``."""
    marked = {id(v) for v, f in zip(graph.in_vars, flags) if f}
    for e in graph.eqns:
        if any(id(v) in marked for v in e.inputs):
            marked.update(id(v) for v in e.outputs)
    return [id(v) in marked for v in graph.outs]


def _scan_batch(vals, dims, *, body, num_consts, num_carry, length, reverse, name):
    from funcnet.transforms.batching import axis_size_of, batch_flat, bdim_at_front, moveaxis

    size = axis_size_of(vals, dims)
    consts, carry, xs = _split3(vals, num_consts, num_carry)
    dc, dk, dx = _split3(dims, num_consts, num_carry)
    # per-step x: batch axis 0 once the scan axis (0) is removed
    xs = [x if d is None else moveaxis(x, d, 1) for x, d in zip(xs, dx)]
    step_dx = [None if d is None else 0 for d in dx]
    k_batched = [d is not None for d in dk]
    while True:
        out_batched = []

        def probe(*a):
            outs, odims = batch_flat(lambda *ys: _run(body, ys), list(a),
                                     dc + [0 if b else None for b in k_batched] + step_dx, size)
            out_batched[:] = [d is not None for d in odims[:num_carry]]
            return outs

        from funcnet.transforms.api import trace_to_graph

        in_avals = [get_aval(v) for v in consts] + [
            ShapedArray((size,) + a.shape, a.dtype) if b else a
            for a, b in zip(body.in_avals[num_consts:num_consts + num_carry], k_batched)] + [
            get_aval(x[0]) for x in xs]
        trace_to_graph(probe, in_avals)
        new = [a or b for a, b in zip(k_batched, out_batched)]
        if new == k_batched:
            break
        k_batched = new
    carry = [bdim_at_front(c, d, size) if b else c for c, d, b in zip(carry, dk, k_batched)]

    def batched_body(*a):
        outs, odims = batch_flat(lambda *ys: _run(body, ys), list(a),
                                 dc + [0 if b else None for b in k_batched] + step_dx, size)
        res = []
        for i, (o, d) in enumerate(zip(outs, odims)):
            if i < num_carry and not k_batched[i]:
                res.append(o)
            else:
                res.append(bdim_at_front(o, d, size))
        return res

    bbody, bconsts = _trace(batched_body, in_avals)
    outs = scan_p.bind(*bconsts, *consts, *carry, *xs, body=bbody,
                       num_consts=len(bconsts) + num_consts, num_carry=num_carry, length=length,
                       reverse=reverse, name=name)
    out_dims = [0 if b else None for b in k_batched] + [1] * (len(outs) - num_carry)
    return outs, out_dims


scan_p.abstract_eval = _scan_abstract_eval
scan_p.impl = _scan_impl
scan_p.jvp = _scan_jvp
scan_p.transpose = _scan_transpose
scan_p.batch = _scan_batch
scan_p.linear = True  # linear in operands the body is linear in


# ===========================================================================
# while

while_p = Primitive("while", multiple_results=True)


def _while_abstract_eval(*avals, cond, body, num_cond_consts, num_body_consts, name):
    carry = avals[num_cond_consts + num_body_consts:]
    c_out = cond.out_avals
    if len(c_out) != 1 or c_out[0].shape != () or c_out[0].dtype != np.bool_:
        raise TypeError(f"while_loop {name}: cond_fun must return a boolean scalar, got "
                        f"{_types(c_out)}")
    if not _same_types(body.out_avals, carry):
        raise TypeError(f"while_loop {name}: body_fun must return the carry's types: got "
                        f"{_types(carry)} in, {_types(body.out_avals)} out")
    return [_tangent_aval(a) for a in carry]


def _while_impl(*args, cond, body, num_cond_consts, num_body_consts, name):
    cc = args[:num_cond_consts]
    bc = args[num_cond_consts:num_cond_consts + num_body_consts]
    carry = list(args[num_cond_consts + num_body_consts:])
    c, b = _compiled(cond), _compiled(body)
    while bool(c(*cc, *carry)[0]):
        carry = b(*bc, *carry)
    return carry


def _while_jvp(primals, tangents, *, cond, body, num_cond_consts, num_body_consts, name):
    params = dict(cond=cond, body=body, num_cond_consts=num_cond_consts,
                  num_body_consts=num_body_consts, name=name)
    primal_out = while_p.bind(*primals, **params)
    n0 = num_cond_consts + num_body_consts
    cc, bc, carry = primals[:num_cond_consts], primals[num_cond_consts:n0], primals[n0:]
    t_bc, t_carry = tangents[num_cond_consts:n0], tangents[n0:]
    nz_b = [type(t) is not Zero for t in t_bc]
    if not any(nz_b) and all(type(t) is Zero for t in t_carry):
        return primal_out, [Zero(get_aval(o)) for o in primal_out]
    k_av = body.in_avals[num_body_consts:]
    b_av = body.in_avals[:num_body_consts]
    nz_k = [_is_float(a) for a in k_av]
    nbt = sum(nz_b)

    def tbody(*a):
        bp, bt = a[:num_body_consts], a[num_body_consts:num_body_consts + nbt]
        kp = a[num_body_consts + nbt:num_body_consts + nbt + len(k_av)]
        kt = a[num_body_consts + nbt + len(k_av):]
        ib, ik = iter(bt), iter(kt)
        tin = ([next(ib) if z else Zero(_tangent_aval(v)) for z, v in zip(nz_b, b_av)]
               + [next(ik) if z else Zero(_tangent_aval(v)) for z, v in zip(nz_k, k_av)])
        outs, touts = ad.jvp_flat(lambda *ys: _run(body, ys), list(bp) + list(kp), tin)
        return list(outs) + [ad.instantiate(t) for t, z in zip(touts, nz_k) if z]

    tb, tbc = _trace(tbody, b_av + [_tangent_aval(a) for a, z in zip(b_av, nz_b) if z] + k_av
                     + [_tangent_aval(a) for a, z in zip(k_av, nz_k) if z])

    def tcond(*a):
        return _run(cond, list(a[:num_cond_consts]) + list(a[num_cond_consts:
                                                                num_cond_consts + len(k_av)]))

    tc, tcc = _trace(tcond, cond.in_avals[:num_cond_consts] + k_av
                     + [_tangent_aval(a) for a, z in zip(k_av, nz_k) if z])
    t_args = (list(tcc) + list(cc) + list(tbc) + list(bc)
              + [t for t, z in zip(t_bc, nz_b) if z] + list(carry)
              + [ad.instantiate(t) if type(t) is not Zero else ad.zeros_like_aval(
                  _tangent_aval(a)) for t, a, z in zip(t_carry, k_av, nz_k) if z])
    outs = while_p.bind(*t_args, cond=tc, body=tb, num_cond_consts=len(tcc) + num_cond_consts,
                        num_body_consts=len(tbc) + num_body_consts + nbt, name=name)
    it = iter(outs[len(k_av):])
    return primal_out, [next(it) if z else Zero(get_aval(o)) for z, o in zip(nz_k, primal_out)]


def _while_transpose(cts, *args, cond, body, num_cond_consts, num_body_consts, name):
    raise TypeError(
        f"reverse-mode differentiation (grad, vjp, jacrev) of lax.while_loop {name} is not "
        "supported: its number of iterations is only known at run time, so the backward pass "
        "cannot be planned. Use lax.bounded_while_loop(cond_fun, body_fun, init, max_steps), "
        "lax.fori_loop with static bounds, or lax.scan; forward mode (jvp, jacfwd) works.")


def _while_batch(vals, dims, *, cond, body, num_cond_consts, num_body_consts, name):
    from funcnet.ops import elementwise as ew
    from funcnet.ops import reductions as red
    from funcnet.ops.shape import reshape
    from funcnet.transforms.api import trace_to_graph
    from funcnet.transforms.batching import axis_size_of, batch_flat, bdim_at_front

    size = axis_size_of(vals, dims)
    n0 = num_cond_consts + num_body_consts
    cc, bc, carry = vals[:num_cond_consts], vals[num_cond_consts:n0], vals[n0:]
    dcc, dbc, dk = dims[:num_cond_consts], dims[num_cond_consts:n0], dims[n0:]
    k_av = body.in_avals[num_body_consts:]
    k_b = [d is not None for d in dk]
    pred_batched = [False]
    while True:
        out_b = []

        def probe_body(*a):
            outs, od = batch_flat(lambda *ys: _run(body, ys), list(a),
                                  list(dbc) + [0 if b else None for b in k_b], size)
            out_b[:] = [d is not None for d in od]
            return outs

        def probe_cond(*a):
            outs, od = batch_flat(lambda *ys: _run(cond, ys), list(a),
                                  list(dcc) + [0 if b else None for b in k_b], size)
            pred_batched[0] = od[0] is not None
            return outs

        kb_av = [ShapedArray((size,) + a.shape, a.dtype) if b else a for a, b in zip(k_av, k_b)]
        trace_to_graph(probe_body, [get_aval(v) for v in bc] + kb_av)
        trace_to_graph(probe_cond, [get_aval(v) for v in cc] + kb_av)
        new = [a or b or pred_batched[0] for a, b in zip(k_b, out_b)]
        if new == k_b:
            break
        k_b = new
    carry = [bdim_at_front(c, d, size) if b else c for c, d, b in zip(carry, dk, k_b)]
    kb_av = [get_aval(c) for c in carry]
    kdims = [0 if b else None for b in k_b]

    def batched_pred(*a):
        outs, od = batch_flat(lambda *ys: _run(cond, ys), list(a), list(dcc) + kdims, size)
        return outs[0], od[0]

    def new_cond(*a):
        p, d = batched_pred(*a)
        return [red.reduce_max(p, (0,)) if d is not None else p]

    def new_body(cond_consts, *a):
        ks = a[num_body_consts:]
        outs, od = batch_flat(lambda *ys: _run(body, ys), list(a), list(dbc) + kdims, size)
        outs = [bdim_at_front(o, d, size) if b else o for o, d, b in zip(outs, od, k_b)]
        if not pred_batched[0]:
            return outs
        # finished examples keep their carry: mask the update by the batched predicate
        p, _ = batched_pred(*(list(cond_consts) + list(ks)))
        return [ew.select(reshape(p, (size,) + (1,) * (np.ndim(new) - 1)), new, old)
                for new, old in zip(outs, ks)]

    ncc_n = num_cond_consts if pred_batched[0] else 0
    nb, nbc = _trace(lambda *a: new_body(a[:ncc_n], *a[ncc_n:]),
                     [get_aval(v) for v in cc[:ncc_n]] + [get_aval(v) for v in bc] + kb_av)
    body_consts = list(nbc) + list(cc[:ncc_n]) + list(bc)
    nc, ncc = _trace(new_cond, [get_aval(v) for v in cc] + kb_av)
    outs = while_p.bind(*ncc, *cc, *body_consts, *carry, cond=nc, body=nb,
                        num_cond_consts=len(ncc) + len(cc), num_body_consts=len(body_consts),
                        name=name)
    return outs, kdims


while_p.abstract_eval = _while_abstract_eval
while_p.impl = _while_impl
while_p.jvp = _while_jvp
while_p.transpose = _while_transpose
while_p.batch = _while_batch
while_p.linear = True  # its JVP's tangent loop is linear; the transpose explains the limit


def loop_name(fun) -> str:
    """A readable name for a loop body: its function name and the user's call line."""
    where = user_line()
    return f"{getattr(fun, '__name__', 'function')!s}" + (f" (called at {where})" if where else "")


__all__ = ["cond_p", "scan_p", "while_p", "bind_cond", "loop_name", "Graph"]
