"""Manual mode: each hand-written backward against numerical gradients, and a whole training step against autograd.

gradcheck compares every Function's analytic Jacobian (our backward) with finite differences in float64.
The model-level tests compute the loss once with autograd (GPT.forward) and once with gptscratch.manual, then
compare the gradients of every parameter (atol 1e-10) and the parameters after one AdamW step (atol 1e-6), float64.
"""

import pytest
import torch
import torch.nn.functional as F

from gptscratch import manual
from gptscratch.errors import UsageError
from gptscratch.model import causal_mask
from gptscratch.model.embeddings import RotaryEmbedding
from gptscratch.training.optimizer import build_optimizer

torch.set_num_threads(1)
D64 = dict(dtype=torch.float64)


def rand(*shape, requires_grad=True):
    return torch.randn(*shape, **D64).requires_grad_(requires_grad)


# -- one Function at a time ------------------------------------------------------------------------------------
@pytest.mark.parametrize("bias", [True, False])
def test_linear_gradcheck(bias):
    x, w = rand(2, 3, 5), rand(4, 5)
    b = rand(4) if bias else None
    assert torch.autograd.gradcheck(manual.LinearFunction.apply, (x, w, b))
    torch.testing.assert_close(manual.linear(x, w, b), F.linear(x, w, b))


@pytest.mark.parametrize("bias", [True, False])
def test_layernorm_gradcheck(bias):
    x, w = rand(2, 3, 6), rand(6)
    b = rand(6) if bias else None
    assert torch.autograd.gradcheck(lambda x, w, b: manual.LayerNormFunction.apply(x, w, b, 1e-5), (x, w, b))
    torch.testing.assert_close(manual.layer_norm(x, w, b), F.layer_norm(x, (6,), w, b, 1e-5))


@pytest.mark.parametrize("name,reference", [
    ("gelu", lambda x: F.gelu(x)),
    ("gelu_tanh", lambda x: F.gelu(x, approximate="tanh")),
    ("relu", F.relu),
    ("silu", F.silu),
    ("relu2", lambda x: F.relu(x) ** 2),
])
def test_activation_gradcheck(name, reference):
    x = rand(3, 7)
    with torch.no_grad():  # keep ReLU inputs away from its kink at 0, where finite differences are meaningless
        x.add_(0.1 * torch.sign(x))
    def fn(x):
        return manual.activation(name, x)
    assert torch.autograd.gradcheck(fn, (x,))
    torch.testing.assert_close(fn(x), reference(x))


@pytest.mark.parametrize("name", ["silu", "gelu", "relu2"])
def test_gated_activation_gradcheck(name):
    gate, up = rand(3, 7), rand(3, 7)
    with torch.no_grad():  # away from relu²'s kink
        gate.add_(0.1 * torch.sign(gate))
    assert torch.autograd.gradcheck(lambda g, u: manual.gated(name, g, u), (gate, up))
    activation = {"silu": F.silu, "gelu": F.gelu, "relu2": lambda x: F.relu(x) ** 2}[name]
    torch.testing.assert_close(manual.gated(name, gate, up), activation(gate) * up)


def test_rmsnorm_gradcheck():
    x, w = rand(2, 3, 6), rand(6)
    assert torch.autograd.gradcheck(lambda x, w: manual.RMSNormFunction.apply(x, w, 1e-5), (x, w))
    torch.testing.assert_close(manual.rms_norm(x, w), F.rms_norm(x, (6,), w, 1e-5))


def test_softcap_gradcheck():
    z = rand(4, 9) * 3
    assert torch.autograd.gradcheck(lambda z: manual.SoftcapFunction.apply(z, 2.0), (z,))
    torch.testing.assert_close(manual.softcap(z, 2.0), 2.0 * torch.tanh(z / 2.0))


@pytest.mark.parametrize("query_len,key_len", [(5, 5), (2, 5)])
def test_causal_attention_gradcheck(query_len, key_len):
    q, k, v = rand(2, 2, query_len, 3), rand(2, 2, key_len, 3), rand(2, 2, key_len, 3)
    assert torch.autograd.gradcheck(manual.CausalAttentionFunction.apply, (q, k, v))
    allowed = causal_mask(query_len, key_len)
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
    torch.testing.assert_close(manual.causal_attention(q, k, v), expected)


