"""A state-dict post-hook for the generic rules: tuple state fields saved as lists.

Shampoo's statistics and roots and SOAP's ``GG`` and ``Q`` are tuples of
matrices (one per block and mode).  ``torch.distributed.checkpoint`` saves the
elements of a list one by one but a tuple as one pickled object, so under a
process group :func:`~polarlinalg._distributed.torch_rule_state.shard_rule_state`
turns these fields into lists of DTensors; a checkpoint then loads into a
single-process optimizer only if that optimizer's state dict has lists at the
same places.  This hook gives it lists, in every process (the optimizer takes
lists back: the next step makes them tuples again).  It imports nothing from
``torch.distributed``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["tuple_fields_as_lists"]


def tuple_fields_as_lists(opt: Any, state_dict: dict[str, Any]) -> dict[str, Any]:
    """Return ``state_dict`` with every tuple-valued state entry as a list.

    An optimizer state-dict post-hook (``opt.register_state_dict_post_hook``);
    ``opt.state`` itself is unchanged (each parameter's entry is copied).
    """
    del opt
    state_dict["state"] = {
        index: {key: list(v) if isinstance(v, tuple) else v for key, v in entry.items()}
        for index, entry in state_dict["state"].items()
    }
    return state_dict
