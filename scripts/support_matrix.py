"""Generate ``docs/support-matrix.md``: every primitive x every transform x every backend.

The page is built from the live registry (``funcnet.core.primitive.registry``)
after importing every module of the package, so it cannot drift from the code.

    python scripts/support_matrix.py            # rewrite docs/support-matrix.md
    python scripts/support_matrix.py --check    # exit 1 if the file is out of date
    python scripts/support_matrix.py --stdout   # print the page instead

The page only states facts that do not depend on the machine (which rules
exist, which kernels a backend's table holds), so ``--check`` gives the same
answer on a laptop, in CI and on a GPU box; which backends are usable *here*
is printed to the terminal, not written into the page.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import importlib
import inspect
import pkgutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "support-matrix.md"

if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

import funcnet  # noqa: E402
from funcnet.backends import base as backend_base  # noqa: E402
from funcnet.core.primitive import Primitive, registry  # noqa: E402

#: the backends this page describes (funcnet's own, whether usable here or not)
BUILTIN_BACKENDS = ("numpy", "numba", "cupy")

YES, NO, NOT_YET = "✓", "✗", "—"


def import_all_modules() -> list:
    """Import every module under ``funcnet`` so that every primitive is registered.

    A module that needs an optional dependency which is not installed (numba,
    cupy, scikit-learn, ...) is skipped; any other import error is a bug and
    is raised.
    """
    modules = [funcnet]
    for info in pkgutil.walk_packages(funcnet.__path__, prefix="funcnet."):
        try:
            modules.append(importlib.import_module(info.name))
        except ImportError as e:
            missing = (e.name or "").split(".")[0]
            if missing and missing != "funcnet":
                print(f"note: skipped {info.name} (needs {missing})", file=sys.stderr)
                continue
            raise
    return modules


def _assigned_names(module) -> set[str]:
    """Names bound by a top-level assignment (not an import) in ``module``'s source."""
    try:
        tree = ast.parse(inspect.getsource(module))
    except (OSError, TypeError):
        return set()
    names = set()
    for node in tree.body:
        targets = (node.targets if isinstance(node, ast.Assign)
                   else [node.target] if isinstance(node, ast.AnnAssign) else [])
        for t in targets:
            for n in ast.walk(t):
                if isinstance(n, ast.Name):
                    names.add(n.id)
    return names


def home_modules(modules) -> dict[str, str]:
    """Primitive name -> the module that defines it (where it is assigned, not imported)."""
    homes: dict[str, str] = {}
    for mod in modules:
        assigned = None
        for attr, value in vars(mod).items():
            if isinstance(value, Primitive) and value.name not in homes:
                if assigned is None:
                    assigned = _assigned_names(mod)
                if attr in assigned:
                    homes[value.name] = mod.__name__
    return homes


def backend_kernel_names() -> dict[str, tuple[set[str], set[str]] | None]:
    """Registered backend name -> (eager kernel names, compiled-code kernel names).

    Read from the backend class's attributes ``kernels`` and ``raw_kernels``
    (what ``Backend.kernel_for`` uses in jitted code) when the factory is a
    class, so a backend whose library is missing on this machine is still
    described; None when the tables cannot be read here.
    """
    # funcnet's own backends only: a backend registered by user code (e.g. the
    # "writing a backend" example in docs/backends.md, run in the same test
    # process) is not part of this page.
    names = [n for n in backend_base._factories if n in BUILTIN_BACKENDS]
    out: dict[str, tuple[set[str], set[str]] | None] = {}
    for name in names:
        source = backend_base._factories[name]
        if not isinstance(getattr(source, "kernels", None), dict):
            try:
                source = backend_base.load(name)
            except backend_base.BackendUnavailable:
                out[name] = None
                continue
        eager = set(source.kernels)
        raw = getattr(source, "raw_kernels", None)
        out[name] = (eager, set(raw) if raw is not None else eager)
    return out


def _jvp_cell(p: Primitive) -> str:
    if p.jvp is None:
        return NO
    return "zero" if not p.differentiable else YES


def _vjp_cell(p: Primitive) -> str:
    if p.jvp is None:
        return NO
    if not p.differentiable:
        return "zero"
    if p.linear:
        return "transpose" if p.transpose is not None else NO
    return "linearize"


def _eval_cell(p: Primitive, kernels: set[str] | None) -> str:
    if p.name in (kernels or ()):
        return YES
    if p.impl is not None:
        return "impl"
    return "?" if kernels is None else NO


def _jit_cell(p: Primitive, backends: dict) -> str:
    """Jittable: ``fn.jit`` exists, the primitive has a shape rule, and every
    registered backend has a kernel for it in compiled code."""
    if not hasattr(funcnet, "jit"):
        return NOT_YET
    if p.abstract_eval is None:
        return NO
    cells = {_eval_cell(p, tables[1] if tables else None) for tables in backends.values()}
    return NO if NO in cells else "?" if "?" in cells else YES


