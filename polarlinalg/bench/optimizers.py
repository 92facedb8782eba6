"""One optimizer step on a GPT-2-small-shaped parameter set.

The parameters are the hidden matrices of GPT-2 small: per layer the
attention's fused ``768 × 2304`` (q, k, v), its ``768 × 768`` projection and
the MLP's ``768 × 3072`` and ``3072 × 768``, all float32, for ``layers``
layers (12 in GPT-2 small: 48 matrices, 85M parameters; the embedding and
head are left out).  Gradients are fixed random tensors (two sets,
alternated).  Each optimizer gets its own copy of the same parameters.

PyTorch: ``torch.optim.Muon`` (the reference) against
``polarlinalg.torch.Muon`` (same update) and ``polarlinalg.torch.PolarGrad``
(momentum 0.95, Nesterov, the same Newton–Schulz steps in bfloat16: Muon with
PolarGrad's nuclear-norm scale).  JAX: ``optax.contrib.muon`` against
``polarlinalg.optax.muon`` and ``polarlinalg.optax.polargrad`` (same
settings, float32), each step one ``jax.jit``-compiled update and apply.
After warm-up steps the candidates are timed in interleaved rounds (order
alternating), one step per sample.  The floor is the Newton–Schulz matrix
products alone (5 steps × 3 products per matrix in its wide orientation,
batched per shape), in bfloat16 on PyTorch and float32 on JAX (one jitted
program), timed as one more candidate in the same interleaved rounds; the
ratios to the reference and to the floor are medians of per-round ratios.
Each row also reports how far its first update is from the reference's
(relative Frobenius norm; bfloat16 rounding gives about 1e-2 for the same
method, PolarGrad differs by its scale).

Two more families on PyTorch, each with the reference a user would pick
(pytorch-optimizer 4.1.0; heavyball 3.2.1 for SOAP), configured alike, every
one computing new roots or bases every :data:`PRECONDITION_EVERY` steps:
``family="shampoo"`` (pytorch-optimizer's classic ``Shampoo``, roots by SVD,
against ``polarlinalg.torch.Shampoo`` with summed statistics, no grafting and
no blocking, and with its defaults: Adam grafting, EMA statistics, blocks of
1024; both preconditioning from the first step, so every timed step does the
products, as pytorch-optimizer's does with its zero roots of the first period)
and ``family="soap"`` (pytorch-optimizer's ``SOAP`` against heavyball's
``SOAP`` and ``polarlinalg.torch.SOAP``), all float32.  The timed steps cover
whole periods, so the mean (``mean_s``) includes the amortized roots; the
median is a step without them.  Their floor is the per-step matrix products
alone (Shampoo: the two Gram products and the two preconditioning products
per matrix; SOAP: the two Gram products and six rotation products), float32:
the amortized eigendecompositions are not in it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from polarlinalg.bench.candidates import JORDAN, NS_STEPS
from polarlinalg.bench.floors import FloorProgram, Op, newton_schulz_ops
from polarlinalg.bench.timing import block, paired_ratio, summarize

__all__ = ["FAMILIES", "LAYER_SHAPES", "PRECONDITION_EVERY", "gpt2_shapes", "run_optimizers"]

LAYER_SHAPES = ((768, 2304), (768, 768), (768, 3072), (3072, 768))
"""Hidden matrices of one GPT-2-small layer."""

FAMILIES = ("muon", "shampoo", "soap")
"""Optimizer families of the step benchmark; each has its own reference."""

PRECONDITION_EVERY = 10
"""Steps between new Shampoo roots / SOAP bases in the ``shampoo`` and ``soap`` families."""


def gpt2_shapes(layers: int) -> list[tuple[int, int]]:
    """Return the shapes of ``layers`` layers' hidden matrices."""
    if layers < 1:
        raise ValueError(f"layers must be at least 1; got {layers}")
    return [shape for _ in range(layers) for shape in LAYER_SHAPES]


