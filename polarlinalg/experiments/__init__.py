"""The PolarGrad paper's experiments, runnable on any backend.

``polarlinalg experiment quadratic|logistic|completion`` runs the matrix problems of
:mod:`polarlinalg.problems` with every optimizer arm (:mod:`polarlinalg.experiments.arms`,
:mod:`polarlinalg.experiments.runner`) and writes CSV/JSON results, a summary table and
plots (:mod:`polarlinalg.experiments.report`); ``polarlinalg experiment lm`` is the
language-model benchmark (:mod:`polarlinalg.experiments.lm`).  Nothing here is imported
by ``import polarlinalg``.
"""
