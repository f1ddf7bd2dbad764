"""Shared pytest fixtures.

Each section is self-contained (several engineers add to this file).
"""

from __future__ import annotations

import pytest

import funcnet as fn
from funcnet.backends import base as _backends_base

# ---------------------------------------------------------------------------
# Backend conformance: ``backend_name`` runs a test once per registered backend,
# with that backend active; a registered backend that cannot run here is skipped
# with the reason (e.g. the package to install).


def _registered_backends() -> list[str]:
    names = list(_backends_base._factories)
    return ["numpy"] + sorted(n for n in names if n != "numpy")


@pytest.fixture(params=_registered_backends())
def backend_name(request):
    """The name of a backend, active for the duration of the test."""
    name = request.param
    try:
        fn.backends.load(name)
    except fn.backends.BackendUnavailable as exc:
        pytest.skip(f"backend {name!r} is not available here: {exc}")
    with fn.use_backend(name):
        yield name
