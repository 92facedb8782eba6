"""Language-model pre-training benchmark: AdamW, Muon, PolarGrad and others on a small GPT.

``polarlinalg experiment lm`` trains a compact pre-norm GPT byte-level on the
Python standard library's own source files (read from the running
interpreter's installation, so nothing is downloaded) with one optimizer arm
after another, and writes CSV/JSON results, a summary table and PNG plots.

Modules, one topic each:

- :mod:`~polarlinalg.experiments.lm.data`: the corpus, its file-level
  train/validation split and the memory-mapped token-window loader (NumPy only);
- :mod:`~polarlinalg.experiments.lm.model`: the GPT (PyTorch);
- :mod:`~polarlinalg.experiments.lm.arms`: the optimizer arms;
- :mod:`~polarlinalg.experiments.lm.presets`: the ``tiny`` and ``gpu`` presets;
- :mod:`~polarlinalg.experiments.lm.train`: the training loop and its logs;
- :mod:`~polarlinalg.experiments.lm.report`: CSV/JSON, plots and the summary table;
- :mod:`~polarlinalg.experiments.lm.cli`: the command line.

Importing this package imports neither PyTorch nor matplotlib nor tqdm; the
modules that need them import them.
"""
