"""PolarGrad and Muon for any Array API namespace (the polar-factor rules)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

from polarlinalg._compat import array_namespace, device
from polarlinalg._dtypes import state_dtype
from polarlinalg._rules import (
    AdamWRule,
    PolarGradRule,
    adamw_direction,
    apply_update,
    as_matrices,
    check_lr,
    check_weight_decay,
    choose_rule,
    polargrad_direction,
)
from polarlinalg._rules._blocks import check_heads, check_split
from polarlinalg._rules.finite import first_non_finite, non_finite_error
from polarlinalg._rules.hyperparams import (
    check_compute_dtype,
    check_flag,
    check_pair,
    form_of_rule,
)
from polarlinalg._rules.muon import MUON_COEFFICIENTS, muon_rule

__all__ = ["AdamWSlot", "MatrixSlot", "Muon", "OptimizerState", "PolarGrad"]

Array = Any
Params = Mapping[Any, Array] | Sequence[Array]
LearningRate = float | Callable[[int], float]
Rules = str | Mapping[Any, str] | Sequence[str] | Callable[[Any, Array], str] | None
PerParam = Any
"""A value for every matrix parameter, a dict ``{key: value}`` (missing keys: None) or a
callable ``(key, array) -> value``."""


class MatrixSlot(NamedTuple):
    """State of a parameter under the matrix rule."""

    momentum: Array | None


class AdamWSlot(NamedTuple):
    """State of a parameter under the AdamW rule: first and second moments."""

    mu: Array
    nu: Array


class OptimizerState(NamedTuple):
    """State of :class:`PolarGrad`: steps taken and one slot per parameter.

    ``slots`` has the container type and keys of the parameters.
    """

    count: int
    slots: Any


def _items(tree: Params) -> Iterator[tuple[Any, Array]]:
    if isinstance(tree, Mapping):
        yield from tree.items()
    elif isinstance(tree, Sequence) and not isinstance(tree, (str, bytes)):
        yield from enumerate(tree)
    else:
        raise TypeError(f"parameters must be a dict or a list of arrays; got {type(tree).__name__}")


def _rebuild(like: Params, values: dict[Any, Any]) -> Any:
    if isinstance(like, Mapping):
        return type(like)(values) if type(like) is not dict else dict(values)
    return type(like)(values[i] for i in range(len(like)))


class PolarGrad:
    r"""PolarGrad, PolarSGD and PolarGradM for arrays of any Array API namespace.

    Matrix parameters (≥ 2 dimensions) take ``X ← (1 − γλ) X − γ D`` with the
    direction ``D`` of the PolarGrad family (Lau, Long, Su, arXiv:2505.21799):
    momentum first ``M ← βM + (1−β)G, D = ⟨M, U⟩ U, U = polar(M)``, or polar
    first ``U = polar(G), M ← βM + (1−β)U, D = ⟨G, U⟩ M``.  The others follow
    AdamW.  See ``docs/optimizers.md`` for the formulas and how to choose.

    Parameters
    ----------
    lr : float or callable
        ``γ``; a callable gets the number of steps taken so far (0, 1, …).
    momentum : float, default 0
        ``β`` in ``[0, 1)``; 0 is plain PolarGrad.
    polar_first : bool, default False
        Polar factor of the gradient before the momentum (else momentum first).
    nesterov : bool, default False
        Nesterov look-ahead on the momentum.
    weight_decay : float, default 0
        Decoupled weight decay ``λ`` of the matrix rule.
    method : str, default "qdwh"
        Polar method (:data:`polarlinalg.METHODS`).
    steps, coefficients, compute_dtype
        As in :func:`polarlinalg.orthogonalize`.
    scale : {"nuclear", "none", "shape", "rms"}, default "nuclear"
        ``⟨M, U⟩`` (PolarGrad), 1 (Muon), ``√max(1, fan_out/fan_in)`` or
        ``0.2·√max(m, n)``; times ``scale_factor``.
    scale_factor : float, default 1
    layout : {"out_in", "in_out"}, default "out_in"
        Axis order of the weights for ``scale="shape"``: ``(fan_out, fan_in)``
        like ``torch.nn.Linear`` or ``(fan_in, fan_out)`` like flax kernels.
    flatten : bool, default False
        Matrices of ``(shape[0], -1)`` for parameters with > 2 dimensions
        instead of a batch over the leading dimensions.
    rules : str, dict, list or callable, optional
        Rule per parameter: ``"auto"`` (default: ≥ 2-D to the matrix rule),
        ``"polargrad"`` or ``"adamw"``; a container like the parameters, or
        ``rules(key, array) -> str``.  Use it to send embeddings or heads to
        either rule, or to a one-sided rule (Lau & Su, arXiv:2605.18106):
        ``"rownorm"`` (RowNormM), ``"polar_right"`` or ``"polar_left"``, the
        matrix rule with that form (see :class:`polarlinalg.torch.PolarGrad`).
    split : tuple of int, dict or callable, optional
        Fused weights: block sizes along the output dimension (rows with
        ``layout="out_in"``, columns with ``"in_out"``), each block
        orthogonalised and scaled on its own; one tuple for every matrix
        parameter, ``{key: tuple}`` or ``split(key, array) -> tuple or None``.
        A parameter it does not fit raises ValueError naming it (at ``init``).
    heads : int, dict or callable, optional
        Per-head blocks (``(H·d, n)`` as ``H`` matrices ``(d, n)``, within
        each ``split`` block); given as ``split``.
    form_eps : float, default 1e-8
        ``ε`` of the one-sided rules.
    adamw_lr : float or callable, optional
        Learning rate of the AdamW rule (default ``lr``).
    adamw_betas : (float, float), default (0.9, 0.999)
    adamw_eps : float, default 1e-8
    adamw_weight_decay : float, default 0
    check_finite : bool, default True
        Raise ValueError naming the parameter, before anything is computed,
        when any gradient (matrix or AdamW rule) holds NaN or infinity (eager
        arrays only).  With False, and for traced arrays, NaN propagates into
        the parameter instead, whatever the method.
    method_options : dict, optional
        Extra options of the polar method (e.g. ``{"lower": 1e-3}``).

    Raises
    ------
    ValueError, TypeError
        For an invalid hyper-parameter, at construction; for a
        ``compute_dtype`` the parameters' namespace lacks (bfloat16 in NumPy),
        at ``init``.

    Examples
    --------
    >>> import numpy as np
    >>> from polarlinalg.optim import PolarGrad
    >>> rng = np.random.default_rng(0)
    >>> params = {"w": rng.standard_normal((8, 4)), "b": np.zeros(4)}
    >>> opt = PolarGrad(lr=0.1, momentum=0.9)
    >>> state = opt.init(params)
    >>> grads = {"w": params["w"], "b": np.ones(4)}
    >>> params, state = opt.step(params, grads, state)
    >>> state.count
    1
    """

    def __init__(
        self,
        lr: LearningRate,
        *,
        momentum: float = 0.0,
        polar_first: bool = False,
        nesterov: bool = False,
        weight_decay: float = 0.0,
        method: str = "qdwh",
        steps: int | None = None,
        coefficients: Any = None,
        compute_dtype: Any = None,
        scale: str = "nuclear",
        scale_factor: float = 1.0,
        layout: str = "out_in",
        flatten: bool = False,
        rules: Rules = None,
        split: PerParam = None,
        heads: PerParam = None,
        form_eps: float = 1e-8,
        adamw_lr: LearningRate | None = None,
        adamw_betas: tuple[float, float] = (0.9, 0.999),
        adamw_eps: float = 1e-8,
        adamw_weight_decay: float = 0.0,
        check_finite: bool = True,
        method_options: Mapping[str, Any] | None = None,
    ) -> None:
        rule = PolarGradRule(
            momentum=momentum,
            polar_first=polar_first,
            nesterov=nesterov,
            method=method,
            steps=steps,
            coefficients=coefficients,
            scale=scale,
            scale_factor=scale_factor,
            layout=layout,
            flatten=flatten,
            compute_dtype=compute_dtype,
            check_finite=False,  # step checks every gradient first
            method_options=dict(method_options or {}),
            form_eps=form_eps,
        )
        self._setup(
            lr, weight_decay, rule, rules, adamw_lr, adamw_betas, adamw_eps, adamw_weight_decay
        )
        self._set_blocks(split, heads)
        self.check_finite = check_flag("check_finite", check_finite)

    def _set_blocks(self, split: PerParam, heads: PerParam) -> None:
        """Keep ``split``/``heads`` (checked now unless given per parameter)."""
        if not (split is None or isinstance(split, Mapping) or callable(split)):
            check_split(split)
        if not (heads is None or isinstance(heads, Mapping) or callable(heads)):
            check_heads(heads)
        self.split, self.heads = split, heads
        self._rules: dict[Any, PolarGradRule] = {}

    def _setup(
        self,
        lr: LearningRate,
        weight_decay: float,
        rule: PolarGradRule,
        rules: Rules,
        adamw_lr: LearningRate | None,
        adamw_betas: tuple[float, float],
        adamw_eps: float,
        adamw_weight_decay: float,
    ) -> None:
        check_lr(lr)
        check_weight_decay(weight_decay)
        if adamw_lr is not None:
            check_lr(adamw_lr, "adamw_lr")
        check_weight_decay(adamw_weight_decay, "adamw_weight_decay")
        if isinstance(rules, str):
            choose_rule(rules, 2)  # validates the name
        self.lr = lr
        self.weight_decay = weight_decay
        self.rule = rule
        self.rules = rules
        self.adamw_lr = lr if adamw_lr is None else adamw_lr
        b1, b2 = check_pair("adamw_betas", adamw_betas)
        self.adamw = AdamWRule(b1=b1, b2=b2, eps=adamw_eps)
        self.adamw_weight_decay = adamw_weight_decay
        self.split = self.heads = None
        self._rules = {}
        self.check_finite = False  # Muon does not check; PolarGrad sets its own after this

    # -- which rule ------------------------------------------------------------------------

    def _choice(self, key: Any, x: Array) -> Any:
        """Return the label ``rules`` gives parameter ``key`` (``"auto"`` where it gives none)."""
        rules = self.rules
        if rules is None:
            return "auto"
        if isinstance(rules, str):
            return rules
        if callable(rules):
            return rules(key, x)
        if isinstance(rules, Mapping):
            return rules.get(key, "auto")
        return rules[key] if key < len(rules) else "auto"

    def _rule_of(self, key: Any, x: Array) -> str:
        return choose_rule(self._choice(key, x), x.ndim, name=f"parameter {key!r}")

    @staticmethod
    def _per_param(value: PerParam, key: Any, x: Array) -> Any:
        if isinstance(value, Mapping):
            return value.get(key)
        if callable(value):
            return value(key, x)
        return value

    def _param_rule(self, key: Any, x: Array) -> PolarGradRule:
        """Return the matrix rule of parameter ``key``: its form and blocks on :attr:`rule`."""
        form = form_of_rule(self._choice(key, x))
        split = self._per_param(self.split, key, x)
        heads = self._per_param(self.heads, key, x)
        if form == "polar" and split is None and heads is None:
            return self.rule
        try:
            split, heads = check_split(split), check_heads(heads)
        except ValueError as exc:
            raise ValueError(f"parameter {key!r}: {exc}") from None
        cache = (form, split, heads)
        if cache not in self._rules:
            self._rules[cache] = dataclasses.replace(self.rule, form=form, split=split, heads=heads)
        return self._rules[cache]

    # -- the optimizer ------------------------------------------------------------------------

    def init(self, params: Params) -> OptimizerState:
        """Return the initial state (zero moments) for ``params``."""
        slots: dict[Any, Any] = {}
        for key, x in _items(params):
            xp = array_namespace(x)
            if not xp.isdtype(x.dtype, ("real floating", "complex floating")):
                raise TypeError(f"parameter {key!r} must be floating; got dtype {x.dtype}")
            dtype = state_dtype(xp, x.dtype)
            if self._rule_of(key, x) != "adamw":
                slots[key] = self._matrix_slot(key, x)
            else:
                real = xp.real(xp.zeros(1, dtype=dtype, device=device(x))).dtype
                zeros = xp.zeros(x.shape, dtype=dtype, device=device(x))
                slots[key] = AdamWSlot(zeros, xp.zeros(x.shape, dtype=real, device=device(x)))
        return OptimizerState(0, _rebuild(params, slots))

    def step(
        self, params: Params, grads: Params, state: OptimizerState
    ) -> tuple[Any, OptimizerState]:
        """Return ``(new params, new state)`` after one step with ``grads``.

        A gradient that is None leaves its parameter and slot unchanged (as
        PyTorch does for parameters without ``.grad``).  With
        ``check_finite``, a NaN/inf gradient raises ValueError naming its
        parameter before anything is computed.
        """
        if not isinstance(state, OptimizerState):
            raise TypeError("state must be the OptimizerState returned by init() or step()")
        param_items = dict(_items(params))
        grad_items = dict(_items(grads))
        slot_items = dict(_items(state.slots))
        if set(grad_items) != set(param_items) or set(slot_items) != set(param_items):
            raise ValueError(
                "params, grads and state must have the same keys; got "
                f"{sorted(map(str, param_items))}, {sorted(map(str, grad_items))} and "
                f"{sorted(map(str, slot_items))}"
            )
        for key, g in grad_items.items():
            if g is not None and tuple(g.shape) != tuple(param_items[key].shape):
                raise ValueError(
                    f"gradient {key!r} has shape {tuple(g.shape)}, its parameter "
                    f"{tuple(param_items[key].shape)}"
                )
        if self.check_finite:
            bad = first_non_finite(grad_items.items())
            if bad is not None:
                shape = tuple(grad_items[bad].shape)
                raise non_finite_error(f"parameter {bad!r} (shape {shape})")
        count = state.count + 1
        lr = self.lr(state.count) if callable(self.lr) else self.lr
        adamw_lr = self.adamw_lr(state.count) if callable(self.adamw_lr) else self.adamw_lr
        new_params, new_slots = {}, {}
        for key, x in param_items.items():
            g, slot = grad_items[key], slot_items[key]
            if g is None:
                new_params[key], new_slots[key] = x, slot
            elif isinstance(slot, MatrixSlot):
                rule = self._param_rule(key, x)
                new_params[key], new_slots[key] = self._polar_step(rule, x, g, slot, lr, count)
            elif isinstance(slot, self._slot_type):
                new_params[key], new_slots[key] = self._matrix_step(x, g, slot, lr, count)
            elif isinstance(slot, AdamWSlot):
                new_params[key], new_slots[key] = self._adamw_step(x, g, slot, adamw_lr, count)
            else:
                raise TypeError(
                    f"state slot {key!r} is not a {self._slot_type.__name__} or AdamWSlot"
                )
        return _rebuild(params, new_params), OptimizerState(count, _rebuild(params, new_slots))

    _slot_type: type = MatrixSlot

    def _matrix_slot(self, key: Any, x: Array) -> Any:
        """Return the initial matrix-rule slot of parameter ``x``."""
        xp = array_namespace(x)
        check_compute_dtype(self.rule.compute_dtype, self.rule.method, xp)
        view = as_matrices(x, self.rule.flatten)
        rule = self._param_rule(key, x)
        try:
            rule.block_sizes(tuple(view.shape))
        except ValueError as exc:
            raise ValueError(f"parameter {key!r}: {exc}") from None
        buf = xp.zeros(view.shape, dtype=state_dtype(xp, x.dtype), device=device(x))
        return MatrixSlot(buf if self.rule.has_buffer else None)

    def _matrix_step(
        self, x: Array, g: Array, slot: MatrixSlot, lr: Any, count: int
    ) -> tuple[Array, MatrixSlot]:
        return self._polar_step(self.rule, x, g, slot, lr, count)

    def _polar_step(
        self, rule: PolarGradRule, x: Array, g: Array, slot: MatrixSlot, lr: Any, count: int
    ) -> tuple[Array, MatrixSlot]:
        xp = array_namespace(x, g)
        grad = as_matrices(g, rule.flatten)
        direction, buf = polargrad_direction(xp, rule, grad, slot.momentum, count)
        direction = xp.reshape(direction, x.shape)
        return apply_update(x, direction, lr, self.weight_decay), MatrixSlot(buf)

    def _adamw_step(
        self, x: Array, g: Array, slot: AdamWSlot, lr: Any, count: int
    ) -> tuple[Array, AdamWSlot]:
        xp = array_namespace(x, g)
        direction, mu, nu = adamw_direction(xp, self.adamw, g, slot.mu, slot.nu, count)
        return apply_update(x, direction, lr, self.adamw_weight_decay), AdamWSlot(mu, nu)


class Muon(PolarGrad):
    """Muon with ``torch.optim.Muon``'s hyper-parameters, for any Array API namespace.

    Momentum-first matrix rule with Nesterov momentum and no nuclear-norm
    scaling; the step is scaled by ``√max(1, A/B)`` (``adjust_lr_fn=None`` or
    ``"original"``) or ``0.2·√max(A, B)`` (``"match_rms_adamw"``) for an
    ``A × B`` weight, and the weight decay uses the unscaled ``lr``.  Unlike
    ``torch.optim.Muon`` it computes in the parameters' dtype by default
    (pass ``compute_dtype="bfloat16"`` where the namespace has it), accepts
    any ``method``/``coefficients``, and sends parameters with fewer than two
    dimensions to AdamW (``rules`` as in :class:`PolarGrad`, one-sided rules
    included).  ``split``, ``heads`` and ``form_eps`` as in :class:`PolarGrad`
    (the shape factor is then per block).
    """

    def __init__(
        self,
        lr: LearningRate = 1e-3,
        weight_decay: float = 0.1,
        momentum: float = 0.95,
        nesterov: bool = True,
        ns_coefficients: tuple[float, float, float] = MUON_COEFFICIENTS,
        eps: float = 1e-7,
        ns_steps: int = 5,
        adjust_lr_fn: str | None = None,
        *,
        method: str = "newton_schulz",
        coefficients: Any = None,
        compute_dtype: Any = None,
        rules: Rules = None,
        split: PerParam = None,
        heads: PerParam = None,
        form_eps: float = 1e-8,
        adamw_lr: LearningRate | None = None,
        adamw_betas: tuple[float, float] = (0.9, 0.999),
        adamw_eps: float = 1e-8,
        adamw_weight_decay: float = 0.0,
    ) -> None:
        rule = muon_rule(
            momentum=momentum,
            nesterov=nesterov,
            ns_coefficients=ns_coefficients,
            ns_steps=ns_steps,
            eps=eps,
            adjust_lr_fn=adjust_lr_fn,
            method=method,
            coefficients=coefficients,
            compute_dtype=compute_dtype,
            form_eps=form_eps,
        )
        self._setup(
            lr, weight_decay, rule, rules, adamw_lr, adamw_betas, adamw_eps, adamw_weight_decay
        )
        self._set_blocks(split, heads)
