"""Train a small next-token model in plain JAX with optax and PolarGrad (Muon-like).

``polarlinalg.optax.labels`` labels each leaf of the parameter pytree by its
path: the embedding and the head ``"adamw"``, the hidden matrices
``"polargrad"``, biases and norm scales ``"adamw"``; ``optax.partition`` then
sends each label to its own chain.  The matrix chain is
``scale_by_polargrad`` (Nesterov momentum first, 5 Polar Express steps, the
shape scale for flax-style ``(fan_in, fan_out)`` kernels), decoupled weight
decay and a cosine learning-rate schedule; the AdamW chain follows its own
cosine schedule.  The whole step is one ``jax.jit``.

Run: ``python examples/jax_optax_training.py`` (CPU, a few seconds).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from polarlinalg.optax import labels, scale_by_polargrad

STEPS = 120
VOCAB, WIDTH, CONTEXT = 48, 32, 3


def init(key: jax.Array) -> dict:
    """Parameters in flax's layout: dense kernels are ``(fan_in, fan_out)``."""
    k = jax.random.split(key, 4)
    return {
        "embed": {"embedding": jax.random.normal(k[0], (VOCAB, WIDTH))},
        "up": {
            "kernel": jax.random.normal(k[1], (CONTEXT * WIDTH, 4 * WIDTH))
            / jnp.sqrt(CONTEXT * WIDTH),
            "bias": jnp.zeros(4 * WIDTH),
        },
        "down": {
            "kernel": jax.random.normal(k[2], (4 * WIDTH, WIDTH)) / jnp.sqrt(4 * WIDTH),
            "bias": jnp.zeros(WIDTH),
        },
        "norm": {"scale": jnp.ones(WIDTH)},
        "head": {"kernel": jax.random.normal(k[3], (WIDTH, VOCAB)) / jnp.sqrt(WIDTH)},
    }


def forward(params: dict, tokens: jax.Array) -> jax.Array:
    """Embed the window, an MLP block, RMS normalisation and the head."""
    x = params["embed"]["embedding"][tokens].reshape(tokens.shape[0], -1)
    x = jax.nn.gelu(x @ params["up"]["kernel"] + params["up"]["bias"])
    x = x @ params["down"]["kernel"] + params["down"]["bias"]
    x = x * jax.lax.rsqrt(jnp.mean(x**2, axis=-1, keepdims=True) + 1e-6) * params["norm"]["scale"]
    return x @ params["head"]["kernel"]


def loss_fn(params: dict, tokens: jax.Array, target: jax.Array) -> jax.Array:
    """Mean cross-entropy of the next token."""
    logits = forward(params, tokens)
    return optax.softmax_cross_entropy_with_integer_labels(logits, target).mean()


def main() -> None:
    """Train for ``STEPS`` steps and print the loss every 30 steps."""
    key_params, key_data = jax.random.split(jax.random.key(0))
    params = init(key_params)
    tokens = jax.random.randint(key_data, (2048, CONTEXT), 0, VOCAB)
    target = (tokens[:, 0] * 3 + tokens[:, -1]) % VOCAB

    tags = labels(params)
    for path, tag in jax.tree_util.tree_leaves_with_path(tags):
        print(f"{tag:9s} {jax.tree_util.keystr(path)}")
    matrix_lr = optax.cosine_decay_schedule(0.02, STEPS)
    adamw_lr = optax.cosine_decay_schedule(3e-3, STEPS)
    tx = optax.partition(
        {
            "polargrad": optax.chain(
                scale_by_polargrad(
                    momentum=0.95, nesterov=True, method="polar_express", steps=5, scale="shape"
                ),
                optax.add_decayed_weights(0.01),
                optax.scale_by_learning_rate(matrix_lr),
            ),
            "adamw": optax.adamw(adamw_lr, weight_decay=0.0),
        },
        tags,
    )
    state = tx.init(params)

    @jax.jit
    def train_step(params, state, batch):
        value, grads = jax.value_and_grad(loss_fn)(params, tokens[batch], target[batch])
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state, value

    key = jax.random.key(1)
    first = float(loss_fn(params, tokens, target))
    for step in range(STEPS + 1):
        key, sub = jax.random.split(key)
        batch = jax.random.randint(sub, (256,), 0, len(tokens))
        params, state, value = train_step(params, state, batch)
        if step % 30 == 0:
            print(f"step {step:3d}  loss {float(value):.3f}")
    final = float(loss_fn(params, tokens, target))
    print(f"training loss {first:.3f} -> {final:.3f}")
    if not final < 0.5 * first:
        raise SystemExit("the loss did not fall: something is wrong")


if __name__ == "__main__":
    main()
