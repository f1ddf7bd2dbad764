"""Graph rewrites the Numba backend makes before fusing: less work inside scans.

A scan's loop runs step after step, so every matrix product inside it is a
small one; the same products over all steps at once are one large, efficient
BLAS call.  Three rewrites, each exact up to floating-point summation order:

- ``dedupe_scans``: two scans over the same operands whose bodies compute the
  same carries run as one scan returning what either returned.  Reverse mode
  produces this pair: the primal scan, and the forward half of the linearised
  scan that stacks residuals.
- ``hoist_projections``: a product of a per-step input with a loop constant
  (``x_t @ U``, an RNN's input projection) becomes one product over all steps,
  computed before the loop and fed to it as a new per-step input.
- ``hoist_accumulators``: a carry that only accumulates a product of a per-step
  input with a per-step value (``gW += x_t.T @ q_t``) or a column sum
  (``gb += q_t.sum(0)``) leaves the loop: the loop stacks ``q_t`` and one
  product (or sum) over all steps adds it up afterwards.  Back-propagation
  through time consists of exactly these accumulations.

The new operations outside the loop are ``HostOp`` pseudo-primitives (a name
and a NumPy kernel), which only the code generator sees.

>>> import numpy as np, funcnet as fn, funcnet.numpy as fnp
>>> from funcnet import lax
>>> def f(w, xs):
...     return lax.scan(lambda h, x: (fnp.tanh(h @ w + x @ w), None), fnp.zeros((4, 2)), xs)[0]
>>> g = fn.jit(f).lower(np.eye(2, dtype=np.float32), np.ones((3, 4, 2), np.float32))
>>> [e.prim.name for e in hoist_projections(g).eqns]
['full', 'hoisted_projection', 'scan']
"""

from __future__ import annotations

import numpy as np

from funcnet.core.graph import Eqn, Graph, Literal, Var


class HostOp:
    """A pseudo-primitive made by these passes: ``name`` and a NumPy ``kernel``."""

    multiple_results = False

    def __init__(self, name: str, kernel):
        self.name = name
        self.kernel = kernel

    def __repr__(self) -> str:
        return self.name


def _subst(env: dict, v):
    return env.get(id(v), v) if type(v) is Var else v


def _rebuild(graph: Graph, eqns: list, outs: list) -> Graph:
    new = Graph(graph.const_vars, graph.consts, graph.in_vars, eqns, outs)
    if hasattr(graph, "name"):
        new.name = graph.name
    return new


def _params_equal(a: dict, b: dict, skip=()) -> bool:
    if a.keys() != b.keys():
        return False
    for k in a:
        if k in skip:
            continue
        x, y = a[k], b[k]
        if x is y:
            continue
        try:
            if type(x) is not type(y) or not bool(x == y):
                return False
        except Exception:
            return False
    return True


def _eqn_key(prim, inputs, params):
    ins = tuple(("L", type(v.val), v.val) if type(v) is Literal else id(v) for v in inputs)
    try:
        key = (id(prim), ins, tuple(sorted(params.items())))
        hash(key)
    except TypeError:
        return None
    return key