def _family(module_name: str | None) -> str:
    if module_name is None:
        return "other"
    return module_name.removeprefix("funcnet.").replace("ops.", "")


def build() -> str:
    """The Markdown text of the support matrix."""
    homes = home_modules(import_all_modules())
    backends = backend_kernel_names()
    prims = sorted(registry.values(), key=lambda p: (_family(homes.get(p.name)), p.name))

    lines = [
        "# Support matrix",
        "",
        "<!-- Generated by `python scripts/support_matrix.py`; do not edit by hand. -->",
        "",
        "Every primitive funcnet defines, which rules it has, and which backends run it.",
        "`funcnet.numpy` and the libraries are composed from these primitives, so a",
        "function is differentiable / batchable / jittable on a backend exactly when",
        "all the primitives it uses are.",
        "",
        "Columns:",
        "",
        "- **shape**: `abstract_eval` (shape/dtype rule, needed by every transform).",
        "- **jvp**: forward-mode rule; `zero` means the output is piecewise constant",
        "  (comparisons, rounding, argmax, ...) and its tangent is defined as zero.",
        "- **vjp**: how reverse mode gets through it: `transpose` (a linear primitive",
        "  with a transpose rule) or `linearize` (JVP, then transposing the linear",
        "  primitives that JVP rule is written in).",
        "- **vmap**: a batching rule (`prim.batch`).",
        "- **jit**: `fn.jit` can trace it (shape rule) and every registered backend",
        "  has a kernel for it in compiled code (`Backend.kernel_for`).",
        "- one column per registered backend: the kernel that evaluates it eagerly",
        "  (`impl`: a generic implementation written in other primitives).",
        "",
        f"`{YES}` supported, `{NO}` missing (a bug: tests/test_support_matrix.py fails),",
        f"`{NOT_YET}` not built yet.",
        "",
        "Backends that need an optional library are listed whether or not that",
        "library is installed where this page was generated;",
        "`funcnet.backends.available()` says which run on your machine.",
        "",
    ]

    total = len(prims)
    counts = {
        "shape rule": sum(p.abstract_eval is not None for p in prims),
        "jvp": sum(p.jvp is not None for p in prims),
        "vjp": sum(_vjp_cell(p) != NO for p in prims),
        "vmap": sum(p.batch is not None for p in prims),
    }
    if hasattr(funcnet, "jit"):
        counts["jit"] = sum(_jit_cell(p, backends) == YES for p in prims)
    for name, tables in backends.items():
        eager = tables[0] if tables else None
        counts[f"{name} kernel"] = sum(_eval_cell(p, eager) in (YES, "impl") for p in prims)
    lines += [f"**{total} primitives.** " + ", ".join(
        f"{k}: {v}/{total}" for k, v in counts.items()) + ".", ""]

    head = ["primitive", "shape", "jvp", "vjp", "vmap", "jit", *backends]
    family = None
    for p in prims:
        fam = _family(homes.get(p.name))
        if fam != family:
            family = fam
            lines += ["", f"## {fam}", "", "| " + " | ".join(head) + " |",
                      "|" + "|".join("---" for _ in head) + "|"]
        flags = []
        if p.linear:
            flags.append("linear")
        if p.multiple_results:
            flags.append("multi-output")
        label = f"`{p.name}`" + (f" ({', '.join(flags)})" if flags else "")
        row = [label,
               YES if p.abstract_eval is not None else NO,
               _jvp_cell(p),
               _vjp_cell(p),
               YES if p.batch is not None else NOT_YET,
               _jit_cell(p, backends),
               *(_eval_cell(p, t[0] if t else None) for t in backends.values())]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--check", action="store_true",
                       help="exit 1 if docs/support-matrix.md is not up to date")
    group.add_argument("--stdout", action="store_true", help="print instead of writing")
    args = parser.parse_args(argv)

    text = build()
    if args.stdout:
        sys.stdout.write(text)
        return 0
    if args.check:
        current = DOC.read_text(encoding="utf-8") if DOC.exists() else ""
        if current == text:
            print(f"{DOC.relative_to(ROOT)} is up to date")
            return 0
        sys.stdout.writelines(difflib.unified_diff(
            current.splitlines(keepends=True), text.splitlines(keepends=True),
            fromfile=f"{DOC.relative_to(ROOT)} (committed)", tofile="generated"))
        print(f"\n{DOC.relative_to(ROOT)} is out of date: run python scripts/support_matrix.py",
              file=sys.stderr)
        return 1
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(text, encoding="utf-8")
    print(f"wrote {DOC.relative_to(ROOT)} ({len(registry)} primitives); "
          f"backends usable here: {', '.join(funcnet.backends.available())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
