"""Routing a whole model: ``polarlinalg.torch.param_groups`` and ``polarlinalg.optax.labels``."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

# -- PyTorch ----------------------------------------------------------------------------------

torch = pytest.importorskip("torch")
nn = torch.nn

from polarlinalg._rules import hyperparams  # noqa: E402
from polarlinalg.torch import Muon, NorMuon, PolarGrad, param_groups  # noqa: E402
from polarlinalg.torch._routing import rule_names  # noqa: E402

VOCAB, WIDTH = 40, 8


class TinyLM(nn.Module):
    """Embedding, two blocks (linear with bias, LayerNorm), a head; optionally tied."""

    def __init__(self, tied: bool = False, head_bias: bool = False) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, WIDTH)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Linear(WIDTH, WIDTH), nn.LayerNorm(WIDTH)) for _ in range(2)
        )
        self.lm_head = nn.Linear(WIDTH, VOCAB, bias=head_bias)
        if tied:
            self.lm_head.weight = self.embed.weight

    def forward(self, tokens):
        x = self.embed(tokens)
        for block in self.blocks:
            x = x + block(x)
        return self.lm_head(x)


def by_names(groups):
    return {tuple(g["param_names"]): g for g in groups}


def test_kinds_each_parameter_once_in_order():
    model = TinyLM(head_bias=True)
    groups = param_groups(model)
    assert [(g["rule"], g["param_names"]) for g in groups] == [
        ("adamw", ["embed.weight"]),
        ("adamw", ["lm_head.weight"]),
        ("auto", ["blocks.0.0.weight", "blocks.1.0.weight"]),
        (
            "adamw",
            [
                "blocks.0.0.bias",
                "blocks.0.1.weight",
                "blocks.0.1.bias",
                "blocks.1.0.bias",
                "blocks.1.1.weight",
                "blocks.1.1.bias",
                "lm_head.bias",
            ],
        ),
    ]
    ids = [id(p) for g in groups for p in g["params"]]
    assert sorted(ids) == sorted(id(p) for p in model.parameters())
    named = dict(model.named_parameters())
    for g in groups:
        assert all(named[n] is p for n, p in zip(g["param_names"], g["params"], strict=True))
        assert set(g) == {"params", "param_names", "rule"}


def test_rules_and_options_per_kind_and_per_rule():
    groups = param_groups(
        TinyLM(),
        embedding="polargrad",
        head={"rule": "polargrad", "lr": 0.5},
        vectors={"weight_decay": 0.0},
        options={"adamw": {"lr": 1e-3}, "polargrad": {"lr": 0.1, "momentum": 0.9}},
    )
    embed, head, hidden, vectors = groups
    assert embed["rule"] == "polargrad" and embed["lr"] == 0.1 and embed["momentum"] == 0.9
    assert head["rule"] == "polargrad" and head["lr"] == 0.5  # the kind's options win
    assert hidden["rule"] == "auto" and "lr" not in hidden
    assert vectors["rule"] == "adamw" and vectors["lr"] == 1e-3 and vectors["weight_decay"] == 0.0


def test_head_found_by_vocabulary_or_tie_not_otherwise():
    tied = TinyLM(tied=True)
    groups = param_groups(tied)
    assert [g["param_names"] for g in groups[:1]] == [["embed.weight"]]
    assert len([p for g in groups for p in g["params"]]) == len(list(tied.parameters()))
    assert all("lm_head.weight" not in g["param_names"] for g in groups)  # named once
    # a final linear of another size, no embedding: a hidden matrix
    clf = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    assert [g["param_names"] for g in param_groups(clf)] == [
        ["0.weight", "2.weight"],
        ["0.bias", "2.bias"],
    ]
    # the vocabulary decides: a last Linear to another width is hidden
    model = TinyLM()
    model.lm_head = nn.Linear(WIDTH, VOCAB + 1, bias=False)
    kinds = by_names(param_groups(model))
    assert kinds[("blocks.0.0.weight", "blocks.1.0.weight", "lm_head.weight")]["rule"] == "auto"


def test_tied_weights_with_different_rules_need_an_override():
    model = TinyLM(tied=True)
    with pytest.raises(ValueError, match=r"tied to the embedding.*'embed\.weight'"):
        param_groups(model, head="polargrad")
    groups = param_groups(model, head="polargrad", overrides={"lm_head.weight": "polargrad"})
    assert by_names(groups)[("embed.weight",)]["rule"] == "polargrad"  # matched by its alias


def test_overrides():
    groups = param_groups(
        TinyLM(),
        overrides={
            "blocks.1.*.weight": "adamw",
            "*.bias": {"weight_decay": 0.0},  # keeps the rule of its kind
            "embed.*": {"rule": "polargrad", "lr": 0.3},
        },
    )
    names = [g["param_names"] for g in groups]
    assert names == [
        ["lm_head.weight"],
        ["blocks.0.0.weight"],
        ["blocks.0.1.weight"],
        ["blocks.1.0.weight", "blocks.1.1.weight"],
        ["blocks.0.0.bias", "blocks.0.1.bias", "blocks.1.0.bias", "blocks.1.1.bias"],
        ["embed.weight"],
    ]
    assert [g["rule"] for g in groups] == ["adamw", "auto", "adamw", "adamw", "adamw", "polargrad"]
    assert groups[4]["weight_decay"] == 0.0 and groups[5]["lr"] == 0.3


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"embedding": "sgd"}, ValueError, "unknown rule 'sgd' for embedding="),
        ({"head": 3}, TypeError, "head= must be a rule name or a dict"),
        ({"vectors": "polargrad"}, ValueError, "fewer than two dimensions"),
        ({"overrides": {"*.bias": "polargrad"}}, ValueError, r"'blocks\.0\.0\.bias'.*rule"),
        ({"overrides": {"blocks.9.*": "adamw"}}, ValueError, r"'blocks\.9\.\*' matches no"),
        (
            {"overrides": {"blocks.0.*": "adamw", "*.weight": "auto"}},
            ValueError,
            r"'blocks\.0\.0\.weight'.*matched by two overrides, 'blocks\.0\.\*' and '\*\.weight'",
        ),
        ({"overrides": {"*": {"rule": "nope"}}}, ValueError, "unknown rule 'nope'"),
        ({"overrides": {"*": {"params": []}}}, ValueError, "may not set 'params'"),
        ({"overrides": {"": "adamw"}}, TypeError, "non-empty strings"),
        ({"options": {"adamw": {"rule": "auto"}}}, ValueError, "may not set 'rule'"),
        ({"options": {"rmsprop": {}}}, ValueError, "unknown rule 'rmsprop' for options"),
    ],
)
def test_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        param_groups(TinyLM(), **kwargs)


def test_no_trainable_parameters_and_not_a_module():
    with pytest.raises(ValueError, match="no trainable parameters"):
        param_groups(nn.ReLU())
    frozen = TinyLM()
    frozen.requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        param_groups(frozen)
    frozen.blocks[0][0].weight.requires_grad_(True)
    assert [g["param_names"] for g in param_groups(frozen)] == [["blocks.0.0.weight"]]
    with pytest.raises(TypeError, match=r"torch\.nn\.Module"):
        param_groups([nn.Parameter(torch.ones(2, 2))])


def test_rule_names_follow_the_registry():
    names = rule_names()
    assert set(hyperparams.RULES) <= set(names)
    assert {"normuon", "shampoo", "soap"} <= set(names)


def _train(model, opt, steps=3):
    gen = torch.Generator().manual_seed(0)
    tokens = torch.randint(VOCAB, (4, 6), generator=gen)
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.cross_entropy(model(tokens).flatten(0, 1), tokens.flatten()).backward()
        opt.step()


@pytest.mark.parametrize("cls", [PolarGrad, NorMuon])
def test_optimizers_take_the_groups_and_name_parameters(cls):
    torch.manual_seed(0)
    model = TinyLM()
    opt = cls(param_groups(model, options={"adamw": {"lr": 1e-3}}), lr=0.02)
    assert opt.param_groups[0]["param_names"] == ["embed.weight"]
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    _train(model, opt)
    assert all(not torch.equal(before[n], p) for n, p in model.named_parameters())
    # errors name the parameter by its name
    opt.zero_grad()
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    model.blocks[1][0].weight.grad[0, 0] = float("nan")
    with pytest.raises(ValueError, match=r"blocks\.1\.0\.weight"):
        opt.step()


def test_polargrad_matrix_rule_for_embedding_and_head_matches_a_hand_split():
    """The groups give the same steps as the same routing written by hand."""
    torch.manual_seed(0)
    a = TinyLM()
    b = TinyLM()
    b.load_state_dict(a.state_dict())
    kw = {"lr": 0.05, "momentum": 0.9, "scale": "shape", "method": "newton_schulz"}
    routed = PolarGrad(
        param_groups(a, embedding="polargrad", head="polargrad", options={"adamw": {"lr": 1e-2}}),
        **kw,
    )
    vectors = [p for p in b.parameters() if p.ndim < 2]
    matrices = [p for p in b.parameters() if p.ndim >= 2]
    by_hand = PolarGrad([{"params": matrices}, {"params": vectors, "lr": 1e-2}], **kw)
    _train(a, routed)
    _train(b, by_hand)
    for (name, p), q in zip(a.named_parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0, msg=name)


def test_a_scheduler_reaches_the_adamw_groups():
    """LambdaLR at 0: nothing moves, AdamW parameters included (their lr is the group's)."""
    torch.manual_seed(0)
    model = TinyLM()
    opt = PolarGrad(param_groups(model, options={"adamw": {"lr": 1e-2}}), lr=0.02)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 0.0)
    assert sched.get_last_lr()[0] == 0.0
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    _train(model, opt, steps=2)
    for n, p in model.named_parameters():
        assert torch.equal(before[n], p), n


