"""The optimizer protocol: ``GradientTransformation(init, update)``, composition and state access.

A gradient transformation is a pair of pure functions:

- ``init(params) -> state``: the initial state, a pytree of arrays (a
  NamedTuple per transform);
- ``update(updates, state, params=None, **extra_args) -> (updates, state)``:
  transform the incoming updates (usually gradients) and return the new
  state.

Updates are *added* to the parameters (:func:`apply_updates`); the sign flip
that turns a gradient into a descent step lives only in
:func:`~funcnet.optim.scale_by_learning_rate`.

>>> import funcnet.numpy as fnp
>>> from funcnet import optim
>>> tx = optim.chain(optim.clip_by_global_norm(1.0), optim.sgd(0.1))
>>> params = {"w": fnp.array([1.0, 2.0])}
>>> state = tx.init(params)
>>> updates, state = tx.update({"w": fnp.array([3.0, 4.0])}, state, params)
>>> optim.apply_updates(params, updates)["w"]
array([0.94, 1.92], dtype=float32)
>>> float(optim.get(state, "norm"))
5.0
"""

from __future__ import annotations

import builtins
import functools
import inspect
import weakref
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

import funcnet as fn
from funcnet.optim import _numerics as nx

__all__ = [
    "GradientTransformation", "EmptyState", "identity", "set_to_zero", "stateless",
    "apply_updates", "chain", "named_chain", "get", "get_all", "describe",
    "Schedule", "ScalarOrSchedule",
]

Schedule = Callable[[Any], Any]
ScalarOrSchedule = Any  # a number, a 0-d array, or a Schedule

_MISSING = object()


# ---------------------------------------------------------------------------
# GradientTransformation


class _InitUpdate(NamedTuple):
    init: Callable
    update: Callable


class GradientTransformation(_InitUpdate):
    """A pair ``(init, update)`` of pure functions; see the module docstring.

    It is a NamedTuple, so ``init, update = tx`` works as in optax.  Beyond
    the pair it carries a description used by :func:`describe`: ``name``,
    ``hyperparams`` (a dict), ``children`` (``(label, transform)`` pairs),
    ``child_states`` (a function from this transform's state to its
    children's states), ``status`` (state -> the values to show) and
    ``children_for_state`` (state -> children, when they depend on it).
    A user-written transform needs none of it:

    >>> import funcnet.numpy as fnp
    >>> from funcnet import optim
    >>> double = optim.GradientTransformation(
    ...     lambda params: optim.EmptyState(),
    ...     lambda updates, state, params=None: (
    ...         {k: 2 * v for k, v in updates.items()}, state))
    >>> double.update({"w": fnp.ones(2)}, double.init(None))[0]["w"]
    array([2., 2.], dtype=float32)
    """

    name: str = "transform"
    hyperparams: dict = {}
    children: tuple = ()
    child_states: Callable | None = None
    status: Callable | None = None
    children_for_state: Callable | None = None

    def __new__(cls, init: Callable, update: Callable, *, name: str | None = None,
                hyperparams: dict | None = None, children: tuple = (),
                child_states: Callable | None = None, status: Callable | None = None,
                children_for_state: Callable | None = None):
        self = super().__new__(cls, init, update)
        if name is not None:
            self.name = name
        elif getattr(update, "__name__", "<lambda>") != "<lambda>":
            self.name = update.__name__
        self.hyperparams = dict(hyperparams or {})
        self.children = tuple(children)
        self.child_states = child_states
        self.status = status
        self.children_for_state = children_for_state
        return self

    def __repr__(self) -> str:
        return f"GradientTransformation({_one_line(self)})"


def as_transform(tx) -> GradientTransformation:
    """Accept a ``GradientTransformation``, any ``(init, update)`` pair, or ``MultiSteps``."""
    if isinstance(tx, GradientTransformation):
        return tx
    if hasattr(tx, "gradient_transformation"):
        return tx.gradient_transformation()
    if hasattr(tx, "init") and hasattr(tx, "update"):
        return GradientTransformation(tx.init, tx.update, name=type(tx).__name__)
    if isinstance(tx, tuple) and len(tx) == 2 and all(callable(f) for f in tx):
        return GradientTransformation(*tx)
    raise TypeError(f"expected a GradientTransformation (init, update), got {type(tx).__name__}")


