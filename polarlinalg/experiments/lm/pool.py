"""Training runs in worker processes: independent (arm, seed) runs on several cores.

:class:`RunPool` takes :class:`RunTask` values and returns futures of
:class:`~polarlinalg.experiments.lm.results.RunResult`.  With ``jobs=1`` each
run happens in this process when submitted (with its progress bar); with
``jobs=N > 1`` they run in ``N`` spawned processes with ``threads`` PyTorch
threads each (default 1: two one-thread runs on two cores do more work per
second than one two-thread run at these sizes).  A run's numbers do not
depend on which process ran it, only on its task.

Importing this module does not import PyTorch.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from polarlinalg.experiments.lm.presets import Preset
from polarlinalg.experiments.sweep import immediate

__all__ = ["RunPool", "RunTask"]


@dataclass(frozen=True)
class RunTask:
    """Everything one run needs: the preset, an arm's name, a seed and rate overrides."""

    preset: Preset
    arm: str
    seed: int
    lrs: dict[str, float] = field(default_factory=dict)
    device: str = "cpu"
    cache_dir: str | None = None


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _run(task: RunTask, progress: bool = False) -> Any:
    from polarlinalg.experiments.lm.arms import get_arm
    from polarlinalg.experiments.lm.data import build_corpus
    from polarlinalg.experiments.lm.train import train_run

    corpus = build_corpus(task.cache_dir)
    return train_run(
        task.preset,
        get_arm(task.arm),
        task.seed,
        corpus,
        device=task.device,
        lrs=task.lrs,
        progress=progress,
    )


class RunPool:
    """Run :class:`RunTask` values here (``jobs=1``) or in ``jobs`` worker processes.

    Use as a context manager; :meth:`submit` returns a Future of the run's
    :class:`~polarlinalg.experiments.lm.results.RunResult`.
    """

    def __init__(self, jobs: int = 1, *, threads: int = 1, progress: bool = True) -> None:
        for name, value in (("jobs", jobs), ("threads", threads)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int; got {value!r}")
        self.jobs, self.threads, self.progress = jobs, threads, progress
        self._executor: ProcessPoolExecutor | None = None

    def __enter__(self) -> RunPool:
        if self.jobs > 1:
            # OpenMP/BLAS pools of the workers: fixed before they import anything
            for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
                os.environ.setdefault(var, str(self.threads))
            self._executor = ProcessPoolExecutor(
                self.jobs,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
                initargs=(self.threads,),
            )
        return self

    def __exit__(self, *exc: object) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def submit(self, task: RunTask) -> Future:
        """Start ``task``; return the Future of its result."""
        if self._executor is None:
            if self.jobs > 1:
                raise RuntimeError("RunPool with jobs > 1 must be used as a context manager")
            return immediate(_run, task, self.progress)
        return self._executor.submit(_run, task)