def test_causal_attention_sends_no_gradient_to_future_keys():
    q, k, v = rand(1, 1, 4, 3), rand(1, 1, 4, 3), rand(1, 1, 4, 3)
    manual.causal_attention(q, k, v)[0, 0, 1].sum().backward()   # only query 1's output
    assert torch.all(k.grad[0, 0, 2:] == 0) and torch.all(v.grad[0, 0, 2:] == 0)
    assert torch.any(k.grad[0, 0, :2] != 0)


def test_embedding_gradcheck_with_repeated_ids():
    idx = torch.tensor([[1, 3, 1], [0, 3, 3]])
    w = rand(5, 4)
    assert torch.autograd.gradcheck(lambda w: manual.EmbeddingFunction.apply(idx, w), (w,))
    manual.embedding(idx, w).sum().backward()
    assert w.grad[1].eq(2).all() and w.grad[3].eq(3).all() and w.grad[4].eq(0).all()  # counts per id


def test_cross_entropy_gradcheck_and_ignore_index():
    logits = rand(6, 5)
    targets = torch.tensor([0, 4, -1, 2, -1, 1])
    assert torch.autograd.gradcheck(lambda z: manual.CrossEntropyFunction.apply(z, targets, -1), (logits,))
    torch.testing.assert_close(manual.cross_entropy(logits, targets),
                               F.cross_entropy(logits, targets, ignore_index=-1))


def test_rotary_gradcheck_partial():
    x = rand(2, 2, 5, 6)
    cos, sin = RotaryEmbedding(4)(torch.arange(5), torch.float64)     # 4 of the 6 dimensions rotate
    assert torch.autograd.gradcheck(lambda x: manual.RotaryFunction.apply(x, cos, sin), (x,))


# -- the whole model -------------------------------------------------------------------------------------------
# The models below are the tiny_model fixture in float64 (gradients are compared at 1e-10) and in training mode
# (the mode in which manual.loss runs, and refuses dropout).
CONFIGS = {
    "gpt2-style": dict(),  # learned positions, pre-norm, exact GELU, tied weights, biases
    "rope-post-relu-nobias": dict(positional="rope", rotary_fraction=0.5, norm_placement="post", activation="relu",
                                  bias=False),
    "parallel-untied-tanh": dict(block_layout="parallel", activation="gelu_tanh", tie_weights=False,
                                 lm_head_bias=True, positional="sinusoidal", scale_embeddings=True),
    "attention-only": dict(attention_only=True),
    "llama-style": dict(norm="rmsnorm", mlp="gated", activation="silu", n_kv_head=2, positional="rope", bias=False,
                        tie_weights=False, rope_scaling="llama3", rope_original_context=8, rope_scaling_factor=4.0),
    "qwen3-style": dict(norm="rmsnorm", mlp="gated", activation="silu", n_kv_head=1, qk_norm=True,
                        positional="rope", bias=False, logit_softcap=3.0),
    "qkv-bias-relu2": dict(bias=False, qkv_bias=True, activation="relu2", mlp="gated"),
}


def batch(model, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, model.config.vocab_size, (3, 10), generator=g)
    y = torch.randint(0, model.config.vocab_size, (3, 10), generator=g)
    y[0, -2:] = -1  # ignored targets take part too
    return x, y


def autograd_loss(model, x, y):
    logits, _ = model(x)  # GPT.forward's own loss casts to float32; compute the reference in float64
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1), ignore_index=-1)


@pytest.mark.parametrize("name", CONFIGS)
def test_manual_gradients_equal_autograd(name, tiny_model):
    model = tiny_model(**D64, **CONFIGS[name]).train()
    x, y = batch(model)
    manual_logits, manual_loss = manual.forward(model, x, y)
    torch.testing.assert_close(manual_logits, model(x)[0], atol=1e-10, rtol=0)
    expected = torch.autograd.grad(autograd_loss(model, x, y), list(model.parameters()))
    got = torch.autograd.grad(manual_loss, list(model.parameters()))
    names = [n for n, _ in model.named_parameters()]
    for n, e, g in zip(names, expected, got):
        torch.testing.assert_close(g, e, atol=1e-10, rtol=0, msg=lambda m, n=n: f"{n}: {m}")


