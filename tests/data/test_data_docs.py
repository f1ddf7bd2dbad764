"""Every public name of funcnet.data has a docstring with a runnable example (run as doctests)."""

from __future__ import annotations

import inspect

import pytest

from funcnet import data


def public_callables():
    for name in data.__all__:
        obj = getattr(data, name)
        if not callable(obj):
            continue
        yield name, obj
        if inspect.isclass(obj) and not issubclass(obj, BaseException):
            for attr, member in vars(obj).items():
                if attr.startswith("_"):
                    continue
                func = getattr(member, "__func__", member)
                if isinstance(member, property):
                    func = member.fget
                if callable(func):
                    yield f"{name}.{attr}", func


@pytest.mark.parametrize("name,obj", list(public_callables()), ids=lambda v: v
                         if isinstance(v, str) else "")
def test_public_callable_has_runnable_example(name, obj):
    doc = inspect.getdoc(obj) or ""
    assert ">>>" in doc, f"funcnet.data.{name} has no runnable >>> example"


def test_all_is_complete_and_importable():
    assert len(set(data.__all__)) == len(data.__all__)
    for name in data.__all__:
        assert hasattr(data, name), name
