"""Train a small next-token model with PolarGrad (Muon-like) and ``param_groups``.

``polarlinalg.torch.param_groups`` sorts the model's parameters: the embedding
and the output head go to AdamW, the hidden matrices to the matrix rule of
PolarGrad, biases and LayerNorm weights to AdamW (in groups of their own, so
that the cosine schedule below reaches them too).  The matrix rule here is
PolarGradM as Muon runs it: Nesterov momentum first, then 5 Polar Express
steps and the shape scale ``√max(1, fan_out/fan_in)``.

Run: ``python examples/torch_training.py`` (CPU, a few seconds).
"""

from __future__ import annotations

import torch

from polarlinalg.torch import PolarGrad, param_groups

STEPS = 120
VOCAB, WIDTH, CONTEXT = 48, 32, 3


class TinyLM(torch.nn.Module):
    """Embed the last ``CONTEXT`` tokens, an MLP block, and a head over the vocabulary."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(VOCAB, WIDTH)
        self.up = torch.nn.Linear(CONTEXT * WIDTH, 4 * WIDTH)
        self.down = torch.nn.Linear(4 * WIDTH, WIDTH)
        self.norm = torch.nn.LayerNorm(WIDTH)
        self.head = torch.nn.Linear(WIDTH, VOCAB, bias=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Return the logits of the next token, ``(batch, VOCAB)``."""
        x = self.embed(tokens).flatten(1)  # (batch, CONTEXT·WIDTH)
        x = self.down(torch.nn.functional.gelu(self.up(x)))
        return self.head(self.norm(x))


def data(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Windows of ``CONTEXT`` tokens; the next token is a fixed function of the window."""
    tokens = torch.randint(VOCAB, (n, CONTEXT), generator=generator)
    target = (tokens[:, 0] * 3 + tokens[:, -1]) % VOCAB
    return tokens, target


def main() -> None:
    """Train for ``STEPS`` steps and print the loss every 30 steps."""
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    model = TinyLM()
    groups = param_groups(model, options={"adamw": {"lr": 3e-3, "adamw_weight_decay": 0.0}})
    for group in groups:
        print(f"{group['rule']:6s} {', '.join(group['param_names'])}")
    opt = PolarGrad(
        groups,
        lr=0.02,
        momentum=0.95,
        nesterov=True,
        method="polar_express",
        steps=5,
        scale="shape",
        weight_decay=0.01,
    )
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=STEPS)
    tokens, target = data(2048, generator)
    first = None
    for step in range(STEPS + 1):
        batch = torch.randint(len(tokens), (256,), generator=generator)
        loss = torch.nn.functional.cross_entropy(model(tokens[batch]), target[batch])
        opt.zero_grad()
        loss.backward()
        opt.step()
        schedule.step()
        first = loss.item() if first is None else first
        if step % 30 == 0:
            print(f"step {step:3d}  loss {loss.item():.3f}")
    with torch.no_grad():
        final = torch.nn.functional.cross_entropy(model(tokens), target).item()
    print(f"training loss {first:.3f} -> {final:.3f}")
    if not final < 0.5 * first:
        raise SystemExit("the loss did not fall: something is wrong")


if __name__ == "__main__":
    main()
