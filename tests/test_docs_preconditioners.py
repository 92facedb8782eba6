"""docs/preconditioners.md shows a runnable example for every wrapper and optimizer.

The blocks themselves are run (and their printed output compared with the page)
by tests/test_doc_blocks.py, which covers README.md and every page of docs/.
"""

from __future__ import annotations

from test_doc_blocks import ROOT, page_blocks

BLOCKS = page_blocks(ROOT / "docs" / "preconditioners.md")


def test_the_page_has_examples_for_every_wrapper():
    sources = "\n".join(block.source for block in BLOCKS if not block.fragment)
    for name in ("polarlinalg.torch", "polarlinalg.optax", "polarlinalg.optim"):
        assert f"from {name} import" in sources, name
    for optimizer in ("Shampoo", "SOAP", "NorMuon", "shampoo", "soap", "normuon"):
        assert optimizer in sources, optimizer
