"""Check a function's derivatives against finite differences.

:func:`check_grads` tests funcnet's automatic derivatives of a function the
way HIPS/autograd's ``test_util`` does:

- **forward mode** (``"fwd"``): ``fn.jvp(f, args, v)`` must match the central
  difference ``(f(x + eps*v) - f(x - eps*v)) / (2*eps)`` along a random
  direction ``v``;
- **reverse mode** (``"rev"``): ``fn.vjp`` must satisfy the inner-product
  identity ``<v, J^T u> = <J v, u>`` for a random output cotangent ``u``,
  with ``J v`` taken from finite differences (so a wrong transpose rule
  cannot hide behind an equally wrong JVP rule);
- **higher orders**: for ``order=k`` the same checks run again, with
  ``order=k-1``, on the derivative functions ``(x, v) -> jvp(f, x, v)[1]``
  and ``(x, u) -> vjp(f, x)[1](u)``, so second derivatives are compared with
  finite differences of first derivatives.

Only the floating-point leaves of the arguments are perturbed; integer and
boolean leaves are held fixed (their tangents are zeros of their own dtype).

>>> import numpy as np, funcnet.numpy as fnp
>>> from funcnet.testing import check_grads
>>> check_grads(lambda x: fnp.sin(x) * x, (np.array([0.5, 1.0, 2.0]),))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import funcnet as fn
from funcnet import tree as _tree

__all__ = ["check_grads", "DEFAULT_TOLERANCES"]

#: Per-dtype ``(eps, atol, rtol)``: the finite-difference step and the default
#: tolerances.  The least precise floating dtype among a function's inputs and
#: outputs decides.  The central-difference error is about
#: ``eps**2 * |f'''| / 6`` (truncation) plus ``machine_eps * |f| / eps``
#: (rounding); each ``eps`` balances the two for values of moderate size.
DEFAULT_TOLERANCES: dict[np.dtype, tuple[float, float, float]] = {
    np.dtype(np.float16): (1e-1, 1e-1, 1e-1),
    np.dtype(np.float32): (3e-3, 1e-2, 1e-2),
    np.dtype(np.float64): (1e-5, 1e-5, 1e-5),
}

_MODES = ("fwd", "rev")
_MODE_TEXT = {
    "fwd": "forward mode: fn.jvp against central differences",
    "rev": "reverse mode: <v, vjp(u)> against <finite-difference J v, u>",
}
_SEED = 0
# In reverse mode the FD error of each output element is multiplied by a random
# u_j and summed: the sum has standard deviation sqrt(sum (u_j tol_j)^2) at most,
# and the check allows this many standard deviations (or the sum of |u_j tol_j|
# if that is smaller).
_REV_SIGMAS = 3.0
# When a reverse-mode check fails, at most this many elements of the worst
# input leaf are probed one by one to name the worst element.
_REV_PROBE_LIMIT = 512


def check_grads(f: Callable, args: Sequence[Any], order: int = 2,
                modes: Sequence[str] = _MODES, atol: float | None = None,
                rtol: float | None = None, eps: float | None = None) -> None:
    """Compare ``f``'s forward- and reverse-mode derivatives with finite differences.

    ``args`` is a tuple of pytrees of arrays (a non-tuple is taken as the only
    argument) and ``f(*args)`` returns a pytree of arrays.  ``modes`` is any of
    ``"fwd"`` and ``"rev"``; ``order`` (>= 1) is the highest derivative order
    checked.  ``eps`` (the finite-difference step), ``atol`` and ``rtol``
    default per dtype to :data:`DEFAULT_TOLERANCES` (float64: ``1e-5`` each;
    float32: ``eps=3e-3``, ``atol=rtol=1e-2``), chosen by the least precise
    floating dtype among the inputs and outputs.  An element passes when
    ``|got - expected| <= atol * max(1, max|expected|) + rtol * |expected|``,
    where the max runs over its output leaf; in reverse mode these per-element
    allowances are propagated through the inner product with ``u``.  Output
    elements that are NaN or infinite at ``args`` are skipped.  Directions are
    drawn from a fixed-seed NumPy generator, so a check is reproducible.

    Finite differences only mean something where ``f`` is smooth: choose
    ``args`` away from kinks (``abs`` at 0, ties in ``max``) and from the
    edges of ``f``'s domain by more than ``eps``.

    Returns ``None``; raises ``AssertionError`` naming the mode, the order, the
    function checked (``f``, ``jvp(f)``, ``vjp(f)``, …), the leaf paths and the
    worst element (index, expected, got, absolute and relative error).

    >>> import numpy as np, funcnet.numpy as fnp
    >>> params = {"w": np.array([[1.0, -2.0], [0.5, 3.0]]), "b": np.array([0.1, 0.2])}
    >>> x = np.array([0.3, -0.7])
    >>> check_grads(lambda p, x: fnp.tanh(p["w"] @ x + p["b"]), (params, x))
    >>> check_grads(fnp.exp, (np.float32(1.5),), order=1, modes=("rev",))
    >>> try:
    ...     check_grads(lambda x: fnp.sin(x), (np.array([0.5]),), atol=0, rtol=0, eps=1.0)
    ... except AssertionError as e:
    ...     print(str(e).splitlines()[0])
    check_grads failed: mode='fwd' (forward mode: fn.jvp against central differences), order=1
    """
    if not isinstance(args, tuple):
        args = (args,)
    if isinstance(modes, str):
        modes = (modes,)
    modes = tuple(modes)
    bad = [m for m in modes if m not in _MODES]
    if bad or not modes:
        raise ValueError(f"check_grads: modes must be a non-empty selection of {_MODES}, "
                         f"got {modes!r}")
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or order < 1:
        raise ValueError(f"check_grads: order must be an integer >= 1, got {order!r}")
    checker = _Checker(int(order), modes, atol, rtol, eps)
    name = getattr(f, "__name__", None) or type(f).__name__
    labels = [f"args[{i}]" for i in range(len(args))]
    checker.check(f, _prepare_args(args), labels, name, 1)
    return None


# ---------------------------------------------------------------------------
# Leaves and directions


class _Leaves:
    """The flattened arguments of one call: NumPy values, dtypes and readable paths."""

    def __init__(self, args: tuple, labels: list[str]):
        pairs, self.treedef = _tree.flatten_with_path(args)
        self.paths = [labels[p[0].idx] + _tree.keystr(p[1:]) for p, _ in pairs]
        self.values = [np.asarray(fn.to_numpy(x)) for _, x in pairs]
        for path, v in zip(self.paths, self.values):
            if v.dtype.kind == "c":
                raise TypeError(f"check_grads: {path} is complex ({v.dtype}); only real "
                                "floating-point inputs can be checked")
            if v.dtype.kind not in "fiub":
                raise TypeError(f"check_grads: {path} has dtype {v.dtype}, not a numeric array")
        self.is_float = [v.dtype.kind == "f" for v in self.values]

    def rebuild(self, values: list) -> tuple:
        return _tree.unflatten(self.treedef, [fn.device_put(v) for v in values])

    def float_indices(self) -> list[int]:
        return [i for i, f in enumerate(self.is_float) if f]


def _prepare_args(args: tuple) -> tuple:
    """Python scalars and lists become arrays of the dtype funcnet gives them."""
    import funcnet.numpy as fnp

    def conv(x):
        if hasattr(x, "shape") and hasattr(x, "dtype"):
            return x
        return fnp.asarray(x)

    return tuple(_tree.map(conv, a) for a in args)


def _hi(dtype: np.dtype) -> np.dtype:
    """The working precision for differences: float64 or better."""
    return np.promote_types(dtype, np.float64)


def _random_like(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A standard normal array shaped like ``x`` (float64); zeros for non-float ``x``."""
    if x.dtype.kind != "f":
        return np.zeros(x.shape, np.float64)
    return rng.standard_normal(x.shape)


