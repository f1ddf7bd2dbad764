"""Ready-made optimizers, each a short ``chain`` of transforms exactly as optax builds it.

``learning_rate`` may be a number or a schedule.  Every alias ends in
``scale_by_learning_rate``, the only place where the sign is flipped.

>>> import funcnet as fn, funcnet.numpy as fnp
>>> from funcnet import optim
>>> loss = lambda w: fnp.sum((w - 3.0) ** 2)
>>> tx = optim.adam(0.5)
>>> w = fnp.zeros(2); state = tx.init(w)
>>> for _ in range(100):
...     updates, state = tx.update(fn.grad(loss)(w), state, w)
...     w = optim.apply_updates(w, updates)
>>> w.round(2)
array([3., 3.], dtype=float32)
"""

from __future__ import annotations

from funcnet.optim.base import GradientTransformation, chain, identity
from funcnet.optim.transforms import (add_decayed_weights, scale_by_adam,
                                      scale_by_learning_rate, scale_by_lion, scale_by_rms,
                                      scale_by_rss, scale_by_stddev, scale_by_trust_ratio, trace)

__all__ = ["sgd", "adam", "adamw", "nadam", "nadamw", "rmsprop", "adagrad", "lamb", "lion"]


def _named(tx: GradientTransformation, name: str, **hyperparams) -> GradientTransformation:
    """The chain ``tx`` under an alias's name (its children stay visible to ``describe``)."""
    out = GradientTransformation(tx.init, tx.update, name=name, hyperparams=hyperparams,
                                 children=tx.children, child_states=tx.child_states)
    out.compact = True  # repr shows the alias's own arguments; describe shows the chain
    return out


def sgd(learning_rate, momentum=None, nesterov: bool = False,
        accumulator_dtype=None) -> GradientTransformation:
    """Stochastic gradient descent, with optional (Nesterov) momentum.

    ``chain(trace(momentum, nesterov) or identity(), scale_by_learning_rate(lr))``:
    ``t = g + momentum * t``, ``u = -lr * t`` (Nesterov: ``u = -lr * (g + momentum * t)``).

    >>> import funcnet.numpy as fnp
    >>> from funcnet import optim
    >>> tx = optim.sgd(0.1, momentum=0.9)
    >>> tx.update(fnp.array([1.0]), tx.init(fnp.zeros(1)))[0]
    array([-0.1], dtype=float32)
    """
    first = (trace(momentum, nesterov=nesterov, accumulator_dtype=accumulator_dtype)
             if momentum is not None else identity())
    hp = {"learning_rate": learning_rate}
    if momentum is not None:
        hp["momentum"] = momentum
    if nesterov:
        hp["nesterov"] = True
    return _named(chain(first, scale_by_learning_rate(learning_rate)), "sgd", **hp)


def adam(learning_rate, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, mu_dtype=None, *,
         nesterov: bool = False) -> GradientTransformation:
    """Adam (Kingma & Ba, 2014): ``chain(scale_by_adam(...), scale_by_learning_rate(lr))``.

    ``u = -lr * mu_hat / (sqrt(nu_hat + eps_root) + eps)``; see
    :func:`~funcnet.optim.scale_by_adam`.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import optim
    >>> tx = optim.adam(0.1)
    >>> tx.update(fnp.array([5.0]), tx.init(fnp.zeros(1)))[0].round(6)
    array([-0.1], dtype=float32)
    """
    return _named(chain(scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov),
                        scale_by_learning_rate(learning_rate)),
                  "nadam" if nesterov else "adam", learning_rate=learning_rate)


def nadam(learning_rate, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0,
          mu_dtype=None) -> GradientTransformation:
    """NAdam (Dozat, 2016): :func:`adam` with Nesterov momentum.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import optim
    >>> tx = optim.nadam(0.1)
    >>> tx.update(fnp.array([5.0]), tx.init(fnp.zeros(1)))[0].round(4)
    array([-0.1474], dtype=float32)
    """
    return adam(learning_rate, b1, b2, eps, eps_root, mu_dtype, nesterov=True)


def adamw(learning_rate, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, mu_dtype=None,
          weight_decay=1e-4, mask=None, *, nesterov: bool = False) -> GradientTransformation:
    """AdamW (Loshchilov & Hutter, 2019): Adam plus decoupled weight decay.

    ``chain(scale_by_adam, add_decayed_weights(weight_decay, mask),
    scale_by_learning_rate(lr))``: ``u = -lr * (adam_direction + weight_decay * p)``.
    Needs ``params`` in ``update``.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import optim
    >>> tx = optim.adamw(0.1, weight_decay=0.5)
    >>> p = fnp.array([2.0])
    >>> tx.update(fnp.array([5.0]), tx.init(p), p)[0].round(6)
    array([-0.2], dtype=float32)
    """
    return _named(chain(scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov),
                        add_decayed_weights(weight_decay, mask),
                        scale_by_learning_rate(learning_rate)),
                  "nadamw" if nesterov else "adamw", learning_rate=learning_rate,
                  weight_decay=weight_decay)


