"""Every ```python block of docs/preconditioners.md runs as written.

Each block runs in a fresh interpreter (as a reader would run it: the test
session's JAX float64 switch and imported modules must not leak in), from the
repository root, with one BLAS/OpenMP thread so that the check stays quick on
a loaded machine.  A block is skipped when a framework it imports is not
installed: ``polarlinalg.torch`` needs torch, ``polarlinalg.optax`` needs jax
and optax, any other non-standard top-level import needs itself.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "preconditioners.md"

# what importing a polarlinalg subpackage needs besides polarlinalg itself
NEEDS = {"polarlinalg.torch": ("torch",), "polarlinalg.optax": ("jax", "optax")}
ALWAYS_THERE = {"numpy", "polarlinalg"}


def _blocks() -> list[tuple[str, str]]:
    """Return ``(id, source)`` for every ```python block, the id naming its section."""
    heading, out = "top", []
    fence = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
    pos = 0
    text = PAGE.read_text(encoding="utf-8")
    for match in fence.finditer(text):
        for line in text[pos : match.start()].splitlines():
            if line.startswith("#"):
                heading = line.lstrip("#").strip()
        pos = match.end()
        slug = re.sub(r"[^a-z0-9]+", "-", heading.lower()).strip("-")
        out.append((f"{len(out)}-{slug}", match.group(1)))
    return out


def _requirements(source: str) -> list[str]:
    """Modules a block needs, from its imports (in order, without repeats)."""
    needed: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            if name in NEEDS:
                mods = NEEDS[name]
            elif top in ALWAYS_THERE or top in sys.stdlib_module_names:
                mods = ()
            else:
                mods = (top,)
            needed.extend(m for m in mods if m not in needed)
    return needed


BLOCKS = _blocks()


def test_the_page_has_examples_for_every_wrapper():
    sources = "\n".join(source for _, source in BLOCKS)
    for name in ("polarlinalg.torch", "polarlinalg.optax", "polarlinalg.optim"):
        assert f"from {name} import" in sources, name
    for optimizer in ("Shampoo", "SOAP", "NorMuon", "shampoo", "soap", "normuon"):
        assert optimizer in sources, optimizer


@pytest.mark.parametrize("source", [s for _, s in BLOCKS], ids=[i for i, _ in BLOCKS])
def test_python_block_runs(source):
    for module in _requirements(source):
        pytest.importorskip(module)
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env.setdefault(var, "1")
    result = subprocess.run(
        [sys.executable, "-c", source],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert result.stdout.strip(), "the example printed nothing"