def _steps(x: np.ndarray, v: np.ndarray, eps: float):
    """``(x_plus, x_minus, v_exact)`` with ``x_plus - x_minus == 2 * eps * v_exact`` exactly.

    ``x +- eps*v`` is rounded to ``x``'s dtype; measuring the step actually
    taken removes that rounding from the finite difference.
    """
    hi = _hi(x.dtype)
    xh = x.astype(hi)
    xp = (xh + eps * v).astype(x.dtype)
    xm = (xh - eps * v).astype(x.dtype)
    return xp, xm, (xp.astype(hi) - xm.astype(hi)) / (2 * eps)


class _Outputs:
    """The flattened output of one call, as NumPy arrays with paths."""

    def __init__(self, out: Any):
        pairs, self.treedef = _tree.flatten_with_path(out)
        self.paths = ["out" + _tree.keystr(p) for p, _ in pairs]
        self.values = [np.asarray(fn.to_numpy(x)) for _, x in pairs]
        self.is_float = [v.dtype.kind == "f" for v in self.values]


# ---------------------------------------------------------------------------
# Comparison


class _Worst:
    """The worst element of a comparison (largest error relative to what is allowed)."""

    def __init__(self, ratio, index, expected, got, allowed):
        self.ratio = float(ratio)
        self.index = index
        self.expected = float(expected)
        self.got = float(got)
        self.allowed = float(allowed)

    @property
    def ok(self) -> bool:
        return self.ratio <= 1.0

    def describe(self, expected_by: str, got_by: str, where: str = "worst element") -> str:
        err = abs(self.got - self.expected)
        rel = err / abs(self.expected) if self.expected != 0 else float("inf")
        idx = "" if self.index is None else f" at index {self.index}"
        return (f"  {where}{idx}:\n"
                f"    expected {self.expected:.9g} ({expected_by})\n"
                f"    got      {self.got:.9g} ({got_by})\n"
                f"    abs error {err:.3g}, rel error {rel:.3g}, allowed {self.allowed:.3g}")


