"""Every ```python block of README.md and docs/*.md runs as pasted.

Each block runs in a fresh interpreter (as a reader would run it: the test
session's JAX float64 switch and imported modules must not leak in), from the
repository root, with one BLAS/OpenMP thread so that the check stays quick on a
loaded machine.

* A block whose first line starts with ``# fragment`` (followed by the reason,
  e.g. ``# fragment: needs your model and data loader``) is a visible excerpt:
  it is only required to be valid Python.
* A block is skipped when a framework it imports is not installed
  (``polarlinalg.torch`` needs torch, ``polarlinalg.optax`` needs jax and
  optax, any other non-standard top-level import needs itself), when it uses
  CuPy without a CUDA device, or when it asks for ``"cuda"`` without a fallback
  (``"cuda" if torch.cuda.is_available() else "cpu"`` runs on the CPU).
* When a block is followed by ``Output:`` and a ```text block, what the block
  prints must match it: the same words, and numbers that agree to two units
  of their last printed digit (or 3 %, whichever is looser) so that another
  BLAS does not turn the check red, while another result does.  A page may
  loosen that for one block whose printed numbers follow a float32 training
  trajectory (rounding differences between CPUs and BLAS kernels grow along
  it): ``Output (numbers within N %: the reason):`` compares to N %.

``test_mkdocs_build_strict`` builds the site with its API reference
(``mkdocs build --strict``) when mkdocs and mkdocstrings are installed.
"""

from __future__ import annotations

import ast
import math
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# what importing a polarlinalg subpackage needs besides polarlinalg itself
NEEDS = {"polarlinalg.torch": ("torch",), "polarlinalg.optax": ("jax", "optax")}
ALWAYS_THERE = {"numpy", "polarlinalg"}
FRAGMENT = re.compile(r"^# fragment\b(.*)$")
NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")


@dataclass(frozen=True)
class Block:
    """One ```python block: where it is, its source, and the output the page shows."""

    page: str
    line: int
    heading: str
    source: str
    output: str | None
    tolerance: float = 0.03

    @property
    def id(self) -> str:
        slug = re.sub(r"[^a-z0-9]+", "-", self.heading.lower()).strip("-")[:40]
        return f"{self.page}:{self.line}-{slug}"

    @property
    def fragment(self) -> bool:
        return bool(FRAGMENT.match(self.source.splitlines()[0] if self.source else ""))


def page_blocks(page: Path) -> list[Block]:
    """Return every ```python block of ``page`` with the ```text output shown after it."""
    text = page.read_text(encoding="utf-8")
    fence = re.compile(r"^```python\n(.*?)^```[ \t]*$", re.S | re.M)
    output = re.compile(
        r"\A\s*Output(?: \(numbers within (\d+(?:\.\d+)?) %:[^)\n]*\))?:\s*\n\s*```text\n(.*?)^```",
        re.S | re.M,
    )
    heading, pos, out = "top", 0, []
    for match in fence.finditer(text):
        in_code = False
        for line in text[pos : match.start()].splitlines():
            if line.startswith("```"):
                in_code = not in_code
            elif line.startswith("#") and not in_code:
                heading = line.lstrip("#").strip()
        pos = match.end()
        shown = output.match(text[match.end() :])
        out.append(
            Block(
                page=page.relative_to(ROOT).as_posix(),
                line=text.count("\n", 0, match.start()) + 1,
                heading=heading,
                source=match.group(1),
                output=shown.group(2) if shown else None,
                tolerance=float(shown.group(1)) / 100 if shown and shown.group(1) else 0.03,
            )
        )
    return out


def requirements(source: str) -> list[str]:
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


def _skip_reason(block: Block) -> str | None:
    """Why ``block`` cannot run on this machine, or None."""
    for module in requirements(block.source):
        try:
            __import__(module)
        except ImportError:
            return f"{block.id} needs {module}"
    if "cupy" in requirements(block.source):
        import cupy

        try:
            devices = cupy.cuda.runtime.getDeviceCount()
        except Exception:
            devices = 0
        if devices == 0:
            return f"{block.id} needs a CUDA device for CuPy"
    if "torch" in requirements(block.source):
        import torch

        asks_cuda = re.search(r"\.cuda\(|[\"']cuda", block.source)
        if asks_cuda and "is_available()" not in block.source and not torch.cuda.is_available():
            return f"{block.id} needs a CUDA device"
    return None


