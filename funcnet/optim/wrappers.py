"""Transforms of transforms: ``masked``, ``multi_transform``, ``apply_if_finite``,
``inject_hyperparams`` and ``MultiSteps`` (gradient accumulation).

Labels and masks may be given three ways, and the three never get confused:

- a pytree (the parameters' structure, or a prefix of it) of labels or booleans;
- a plain function ``f(params) -> such a pytree`` (as in optax);
- :class:`by_path` ``(lambda path, leaf: label)``, where ``path`` is the
  leaf's key path as a string such as ``"layers/0/w"``.

Only a callable that is *not itself a pytree node* is treated as a function,
so a callable pytree (a registered dataclass with ``__call__``) is always
read as labels.

>>> import funcnet.numpy as fnp
>>> from funcnet import optim
>>> params = {"w": fnp.ones(2), "b": fnp.ones(1)}
>>> tx = optim.masked(optim.add_decayed_weights(0.5),
...                   optim.by_path(lambda path, x: not path.endswith("b")))
>>> u, _ = tx.update({"w": fnp.zeros(2), "b": fnp.zeros(1)}, tx.init(params), params)
>>> u["w"], u["b"]
(array([0.5, 0.5], dtype=float32), array([0.], dtype=float32))
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

import funcnet as fn
import funcnet.numpy as fnp
from funcnet.optim import _numerics as nx
from funcnet.optim.base import GradientTransformation, as_transform, call_update

__all__ = [
    "by_path", "MaskedNode", "MaskedState", "masked", "MultiTransformState", "multi_transform",
    "ApplyIfFiniteState", "apply_if_finite", "InjectHyperparamsState", "inject_hyperparams",
    "MultiStepsState", "MultiSteps", "skip_not_finite",
]


# ---------------------------------------------------------------------------
# labels


class by_path:  # noqa: N801 - reads as a function at the call site
    """Labels (or mask booleans) computed from each leaf's key path.

    ``fun(path, leaf)`` receives the path as ``"/"``-joined simple keys
    (``{"layers": [{"w": ...}]}`` gives ``"layers/0/w"``) and the leaf, and
    returns the label.

    >>> from funcnet import optim
    >>> labels = optim.by_path(lambda path, x: "decay" if path.endswith("w") else "none")
    >>> labels.labels({"dense": {"w": 1.0, "b": 0.0}})
    {'dense': {'b': 'none', 'w': 'decay'}}
    """

    def __init__(self, fun: Callable[[str, Any], Any]):
        self.fun = fun

    def labels(self, tree):
        """The pytree of labels for ``tree``."""
        pairs, treedef = fn.tree.flatten_with_path(tree)
        return treedef.unflatten([self.fun(fn.tree.keystr(p, simple=True, separator="/"), x)
                                  for p, x in pairs])

    def __repr__(self) -> str:
        return f"by_path({getattr(self.fun, '__name__', 'fun')})"


def _is_label_function(spec) -> bool:
    """A callable that is a pytree *leaf*: a function; a callable pytree node is labels."""
    return callable(spec) and fn.tree.structure(spec).is_leaf()


def _resolve(spec, tree):
    if isinstance(spec, by_path):
        return spec.labels(tree)
    if _is_label_function(spec):
        return spec(tree)
    return spec


def _path_keys(path) -> tuple:
    return tuple(fn.tree.keystr((k,), simple=True) for k in path)


def _mismatch(labels, tree, what: str, error: Exception) -> ValueError:
    """A ValueError naming the paths where ``labels`` and ``tree`` differ."""
    label_paths = [_path_keys(p) for p, _ in fn.tree.flatten_with_path(labels)[0]]
    tree_paths = [_path_keys(p) for p, _ in fn.tree.flatten_with_path(tree)[0]]
    uncovered = ["/".join(t) for t in tree_paths
                 if not any(t[:len(lab)] == lab for lab in label_paths)]
    extra = ["/".join(lab) or "<root>" for lab in label_paths
             if not any(t[:len(lab)] == lab for t in tree_paths)]
    parts = []
    if uncovered:
        parts.append(f"parameters without a {what}: {uncovered}")
    if extra:
        parts.append(f"{what}s without a parameter: {extra}")
    detail = "; ".join(parts) if parts else str(error)
    return ValueError(f"the {what} tree does not match the parameters' structure: {detail}. "
                      f"A {what} tree must have the parameters' structure or a prefix of it.")


def _split(labels, tree, what: str):
    """``(label_leaves, subtrees, treedef)``: each label with the subtree it covers."""
    leaves, treedef = fn.tree.flatten(labels)
    try:
        subtrees = treedef.flatten_up_to(tree)
    except (ValueError, TypeError) as e:
        raise _mismatch(labels, tree, what, e) from None
    return leaves, subtrees, treedef


class MaskedNode(NamedTuple):
    """Stands in for a masked-out subtree: a pytree node with no leaves.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import optim
    >>> state = optim.masked(optim.adam(0.1), [True, False]).init([fnp.zeros(1), fnp.zeros(1)])
    >>> state.inner_state[0].mu  # the adam moment of the masked-out leaf is a MaskedNode
    [array([0.], dtype=float32), MaskedNode()]
    """


class MaskedState(NamedTuple):
    """``masked``'s state: the inner transform's state (kept only for masked-in leaves).

    >>> import funcnet.numpy as fnp
    >>> from funcnet import optim
    >>> state = optim.masked(optim.sgd(0.1), [True, False]).init([fnp.zeros(1), fnp.zeros(1)])
    >>> type(state).__name__, state._fields
    ('MaskedState', ('inner_state',))
    """

    inner_state: Any


def _mask_tree(mask_leaves, subtrees, treedef):
    return treedef.unflatten([s if bool(m) else MaskedNode()
                              for m, s in zip(mask_leaves, subtrees)])


def masked(inner, mask, *, mask_compatible_extra_args: bool = False) -> GradientTransformation:
    """Apply ``inner`` only where ``mask`` is ``True``; other updates pass through unchanged.

    ``mask`` is a pytree of booleans (the params' structure or a prefix), a
    function of the params returning one, or :class:`by_path`.  The inner
    state holds only the masked-in leaves (the rest are :class:`MaskedNode`).
    Mismatched structures raise ``ValueError`` naming the differing paths.
    With ``mask_compatible_extra_args=True``, extra ``update`` arguments with
    the updates' structure (a ``grad=`` for a line search) are masked too.
    State: :class:`MaskedState` ``(inner_state)``.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import optim
    >>> tx = optim.masked(optim.scale(10.0), {"a": True, "b": False})
    >>> grads = {"a": fnp.ones(1), "b": fnp.ones(1)}
    >>> tx.update(grads, tx.init(grads))[0]
    {'a': array([10.], dtype=float32), 'b': array([1.], dtype=float32)}
    """
    inner = as_transform(inner)

    def init(params):
        leaves, subtrees, treedef = _split(_resolve(mask, params), params, "mask")
        return MaskedState(inner_state=inner.init(_mask_tree(leaves, subtrees, treedef)))

    def update(updates, state, params=None, **extra_args):
        labels = _resolve(mask, updates)
        leaves, subtrees, treedef = _split(labels, updates, "mask")
        masked_updates = _mask_tree(leaves, subtrees, treedef)
        masked_params = None
        if params is not None:
            masked_params = _mask_tree(leaves, _split(labels, params, "mask")[1], treedef)
        if mask_compatible_extra_args:
            structure = fn.tree.structure(updates)
            extra_args = {k: (_mask_tree(leaves, treedef.flatten_up_to(v), treedef)
                              if fn.tree.structure(v) == structure else v)
                          for k, v in extra_args.items()}
        new_masked, new_inner = call_update(inner, masked_updates, state.inner_state,
                                            masked_params, extra_args)
        new_subtrees = treedef.flatten_up_to(new_masked)
        out = [n if bool(m) else s for m, n, s in zip(leaves, new_subtrees, subtrees)]
        return treedef.unflatten(out), MaskedState(inner_state=new_inner)

    return GradientTransformation(init, update, name="masked",
                                  hyperparams={"mask": mask if not _is_tree(mask) else "<tree>"},
                                  children=(("inner", inner),),
                                  child_states=lambda s: [s.inner_state])


def _is_tree(spec) -> bool:
    return not isinstance(spec, by_path) and not _is_label_function(spec)


class MultiTransformState(NamedTuple):
    """``multi_transform``'s state: ``{label: MaskedState}`` for every label.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import optim
    >>> state = optim.multi_transform({'a': optim.sgd(0.1)}, 'a').init(fnp.zeros(2))
    >>> type(state).__name__, state._fields
    ('MultiTransformState', ('inner_states',))
    """

    inner_states: Any


def multi_transform(transforms: dict, param_labels, *,
                    mask_compatible_extra_args: bool = False) -> GradientTransformation:
    """Apply ``transforms[label]`` to the parameters labelled ``label``.

    ``param_labels`` is a pytree of labels (the params' structure or a
    prefix), a function of the params returning one, or :class:`by_path`.
    Every label must be a key of ``transforms`` (else ``ValueError`` lists the
    missing ones).  ``mask_compatible_extra_args`` as in :func:`masked`.
    State: :class:`MultiTransformState` ``({label: MaskedState})``.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import optim
    >>> tx = optim.multi_transform({"fast": optim.sgd(1.0), "frozen": optim.set_to_zero()},
    ...                            {"w": "fast", "b": "frozen"})
    >>> params = {"w": fnp.ones(1), "b": fnp.ones(1)}
    >>> u, _ = tx.update({"w": fnp.ones(1), "b": fnp.ones(1)}, tx.init(params), params)
    >>> u["w"], u["b"]
    (array([-1.], dtype=float32), array([0.], dtype=float32))
    """
    transforms = {k: as_transform(v) for k, v in transforms.items()}

    def group_masks(labels):
        leaves, treedef = fn.tree.flatten(labels)
        missing = sorted({repr(x) for x in leaves if x not in transforms})
        if missing:
            raise ValueError(f"multi_transform: labels {missing} have no transform; the "
                             f"transforms are for {sorted(map(repr, transforms))}")
        return {g: treedef.unflatten([x == g for x in leaves]) for g in transforms}

    def init(params):
        labels = _resolve(param_labels, params)
        _split(labels, params, "label")
        masks = group_masks(labels)
        return MultiTransformState(inner_states={
            g: masked(t, masks[g]).init(params) for g, t in transforms.items()})

    def update(updates, state, params=None, **extra_args):
        labels = _resolve(param_labels, updates)
        _split(labels, updates, "label")
        masks = group_masks(labels)
        new_states = {}
        for g, t in transforms.items():
            tx = masked(t, masks[g], mask_compatible_extra_args=mask_compatible_extra_args)
            updates, new_states[g] = call_update(tx, updates, state.inner_states[g], params,
                                                 extra_args)
        return updates, MultiTransformState(inner_states=new_states)

    return GradientTransformation(
        init, update, name="multi_transform",
        hyperparams={"param_labels": param_labels if not _is_tree(param_labels) else "<tree>"},
        children=tuple(transforms.items()),
        child_states=lambda s: [s.inner_states[g].inner_state for g in transforms])


# ---------------------------------------------------------------------------
# apply_if_finite


class ApplyIfFiniteState(NamedTuple):
    """``notfinite_count``: consecutive rejected steps (reset by a finite one);
    ``last_finite``: whether the last step's output was finite;
    ``total_notfinite``: rejected steps since ``init``; ``inner_state``.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import optim
    >>> state = optim.apply_if_finite(optim.sgd(0.1)).init(fnp.zeros(2))
    >>> type(state).__name__, state._fields
    ('ApplyIfFiniteState', ('notfinite_count', 'last_finite', 'total_notfinite', 'inner_state'))
    """

    notfinite_count: Any
    last_finite: Any
    total_notfinite: Any
    inner_state: Any


def apply_if_finite(inner, max_consecutive_errors: int | None = None) -> GradientTransformation:
    """Run ``inner``; if its *output* updates hold a NaN or infinity, return zeros and keep
    the previous inner state.

    The check is on the output of the whole wrapped transform (a NaN created
    inside a chain is caught, not only one in the gradient).  By default a
    non-finite update is never applied; with ``max_consecutive_errors=k``
    the ``k+1``-th consecutive non-finite step is applied anyway (optax's
    behaviour).  The counters are in the state (``optim.get(state,
    "total_notfinite")``).  State: :class:`ApplyIfFiniteState`.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import optim
    >>> tx = optim.apply_if_finite(optim.sgd(0.1))
    >>> u, state = tx.update(fnp.array([fnp.inf]), tx.init(fnp.zeros(1)))
    >>> u, int(state.total_notfinite), bool(state.last_finite)
    (array([0.], dtype=float32), 1, False)
    """
    inner = as_transform(inner)

    def init(params):
        return ApplyIfFiniteState(notfinite_count=nx.zeros_count(),
                                  last_finite=fnp.asarray(True),
                                  total_notfinite=nx.zeros_count(),
                                  inner_state=inner.init(params))

    def update(updates, state, params=None, **extra_args):
        new_updates, new_inner = call_update(inner, updates, state.inner_state, params,
                                             extra_args)
        finite = nx.tree_all_finite(new_updates)
        notfinite_count = fnp.where(finite, 0, nx.safe_increment(state.notfinite_count)
                                    ).astype(fnp.int32)
        accept = finite
        if max_consecutive_errors is not None:
            accept = fnp.logical_or(finite, notfinite_count > max_consecutive_errors)
        out = fn.tree.map(lambda u: fnp.where(accept, u, 0).astype(nx.dtype_of(u)), new_updates)
        kept_inner = nx.tree_where(accept, new_inner, state.inner_state)
        total = fnp.where(finite, state.total_notfinite,
                          nx.safe_increment(state.total_notfinite)).astype(fnp.int32)
        return out, ApplyIfFiniteState(notfinite_count=notfinite_count, last_finite=finite,
                                       total_notfinite=total, inner_state=kept_inner)

    hp = {} if max_consecutive_errors is None else {"max_consecutive_errors":
                                                    max_consecutive_errors}
    return GradientTransformation(init, update, name="apply_if_finite", hyperparams=hp,
                                  children=(("inner", inner),),
                                  child_states=lambda s: [s.inner_state])


# ---------------------------------------------------------------------------
# inject_hyperparams


class InjectHyperparamsState(NamedTuple):
    """``count`` (int32), ``hyperparams`` (``{name: array}``, the values used by the
    last update -- or the initial ones) and the inner transform's state.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import optim
    >>> state = optim.inject_hyperparams(optim.sgd)(0.1).init(fnp.zeros(2))
    >>> type(state).__name__, state._fields
    ('InjectHyperparamsState', ('count', 'hyperparams', 'inner_state'))
    """

    count: Any
    hyperparams: Any
    inner_state: Any


def _is_numeric(v) -> bool:
    if isinstance(v, bool):
        return False
    if isinstance(v, (int, float, np.ndarray, np.generic)):
        return True
    return hasattr(v, "dtype") and hasattr(v, "shape") and not callable(v)


def _as_hyperparam(v, dtype):
    """A float hyper-parameter as an array of ``dtype`` (tracers keep their own dtype)."""
    if isinstance(v, float) or (nx.is_concrete(v) and nx.dtype_of(v).kind == "f"):
        return fnp.asarray(v, dtype=dtype)
    return fnp.asarray(v)


def inject_hyperparams(inner_factory: Callable, static_args=(), hyperparam_dtype=None
                       ) -> Callable[..., GradientTransformation]:
    """Make the numeric hyper-parameters of ``inner_factory`` part of the optimizer state.

    ``inject_hyperparams(optim.adam)(learning_rate=sched, b1=0.9)`` builds an
    Adam whose ``learning_rate`` is re-evaluated from the schedule at every
    step and stored, with ``b1``, in ``state.hyperparams``: read them with
    ``optim.get(state, "learning_rate")`` and change an unscheduled one with
    ``optim.set(state, "b1", 0.8)``.  Booleans, strings and the names in
    ``static_args`` stay fixed; every other callable is a schedule of the
    step count.  Float hyper-parameters take ``hyperparam_dtype`` (default:
    the widest float dtype of the params).
    State: :class:`InjectHyperparamsState` ``(count, hyperparams, inner_state)``.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import optim
    >>> tx = optim.inject_hyperparams(optim.sgd)(learning_rate=lambda n: 0.1 * 0.5 ** n)
    >>> state = tx.init(fnp.zeros(1))
    >>> for _ in range(3):
    ...     u, state = tx.update(fnp.ones(1), state)
    >>> u, float(optim.get(state, "learning_rate"))
    (array([-0.025], dtype=float32), 0.02500000037252903)
    """
    static = {static_args} if isinstance(static_args, str) else set(static_args)
    signature = inspect.signature(inner_factory)
    unknown = static - set(signature.parameters)
    if unknown:
        raise ValueError(f"inject_hyperparams: static_args {sorted(unknown)} are not "
                         f"parameters of {getattr(inner_factory, '__name__', 'the factory')}")
    fdtype = None if hyperparam_dtype is None else np.dtype(hyperparam_dtype)
    factory_name = getattr(inner_factory, "__name__",
                           getattr(getattr(inner_factory, "func", None), "__name__", "factory"))

    def wrapped(*args, **kwargs) -> GradientTransformation:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        scheduled, numeric, other = {}, {}, {}
        for name, value in bound.arguments.items():
            if name in static or isinstance(value, (bool, str)) or value is None:
                other[name] = value
            elif callable(value):
                scheduled[name] = value
            elif _is_numeric(value):
                numeric[name] = value
            else:
                other[name] = value

        def init(params):
            dtype = fdtype or nx.float_dtype(params)
            hp = {k: _as_hyperparam(v, dtype) for k, v in numeric.items()}
            zero = nx.zeros_count()
            hp.update({k: _as_hyperparam(f(zero), dtype) for k, f in scheduled.items()})
            return InjectHyperparamsState(count=zero, hyperparams=hp,
                                          inner_state=inner_factory(**other, **hp).init(params))

        def update(updates, state, params=None, **extra_args):
            hp = dict(state.hyperparams)
            for k, f in scheduled.items():
                hp[k] = nx.cast(fnp.asarray(f(state.count)), nx.dtype_of(state.hyperparams[k]))
            inner = as_transform(inner_factory(**other, **hp))
            new_updates, inner_state = call_update(inner, updates, state.inner_state, params,
                                                   extra_args)
            return new_updates, InjectHyperparamsState(count=nx.safe_increment(state.count),
                                                       hyperparams=hp, inner_state=inner_state)

        preview = {**numeric, **{k: f(0) for k, f in scheduled.items()}}
        child = as_transform(inner_factory(**other, **preview))

        def status(state):
            return {"count": state.count, **state.hyperparams}

        def current(state):
            return [(None, as_transform(inner_factory(**other, **state.hyperparams)))]

        return GradientTransformation(init, update, name=f"inject_hyperparams({factory_name})",
                                      hyperparams=scheduled, children=((None, child),),
                                      child_states=lambda s: [s.inner_state], status=status,
                                      children_for_state=current)

    wrapped.__name__ = f"inject_hyperparams({factory_name})"
    wrapped.__doc__ = inner_factory.__doc__
    return wrapped


# ---------------------------------------------------------------------------
# MultiSteps


class MultiStepsState(NamedTuple):
    """``mini_step``: mini-steps accumulated so far in this gradient step;
    ``gradient_step``: gradient steps taken; ``inner_opt_state``; ``acc_grads``:
    the running mean (or sum) of the mini-step gradients; ``skip_state``.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import optim
    >>> state = optim.MultiSteps(optim.sgd(0.1), 2).init(fnp.zeros(2))
    >>> int(state.mini_step), int(state.gradient_step), state.acc_grads
    (0, 0, array([0., 0.], dtype=float32))
    """

    mini_step: Any
    gradient_step: Any
    inner_opt_state: Any
    acc_grads: Any
    skip_state: Any = ()


def skip_not_finite(updates, gradient_step, params):
    """A ``should_skip_update_fn`` for :class:`MultiSteps`: skip mini-steps with NaN or inf.

    Returns ``(should_skip, {"should_skip": ..., "num_not_finite": ...})``.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import optim
    >>> skip, info = optim.skip_not_finite(fnp.array([1.0, fnp.nan]), 0, None)
    >>> bool(skip), int(info["num_not_finite"])
    (True, 1)
    """
    n = nx.tree_count_nonfinite(updates)
    skip = n > 0
    return skip, {"should_skip": skip, "num_not_finite": n}


class MultiSteps:
    """Accumulate gradients over ``every_k_schedule`` mini-steps, then take one inner step.

    Between emissions the update is zeros; on every ``k``-th call the inner
    optimizer receives the mean (``use_grad_mean=True``) or the sum of the
    accumulated gradients and its update is returned.  ``every_k_schedule``
    is an int or a function of the gradient step.  ``should_skip_update_fn``
    (e.g. :func:`skip_not_finite`) drops a mini-step as if it never happened.
    ``accumulator_dtype`` defaults to the params' dtype (optax uses float32;
    funcnet never narrows a float64 model).

    Use ``.init`` / ``.update`` directly, or ``.gradient_transformation()``
    (``chain`` and friends accept a ``MultiSteps`` too).  State:
    :class:`MultiStepsState`.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import optim
    >>> opt = optim.MultiSteps(optim.sgd(1.0), every_k_schedule=2)
    >>> state = opt.init(fnp.zeros(1))
    >>> u1, state = opt.update(fnp.array([1.0]), state)
    >>> u2, state = opt.update(fnp.array([3.0]), state)
    >>> u1, u2, bool(opt.has_updated(state))
    (array([0.], dtype=float32), array([-2.], dtype=float32), True)
    """

    def __init__(self, opt, every_k_schedule, use_grad_mean: bool = True,
                 should_skip_update_fn: Callable | None = None, accumulator_dtype=None):
        self._opt = as_transform(opt)
        if isinstance(every_k_schedule, int):
            k = every_k_schedule
            if k < 1:
                raise ValueError(f"MultiSteps: every_k_schedule must be >= 1, got {k}")
            self._every_k = lambda step: k
        else:
            self._every_k = every_k_schedule
        self._k_repr = every_k_schedule
        self._use_grad_mean = use_grad_mean
        self._should_skip = should_skip_update_fn
        self._acc_dtype = None if accumulator_dtype is None else np.dtype(accumulator_dtype)

    @property
    def inner_opt(self) -> GradientTransformation:
        """The wrapped optimizer."""
        return self._opt

    def init(self, params) -> MultiStepsState:
        """The initial :class:`MultiStepsState`."""
        gradient_step = nx.zeros_count()
        skip_state = ()
        if self._should_skip is not None:
            skip_state = self._should_skip(nx.tree_zeros_like(params), gradient_step, params)[1]
        return MultiStepsState(mini_step=nx.zeros_count(), gradient_step=gradient_step,
                               inner_opt_state=self._opt.init(params),
                               acc_grads=nx.tree_zeros_like(params, dtype=self._acc_dtype),
                               skip_state=skip_state)

    def update(self, updates, state, params=None, **extra_args):
        """Accumulate ``updates``; return the inner update on every k-th call, else zeros."""
        k_steps = self._every_k(state.gradient_step)
        n = state.mini_step
        if self._use_grad_mean:
            acc = fn.tree.map(lambda g, a: a + (g - a) / (n + 1), updates, state.acc_grads)
        else:
            acc = fn.tree.map(lambda g, a: g + a, updates, state.acc_grads)
        inner_updates, new_inner = call_update(self._opt, nx.tree_cast_like(acc, updates),
                                               state.inner_opt_state, params, extra_args)
        emit = n == k_steps - 1
        new_state = MultiStepsState(
            mini_step=(nx.safe_increment(n) % k_steps).astype(nx.dtype_of(n)),
            gradient_step=fnp.where(emit, nx.safe_increment(state.gradient_step),
                                    state.gradient_step).astype(fnp.int32),
            inner_opt_state=nx.tree_where(emit, new_inner, state.inner_opt_state),
            acc_grads=fn.tree.map(lambda a, old: fnp.where(emit, 0, a).astype(nx.dtype_of(old)),
                                  acc, state.acc_grads),
            skip_state=state.skip_state)
        out = fn.tree.map(lambda u: fnp.where(emit, u, 0).astype(nx.dtype_of(u)), inner_updates)
        if self._should_skip is None:
            return out, new_state
        skip, skip_state = self._should_skip(updates, state.gradient_step, params)
        out = fn.tree.map(lambda u: fnp.where(skip, 0, u).astype(nx.dtype_of(u)), out)
        kept = nx.tree_where(skip, state._replace(skip_state=skip_state),
                             new_state._replace(skip_state=skip_state))
        return out, kept

    def has_updated(self, state):
        """Whether the last ``update`` applied an inner step (a boolean scalar)."""
        return fnp.logical_and(state.mini_step == 0, state.gradient_step > 0)

    def gradient_transformation(self) -> GradientTransformation:
        """This accumulator as a :class:`~funcnet.optim.GradientTransformation`."""
        return GradientTransformation(self.init, self.update, name="MultiSteps",
                                      hyperparams={"every_k_schedule": self._k_repr,
                                                   "use_grad_mean": self._use_grad_mean},
                                      children=(("opt", self._opt),),
                                      child_states=lambda s: [s.inner_opt_state])