def _worst_element(expected: np.ndarray, got: np.ndarray, atol: float, rtol: float,
                   mask: np.ndarray | None = None) -> _Worst:
    """Elementwise ``|got - expected| <= atol * max(1, max|expected|) + rtol * |expected|``.

    Elements where ``mask`` is False are not compared.
    """
    e = np.asarray(expected, np.float64)
    g = np.asarray(got, np.float64)
    if mask is None:
        mask = np.ones(e.shape, bool)
    if e.size == 0 or not mask.any():
        return _Worst(0.0, None, 0.0, 0.0, 0.0)
    finite = np.abs(e[np.isfinite(e) & mask])
    scale = max(1.0, float(finite.max(initial=0.0)))
    allowed = atol * scale + rtol * np.abs(e)
    with np.errstate(invalid="ignore"):
        err = np.abs(g - e)
    same = (e == g) | (np.isnan(e) & np.isnan(g))
    err = np.where(same, 0.0, err)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(err == 0, 0.0, err / allowed)
    ratio = np.where(np.isnan(ratio), np.inf, ratio)
    ratio = np.where(mask, ratio, -1.0)
    k = int(np.argmax(ratio))
    index = tuple(int(i) for i in np.unravel_index(k, e.shape))
    return _Worst(ratio.flat[k], index, e.flat[k], g.flat[k], allowed.flat[k])


def _inner(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sum(np.asarray(a, np.float64) * np.asarray(b, np.float64)))


# ---------------------------------------------------------------------------
# The recursive checker


class _Checker:
    def __init__(self, order, modes, atol, rtol, eps):
        self.order = order
        self.modes = modes
        self.atol, self.rtol, self.eps = atol, rtol, eps
        self.rng = np.random.default_rng(_SEED)

    # -- settings -----------------------------------------------------------

    def settings(self, ins: _Leaves, outs: _Outputs) -> tuple[float, float, float]:
        dts = [v.dtype for v, f in zip(ins.values, ins.is_float) if f]
        dts += [v.dtype for v, f in zip(outs.values, outs.is_float) if f]
        least = min(dts, key=lambda d: d.itemsize) if dts else np.dtype(np.float64)
        eps, atol, rtol = DEFAULT_TOLERANCES.get(
            least, DEFAULT_TOLERANCES[np.dtype(np.float64 if least.itemsize >= 8
                                               else np.float32)])
        return (eps if self.eps is None else self.eps,
                atol if self.atol is None else self.atol,
                rtol if self.rtol is None else self.rtol)

    # -- one level ------------------------------------------------------------

    def check(self, f, args: tuple, labels: list[str], name: str, level: int) -> None:
        ins = _Leaves(args, labels)
        if not any(ins.is_float):
            raise ValueError(f"check_grads: {name} has no floating-point input to "
                             "differentiate (integer and boolean inputs are held fixed)")
        outs = _Outputs(f(*args))
        tol = self.settings(ins, outs)
        ctx = _Context(self, f, ins, outs, name, level, tol)
        for mode in self.modes:
            try:
                if mode == "fwd":
                    ctx.check_fwd()
                else:
                    ctx.check_rev()
            except AssertionError:
                raise
            except Exception as e:
                if hasattr(e, "add_note"):  # Python >= 3.11
                    e.add_note(f"(raised while check_grads checked mode={mode!r}, "
                               f"order={level} of {name})")
                raise
        if level >= self.order:
            return
        n = len(args)
        for mode in self.modes:
            if mode == "fwd":
                tangents = tuple(_tree.map(self.random_tangent, a) for a in args)

                def jvp_f(*xs, f=f, n=n):
                    return fn.jvp(f, xs[:n], xs[n:])[1]

                self.check(jvp_f, args + tangents,
                           labels + [f"tangent of {lab}" for lab in labels],
                           f"jvp({name})", level + 1)
            else:
                u = _tree.unflatten(outs.treedef, [
                    self.random_tangent(v) for v in outs.values])

                def vjp_f(*xs, f=f, n=n):
                    return fn.vjp(f, *xs[:n])[1](xs[n])

                self.check(vjp_f, args + (u,), labels + ["cotangent of out"],
                           f"vjp({name})", level + 1)

    def random_tangent(self, x):
        """A random value shaped like ``x`` in its dtype (zeros for non-float dtypes)."""
        x = np.asarray(fn.to_numpy(x))
        return fn.device_put(_random_like(x, self.rng).astype(x.dtype))


