"""Every public function has a docstring with a runnable example (run as doctests)."""

import inspect

import pytest

import funcnet as fn
import funcnet.numpy as fnp
from funcnet import data, debug, lax, nn, optim, random, testing, tree

MODULES = {"funcnet": fn, "funcnet.numpy": fnp, "funcnet.numpy.linalg": fnp.linalg,
           "funcnet.numpy.fft": fnp.fft, "funcnet.lax": lax, "funcnet.random": random,
           "funcnet.tree": tree, "funcnet.testing": testing, "funcnet.debug": debug,
           "funcnet.data": data, "funcnet.checkpoint_io": fn.checkpoint_io,
           "funcnet.export": fn.export, "funcnet.optim": optim, "funcnet.nn": nn,
           "funcnet.nn.initializers": nn.initializers, "funcnet.nn.losses": nn.losses,
           "funcnet.nn.models": nn.models, "funcnet.training": fn.training,
           "funcnet.training.tasks": fn.training.tasks}

# names that are data, types or NumPy's own objects re-exported for convenience
NOT_FUNCTIONS = {"config", "errors", "backends", "numpy", "lax", "random", "tree", "testing",
                 "debug", "linalg", "fft", "nn", "optim", "data"}


def public_callables():
    for mod_name, mod in MODULES.items():
        names = getattr(mod, "__all__", None) or [n for n in dir(mod) if not n.startswith("_")]
        for name in names:
            if name in NOT_FUNCTIONS:
                continue
            obj = getattr(mod, name, None)
            if obj is None or inspect.ismodule(obj):
                continue
            if not (inspect.isfunction(obj) or callable(obj)):
                continue
            owner = getattr(obj, "__module__", "") or ""
            if not owner.startswith("funcnet"):
                continue  # NumPy dtypes and helpers re-exported as they are
            yield f"{mod_name}.{name}", obj


@pytest.mark.parametrize("qualname,obj", sorted(public_callables(), key=lambda p: p[0]),
                         ids=lambda v: v if isinstance(v, str) else "")
def test_public_function_has_runnable_example(qualname, obj):
    doc = inspect.getdoc(obj) or ""
    assert doc.strip(), f"{qualname} has no docstring"
    assert ">>>" in doc, f"{qualname}'s docstring has no runnable >>> example"