def test_muon_with_the_matrix_groups_and_adamw_for_the_rest():
    torch.manual_seed(0)
    model = TinyLM()
    groups = param_groups(model)
    matrix = [{k: v for k, v in g.items() if k != "rule"} for g in groups if g["rule"] != "adamw"]
    rest = [g for g in groups if g["rule"] == "adamw"]
    muon = Muon(matrix, lr=0.02)
    adamw = torch.optim.AdamW(rest, lr=1e-3)
    assert sum(len(g["params"]) for g in [*muon.param_groups, *adamw.param_groups]) == len(
        list(model.parameters())
    )

    class Both:
        def zero_grad(self):
            muon.zero_grad()
            adamw.zero_grad()

        def step(self):
            muon.step()
            adamw.step()

    before = [p.detach().clone() for p in model.parameters()]
    _train(model, Both())
    assert all(not torch.equal(a, p) for a, p in zip(before, model.parameters(), strict=True))


# -- optax ------------------------------------------------------------------------------------


def _jax():
    jax = pytest.importorskip("jax")
    pytest.importorskip("optax")
    return jax, jax.numpy


def linen_params(jnp):
    """Flax linen naming: ``params``/``Embed_0``/``embedding``, ``Dense_N``/``kernel``."""
    return {
        "params": {
            "Embed_0": {"embedding": jnp.ones((VOCAB, WIDTH))},
            "Dense_0": {"kernel": jnp.ones((WIDTH, WIDTH)), "bias": jnp.zeros(WIDTH)},
            "LayerNorm_0": {"scale": jnp.ones(WIDTH), "bias": jnp.zeros(WIDTH)},
            "lm_head": {"kernel": jnp.ones((WIDTH, VOCAB)), "bias": jnp.zeros(VOCAB)},
        }
    }