def _numpy_params(shapes: Sequence[tuple[int, int]], seed: int, scale: bool) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for m, n in shapes:
        a = rng.standard_normal((m, n), dtype=np.float32)
        out.append(a / np.float32(np.sqrt(n)) if scale else a)
    return out


def _floor_ops(shapes: Sequence[tuple[int, int]]) -> list[Any]:
    groups: dict[tuple[int, int], int] = {}
    for m, n in shapes:
        key = (min(m, n), max(m, n))
        groups[key] = groups.get(key, 0) + 1
    ops = []
    for (k, n), count in groups.items():
        ops.extend(newton_schulz_ops(count, k, n, [JORDAN] * NS_STEPS))
    return ops


def _kronecker_floor_ops(shapes: Sequence[tuple[int, int]], family: str) -> list[Any]:
    ops = []
    for m, n in shapes:
        grams = [Op("matmul", 1, (m, n, m)), Op("matmul", 1, (n, m, n))]
        left, right = Op("matmul", 1, (m, m, n)), Op("matmul", 1, (m, n, n))
        ops.extend(grams + ([left, right] if family == "shampoo" else [left, right] * 3))
    return ops


def _relative_difference(ours: list[np.ndarray], ref: list[np.ndarray], init: list) -> float:
    num = den = 0.0
    for p, q, x in zip(ours, ref, init, strict=True):
        d_ours = p.astype(np.float64) - x
        d_ref = q.astype(np.float64) - x
        num += float(np.sum((d_ours - d_ref) ** 2))
        den += float(np.sum(d_ref**2))
    return (num / den) ** 0.5 if den > 0 else float("nan")


class _Stepper:
    """One optimizer over its own parameters: ``step(i)`` runs step ``i`` and returns seconds."""

    def __init__(self, name: str, step: Callable[[int], None], sync: Callable[[], None]) -> None:
        self.name = name
        self._step = step
        self._sync = sync
        self.samples: list[float] = []
        self.cpu: list[float] = []
        self.first = 0.0

    def step(self, i: int) -> tuple[float, float]:
        self._sync()
        cpu, start = time.process_time(), time.perf_counter()
        self._step(i)
        self._sync()
        return time.perf_counter() - start, time.process_time() - cpu


def _kronecker_builders(family: str) -> dict[str, Callable[[list], Any]]:
    """Return the references (first) and ours for the ``shampoo`` or ``soap`` family."""
    import pytorch_optimizer

    import polarlinalg.torch as pltorch

    every = PRECONDITION_EVERY
    if family == "shampoo":
        return {
            "pytorch_optimizer.Shampoo": lambda ps: pytorch_optimizer.Shampoo(
                ps, lr=1e-3, momentum=0.0, matrix_eps=1e-6, preconditioning_compute_steps=every
            ),
            "polarlinalg.torch.Shampoo (classic)": lambda ps: pltorch.Shampoo(
                ps,
                lr=1e-3,
                betas=(0.0, 1.0),
                eps=1e-6,
                grafting="none",
                precondition_every=every,
                start_preconditioning_step=1,  # roots at steps 1, 11, …: every step preconditioned
                max_preconditioner_dim=None,
                check_finite=False,
            ),
            "polarlinalg.torch.Shampoo (defaults)": lambda ps: pltorch.Shampoo(
                ps,
                lr=1e-3,
                precondition_every=every,
                start_preconditioning_step=1,
                check_finite=False,
            ),
        }
    import heavyball

    return {
        "pytorch_optimizer.SOAP": lambda ps: pytorch_optimizer.SOAP(
            ps, precondition_frequency=every
        ),
        "heavyball.SOAP": lambda ps: heavyball.SOAP(
            ps,
            betas=(0.95, 0.95),
            shampoo_beta=0.95,
            precondition_frequency=every,
            max_precond_dim=10000,
            merge_dims=False,
            use_precond_schedule=False,
        ),
        "polarlinalg.torch.SOAP": lambda ps: pltorch.SOAP(
            ps, precondition_frequency=every, check_finite=False
        ),
    }


