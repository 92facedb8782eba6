"""PolarGrad and Muon as optax gradient transformations.

::

    import optax
    from polarlinalg.optax import polargrad
    tx = polargrad(learning_rate=1e-2, momentum=0.9)
    state = tx.init(params)
    updates, state = tx.update(grads, state, params)
    params = optax.apply_updates(params, updates)

:func:`scale_by_polargrad` is the matrix rule alone (chain it with your own
transformations); :func:`polargrad` adds decoupled weight decay and the
learning rate, and sends leaves with fewer than two dimensions to
``optax.adamw`` with ``optax.partition``.  :func:`muon` accepts
``optax.contrib.muon``'s arguments and reproduces its updates, with any polar
method.  Everything is jit-able and works under ``optax.inject_hyperparams``;
integer hyper-parameters that shape the computation (``steps``, ``ns_steps``)
must then be listed in ``static_args``.

Under ``jax.set_mesh(mesh)`` with parameters sharded over the mesh
(``NamedSharding``), the matrices of one shape are orthogonalised as a batch
sharded over the devices, whole matrices per device (see
``docs/distributed.md``); the results are those of the single-device run.

Layout: flax and optax store a dense kernel as ``(fan_in, fan_out)``, so the
``"shape"`` scale here defaults to ``layout="in_out"``
(``√max(1, n/m)`` for an ``m × n`` kernel), the transpose of the PyTorch
convention.

:func:`labels` labels a parameter pytree by path (embeddings, head, hidden
matrices, vectors) for ``optax.partition`` or the ``rules`` above;
:func:`qk_clip` is QK-Clip (MuonClip) on attention kernels, as a pure function.
"""

from polarlinalg.optax._adapter import (
    ApplyRuleStepState,
    ScaleByRuleState,
    apply_rule_step,
    scale_by_rule,
)
from polarlinalg.optax._labels import labels
from polarlinalg.optax._polar import (
    MatrixBlocks,
    ScaleByPolarGradState,
    muon,
    normuon,
    polargrad,
    scale_by_normuon,
    scale_by_polargrad,
)
from polarlinalg.optax._qk_clip import QKClipResult, QKClipScales, qk_clip
from polarlinalg.optax._shampoo import scale_by_shampoo, scale_by_soap, shampoo, soap

__all__ = [
    "ApplyRuleStepState",
    "MatrixBlocks",
    "QKClipResult",
    "QKClipScales",
    "ScaleByPolarGradState",
    "ScaleByRuleState",
    "apply_rule_step",
    "labels",
    "muon",
    "normuon",
    "polargrad",
    "qk_clip",
    "scale_by_normuon",
    "scale_by_polargrad",
    "scale_by_rule",
    "scale_by_shampoo",
    "scale_by_soap",
    "shampoo",
    "soap",
]