_EXTRA_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _accepted_extra(update: Callable):
    """``True`` if ``update`` takes ``**kwargs``, else the set of keyword names it takes."""
    try:
        return _EXTRA_CACHE[update]
    except (KeyError, TypeError):
        pass
    try:
        params = inspect.signature(update).parameters.values()
    except (TypeError, ValueError):
        accepted: Any = True
    else:
        if any(p.kind is p.VAR_KEYWORD for p in params):
            accepted = True
        else:
            accepted = frozenset(p.name for p in params if p.kind in (
                p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)) - {"updates", "state", "params"}
    try:
        _EXTRA_CACHE[update] = accepted
    except TypeError:  # not weakly referenceable: just not cached
        pass
    return accepted


def call_update(tx: GradientTransformation, updates, state, params, extra: dict):
    """``tx.update(updates, state, params, **extra)``, passing only the extras it accepts.

    Transforms written without ``**extra_args`` (as most user code is) simply
    do not see keyword arguments meant for others in a chain.
    """
    if not extra:
        return tx.update(updates, state, params)
    accepted = _accepted_extra(tx.update)
    if accepted is not True:
        extra = {k: v for k, v in extra.items() if k in accepted}
    return tx.update(updates, state, params, **extra)


# ---------------------------------------------------------------------------
# the simplest transforms


class EmptyState(NamedTuple):
    """The state of a stateless transform (a pytree with no leaves).

    >>> import funcnet.numpy as fnp
    >>> from funcnet import optim
    >>> state = optim.identity().init(fnp.zeros(2))
    >>> type(state).__name__, state._fields
    ('EmptyState', ())
    """


def _init_empty(params):
    return EmptyState()


def identity() -> GradientTransformation:
    """Pass the updates through unchanged.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import optim
    >>> optim.identity().update(fnp.array([1.0]), optim.EmptyState())[0]
    array([1.], dtype=float32)
    """
    def update(updates, state, params=None, **extra_args):
        return updates, state

    return GradientTransformation(_init_empty, update, name="identity")


def set_to_zero() -> GradientTransformation:
    """Replace every update by zeros (freezes parameters; usually inside ``masked``).

    >>> import funcnet.numpy as fnp
    >>> from funcnet import optim
    >>> optim.set_to_zero().update(fnp.array([1.0]), optim.EmptyState())[0]
    array([0.], dtype=float32)
    """
    def update(updates, state, params=None, **extra_args):
        return nx.tree_zeros_like(updates), state

    return GradientTransformation(_init_empty, update, name="set_to_zero")


def stateless(f: Callable, name: str | None = None) -> GradientTransformation:
    """A transform from ``f(updates, params) -> updates`` that keeps no state.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import optim
    >>> neg = optim.stateless(lambda u, p: -u)
    >>> neg.update(fnp.array([1.0]), neg.init(None))[0]
    array([-1.], dtype=float32)
    """
    def update(updates, state, params=None, **extra_args):
        return f(updates, params), state

    return GradientTransformation(_init_empty, update,
                                  name=name or getattr(f, "__name__", "stateless"))


# ---------------------------------------------------------------------------
# applying updates


def apply_updates(params, updates):
    """``params + updates`` leafwise, each result cast back to its parameter's dtype.

    ``None`` leaves pass through: a ``None`` parameter stays ``None`` and a
    ``None`` update leaves its parameter unchanged.

    >>> import numpy as np
    >>> from funcnet import optim
    >>> p = {"w": np.ones(2, np.float16), "frozen": None}
    >>> new = optim.apply_updates(p, {"w": np.full(2, 0.5), "frozen": None})
    >>> new["w"], new["frozen"]
    (array([1.5, 1.5], dtype=float16), None)
    """
    def add(p, u):
        if p is None:
            return None
        if u is None:
            return p
        return nx.cast(p + u, nx.dtype_of(p))

    return fn.tree.map(add, params, updates, is_leaf=lambda x: x is None)


