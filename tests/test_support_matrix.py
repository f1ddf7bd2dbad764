"""Every primitive has the rules every transform needs, and docs/support-matrix.md is current."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _load_script():
    spec = importlib.util.spec_from_file_location(
        "support_matrix", ROOT / "scripts" / "support_matrix.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


sm = _load_script()
sm.import_all_modules()

from funcnet.backends.numpy_backend import NumpyBackend  # noqa: E402
from funcnet.core.primitive import registry  # noqa: E402


def _offenders(pred) -> list[str]:
    return sorted(name for name, prim in registry.items() if pred(prim))


def test_registry_is_populated():
    # The core families must be there; if not, the module walk is broken.
    for name in ("add", "mul", "sin", "reduce_sum", "dot_general", "reshape", "gather"):
        assert name in registry, name


def test_every_primitive_has_a_shape_rule():
    missing = _offenders(lambda p: p.abstract_eval is None)
    assert not missing, f"primitives without abstract_eval: {missing}"


def test_every_primitive_has_a_jvp_rule():
    missing = _offenders(lambda p: p.jvp is None)
    assert not missing, f"primitives without a jvp rule: {missing}"


def test_every_linear_primitive_has_a_transpose_rule():
    missing = _offenders(lambda p: p.linear and p.transpose is None)
    assert not missing, f"linear primitives without a transpose rule: {missing}"


def test_every_primitive_runs_on_the_numpy_backend():
    missing = _offenders(lambda p: p.name not in NumpyBackend.kernels and p.impl is None)
    assert not missing, ("primitives with neither a NumPy kernel "
                         f"(funcnet/backends/numpy_backend.py) nor prim.impl: {missing}")


def test_every_primitive_has_a_compiled_kernel_on_the_numpy_backend():
    backend = NumpyBackend()
    if not hasattr(backend, "kernel_for"):
        return  # no jit yet

    def lacks(p):
        try:
            backend.kernel_for(p)
        except NotImplementedError:
            return True
        return False

    missing = _offenders(lacks)
    assert not missing, f"primitives jit cannot run on the NumPy backend: {missing}"


def test_support_matrix_doc_is_current():
    current = sm.DOC.read_text(encoding="utf-8") if sm.DOC.exists() else ""
    assert current == sm.build(), (
        "docs/support-matrix.md is out of date: run `python scripts/support_matrix.py` "
        "and commit the result")