def _numbers_agree(got: str, want: str, rel: float = 0.03) -> bool:
    """Whether two numbers printed alike agree to two units of the last digit or ``rel``."""
    a, b = float(got), float(want)
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    mantissa = re.split(r"[eE]", want)[0]
    decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
    exponent = int(re.split(r"[eE]", want)[1]) if re.search(r"[eE]", want) else 0
    unit = 10.0 ** (exponent - decimals)
    return abs(a - b) <= max(2 * unit, rel * abs(b))


def assert_output_matches(printed: str, shown: str, rel: float = 0.03) -> None:
    """Compare what a block printed with the ```text block the page shows after it."""
    got_lines = [line.rstrip() for line in printed.strip().splitlines()]
    want_lines = [line.rstrip() for line in shown.strip().splitlines()]
    assert len(got_lines) == len(want_lines), (
        f"printed {len(got_lines)} lines, the page shows {len(want_lines)}:\n{printed}"
    )
    for got, want in zip(got_lines, want_lines, strict=True):
        message = f"printed\n  {got}\nthe page shows\n  {want}"
        assert NUMBER.sub("#", got).split() == NUMBER.sub("#", want).split(), message
        for g, w in zip(NUMBER.findall(got), NUMBER.findall(want), strict=True):
            assert _numbers_agree(g, w, rel), message


BLOCKS = [block for page in PAGES for block in page_blocks(page)]


def test_blocks_are_found():
    pages = {block.page for block in BLOCKS}
    assert "README.md" in pages and "docs/optimizers.md" in pages, pages
    assert any(block.output is not None for block in BLOCKS)


@pytest.mark.parametrize("block", BLOCKS, ids=[block.id for block in BLOCKS])
def test_python_block_runs(block: Block):
    ast.parse(block.source)  # a fragment must still be valid Python
    if block.fragment:
        reason = FRAGMENT.match(block.source.splitlines()[0]).group(1).strip(" :—-")
        assert reason, f"{block.id}: say why the block is a fragment after '# fragment:'"
        return
    reason = _skip_reason(block)
    if reason:
        pytest.skip(reason)
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env.setdefault(var, "1")
    env.setdefault("MPLBACKEND", "Agg")
    result = subprocess.run(
        [sys.executable, "-c", block.source],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    if block.output is not None:
        assert_output_matches(result.stdout, block.output, block.tolerance)


def test_loosened_output_is_read_from_the_page(tmp_path):
    page = tmp_path / "page.md"
    block = "```python\nprint(1)\n```\n\n"
    page.write_text(
        f"{block}Output:\n\n```text\n1\n```\n\n"
        f"{block}Output (numbers within 50 %: float32 training follows the BLAS):\n\n"
        "```text\n1\n```\n",
        encoding="utf-8",
    )
    plain, loose = _blocks_of(page)
    assert (plain.output, plain.tolerance) == ("1\n", 0.03)
    assert (loose.output, loose.tolerance) == ("1\n", 0.5)
    assert_output_matches("Muon  1.4e+00", "Muon  2.2e+00", 0.5)
    with pytest.raises(AssertionError):
        assert_output_matches("Muon  0.9e+00", "Muon  2.2e+00", 0.5)


def _blocks_of(page):
    global ROOT
    saved, ROOT = ROOT, page.parent
    try:
        return page_blocks(page)
    finally:
        ROOT = saved


@pytest.mark.parametrize(
    ("printed", "shown", "agree"),
    [
        ("step 0  loss 4.3347\nTrue", "step 0  loss 4.3347\nTrue", True),
        ("step 0  loss 4.3349", "step 0  loss 4.3347", True),  # another BLAS
        ("Muon  1.8e+04  2.1e+00", "Muon  1.8e+04  2.0e+00", True),
        ("Muon  1.8e+04  4.0e-01", "Muon  1.8e+04  2.0e+00", False),  # another result
        ("Muon  8.5e+00  2.0e+00", "Muon  8.0e+00  2.0e+00", False),
        ("Muon  1.8e+04", "Muon  1.8e+04  2.0e+00", False),
        ("Adam  1.8e+04", "Muon  1.8e+04", False),
        ("True\nFalse", "True", False),
    ],
)
def test_output_comparison_can_fail(printed, shown, agree):
    if agree:
        assert_output_matches(printed, shown)
    else:
        with pytest.raises(AssertionError):
            assert_output_matches(printed, shown)


def test_mkdocs_build_strict(tmp_path):
    """The site, API reference included, builds without a warning (.ci/run does it too)."""
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings_handlers.python")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    api = (tmp_path / "api" / "torch" / "index.html").read_text(encoding="utf-8")
    assert 'id="polarlinalg.torch.PolarGrad"' in api
