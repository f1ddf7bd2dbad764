"""Gradient statistics for logging: norms by parameter path, cheap enough for every step.

:func:`grad_norms` maps a gradient (or parameter) pytree to a flat dict
``{path: norm}`` of 0-d arrays; paths join the dict keys with ``"/"``, so a
``serial`` model's gradient gives keys such as ``"0_conv2d/w"``.  It is made
of one sum of squares per leaf, works eagerly and inside ``fn.jit`` (return
the dict from the jitted step beside the loss), and :func:`global_norm`
gives the norm of the whole tree.

>>> import funcnet.numpy as fnp
>>> from funcnet import nn
>>> grads = {"0_dense": {"w": fnp.full((2, 2), 1.0), "b": fnp.zeros(2)}, "1_relu": {}}
>>> {k: float(v) for k, v in nn.grad_norms(grads).items()}
{'0_dense/b': 0.0, '0_dense/w': 2.0}
>>> {k: float(v) for k, v in nn.grad_norms(grads, per="layer").items()}
{'0_dense': 2.0}
"""

from __future__ import annotations

import funcnet.numpy as fnp
from funcnet import tree

__all__ = ["grad_norms", "global_norm"]


def _squares_by_path(grads, separator: str):
    pairs, _ = tree.flatten_with_path(grads)
    out = []
    for path, leaf in pairs:
        leaf = fnp.asarray(leaf)
        if not fnp.issubdtype(leaf.dtype, fnp.inexact):
            continue  # integer leaves have no gradient to measure
        key = tree.keystr(path, simple=True, separator=separator) if path else "."
        if leaf.dtype.kind == "c":
            leaf = fnp.abs(leaf)
        out.append((key, fnp.sum(leaf * leaf)))
    return out


def grad_norms(grads, *, per: str = "leaf", separator: str = "/") -> dict:
    """The Euclidean norm of each leaf (``per="leaf"``) or layer (``per="layer"``).

    A *layer* is a leaf's path without its last key (the dict holding
    ``"w"`` and ``"b"``); its norm covers all its leaves.  Keys are sorted.
    Integer leaves are skipped.

    >>> import funcnet as fn, funcnet.numpy as fnp
    >>> from funcnet import nn
    >>> g = {"enc": {"w": fnp.array([3.0, 4.0]), "b": fnp.array([0.0])}}
    >>> fn.jit(lambda t: nn.grad_norms(t, per="layer"))(g)
    {'enc': array(5., dtype=float32)}
    """
    if per not in ("leaf", "layer"):
        raise ValueError(f"grad_norms: per must be 'leaf' or 'layer', got {per!r}")
    squares = _squares_by_path(grads, separator)
    if per == "layer":
        groups: dict = {}
        for key, sq in squares:
            layer = key.rsplit(separator, 1)[0] if separator in key else key
            groups[layer] = sq if layer not in groups else groups[layer] + sq
        squares = list(groups.items())
    return {key: fnp.sqrt(sq) for key, sq in sorted(squares, key=lambda p: p[0])}


def global_norm(grads):
    """The Euclidean norm of all the floating-point leaves of a pytree together.

    >>> import funcnet.numpy as fnp
    >>> from funcnet import nn
    >>> nn.global_norm({"a": fnp.array([3.0]), "b": [fnp.array([4.0])]})
    array(5., dtype=float32)
    """
    squares = [sq for _, sq in _squares_by_path(grads, "/")]
    if not squares:
        return fnp.zeros(())
    total = squares[0]
    for sq in squares[1:]:
        total = total + sq
    return fnp.sqrt(total)