def _merge_bodies(a: Graph, b: Graph, nk: int):
    """One body computing what both ``a`` and ``b`` compute (shared equations once):
    ``(body, where)`` with ``where[k]`` the index in the merged outputs of ``a``'s
    output ``k``; None when their carries differ."""
    if (len(a.in_vars) != len(b.in_vars) or len(a.const_vars) != len(b.const_vars)
            or any(x is not y for x, y in zip(a.consts, b.consts))
            or any((x.aval.shape, x.aval.dtype) != (y.aval.shape, y.aval.dtype)
                   for x, y in zip(a.in_vars, b.in_vars))):
        return None
    env = {id(x): y for x, y in zip(a.in_vars + a.const_vars, b.in_vars + b.const_vars)}
    seen: dict = {}
    eqns = []
    n_b = None
    for graph in (b, a):  # b's equations first, then a's (reusing what b computed)
        for e in graph.eqns:
            ins = [_subst(env, v) for v in e.inputs]
            key = _eqn_key(e.prim, ins, e.params)
            if key is not None and key in seen:
                env.update({id(o): n for o, n in zip(e.outputs, seen[key])})
                continue
            if key is not None:
                seen[key] = e.outputs
            eqns.append(Eqn(e.prim, ins, e.params, e.outputs, e.source))
        if n_b is None:
            n_b = len(eqns)
    b_outs = [_subst(env, v) for v in b.outs]
    a_outs = [_subst(env, v) for v in a.outs]
    if any(x is not y for x, y in zip(a_outs[:nk], b_outs[:nk])):
        return None
    if len(eqns) - n_b > len(a.eqns) // 2 + 1:
        return None  # little in common: nothing to gain
    outs = list(b_outs)
    where = list(range(nk))
    for v in a_outs[nk:]:
        idx = next((k for k in range(nk, len(outs)) if outs[k] is v), None)
        if idx is None:
            outs.append(v)
            idx = len(outs) - 1
        where.append(idx)
    body = Graph(b.const_vars, b.consts, b.in_vars, eqns, outs)
    return body, where


def dedupe_scans(graph: Graph) -> Graph:
    """Run once two scans with equal operands whose bodies compute the same carries
    (see the module doc): one scan with the union of their outputs."""
    scans = [i for i, e in enumerate(graph.eqns) if e.prim.name == "scan"]
    if len(scans) < 2:
        return graph
    merged: dict[int, Eqn] = {}   # position of the first scan -> the merged equation
    removed: set[int] = set()
    env: dict[int, Var] = {}
    for ai, i in enumerate(scans):
        if i in removed or i in merged:
            continue
        a = graph.eqns[i]
        for j in scans[ai + 1:]:
            if j in removed:
                continue
            b = graph.eqns[j]
            if len(a.inputs) != len(b.inputs) or any(
                    x is not y for x, y in zip(a.inputs, b.inputs)) or not _params_equal(
                    a.params, b.params, skip=("body", "name")):
                continue
            nk, length = a.params["num_carry"], a.params["length"]
            made = _merge_bodies(a.params["body"], b.params["body"], nk)
            if made is None:
                continue
            body, where = made
            outputs = list(b.outputs)
            for v in body.outs[len(b.outputs):]:
                outputs.append(Var(type(v.aval)((length,) + v.aval.shape, v.aval.dtype)))
            for v, k in zip(a.outputs, where):
                env[id(v)] = outputs[k]
            merged[i] = Eqn(b.prim, list(b.inputs), dict(b.params, body=body), outputs,
                            b.source)
            removed.add(j)
            break
    if not merged:
        return graph
    eqns = []
    for i, e in enumerate(graph.eqns):
        if i in removed:
            continue
        e = merged.get(i, e)
        eqns.append(Eqn(e.prim, [_subst(env, v) for v in e.inputs], e.params, e.outputs,
                        e.source))
    return _rebuild(graph, eqns, [_subst(env, v) for v in graph.outs])


# ---------------------------------------------------------------------------
# Hoisting work out of scan loops


def _uses(graph: Graph) -> dict:
    uses: dict[int, list] = {}
    for e in graph.eqns:
        for v in e.inputs:
            if type(v) is Var:
                uses.setdefault(id(v), []).append(e)
    return uses


def _plain_2d_dot(e: Eqn) -> bool:
    if e.prim.name != "dot_general":
        return False
    (lc, rc), (lb, rb) = e.params["dimension_numbers"]
    x, y = e.inputs
    return (not lb and not rb and len(lc) == 1 and type(x) is Var and type(y) is Var
            and x.aval.ndim == 2 and y.aval.ndim == 2 and x.aval.dtype == y.aval.dtype
            and x.aval.dtype.kind == "f")


