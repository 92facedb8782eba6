"""``polarlinalg bench``: time every method and backend beside the anchors and the floor.

One run measures, on each backend, device, dtype and shape: polarlinalg's
methods, the alternatives a user would pick instead (the *anchors*), and the
*floor* (the bare matrix products or factorizations a method must do, timed on
the same backend in the same run).  Every row carries its accuracy against a
float64 SVD reference, so a time is never quoted without it.  A second part
times one optimizer step on a GPT-2-small-shaped parameter set.

Modules, one topic each:

``timing``       warm-up, device synchronisation, median/IQR, rotated inputs
``machine``      the metadata of a run (CPU, versions, date, load)
``cases``        the grid of shapes, dtypes and the quick/full configurations
``floors``       the operations a method must do, their FLOPs and timing
``candidates``   polarlinalg's methods and the anchors, per backend
``accuracy``     orthogonality and forward error against the float64 SVD
``runner``       the matrix benchmark: one row per (case, candidate)
``optimizers``   one optimizer step, polarlinalg vs torch.optim.Muon and optax
``targets``      the issue's targets, checked on the rows of a run
``schema``       the JSON layout and its check
``report``       text tables;  ``plots``: the PNG figures (matplotlib)
``cli``          the command line
``gpu_check``    one command for a lent GPU: validate, the GPU rows, a short LM run

Importing this package imports no framework, matplotlib or tqdm.
"""

from __future__ import annotations

__all__: list[str] = []