def test_labels_flax_linen():
    _, jnp = _jax()
    from polarlinalg.optax import labels

    out = labels(linen_params(jnp))
    assert out == {
        "params": {
            "Embed_0": {"embedding": "adamw"},
            "Dense_0": {"kernel": "polargrad", "bias": "adamw"},
            "LayerNorm_0": {"scale": "adamw", "bias": "adamw"},
            "lm_head": {"kernel": "adamw", "bias": "adamw"},
        }
    }
    out = labels(linen_params(jnp), embedding="e", head="h", hidden="m", vectors="v")
    assert (
        out["params"]["Embed_0"]["embedding"] == "e" and out["params"]["lm_head"]["kernel"] == "h"
    )
    assert out["params"]["Dense_0"] == {"kernel": "m", "bias": "v"}


def test_labels_nnx_state_and_gpt2_names():
    _, jnp = _jax()
    from polarlinalg.optax import labels

    # an NNX state: module attributes as dict keys (a Variable's value may add a level)
    state = {
        "wte": {"embedding": {"value": jnp.ones((VOCAB, WIDTH))}},
        "wpe": {"embedding": {"value": jnp.ones((16, WIDTH))}},
        "blocks": {0: {"attn": {"kernel": {"value": jnp.ones((WIDTH, 3 * WIDTH))}}}},
        "unembed": {"kernel": {"value": jnp.ones((WIDTH, VOCAB))}},
    }
    out = labels(state, head="polargrad")
    assert out["wte"]["embedding"]["value"] == "adamw" == out["wpe"]["embedding"]["value"]
    assert out["blocks"][0]["attn"]["kernel"]["value"] == "polargrad"
    assert out["unembed"]["kernel"]["value"] == "polargrad"


