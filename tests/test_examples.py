"""The examples run, and every ```python block of README.md and docs/*.md runs.

Code blocks of one Markdown file run top to bottom in one namespace, like a
notebook. An HTML comment on the line before a block can qualify it:

- ``<!-- requires: funcnet.testing, hypothesis -->``: skip the block (and say
  so) when one of these modules cannot be imported;
- ``<!-- no-run -->``: never run it (for deliberately incomplete snippets).
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

_FENCE = re.compile(r"^```python\s*$")
_DIRECTIVE = re.compile(r"^<!--\s*(requires:\s*(?P<mods>[\w.,\s]+?)|(?P<norun>no-run))\s*-->\s*$")


def python_blocks(path: Path) -> list[tuple[int, str, list[str] | None]]:
    """``(first line number, code, required modules or None for no-run)`` per block."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks, i = [], 0
    while i < len(lines):
        if _FENCE.match(lines[i]):
            directive = _DIRECTIVE.match(lines[i - 1].strip()) if i else None
            start = i + 1
            j = start
            while j < len(lines) and lines[j].strip() != "```":
                j += 1
            if j == len(lines):
                raise AssertionError(f"{path.name}:{i + 1}: unterminated ```python block")
            if directive and directive.group("norun"):
                required = None
            elif directive:
                required = [m.strip() for m in directive.group("mods").split(",") if m.strip()]
            else:
                required = []
            blocks.append((start + 1, "\n".join(lines[start:j]) + "\n", required))
            i = j
        i += 1
    return blocks


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:
        return False


def test_docs_index_links_every_page():
    index = (ROOT / "docs" / "index.md").read_text(encoding="utf-8")
    unlinked = [p.name for p in sorted((ROOT / "docs").glob("*.md"))
                if p.name != "index.md" and f"({p.name})" not in index]
    assert not unlinked, f"docs/index.md does not link: {unlinked}"


def test_readme_has_python_blocks():
    assert len(python_blocks(ROOT / "README.md")) >= 5


@pytest.mark.parametrize("path", DOC_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_doc_code_blocks_run(path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # blocks that write files write them here
    namespace: dict = {"__name__": "__doc_example__"}
    skipped = []
    for line, code, required in python_blocks(path):
        if required is None:
            continue
        missing = [m for m in required if not _importable(m)]
        if missing:
            skipped.append(f"line {line} (needs {', '.join(missing)})")
            continue
        where = f"{path.relative_to(ROOT)}:{line}"
        try:
            exec(compile(code, where, "exec"), namespace)
        except Exception as e:
            raise AssertionError(f"the code block at {where} failed: "
                                 f"{type(e).__name__}: {e}") from e
    if skipped:
        pytest.skip(f"{path.name}: blocks skipped: {'; '.join(skipped)}")


def _run_example(script: str, *args: str, timeout: float = 120) -> str:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / script), *args],
                          capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)
    assert proc.returncode == 0, f"{script} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def test_quickstart_quick():
    pytest.importorskip("sklearn", reason="the quickstart needs the data extra (scikit-learn)")
    out = _run_example("quickstart.py", "--quick")
    losses = [float(m) for m in re.findall(r"^epoch\s+\d+\s+loss\s+([0-9.]+)", out, re.M)]
    assert len(losses) == 3, out
    assert losses[-1] < losses[0], f"the loss did not fall: {losses}"
    acc = re.search(r"^final test accuracy: ([0-9.]+)$", out, re.M)
    assert acc, out
    assert float(acc.group(1)) >= 0.9, out


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    commands = [ln.strip() for ln in readme
                if re.match(r"^\s*(pip|python|uv)[^#]*pytest", ln)]
    assert commands, "README.md has no test command"
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert commands[0] in ci, f".ci/run does not run the README's test command {commands[0]!r}"
