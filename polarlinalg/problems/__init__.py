r"""The matrix optimization problems of the PolarGrad paper, on any Array API backend.

Each problem draws its data on the host from a seeded NumPy generator in float64
(so one seed gives the same data on every backend), moves it to the namespace,
dtype and device you ask for, and evaluates its loss and analytic gradients with
Array API operations only:

* :class:`QuadraticRegression`: ``f(X) = ½‖AXB − C‖²_F``, strongly convex when
  ``A`` has full column rank and ``B`` full row rank; its optimum ``f*`` comes
  from a float64 least-squares solve.
* :class:`LogisticRegression`: ``f(X) = Σ softplus(−C ⊙ (A X B))`` with ±1
  labels, sampled by minibatches of rows.
* :class:`MatrixCompletion`: ``f(X, Y) = Σ(Ω ⊙ (XYᵀ − M))² / |Ω|`` for a rank-r
  ``M`` observed on the mask ``Ω``; ``f* = 0``.

Parameters are dictionaries of named matrices (``{"X": ...}``, ``{"X", "Y"}``),
the containers :mod:`polarlinalg.optim` steps.  Sizes and seeds default to the
paper's official code (Lau, Long, Su, arXiv:2505.21799, 2025).
"""

from polarlinalg.problems.completion import MatrixCompletion
from polarlinalg.problems.logistic import LogisticRegression
from polarlinalg.problems.quadratic import QuadraticRegression

__all__ = ["LogisticRegression", "MatrixCompletion", "QuadraticRegression"]