# ---------------------------------------------------------------------------
# composition


def chain(*transforms) -> GradientTransformation:
    """Apply ``transforms`` one after another, **left to right**.

    ``chain(a, b, c).update(g, ...)`` computes ``c(b(a(g)))``: the first
    transform sees the raw gradient, the last one produces the update.  The
    state is the tuple of the transforms' states, in the same order.  Extra
    keyword arguments of ``update`` go to every transform that accepts them.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import optim
    >>> tx = optim.chain(optim.scale(2.0), optim.clip(1.0))   # scale, then clip
    >>> tx.update(fnp.array([0.3, 0.9]), tx.init(None))[0]
    array([0.6, 1. ], dtype=float32)
    """
    txs = tuple(as_transform(t) for t in transforms)

    def init(params):
        return tuple(t.init(params) for t in txs)

    def update(updates, state, params=None, **extra_args):
        if not isinstance(state, tuple) or len(state) != len(txs):
            raise ValueError(f"chain of {len(txs)} transforms got a state that is not a "
                             f"tuple of {len(txs)} states; was it made by this chain's init?")
        new_states = []
        for t, s in zip(txs, state):
            updates, s = call_update(t, updates, s, params, extra_args)
            new_states.append(s)
        return updates, tuple(new_states)

    return GradientTransformation(init, update, name="chain",
                                  children=tuple((None, t) for t in txs),
                                  child_states=lambda s: list(s))


def named_chain(*pairs: tuple[str, Any]) -> GradientTransformation:
    """Like :func:`chain`, with each transform named; the state is a dict by name.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import optim
    >>> tx = optim.named_chain(("clip", optim.clip_by_global_norm(1.0)),
    ...                        ("sgd", optim.sgd(0.1)))
    >>> state = tx.init(fnp.zeros(2))
    >>> sorted(state)
    ['clip', 'sgd']
    """
    names = [name for name, _ in pairs]
    if len(builtins.set(names)) != len(names):
        raise ValueError(f"named_chain needs unique names, got {names}")
    txs = [(name, as_transform(t)) for name, t in pairs]

    def init(params):
        return {name: t.init(params) for name, t in txs}

    def update(updates, state, params=None, **extra_args):
        new_state = {}
        for name, t in txs:
            updates, new_state[name] = call_update(t, updates, state[name], params, extra_args)
        return updates, new_state

    return GradientTransformation(init, update, name="named_chain", children=tuple(txs),
                                  child_states=lambda s: [s[n] for n in names])


# ---------------------------------------------------------------------------
# reading state by name


def _key_name(key) -> Any:
    for attr in ("name", "key"):
        if hasattr(key, attr):
            return getattr(key, attr)
    return None


def _walk(tree, path, out, name):
    """Collect ``(path, value)`` for every NamedTuple field or dict key called ``name``."""
    if isinstance(tree, tuple) and hasattr(tree, "_fields"):
        items = [(f, getattr(tree, f)) for f in tree._fields]
    elif isinstance(tree, dict):
        items = list(tree.items())
    elif isinstance(tree, (tuple, list)):
        for i, v in enumerate(tree):
            _walk(v, path + (str(i),), out, name)
        return
    else:
        return
    for k, v in items:
        here = path + (str(k),)
        if k == name:
            out.append(("/".join(here), v))
        _walk(v, here, out, name)


def _find(tree, segments):
    found = [("", tree)]
    for seg in segments:
        nxt = []
        for prefix, sub in found:
            hits = []
            _walk(sub, (), hits, seg)
            nxt.extend(((prefix + "/" + p) if prefix else p, v) for p, v in hits)
        found = nxt
    return found