def _projection_kernel(rc: int):
    def kernel(xs, c):
        t, b, i = xs.shape
        w = c if rc == 0 else c.T
        return np.matmul(xs.reshape(t * b, i), w).reshape(t, b, w.shape[1])

    return kernel


def _rewrite_scans(graph: Graph, rewrite) -> Graph:
    """Apply ``rewrite(eqn) -> list of eqns | None`` to every scan equation."""
    eqns, changed = [], False
    for e in graph.eqns:
        new = rewrite(e) if e.prim.name == "scan" else None
        if new is None:
            eqns.append(e)
        else:
            eqns.extend(new)
            changed = True
    return _rebuild(graph, eqns, graph.outs) if changed else graph


def hoist_projections(graph: Graph) -> Graph:
    """Move ``x_t @ C`` (per-step input times a loop constant) out of scans."""

    def rewrite(e: Eqn):
        p = e.params
        body, nc, nk = p["body"], p["num_consts"], p["num_carry"]
        if p["length"] < 2:
            return None
        ins = body.in_vars
        xs_pos = {id(v): k for k, v in enumerate(ins) if k >= nc + nk}
        const_pos = {id(v): k for k, v in enumerate(ins) if k < nc}
        pre, new_x_vars, new_x_ops, drop, env = [], [], [], set(), {}
        for q in body.eqns:
            if not _plain_2d_dot(q):
                continue
            (lc, rc), _ = q.params["dimension_numbers"]
            x, c = q.inputs
            if id(x) not in xs_pos or id(c) not in const_pos or lc[0] != 1:
                continue
            outer_x = e.inputs[xs_pos[id(x)]]
            outer_c = e.inputs[const_pos[id(c)]]
            out_aval = q.outputs[0].aval
            stacked = Var(type(out_aval)((p["length"],) + out_aval.shape, out_aval.dtype))
            pre.append(Eqn(HostOp("hoisted_projection", _projection_kernel(rc[0])),
                           [outer_x, outer_c], {}, [stacked]))
            inner = Var(out_aval)
            env[id(q.outputs[0])] = inner
            new_x_vars.append(inner)
            new_x_ops.append(stacked)
            drop.add(id(q))
        if not pre:
            return None
        body_eqns = [Eqn(q.prim, [_subst(env, v) for v in q.inputs], q.params, q.outputs,
                         q.source) for q in body.eqns if id(q) not in drop]
        new_body = Graph(body.const_vars, body.consts, ins + new_x_vars, body_eqns,
                         [_subst(env, v) for v in body.outs])
        new_body.__dict__.update({k: v for k, v in body.__dict__.items()
                                  if k in ("name",)})
        scan = Eqn(e.prim, list(e.inputs) + new_x_ops, dict(p, body=new_body), e.outputs,
                   e.source)
        return pre + [scan]

    return _rewrite_scans(graph, rewrite)


def _acc_dot_kernel(x_first: bool):
    def kernel(c0, xs, qs):
        x2 = xs.reshape(-1, xs.shape[-1])
        q2 = qs.reshape(-1, qs.shape[-1])
        prod = np.matmul(x2.T, q2) if x_first else np.matmul(q2.T, x2)
        return c0 + prod

    return kernel


def _acc_sum_kernel(c0, qs):
    return c0 + qs.reshape(-1, qs.shape[-1]).sum(axis=0)