def _torch_steppers(
    backend: Any, init: list[np.ndarray], grads: list[list[np.ndarray]], family: str = "muon"
) -> tuple[list[_Stepper], Callable[[_Stepper], list[np.ndarray]]]:
    import torch

    import polarlinalg.torch as pltorch

    device = backend.device
    builders = (
        _kronecker_builders(family)
        if family != "muon"
        else {
            "torch.optim.Muon": lambda ps: torch.optim.Muon(ps),
            "polarlinalg.torch.Muon": lambda ps: pltorch.Muon(ps),
            "polarlinalg.torch.PolarGrad": lambda ps: pltorch.PolarGrad(
                ps,
                lr=1e-3,
                momentum=0.95,
                nesterov=True,
                weight_decay=0.1,
                method="newton_schulz",
                compute_dtype=torch.bfloat16,
                check_finite=False,  # as torch.optim.Muon, which checks nothing
            ),
        }
    )
    tgrads = [[torch.asarray(g, device=device) for g in gs] for gs in grads]
    params_of: dict[str, list[torch.Tensor]] = {}
    steppers = []
    for name, build in builders.items():
        params = [torch.nn.Parameter(torch.asarray(p, device=device).clone()) for p in init]
        opt = build(params)
        params_of[name] = params

        def step(i: int, params: list = params, opt: Any = opt) -> None:
            for p, g in zip(params, tgrads[i % 2], strict=True):
                p.grad = g
            opt.step()

        steppers.append(_Stepper(name, step, backend.synchronize))

    def values(s: _Stepper) -> list[np.ndarray]:
        return [p.detach().cpu().numpy() for p in params_of[s.name]]

    return steppers, values


def _optax_steppers(
    backend: Any, init: list[np.ndarray], grads: list[list[np.ndarray]]
) -> tuple[list[_Stepper], Callable[[_Stepper], list[np.ndarray]]]:
    import jax
    import optax
    import optax.contrib

    import polarlinalg.optax as plo

    builders = {
        "optax.contrib.muon": lambda: optax.contrib.muon(1e-3),
        "polarlinalg.optax.muon": lambda: plo.muon(1e-3),
        "polarlinalg.optax.polargrad": lambda: plo.polargrad(
            1e-3, momentum=0.95, nesterov=True, method="newton_schulz", check_finite=False
        ),
    }
    jgrads = [[jax.device_put(g, backend.device) for g in gs] for gs in grads]
    state_of: dict[str, list] = {}
    steppers = []
    for name, build in builders.items():
        tx = build()
        params = [jax.device_put(p, backend.device) for p in init]

        @jax.jit
        def update(params: list, state: Any, grads: list, tx: Any = tx) -> tuple[list, Any]:
            updates, state = tx.update(grads, state, params)
            return optax.apply_updates(params, updates), state

        holder = [params, tx.init(params)]
        state_of[name] = holder

        def step(i: int, holder: list = holder, update: Any = update) -> None:
            holder[0], holder[1] = block(update(holder[0], holder[1], jgrads[i % 2]))

        steppers.append(_Stepper(name, step, backend.synchronize))

    def values(s: _Stepper) -> list[np.ndarray]:
        return [np.asarray(p) for p in state_of[s.name][0]]

    return steppers, values


