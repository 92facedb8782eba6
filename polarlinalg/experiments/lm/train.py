"""The training loop: one (arm, seed) run, its schedule, timings and diagnostics.

Per step it records the training loss; every ``eval_every`` steps (and at the
last) the validation loss on fixed windows; every ``diag_every`` steps (and
at the first and last) κ₂ and the nuclear norm of the embedding and head
gradients (:mod:`polarlinalg.diagnostics`), and the median nuclear norm of the
momentum buffers of the hidden matrices and of embedding and head, where an
arm's optimizer keeps one (Muon, PolarGradM: the ``M`` whose ``‖M‖_*`` scales
PolarGrad's step), after the step that used them.  Timings: ``train_time`` counts
the forward, backward and optimizer steps only (not data loading, evaluation
or diagnostics); ``opt_time`` the optimizer steps; tokens/s is tokens over
``train_time``.  On accelerators the device is synchronised around the
optimizer step so both are wall times of finished work.  An arm with
``qk_clip`` records the per-head max attention logits on the forward pass and
applies QK-Clip after the optimizer steps (counted in ``opt_time``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from polarlinalg import diagnostics
from polarlinalg.experiments.lm._torch import require_torch
from polarlinalg.experiments.lm.arms import Arm, build_optimizers
from polarlinalg.experiments.lm.data import Corpus, TokenWindows
from polarlinalg.experiments.lm.model import GPT, GPTConfig
from polarlinalg.experiments.lm.presets import Preset
from polarlinalg.experiments.lm.results import RunResult

torch = require_torch()

__all__ = ["gradient_stats", "lr_factor", "momentum_norms", "resolve_device", "train_run"]


def resolve_device(name: str) -> Any:
    """Return the ``torch.device`` for ``name`` (``"auto"``: CUDA when present, else CPU)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N'; got {name!r}") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} was asked for but no CUDA device is available")
    return device