class _Context:
    """Everything about checking one function at one order."""

    def __init__(self, checker: _Checker, f, ins: _Leaves, outs: _Outputs, name: str,
                 level: int, tol):
        self.checker = checker
        self.f = f
        self.ins = ins
        self.outs = outs
        self.name = name
        self.level = level
        self.eps, self.atol, self.rtol = tol
        self.rng = checker.rng
        self.mode = "fwd"
        # Derivatives of NaN or infinite outputs mean nothing: those elements are skipped.
        self.masks = [np.isfinite(v) if isf else None
                      for v, isf in zip(outs.values, outs.is_float)]

    # -- helpers --------------------------------------------------------------

    def call(self, values: list) -> _Outputs:
        out = _Outputs(self.f(*self.ins.rebuild(values)))
        if out.treedef != self.outs.treedef:
            self.fail(self.mode, ["  the output structure changed under a perturbed input: "
                                  f"{out.treedef} vs {self.outs.treedef}"])
        return out

    def directions(self, only: int | None = None) -> tuple[list, list, list]:
        """Random ``(plus, minus, v)`` leaf lists; ``only`` restricts to one leaf."""
        plus, minus, vs = [], [], []
        for i, x in enumerate(self.ins.values):
            if self.ins.is_float[i] and (only is None or only == i):
                xp, xm, v = _steps(x, _random_like(x, self.rng), self.eps)
            else:
                xp = xm = x
                v = np.zeros(x.shape, np.float64)
            plus.append(xp)
            minus.append(xm)
            vs.append(v)
        return plus, minus, vs

    def central_difference(self, plus: list, minus: list) -> list:
        """``(f(plus) - f(minus)) / (2 eps)`` per output leaf (float64; ``None`` if not float)."""
        fp, fm = self.call(plus), self.call(minus)
        out = []
        for a, b, isf in zip(fp.values, fm.values, self.outs.is_float):
            if not isf:
                out.append(None)
                continue
            hi = _hi(a.dtype)
            with np.errstate(invalid="ignore", over="ignore"):
                out.append((a.astype(hi) - b.astype(hi)) / (2 * self.eps))
        return out

    def tangents_from(self, vs: list) -> list:
        return [v.astype(x.dtype) for v, x in zip(vs, self.ins.values)]

    def header(self, mode: str) -> list[str]:
        return [f"check_grads failed: mode={mode!r} ({_MODE_TEXT[mode]}), order={self.level}",
                f"  function checked: {self.name}"
                + ("" if self.level == 1 else
                   f" (order {self.level} checks derivatives of this derivative function)"),
                f"  eps={self.eps:g}, atol={self.atol:g}, rtol={self.rtol:g}"]

    def fail(self, mode: str, lines: list[str]):
        raise AssertionError("\n".join(self.header(mode) + lines))

    def check_shapes(self, mode: str, what: str, paths, got, like) -> None:
        for path, g, x in zip(paths, got, like):
            if g.shape != x.shape:
                self.fail(mode, [f"  {what} for {path} has shape {g.shape}, expected {x.shape}"])

    def check_primal(self, mode: str, via: str, out) -> None:
        got = _Outputs(out)
        if got.treedef != self.outs.treedef:
            self.fail(mode, [f"  {via} returned output structure {got.treedef}, "
                             f"but f returns {self.outs.treedef}"])
        for path, g, e in zip(self.outs.paths, got.values, self.outs.values):
            if g.shape != e.shape:
                self.fail(mode, [f"  {via}: primal output {path} has shape {g.shape}, "
                                 f"f gives {e.shape}"])
            if e.dtype.kind == "f":
                w = _worst_element(e, g, self.atol, self.rtol)
                if not w.ok:
                    self.fail(mode, [f"  the primal output of {via} differs from f(*args) "
                                     f"at {path}",
                                     w.describe("f(*args)", via)])

    # -- forward mode ---------------------------------------------------------

    def fwd_compare(self, only: int | None):
        """Worst element over the output leaves along a random direction: (path, _Worst)."""
        plus, minus, vs = self.directions(only)
        primal_out, t_out = fn.jvp(self.f, self.ins.rebuild(self.ins.values),
                                   self.ins.rebuild(self.tangents_from(vs)))
        if only is None:
            self.check_primal("fwd", "fn.jvp", primal_out)
        got = _Outputs(t_out)
        self.check_shapes("fwd", "the tangent output", self.outs.paths, got.values,
                          self.outs.values)
        fd = self.central_difference(plus, minus)
        worst = None
        for path, e, g, m in zip(self.outs.paths, fd, got.values, self.masks):
            if e is None:
                continue
            w = _worst_element(e, g, self.atol, self.rtol, m)
            if worst is None or w.ratio > worst[1].ratio:
                worst = (path, w)
        return worst

    def check_fwd(self) -> None:
        self.mode = "fwd"
        worst = self.fwd_compare(None)
        if worst is None or worst[1].ok:
            return
        lines = []
        floats = self.ins.float_indices()
        culprits = []
        if len(floats) > 1:
            for i in floats:
                w = self.fwd_compare(i)
                if w is not None and not w[1].ok:
                    culprits.append((i, w))
        if culprits:
            i, worst = max(culprits, key=lambda c: c[1][1].ratio)
            others = [self.ins.paths[j] for j, _ in culprits if j != i]
            lines.append(f"  input leaf: {self.ins.paths[i]} (perturbed alone, it fails)"
                         + (f"; also failing alone: {', '.join(others)}" if others else ""))
        elif len(floats) == 1:
            lines.append(f"  input leaf: {self.ins.paths[floats[0]]}")
        else:
            lines.append("  input leaves: all floating inputs perturbed together "
                         "(no single input leaf fails alone)")
        path, w = worst
        lines.append(f"  output leaf: {path} ({_short(self.outs.values, self.outs.paths, path)})")
        lines.append(w.describe("central finite differences", "fn.jvp"))
        self.fail("fwd", lines)

    # -- reverse mode ---------------------------------------------------------

    def cotangent(self):
        us = [_random_like(v, self.rng) for v in self.outs.values]
        us = [u if m is None else np.where(m, u, 0.0) for u, m in zip(us, self.masks)]
        cast = [u.astype(v.dtype) for u, v in zip(us, self.outs.values)]
        tree = _tree.unflatten(self.outs.treedef, [fn.device_put(c) for c in cast])
        # the inner products use exactly the cotangent that fn.vjp receives
        return [c.astype(np.float64) for c in cast], tree

    def rev_expected(self, fd: list, us: list) -> tuple[float, float]:
        """``<J v, u>`` from finite differences, and the error it may carry."""
        total, bound, var = 0.0, 0.0, 0.0
        for e, u, m in zip(fd, us, self.masks):
            if e is None:
                continue
            e = np.where(m, e, 0.0)
            finite = np.abs(e[np.isfinite(e)])
            scale = max(1.0, float(finite.max(initial=0.0)))
            allowed = np.abs(u) * (self.atol * scale + self.rtol * np.abs(e))
            total += _inner(e, u)
            bound += float(np.sum(allowed))
            var += float(np.sum(allowed ** 2))
        # Each element's error is at most its allowance; the sum of the errors
        # times u is bounded by the sum of the allowances (tight for a few
        # outputs), and with random u it rarely exceeds a few standard
        # deviations (tight for many outputs).
        return total, min(bound, _REV_SIGMAS * float(np.sqrt(var)))

    def rev_worst(self, expected, allowed, got, index) -> _Worst:
        with np.errstate(invalid="ignore"):
            err = abs(got - expected)
        if got == expected or (np.isnan(got) and np.isnan(expected)):
            err = 0.0
        ratio = 0.0 if err == 0 else (err / allowed if allowed > 0 else np.inf)
        if np.isnan(ratio):
            ratio = np.inf
        return _Worst(ratio, index, expected, got, allowed)

    def check_rev(self) -> None:
        self.mode = "rev"
        us, u_tree = self.cotangent()
        primal_out, vjp_fn = fn.vjp(self.f, *self.ins.rebuild(self.ins.values))
        self.check_primal("rev", "fn.vjp", primal_out)
        cts_tree = vjp_fn(u_tree)
        pairs, ct_def = _tree.flatten_with_path(tuple(cts_tree))
        if ct_def != self.ins.treedef:
            self.fail("rev", [f"  fn.vjp returned cotangents of structure {ct_def}, "
                              f"the inputs have {self.ins.treedef}"])
        cts = [np.asarray(fn.to_numpy(c)) for _, c in pairs]
        self.check_shapes("rev", "the cotangent", self.ins.paths, cts, self.ins.values)

        plus, minus, vs = self.directions()
        expected, allowed = self.rev_expected(self.central_difference(plus, minus), us)
        got = sum(_inner(v, c) for v, c, isf in zip(vs, cts, self.ins.is_float) if isf)
        joint = self.rev_worst(expected, allowed, got, None)
        if joint.ok:
            return

        # Localise: which input leaf, then which element of it.
        per_leaf = []
        for i in self.ins.float_indices():
            plus, minus, vs = self.directions(i)
            e_i, a_i = self.rev_expected(self.central_difference(plus, minus), us)
            per_leaf.append((i, self.rev_worst(e_i, a_i, _inner(vs[i], cts[i]), None)))
        i, leaf_w = max(per_leaf, key=lambda c: c[1].ratio)
        lines = []
        if not leaf_w.ok:
            others = [self.ins.paths[j] for j, w in per_leaf if not w.ok and j != i]
            lines.append(f"  input leaf: {self.ins.paths[i]} "
                         f"({_short(self.ins.values, self.ins.paths, self.ins.paths[i])})"
                         + (f"; also failing: {', '.join(others)}" if others else ""))
            elem = self.rev_elementwise(i, us, cts[i])
            if elem is not None and not elem.ok:
                lines.append(elem.describe("sum_j u_j * (central difference of out_j along "
                                           "this element)", "fn.vjp cotangent"))
            lines.append(leaf_w.describe("<J v, u> by finite differences",
                                         "<v, vjp(u)>",
                                         where="inner product over this leaf"))
        else:
            lines.append("  input leaves: all floating inputs together "
                         "(no single input leaf fails alone)")
            lines.append(joint.describe("<J v, u> by finite differences", "<v, vjp(u)>",
                                        where="inner product"))
        self.fail("rev", lines)

    def rev_elementwise(self, i: int, us: list, ct: np.ndarray) -> _Worst | None:
        """Probe elements of input leaf ``i`` one at a time: ``(J^T u)[k]`` by differences."""
        x = self.ins.values[i]
        n = x.size
        if n == 0:
            return None
        ks = (np.arange(n) if n <= _REV_PROBE_LIMIT
              else np.sort(self.rng.choice(n, _REV_PROBE_LIMIT, replace=False)))
        worst = None
        for k in ks:
            e_k = np.zeros(n, np.float64)
            e_k[k] = 1.0
            xp, xm, v = _steps(x, e_k.reshape(x.shape), self.eps)
            scale = float(v.flat[k])
            if scale == 0:
                continue
            plus = list(self.ins.values)
            minus = list(self.ins.values)
            plus[i], minus[i] = xp, xm
            expected, allowed = self.rev_expected(self.central_difference(plus, minus), us)
            index = tuple(int(j) for j in np.unravel_index(int(k), x.shape))
            w = self.rev_worst(expected / scale, allowed / scale, float(ct.flat[k]), index)
            if worst is None or w.ratio > worst.ratio:
                worst = w
        return worst


def _short(values: list, paths: list, path: str) -> str:
    v = values[paths.index(path)]
    return f"{v.dtype.name}{list(v.shape)}"