def run_optimizers(
    backend: Any,
    layers: int,
    repeats: int,
    warmup: int = 1,
    progress: Callable[[str], None] = lambda line: None,
    shapes: Sequence[tuple[int, int]] | None = None,
    family: str = "muon",
) -> dict:
    """Time one step of each optimizer of ``backend`` (PyTorch or JAX); return the record.

    Parameters
    ----------
    backend : polarlinalg.backends.Backend
        A PyTorch or JAX backend (ValueError otherwise).
    layers : int
        GPT-2-small layers (48 matrices for 12).
    repeats, warmup : int
        Timed and untimed steps per optimizer (each at least 1).
    progress : callable
        Receives one line per optimizer.
    shapes : sequence of (int, int), optional
        Other matrix shapes instead of ``layers`` GPT-2 layers (for tests).
    family : {"muon", "shampoo", "soap"}
        Which optimizers (see the module docstring); the last two on PyTorch
        only, with pytorch-optimizer (and heavyball for SOAP) installed.

    Returns
    -------
    dict
        ``{"backend", "device", "layers", "matrices", "parameters", "rows": [...]}``;
        each row has the timing (``median_s``, …), ``ratio_to_reference``,
        ``floor_s``, ``floor_flops``, ``time_over_floor``, ``gflops``,
        ``cpu_over_wall`` and ``update_difference``.
    """
    if repeats < 1 or warmup < 1:
        raise ValueError(f"repeats and warmup must be at least 1; got {repeats}, {warmup}")
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; choose one of {FAMILIES}")
    shapes = gpt2_shapes(layers) if shapes is None else [tuple(s) for s in shapes]
    init = _numpy_params(shapes, 0, scale=True)
    grads = [_numpy_params(shapes, seed, scale=False) for seed in (1, 2)]
    if family != "muon":
        if not backend.name.startswith("torch"):
            raise ValueError(
                f"the {family} family is timed on PyTorch only (no {family} reference exists "
                f"for {backend.name})"
            )
        steppers, values = _torch_steppers(backend, init, grads, family)
        floor_dtype = "float32"
    elif backend.name.startswith("torch"):
        steppers, values = _torch_steppers(backend, init, grads)
        floor_dtype = "bfloat16"
    elif backend.name.startswith("jax"):
        steppers, values = _optax_steppers(backend, init, grads)
        floor_dtype = "float32"
    else:
        raise ValueError(f"no optimizer benchmark for backend {backend.name!r}")
    init64 = [p.astype(np.float64) for p in init]
    for s in steppers:  # first step from the same state: compare the updates
        s.first, _ = s.step(0)
    first_values = {s.name: values(s) for s in steppers}
    ref = steppers[0]
    floors = FloorProgram(backend, floor_dtype)
    ops = _floor_ops(shapes) if family == "muon" else _kronecker_floor_ops(shapes, family)
    program = floors.program(ops)
    floor = _Stepper("floor", lambda i: block(program(None)), backend.synchronize)
    floor.first, _ = floor.step(0)
    timed = [*steppers, floor]
    for i in range(1, warmup + repeats):
        order = timed if i % 2 else timed[::-1]
        for s in order:
            seconds, cpu = s.step(i)
            if i >= warmup:
                s.samples.append(seconds)
                s.cpu.append(cpu)
    floor_timing = summarize(floor.samples, floor.first)
    floor_s, floor_flops = floor_timing.median, floors.flops(ops)
    ref_timing = summarize(ref.samples, ref.first)
    rows = []
    for s in steppers:
        timing = summarize(s.samples, s.first)
        row = {
            "candidate": s.name,
            "source": "anchor" if s is ref else "polarlinalg",
            **timing.as_dict(),
            "ratio_to_reference": paired_ratio(timing, ref_timing),
            "mean_s": float(np.mean(s.samples)),
            "mean_ratio_to_reference": float(np.mean(s.samples) / np.mean(ref.samples)),
            "floor_s": floor_s,
            "floor_flops": floor_flops,
            "floor_dtype": floor_dtype,
            "time_over_floor": paired_ratio(timing, floor_timing),
            "gflops": floor_flops / timing.median / 1e9,
            "cpu_over_wall": sum(s.cpu) / sum(s.samples),
            "update_difference": None
            if s is ref
            else _relative_difference(first_values[s.name], first_values[ref.name], init64),
        }
        rows.append(row)
        progress(
            f"{backend.name:>6} step {layers} layers {s.name:<36} {1e3 * timing.median:9.1f} ms  "
            f"x{row['ratio_to_reference']:.2f} ref  x{row['time_over_floor']:.2f} floor"
        )
    return {
        "backend": backend.name,
        "family": family,
        "device": backend.device_name,
        "reference": ref.name,
        "layers": layers,
        "matrices": len(shapes),
        "parameters": int(sum(m * n for m, n in shapes)),
        "warmup": warmup,
        "floor_gflops": floor_flops / floor_s / 1e9,
        "rows": rows,
    }
