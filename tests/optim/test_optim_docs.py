"""Every public name of funcnet.optim has a docstring with a runnable example (the doctests
themselves run with ``--doctest-modules``), and ``__all__`` is exactly what is exported."""

from __future__ import annotations

import inspect

import pytest

from funcnet import optim


def public_callables():
    for name in optim.__all__:
        obj = getattr(optim, name)
        if callable(obj) and (getattr(obj, "__module__", "") or "").startswith("funcnet"):
            yield name, obj


@pytest.mark.parametrize("name,obj", sorted(public_callables()), ids=lambda v: v
                         if isinstance(v, str) else "")
def test_public_name_has_runnable_example(name, obj):
    doc = inspect.getdoc(obj) or ""
    assert doc.strip(), f"optim.{name} has no docstring"
    assert ">>>" in doc, f"optim.{name}'s docstring has no runnable >>> example"


def test_all_is_complete_and_importable():
    assert len(set(optim.__all__)) == len(optim.__all__)
    for name in optim.__all__:
        assert hasattr(optim, name), name
    issue_surface = """GradientTransformation apply_updates chain named_chain identity scale
        scale_by_learning_rate scale_by_schedule scale_by_adam scale_by_rms scale_by_stddev
        trace add_decayed_weights clip clip_by_global_norm global_norm masked multi_transform
        apply_if_finite inject_hyperparams MultiSteps ema sgd adam adamw nadam rmsprop adagrad
        lamb lion constant_schedule linear_schedule exponential_decay cosine_decay_schedule
        warmup_cosine_decay_schedule piecewise_constant_schedule join_schedules newton
        newton_cg lbfgs get describe""".split()
    assert set(issue_surface) <= set(optim.__all__)


def test_set_is_public_but_not_star_exported():
    assert ">>>" in (optim.set.__doc__ or "")
    namespace: dict = {}
    exec("from funcnet.optim import *", namespace)
    assert namespace.get("set", set) is set