def hoist_accumulators(graph: Graph) -> Graph:
    """Move carries that only accumulate ``x_t.T @ q_t`` or ``q_t.sum(0)`` out of scans."""

    def rewrite(e: Eqn):
        p = e.params
        body, nc, nk = p["body"], p["num_consts"], p["num_carry"]
        if p["length"] < 2 or nk == 0:
            return None
        ins, outs = body.in_vars, body.outs
        uses = _uses(body)
        producer = {id(v): q for q in body.eqns for v in q.outputs}
        xs_pos = {id(v): k for k, v in enumerate(ins) if k >= nc + nk}
        out_ids = [id(v) for v in outs]
        moved = []  # (carry index, kind, x var or None, q var, add eqn, term eqn)
        for j in range(nk):
            cin, cout = ins[nc + j], outs[j]
            if type(cout) is not Var or out_ids.count(id(cout)) != 1 or uses.get(id(cout)):
                continue
            add = producer.get(id(cout))
            if add is None or add.prim.name not in ("add", "add_any") or len(
                    uses.get(id(cin), [])) != 1 or uses[id(cin)][0] is not add \
                    or id(cin) in out_ids:
                continue
            others = [v for v in add.inputs if v is not cin]
            if len(others) != 1 or type(others[0]) is not Var:
                continue
            t = others[0]
            term = producer.get(id(t))
            if term is None or len(uses.get(id(t), [])) != 1 or id(t) in out_ids \
                    or t.aval.shape != cin.aval.shape or t.aval.dtype != cin.aval.dtype:
                continue
            if _plain_2d_dot(term):
                (lc, rc), _ = term.params["dimension_numbers"]
                a, b = term.inputs
                if lc != (0,) or rc != (0,):
                    continue
                if id(a) in xs_pos:
                    moved.append((j, "dot_x_first", a, b, add, term))
                elif id(b) in xs_pos:
                    moved.append((j, "dot_x_second", b, a, add, term))
            elif term.prim.name == "reduce_sum" and tuple(term.params["axes"]) == (0,) \
                    and type(term.inputs[0]) is Var and term.inputs[0].aval.ndim == 2 \
                    and term.inputs[0].aval.dtype.kind == "f":
                moved.append((j, "sum", None, term.inputs[0], add, term))
        if not moved:
            return None
        drop = {id(m[4]) for m in moved} | {id(m[5]) for m in moved}
        gone = {m[0] for m in moved}
        length = p["length"]
        new_ys_inner, post = [], []
        extra_outputs = []
        stacked: dict[int, Var] = {}  # one stacked output per distinct q
        for j, kind, x, q, _, _ in moved:
            q_all = stacked.get(id(q))
            if q_all is None:
                q_all = stacked[id(q)] = Var(type(q.aval)((length,) + q.aval.shape, q.aval.dtype))
                new_ys_inner.append(q)
                extra_outputs.append(q_all)
            init = e.inputs[nc + j]
            final = e.outputs[j]
            if kind == "sum":
                post.append(Eqn(HostOp("hoisted_sum", _acc_sum_kernel), [init, q_all], {},
                                [final]))
            else:
                xs_all = e.inputs[xs_pos[id(x)]]
                post.append(Eqn(HostOp("hoisted_product", _acc_dot_kernel(kind == "dot_x_first")),
                                [init, xs_all, q_all], {}, [final]))
        keep = [k for k in range(nk) if k not in gone]
        new_ins = ins[:nc] + [ins[nc + k] for k in keep] + ins[nc + nk:]
        new_outs = [outs[k] for k in keep] + outs[nk:] + new_ys_inner
        body_eqns = [q for q in body.eqns if id(q) not in drop]
        new_body = Graph(body.const_vars, body.consts, new_ins, body_eqns, new_outs)
        new_inputs = (list(e.inputs[:nc]) + [e.inputs[nc + k] for k in keep]
                      + list(e.inputs[nc + nk:]))
        new_outputs = [e.outputs[k] for k in keep] + list(e.outputs[nk:]) + extra_outputs
        scan = Eqn(e.prim, new_inputs, dict(p, body=new_body, num_carry=len(keep)), new_outputs,
                   e.source)
        return [scan] + post

    return _rewrite_scans(graph, rewrite)


def optimize_scans(graph: Graph) -> Graph:
    """All three rewrites, in the order that lets each help the next."""
    if not any(e.prim.name == "scan" for e in graph.eqns):
        return graph
    graph = dedupe_scans(graph)
    graph = hoist_projections(graph)
    return hoist_accumulators(graph)


__all__ = ["HostOp", "dedupe_scans", "hoist_projections", "hoist_accumulators",
           "optimize_scans"]