def get_all(state, name: str) -> dict:
    """Every entry called ``name`` in ``state``, as ``{path: value}`` in depth-first order.

    Entries are NamedTuple fields and dict keys at any depth; ``name`` may be
    a ``/``-separated path of such names (``"inner_state/count"``).

    >>> import funcnet.numpy as fnp
    >>> from funcnet import optim
    >>> state = optim.adam(optim.linear_schedule(1.0, 0.0, 10)).init(fnp.zeros(2))
    >>> list(optim.get_all(state, "count"))
    ['0/count', '1/count']
    """
    return dict(_find(state, [s for s in name.split("/") if s]))


def get(state, name: str, default: Any = _MISSING):
    """The first entry called ``name`` in ``state`` (depth-first, outermost first).

    Works through ``chain`` (tuples), ``named_chain`` and ``multi_transform``
    (dicts), ``inject_hyperparams`` (its ``hyperparams`` dict), ``masked``,
    ``apply_if_finite`` and ``MultiSteps``.  Raises ``KeyError`` listing the
    names that exist, unless ``default`` is given.  See :func:`get_all` for
    every match.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import optim
    >>> tx = optim.inject_hyperparams(optim.adam)(learning_rate=0.01)
    >>> state = tx.init(fnp.zeros(2))
    >>> float(optim.get(state, "learning_rate")), int(optim.get(state, "count"))
    (0.009999999776482582, 0)
    """
    found = _find(state, [s for s in name.split("/") if s])
    if found:
        return found[0][1]
    if default is not _MISSING:
        return default
    raise KeyError(f"no entry named {name!r} in the optimizer state; it has: "
                   f"{', '.join(sorted(_all_names(state))) or 'nothing'}")


def _all_names(tree) -> builtins.set:
    names: builtins.set = builtins.set()
    if isinstance(tree, tuple) and hasattr(tree, "_fields"):
        for f in tree._fields:
            names.add(f)
            names |= _all_names(getattr(tree, f))
    elif isinstance(tree, dict):
        for k, v in tree.items():
            names.add(str(k))
            names |= _all_names(v)
    elif isinstance(tree, (tuple, list)):
        for v in tree:
            names |= _all_names(v)
    return names


def set(state, name: str, value):  # noqa: A001 - optax calls it tree_set
    """A copy of ``state`` with every entry called ``name`` replaced by ``value``.

    ``value`` is cast to the dtype of the entry it replaces (so a jitted step
    does not re-trace).  Useful to change an injected hyper-parameter by hand:

    >>> import funcnet.numpy as fnp
    >>> from funcnet import optim
    >>> tx = optim.inject_hyperparams(optim.sgd)(learning_rate=0.1)
    >>> state = optim.set(tx.init(fnp.zeros(2)), "learning_rate", 0.5)
    >>> float(optim.get(state, "learning_rate"))
    0.5
    """
    if not get_all(state, name):
        raise KeyError(f"no entry named {name!r} in the optimizer state; it has: "
                       f"{', '.join(sorted(_all_names(state))) or 'nothing'}")

    def fit(old):
        if hasattr(old, "dtype") and not isinstance(old, (tuple, dict, list)):
            return nx.cast(fn.numpy.broadcast_to(fn.numpy.asarray(value), np.shape(old)),
                           nx.dtype_of(old))
        return value

    def rebuild(tree):
        if isinstance(tree, tuple) and hasattr(tree, "_fields"):
            return type(tree)(*[fit(getattr(tree, f)) if f == name else rebuild(getattr(tree, f))
                                for f in tree._fields])
        if isinstance(tree, dict):
            return type(tree)((k, fit(v) if k == name else rebuild(v)) for k, v in tree.items())
        if isinstance(tree, (tuple, list)):
            return type(tree)(rebuild(v) for v in tree)
        return tree

    return rebuild(state)


# ---------------------------------------------------------------------------
# describe