def test_labels_equinox_style_attributes_and_lists():
    jax, jnp = _jax()
    from polarlinalg.optax import labels

    @jax.tree_util.register_dataclass
    @dataclasses.dataclass
    class Linear:  # as equinox.nn.Linear: weight (out, in), bias
        weight: jax.Array
        bias: jax.Array

    @jax.tree_util.register_dataclass
    @dataclasses.dataclass
    class Model:
        embedding: Linear
        layers: list
        lm_head: Linear

    def lin(o, i):
        return Linear(jnp.ones((o, i)), jnp.zeros(o))

    model = Model(lin(VOCAB, WIDTH), [lin(WIDTH, WIDTH), lin(WIDTH, WIDTH)], lin(VOCAB, WIDTH))
    out = labels(model, overrides={"layers.1.*": "adamw"})
    assert out.embedding.weight == "adamw" and out.lm_head.weight == "adamw"
    assert out.layers[0].weight == "polargrad" and out.layers[0].bias == "adamw"
    assert out.layers[1].weight == "adamw"


def test_labels_overrides_and_errors():
    _, jnp = _jax()
    from polarlinalg.optax import labels

    params = linen_params(jnp)
    out = labels(params, overrides={"params.lm_head.kernel": "polargrad", "*.bias": "nodecay"})
    assert out["params"]["lm_head"] == {"kernel": "polargrad", "bias": "nodecay"}
    assert out["params"]["LayerNorm_0"] == {"scale": "adamw", "bias": "nodecay"}
    with pytest.raises(ValueError, match=r"'\*\.gamma' matches no leaf.*'params\.Dense_0\.bias'"):
        labels(params, overrides={"*.gamma": "adamw"})
    with pytest.raises(ValueError, match="matched by two overrides"):
        labels(params, overrides={"params.Dense_0.*": "adamw", "*.kernel": "polargrad"})
    with pytest.raises(TypeError, match="head must be a non-empty label"):
        labels(params, head="")
    with pytest.raises(TypeError, match=r"overrides\['\*'\] must be a non-empty label"):
        labels(params, overrides={"*": 1})
    with pytest.raises(ValueError, match="no leaves"):
        labels({})


