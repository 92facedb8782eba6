"""Distributed machinery of the optimizer wrappers (framework code, imported lazily).

* :mod:`.ownership`: which rank orthogonalises which matrix (framework-free);
* :mod:`.torch_comm`: shard bounds and the collectives of ``torch.distributed``;
* :mod:`.torch_step`: the matrix step of :mod:`polarlinalg.torch` across ranks
  (replicated parameters under DDP, DTensor parameters under FSDP2);
* :mod:`.jax_layout`: the sharding layout of :mod:`polarlinalg.optax` under a mesh.

Nothing here is imported by ``import polarlinalg``; the torch modules are
imported by :mod:`polarlinalg.torch` only when a process group is initialised.
See ``docs/distributed.md`` for the design.
"""