def _fmt(v) -> str:
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return repr(v)
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.6g}"
    if isinstance(v, np.ndarray):
        if v.ndim == 0:
            return _fmt(v.item())
        return f"array{v.shape}:{v.dtype}"
    if isinstance(v, GradientTransformation):
        return _one_line(v)
    if hasattr(v, "dtype") and hasattr(v, "shape"):
        return f"<traced {v.dtype}{list(v.shape)}>"
    if inspect.isfunction(v) or inspect.ismethod(v) or inspect.isbuiltin(v):
        return getattr(v, "__name__", "function")
    if isinstance(v, functools.partial):
        return f"partial({_fmt(v.func)})"
    text = repr(v)
    return text if len(text) <= 80 else text[:77] + "..."


def _one_line(tx) -> str:
    hp = ", ".join(f"{k}={_fmt(v)}" for k, v in tx.hyperparams.items())
    if tx.children and not getattr(tx, "compact", False):
        inner = ", ".join((f"{lab}=" if lab is not None else "") + _one_line(c)
                          for lab, c in tx.children)
        hp = f"{hp}, {inner}" if hp else inner
    return f"{tx.name}({hp})"


def _status(tx, state) -> dict:
    if state is None:
        return {}
    if tx.status is not None:
        try:
            return dict(tx.status(state))
        except Exception:  # a description must never fail the caller
            return {}
    out = {}
    if isinstance(state, tuple) and hasattr(state, "_fields"):
        for f in state._fields:  # by default: the integer and boolean counters
            v = getattr(state, f)
            if (hasattr(v, "dtype") and not isinstance(v, tuple) and np.shape(v) == ()
                    and nx.dtype_of(v).kind in "iub"):
                out[f] = v
    return out


class _Description(str):
    """A ``str`` that shows as its text (not a quoted one-liner) at the prompt."""

    def __repr__(self) -> str:
        return str(self)


def describe(tx, state=None) -> str:
    """A readable tree of ``tx``: each transform, its hyper-parameters and, given
    ``state``, its current counters and scheduled values.

    The result is a string that displays as the tree at the prompt (or
    ``print`` it); top to bottom is the order the updates flow through.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import optim
    >>> tx = optim.chain(optim.clip_by_global_norm(1.0), optim.adamw(0.1))
    >>> print(optim.describe(tx, tx.init(fnp.zeros(3))))
    chain
    ├─ clip_by_global_norm(max_norm=1, nonfinite='propagate')  [norm=0, nonfinite_count=0]
    └─ adamw(learning_rate=0.1, weight_decay=0.0001)
       ├─ scale_by_adam(b1=0.9, b2=0.999, eps=1e-08, eps_root=0)  [count=0]
       ├─ add_decayed_weights(weight_decay=0.0001)
       └─ scale_by_learning_rate(learning_rate=0.1)
    """
    tx = as_transform(tx)
    lines: list[str] = []

    def visit(t, st, prefix, label, last, top):
        head = f"{label}: " if label is not None else ""
        hp = ", ".join(f"{k}={_fmt(v)}" for k, v in t.hyperparams.items())
        text = f"{head}{t.name}({hp})" if (hp or not t.children) else f"{head}{t.name}"
        status = _status(t, st)
        if status:
            text += "  [" + ", ".join(f"{k}={_fmt(_concrete(v))}" for k, v in status.items()) + "]"
        if top:
            lines.append(text)
            child_prefix = ""
        else:
            lines.append(prefix + ("└─ " if last else "├─ ") + text)
            child_prefix = prefix + ("   " if last else "│  ")
        children = t.children
        if st is not None and t.children_for_state is not None:
            try:  # children rebuilt from the state (inject_hyperparams' current values)
                children = tuple(t.children_for_state(st))
            except Exception:
                children = t.children
        subs = [None] * len(children)
        if st is not None and t.child_states is not None:
            try:
                subs = list(t.child_states(st))
            except Exception:
                subs = [None] * len(children)
        for i, ((lab, c), s) in enumerate(zip(children, subs)):
            visit(c, s, child_prefix, lab, i == len(children) - 1, False)

    visit(tx, state, "", None, True, True)
    return _Description("\n".join(lines))


def _concrete(v):
    if isinstance(v, np.ndarray) or nx.is_concrete(v):
        return v
    try:
        return fn.to_numpy(v)
    except Exception:
        return v
