"""PolarGrad and Muon as ``torch.optim.Optimizer`` subclasses.

::

    from polarlinalg.torch import PolarGrad
    opt = PolarGrad(model.parameters(), lr=1e-2, momentum=0.9)
    loss.backward(); opt.step(); opt.zero_grad()

Parameters with at least two dimensions follow the matrix rule of the
PolarGrad family (:mod:`polarlinalg._rules.polargrad`); the others (biases,
norm weights, scalars) follow AdamW, with hyper-parameters of their own
(``adamw_lr``, ``adamw_betas``, ``adamw_eps``, ``adamw_weight_decay``).  A
param group's ``rule`` (``"auto"``, ``"polargrad"`` or ``"adamw"``) sends
embeddings or heads to either rule.  On accelerators, matrices of the same
shape, dtype and device are orthogonalised together in one batched call
(``batch``).

:class:`Muon` has ``torch.optim.Muon``'s signature, defaults and results, with
any polar method and coefficient schedule.

State for bfloat16/float16 parameters is kept in float32, and stays float32
through ``state_dict``/``load_state_dict`` (PyTorch's loader would cast it to
the parameter dtype).

Across processes (an initialised ``torch.distributed`` process group) the
same optimizers share the orthogonalisation between the ranks, one owner per
matrix: DTensor parameters sharded on dimension 0 (FSDP2's ``fully_shard``)
are assembled on their owner by an all-to-all and sent back as rows, with the
momentum sharded like the parameter; plain parameters (DistributedDataParallel
replicas) are orthogonalised by their owner and all-gathered.  Results equal
the single-process optimizer's.  A param group with ``"distributed": False``
keeps its plain parameters on the single-process path (every rank computes
everything, no collective).  See ``docs/distributed.md``.

:func:`param_groups` routes a whole model (embeddings, head, hidden matrices,
vectors) into param groups by rule; :func:`qk_clip_` is QK-Clip (MuonClip) on
attention weights, in place.  See ``docs/optimizers.md``.
"""

from polarlinalg.torch._adapter import RuleOptimizer
from polarlinalg.torch._polar import Muon, NorMuon, PolarGrad
from polarlinalg.torch._qk_clip import QKClipScales, qk_clip_
from polarlinalg.torch._routing import param_groups
from polarlinalg.torch._shampoo import SOAP, Shampoo

__all__ = [
    "SOAP",
    "Muon",
    "NorMuon",
    "PolarGrad",
    "QKClipScales",
    "RuleOptimizer",
    "Shampoo",
    "param_groups",
    "qk_clip_",
]
