"""Run by test_dist_jax.py in a fresh process with 4 host CPU devices.

Run it as ``XLA_FLAGS=--xla_force_host_platform_device_count=4 python
dist_jax_worker.py`` (the flag must be set before JAX starts).  Trains a few
sharded parameters with polarlinalg.optax under ``jax.set_mesh`` (auto and
explicit axis types) and without a mesh, and prints one JSON line:
the largest difference per transformation and mesh kind, and the collectives
of the compiled update for two iteration counts.
"""

from __future__ import annotations

import json
import re
from collections import Counter

import jax
import jax.numpy as jnp
import optax
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

from polarlinalg.optax import muon, polargrad

SPECS = {  # leaf: (shape, spec)
    "a": ((64, 32), P("d", None)),
    "b": ((64, 32), P("d", None)),  # same shape as a: one batch
    "c": ((32, 48), P(None, "d")),  # sharded along columns
    "d": ((4, 8, 8), P("d", None, None)),  # a batch of matrices
    "e": ((6, 10), P()),  # replicated
    "bias": ((32,), P("d")),  # AdamW
}

TRANSFORMS = {
    "polargrad_momentum": lambda steps: polargrad(
        0.02, momentum=0.9, weight_decay=0.1, method="newton_schulz", steps=steps
    ),
    "polargrad_polar_first": lambda steps: polargrad(
        0.02, momentum=0.8, polar_first=True, nesterov=True, method="newton_schulz", steps=steps
    ),
    "muon_adaptive": lambda steps: muon(0.02, ns_steps=steps, adaptive=True),
}
CASES = [  # (mesh axis type, transformation): each compile costs seconds
    ("auto", "polargrad_momentum"),
    ("auto", "muon_adaptive"),
    ("explicit", "polargrad_polar_first"),
]


def params0():
    key = jax.random.key(0)
    out = {}
    for name, (shape, _) in SPECS.items():
        key, sub = jax.random.split(key)
        out[name] = jax.random.normal(sub, shape, jnp.float64) * 0.5
    return out


def loss(params, target):
    total = 0.0
    for name, x in params.items():
        total = total + jnp.sum(jnp.tanh(x - target[name]) ** 2)
    return total


def train(tx, params, target, steps=5):
    state = tx.init(params)

    @jax.jit
    def step(params, state):
        grads = jax.grad(loss)(params, target)
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    for _ in range(steps):
        params, state = step(params, state)
    return params, state, step


def collectives(step, params, state) -> dict[str, int]:
    text = step.lower(params, state).compile().as_text()
    ops = re.findall(r"\b(all-reduce|all-gather|all-to-all|collective-permute)(?:-start)?\(", text)
    return dict(Counter(ops))


def main() -> None:
    if jax.device_count() != 4:
        raise SystemExit(f"needs 4 devices (XLA_FLAGS); found {jax.devices()}")
    # float64: Newton–Schulz amplifies the last-bit differences between a batched
    # and a 2-D matrix product (float32 runs differ by up to 4e-6 after 5 steps)
    jax.config.update("jax_enable_x64", True)
    key = jax.random.key(1)
    target = {
        n: jax.random.normal(jax.random.fold_in(key, i), s)
        for i, (n, (s, _)) in enumerate(SPECS.items())
    }
    report = {}
    for kind, name in CASES:
        make = TRANSFORMS[name]
        mesh = jax.make_mesh((4,), ("d",), axis_types=(getattr(AxisType, kind.title()),))
        shardings = {n: NamedSharding(mesh, spec) for n, (_, spec) in SPECS.items()}
        want, _, _ = train(make(5), params0(), target)
        sharded = jax.device_put(params0(), shardings)
        with jax.set_mesh(mesh):
            got, state, _ = train(make(5), sharded, jax.device_put(target, shardings))
            ops = {}
            if kind == "auto" and name == "polargrad_momentum":
                for steps in (3, 8):
                    other = train(make(steps), sharded, target, steps=0)[2]
                    ops[steps] = collectives(other, sharded, state)
        mu = [leaf for leaf in jax.tree.leaves(state) if getattr(leaf, "shape", None) == (64, 32)]
        report[f"{kind}/{name}"] = {
            "error": max(float(jnp.max(jnp.abs(got[n] - want[n]))) for n in want),
            "moved": min(float(jnp.max(jnp.abs(want[n] - params0()[n]))) for n in want),
            "param_sharding": str(got["a"].sharding.spec),
            "momentum_sharding": sorted({str(m.sharding.spec) for m in mu}),
            "collectives": ops,
        }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
