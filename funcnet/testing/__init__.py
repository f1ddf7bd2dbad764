"""Testing helpers: gradient checks and Hypothesis strategies for property tests.

``check_grads`` and ``assert_traces`` need nothing beyond funcnet.  The strategies (``arrays``,
``shapes``, ``broadcastable_shapes``, ``pytrees``, ``default_elements``) need
Hypothesis, a test extra, which is imported only when they are used.

>>> import numpy as np, funcnet.numpy as fnp
>>> from funcnet.testing import check_grads
>>> check_grads(lambda x: fnp.sum(fnp.exp(x) * x), (np.array([0.1, -0.4]),), order=2)
"""

from funcnet.testing.gradcheck import DEFAULT_TOLERANCES, check_grads
from funcnet.testing.traces import assert_traces

_LAZY = ("arrays", "shapes", "broadcastable_shapes", "pytrees", "default_elements")

__all__ = ["check_grads", "DEFAULT_TOLERANCES", "assert_traces", *_LAZY]


def __getattr__(name: str):
    # The strategies module imports Hypothesis only when a strategy is built,
    # so even this lazy import works without Hypothesis installed.
    if name in _LAZY:
        from funcnet.testing import strategies

        return getattr(strategies, name)
    raise AttributeError(f"module 'funcnet.testing' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