def lr_factor(step: int, steps: int, warmup_steps: int, final_fraction: float) -> float:
    """Return the schedule's multiplier of the peak learning rate at ``step`` (0-based).

    Linear warm-up from ``1/warmup_steps`` to 1 over ``warmup_steps`` steps,
    then cosine decay to ``final_fraction`` at the last step.
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(1, steps - 1 - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return final_fraction + (1 - final_fraction) * 0.5 * (1 + math.cos(math.pi * progress))


def gradient_stats(grad: Any, *, active_rows: bool = False) -> tuple[float, float]:
    """Return ``(κ₂, nuclear norm)`` of a gradient matrix, in float32 or wider.

    With ``active_rows`` only the non-zero rows count: the embedding gradient
    has zero rows for bytes absent from the batch, which would make κ₂
    infinite whatever the geometry of the rest.
    """
    g = grad.detach().float()
    if active_rows:
        g = g[g.abs().sum(dim=1) > 0]
        if g.shape[0] == 0:
            return math.inf, 0.0
    kappa = float(diagnostics.condition_number(g))
    nuclear = float(diagnostics.nuclear_norm(g))
    return kappa, nuclear


def momentum_norms(optimizers: Any, groups: Mapping[str, Any]) -> dict[str, float]:
    """Median nuclear norms of the matrix momentum buffers: ``nuc_m_hidden``, ``nuc_m_ends``.

    ``ends`` are the embedding and the head; a key is absent when no optimizer
    keeps a ``momentum_buffer`` for such a matrix.
    """
    ends = {id(p) for name in ("embed", "head") for p in groups[name]}
    norms: dict[str, list[float]] = {"nuc_m_hidden": [], "nuc_m_ends": []}
    for opt in optimizers:
        for group in opt.param_groups:
            for p in group["params"]:
                buf = opt.state.get(p, {}).get("momentum_buffer")
                if buf is None or buf.ndim != 2:
                    continue
                key = "nuc_m_ends" if id(p) in ends else "nuc_m_hidden"
                norms[key].append(float(diagnostics.nuclear_norm(buf.detach().float())))
    return {key: float(np.median(values)) for key, values in norms.items() if values}


def _grads_finite(model: Any) -> bool:
    norms = [torch.linalg.vector_norm(p.grad) for p in model.parameters() if p.grad is not None]
    return bool(torch.isfinite(torch.stack(norms)).all())


def _sync(device: Any) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _to_device(batch: tuple[np.ndarray, np.ndarray], device: Any) -> tuple[Any, Any]:
    x, y = (torch.from_numpy(a) for a in batch)
    if device.type == "cuda":
        return x.pin_memory().to(device, non_blocking=True), y.pin_memory().to(
            device, non_blocking=True
        )
    return x.to(device), y.to(device)


@torch.no_grad()
def _evaluate(
    model: Any, windows: TokenWindows, preset: Preset, device: Any, autocast: bool
) -> float:
    model.eval()
    total = 0.0
    for batch in windows.evaluation_batches(preset.batch_size, preset.eval_batches):
        x, y = _to_device(batch, device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            total += float(model.loss(x, y))
    model.train()
    return total / preset.eval_batches


def train_run(
    preset: Preset,
    arm: Arm,
    seed: int,
    corpus: Corpus,
    *,
    device: str = "auto",
    lrs: Mapping[str, float] | None = None,
    progress: bool = True,
) -> RunResult:
    """Train a fresh model of ``preset`` with ``arm`` from ``seed``; return its logs.

    ``seed`` fixes the initialisation and the sequence of training windows
    (the same windows for every arm at the same seed).  A non-finite training
    loss or gradient stops the run, marks it ``diverged`` and sets its final validation
    loss to NaN.
    """
    dev = resolve_device(device)
    autocast = preset.autocast and dev.type != "cpu"
    rates = {**preset.lrs, **(lrs or {})}
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    config = GPTConfig(preset.n_layer, preset.n_head, preset.d_model, preset.seq_len)
    model = GPT(config).to(dev)
    groups = model.parameter_groups()
    optimizers = build_optimizers(arm, groups, rates, preset.weight_decay, model=model)
    model.record_max_logits(arm.qk_clip is not None)
    warmup = preset.warmup_steps if arm.warmup else 0
    schedulers = [
        torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: lr_factor(s, preset.steps, warmup, preset.final_lr_fraction)
        )
        for opt in optimizers
    ]
    train = TokenWindows(corpus.train_path, preset.seq_len)
    val = TokenWindows(corpus.val_path, preset.seq_len)
    result = RunResult(arm=arm.name, seed=seed, lrs={r: rates[r] for r in arm.roles})
    bar = _progress(preset.steps, f"{arm.name} seed {seed}", progress)
    embed, head = groups["embed"][0], groups["head"][0]
    for step in range(1, preset.steps + 1):
        x, y = _to_device(train.sample(preset.batch_size, rng), dev)
        factor = lr_factor(step - 1, preset.steps, warmup, preset.final_lr_fraction)
        _sync(dev)
        start = time.perf_counter()
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=autocast):
            loss = model.loss(x, y)
        for opt in optimizers:
            opt.zero_grad(set_to_none=True)
        loss.backward()
        loss_value = float(loss.detach())  # synchronises
        backward_done = time.perf_counter()
        row: dict[str, float] = {"step": step, "lr_factor": factor, "train_loss": loss_value}
        if not (math.isfinite(loss_value) and _grads_finite(model)):
            result.diverged = True
            result.final_val_loss = math.nan
            result.log.append({**row, "time": result.train_time})
            break
        diagnose = step == 1 or step % preset.diag_every == 0 or step == preset.steps
        if diagnose:
            row["kappa_embed"], row["nuc_embed"] = gradient_stats(embed.grad, active_rows=True)
            row["kappa_head"], row["nuc_head"] = gradient_stats(head.grad)
        _sync(dev)
        opt_start = time.perf_counter()
        for opt in optimizers:
            opt.step()
        if arm.qk_clip is not None:  # with the maxima of this step's forward pass
            model.qk_clip_(arm.qk_clip)
        _sync(dev)
        end = time.perf_counter()
        if diagnose:
            row.update(momentum_norms(optimizers, groups))
        for sched in schedulers:
            sched.step()
        result.opt_time += end - opt_start
        result.train_time += (backward_done - start) + (end - opt_start)
        result.tokens += preset.batch_size * preset.seq_len
        row["time"] = result.train_time
        if step % preset.eval_every == 0 or step == preset.steps:
            row["val_loss"] = _evaluate(model, val, preset, dev, autocast)
            result.final_val_loss = row["val_loss"]
        result.log.append(row)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss_value:.3f}", refresh=False)
    if bar is not None:
        bar.close()
    return result


def _progress(total: int, desc: str, enabled: bool) -> Any:
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # tqdm is an optional extra: no bar without it
        return None
    return tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True)