def test_labels_drive_polargrad_through_optax_partition():
    _, jnp = _jax()
    import optax

    from polarlinalg.optax import labels, polargrad

    params = linen_params(jnp)
    params["params"]["lm_head"]["kernel"] = jnp.asarray(
        np.random.default_rng(0).standard_normal((WIDTH, VOCAB))
    )
    tx = polargrad(0.1, method="svd", rules=lambda p: labels(p, head="polargrad"), adamw_lr=1e-2)
    updates = [tx.update(params, tx.init(params), params)[0]]
    # the head took the matrix rule: a polar factor times the nuclear norm, not an AdamW step
    head = np.asarray(updates[0]["params"]["lm_head"]["kernel"])
    assert np.linalg.matrix_rank(head) == WIDTH and not np.allclose(np.abs(head), 1e-2)
    emb = np.asarray(updates[0]["params"]["Embed_0"]["embedding"])
    np.testing.assert_allclose(emb, -1e-2, rtol=1e-6)  # AdamW's first step: -lr·sign(g)
    # the same labels straight into optax.partition
    tx = optax.partition(
        {"polargrad": optax.sgd(1.0), "adamw": optax.set_to_zero()}, labels(params)
    )
    u, _ = tx.update(params, tx.init(params), params)
    assert float(np.abs(np.asarray(u["params"]["Embed_0"]["embedding"])).max()) == 0.0
    np.testing.assert_array_equal(
        u["params"]["Dense_0"]["kernel"], -params["params"]["Dense_0"]["kernel"]
    )


@pytest.mark.skipif("rownorm" not in hyperparams.RULES, reason="no one-sided rules")
@pytest.mark.parametrize("cls", [PolarGrad, Muon])
def test_one_sided_rule_for_the_embedding_through_param_groups(cls):
    """``embedding="rownorm"``: each row of the embedding moves by lr (Muon: times its shape
    factor √max(1, A/B)), an absent token's row not at all; the rest as before."""
    torch.manual_seed(0)
    model = TinyLM()
    groups = param_groups(model, embedding="rownorm", head="adamw")
    if cls is Muon:
        groups = [g for g in groups if g["rule"] != "adamw"]
        opt = cls(groups, lr=0.1, momentum=0.0, nesterov=False, weight_decay=0.0)
        factor = math.sqrt(VOCAB / WIDTH)
    else:
        opt = cls(groups, lr=0.1, scale="none")
        factor = 1.0
    assert opt.param_groups[0]["rule"] == "rownorm"
    for p in model.parameters():
        p.grad = torch.randn_like(p)
    model.embed.weight.grad[3] = 0.0
    before = model.embed.weight.detach().clone()
    opt.step()
    moved = torch.linalg.vector_norm(before - model.embed.weight.detach(), dim=1)
    expected = torch.full((VOCAB,), 0.1 * factor)
    expected[3] = 0.0
    torch.testing.assert_close(moved, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.skipif("rownorm" not in hyperparams.RULES, reason="no one-sided rules")
def test_labels_select_a_one_sided_rule_of_polargrad():
    _, jnp = _jax()
    from polarlinalg.optax import labels, polargrad

    params = linen_params(jnp)
    grads = {"params": {k: dict(v) for k, v in params["params"].items()}}
    rows = np.random.default_rng(1).standard_normal((VOCAB, WIDTH))
    rows[5] = 0.0
    grads["params"]["Embed_0"]["embedding"] = jnp.asarray(rows)
    tx = polargrad(0.1, method="svd", scale="none", rules=lambda p: labels(p, embedding="rownorm"))
    updates, _ = tx.update(grads, tx.init(params), params)
    moved = np.linalg.norm(np.asarray(updates["params"]["Embed_0"]["embedding"]), axis=1)
    expected = np.full(VOCAB, 0.1)
    expected[5] = 0.0
    np.testing.assert_allclose(moved, expected, rtol=1e-5, atol=1e-7)