def nadamw(learning_rate, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, mu_dtype=None,
           weight_decay=1e-4, mask=None) -> GradientTransformation:
    """:func:`adamw` with Nesterov momentum.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import optim
    >>> p = fnp.array([2.0])
    >>> optim.nadamw(0.1).update(fnp.array([5.0]), optim.nadamw(0.1).init(p), p)[0].shape
    (1,)
    """
    return adamw(learning_rate, b1, b2, eps, eps_root, mu_dtype, weight_decay, mask,
                 nesterov=True)


def rmsprop(learning_rate, decay=0.9, eps=1e-8, initial_scale=0.0, eps_in_sqrt: bool = True,
            centered: bool = False, momentum=None, nesterov: bool = False,
            bias_correction: bool = False) -> GradientTransformation:
    """RMSProp (Hinton, 2012), optionally centred and with momentum.

    ``chain(scale_by_rms or scale_by_stddev, scale_by_learning_rate(lr),
    trace(momentum) or identity())`` -- as in optax, momentum is applied
    *after* the learning rate.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import optim
    >>> tx = optim.rmsprop(0.1, decay=0.75, eps=0.0)
    >>> tx.update(fnp.array([2.0]), tx.init(fnp.zeros(1)))[0]
    array([-0.2], dtype=float32)
    """
    kw = dict(decay=decay, eps=eps, initial_scale=initial_scale, eps_in_sqrt=eps_in_sqrt,
              bias_correction=bias_correction)
    first = scale_by_stddev(**kw) if centered else scale_by_rms(**kw)
    last = trace(momentum, nesterov=nesterov) if momentum is not None else identity()
    hp = {"learning_rate": learning_rate}
    if centered:
        hp["centered"] = True
    if momentum is not None:
        hp["momentum"] = momentum
    return _named(chain(first, scale_by_learning_rate(learning_rate), last), "rmsprop", **hp)


def adagrad(learning_rate, initial_accumulator_value=0.1, eps=1e-7) -> GradientTransformation:
    """AdaGrad (Duchi et al., 2011): ``chain(scale_by_rss(...), scale_by_learning_rate(lr))``.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import optim
    >>> tx = optim.adagrad(1.0, initial_accumulator_value=0.0, eps=0.0)
    >>> tx.update(fnp.array([3.0]), tx.init(fnp.zeros(1)))[0]
    array([-1.], dtype=float32)
    """
    return _named(chain(scale_by_rss(initial_accumulator_value, eps),
                        scale_by_learning_rate(learning_rate)),
                  "adagrad", learning_rate=learning_rate)


def lamb(learning_rate, b1=0.9, b2=0.999, eps=1e-6, eps_root=0.0, weight_decay=0.0,
         mask=None) -> GradientTransformation:
    """LAMB (You et al., 2019): Adam's direction plus weight decay, scaled per leaf by the
    trust ratio ``||p|| / ||u||``, then by ``-lr``.  Needs ``params``.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import optim
    >>> p = fnp.array([3.0, 4.0])
    >>> tx = optim.lamb(0.1)
    >>> tx.update(fnp.array([1.0, 1.0]), tx.init(p), p)[0].round(4)
    array([-0.3536, -0.3536], dtype=float32)
    """
    return _named(chain(scale_by_adam(b1=b1, b2=b2, eps=eps, eps_root=eps_root),
                        add_decayed_weights(weight_decay, mask),
                        scale_by_trust_ratio(),
                        scale_by_learning_rate(learning_rate)),
                  "lamb", learning_rate=learning_rate, weight_decay=weight_decay)


def lion(learning_rate, b1=0.9, b2=0.99, mu_dtype=None, weight_decay=1e-3,
         mask=None) -> GradientTransformation:
    """Lion (Chen et al., 2023): ``u = -lr * (sign((1-b1)*g + b1*mu) + weight_decay * p)``.

    Needs ``params`` (for the weight decay).

    >>> import funcnet.numpy as fnp
    >>> from funcnet import optim
    >>> p = fnp.array([1.0])
    >>> tx = optim.lion(0.1, weight_decay=0.0)
    >>> tx.update(fnp.array([-7.0]), tx.init(p), p)[0]
    array([0.1], dtype=float32)
    """
    return _named(chain(scale_by_lion(b1=b1, b2=b2, mu_dtype=mu_dtype),
                        add_decayed_weights(weight_decay, mask),
                        scale_by_learning_rate(learning_rate)),
                  "lion", learning_rate=learning_rate, weight_decay=weight_decay)