def test_one_adamw_step_with_manual_backward_matches_autograd(tiny_model):
    reference, candidate = tiny_model(**D64).train(), tiny_model(**D64).train()
    assert reference.lm_head.weight is reference.tok_embed.weight  # tied, the supported GPT-2 setting
    x, y = batch(reference)
    for model, loss_fn in ((reference, autograd_loss), (candidate, manual.loss)):
        optimizer = build_optimizer(model, lr=1e-2, weight_decay=0.1, betas=(0.9, 0.95), device="cpu")
        loss_fn(model, x, y).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    for (name, p), q in zip(reference.named_parameters(), candidate.parameters()):
        torch.testing.assert_close(q, p, atol=1e-6, rtol=0, msg=lambda m, n=name: f"{n}: {m}")
    start = tiny_model(**D64)
    moved = sum((p - q).abs().sum() for p, q in zip(reference.parameters(), start.parameters()))
    assert moved > 0.1  # the step actually changed the weights


# Autograd nodes whose backward is the identity/sum bookkeeping the manual docstring allows; every layer's
# derivative must come from one of our Functions.
BOOKKEEPING = ("AddBackward", "ViewBackward", "TransposeBackward", "SplitBackward", "SplitWithSizesBackward",
               "UnsafeViewBackward", "ReshapeAliasBackward", "CloneBackward", "MulBackward", "AccumulateGrad",
               "UnsafeSplitBackward", "UnsqueezeBackward", "ExpandBackward")


HAND_WRITTEN = {
    "parallel-untied-tanh": {"LinearFunctionBackward", "LayerNormFunctionBackward", "CausalAttentionFunctionBackward",
                             "ActivationFunctionBackward", "EmbeddingFunctionBackward", "CrossEntropyFunctionBackward"},
    "qwen3-style": {"LinearFunctionBackward", "RMSNormFunctionBackward", "CausalAttentionFunctionBackward",
                    "GatedActivationFunctionBackward", "RotaryFunctionBackward", "SoftcapFunctionBackward",
                    "EmbeddingFunctionBackward", "CrossEntropyFunctionBackward"},
}


@pytest.mark.parametrize("name", HAND_WRITTEN)
def test_backward_graph_contains_only_hand_written_layers(name, tiny_model):
    model = tiny_model(**D64, **CONFIGS[name]).train()
    x, y = batch(model)
    seen, stack = set(), [manual.loss(model, x, y).grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        stack.extend(next_fn for next_fn, _ in node.next_functions)
    kinds = {type(node).__name__ for node in seen}
    manual_kinds = {k for k in kinds if k.endswith("FunctionBackward")}
    assert HAND_WRITTEN[name] <= manual_kinds
    others = {k for k in kinds - manual_kinds if not k.startswith(BOOKKEEPING)}
    assert not others, f"layers differentiated by autograd instead of by hand: {others}"


def test_dropout_is_refused_with_the_fix(tiny_model):
    model = tiny_model(**D64, dropout=0.1).train()
    x, y = batch(model)
    with pytest.raises(UsageError, match="--dropout 0"):
        manual.loss(model, x, y)


# -- `gptscratch train --manual-backward` ---------------------------------------------------------------------
@pytest.mark.slow  # three small CLI training runs
def test_cli_train_with_manual_backward_matches_autograd(run_cli, tmp_path):
    import json

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(4):
        (corpus / f"doc{i}.txt").write_text(f"document {i}: the quick brown fox jumps over the lazy dog. " * 20)
    common = ["train", "--data", str(corpus), "--tokenizer", "byte", "--size", "tiny", "--context-length", "16",
              "--batch-size", "2", "--max-steps", "3", "--eval-every", "3", "--eval-batches", "1",
              "--precision", "fp32", "--seed", "3", "--json"]
    results = []
    for extra in ([], ["--manual-backward"]):
        out = tmp_path / f"run{len(results)}"
        result = run_cli(*common, "--out", str(out), *extra)
        assert result.returncode == 0, result.stderr
        results.append(json.loads(result.stdout.strip().splitlines()[-1]))
    assert abs(results[0]["train_loss"] - results[1]["train_loss"]) < 1e-4
    assert abs(results[0]["val_loss"] - results[1]["val_loss"]) < 1e-4
    refused = run_cli(*common, "--out", str(tmp_path / "refused"), "--manual-backward", "--dropout", "0.1")
    assert refused.returncode == 2 and "--dropout 0" in refused.stderr
