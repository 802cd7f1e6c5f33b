"""The teaching core: shapes, causality, tying, attention equivalence, KV cache, parameter counts."""

import math

import pytest
import torch

from gptscratch.model import GPT, SIZES, ModelConfig, attention_explicit, causal_mask, model_config
from gptscratch.model.attention import CausalSelfAttention

torch.set_num_threads(1)

VARIANTS = [
    dict(positional="learned"),
    dict(positional="sinusoidal"),
    dict(positional="rope"),
    dict(positional="rope", rotary_fraction=0.5),
    dict(norm_placement="post"),
    dict(block_layout="parallel", positional="rope", rotary_fraction=0.25, tie_weights=False, lm_head_bias=True),
    dict(activation="relu", bias=False, scale_embeddings=True),
    dict(attention_only=True),
    # The modern decisions, alone and as the Llama / Qwen families combine them.
    dict(norm="rmsnorm"),
    dict(mlp="gated", activation="silu"),
    dict(activation="relu2"),
    dict(n_kv_head=2, positional="rope"),
    dict(n_kv_head=1, qk_norm=True, positional="rope"),
    dict(qk_norm=True, norm="rmsnorm", positional="rope", rope_base=1e6),
    dict(positional="rope", rope_scaling="llama3", rope_original_context=16, rope_scaling_factor=4.0),
    dict(bias=False, qkv_bias=True),
    dict(attention_bias=False, mlp_bias=True),
    dict(logit_softcap=5.0, tie_weights=False),
    dict(norm="rmsnorm", mlp="gated", activation="silu", n_kv_head=2, positional="rope", rope_base=5e5, bias=False,
         tie_weights=False, d_ff=88),                                                                   # Llama
    dict(norm="rmsnorm", mlp="gated", activation="silu", n_kv_head=1, positional="rope", bias=False,
         qkv_bias=True, block_layout="parallel"),
]


def test_shapes_and_loss(tiny_model):
    model = tiny_model()
    idx = torch.randint(0, 101, (3, 17))
    logits, loss = model(idx, targets=idx)
    assert logits.shape == (3, 17, 101)
    # At initialisation the prediction is near uniform: loss ≈ ln(V).
    assert abs(loss.item() - math.log(101)) < 0.5
    last, _ = model(idx, only_last=True)
    assert torch.allclose(last[:, 0], logits[:, -1], atol=1e-6)


def test_loss_ignores_minus_one_targets(tiny_model):
    model = tiny_model()
    idx = torch.randint(0, 101, (1, 8))
    targets = idx.clone()
    targets[0, 4:] = -1
    logits, loss = model(idx, targets=targets)
    expected = torch.nn.functional.cross_entropy(logits[0, :4], idx[0, :4])
    assert torch.allclose(loss, expected, atol=1e-6)


@pytest.mark.parametrize("overrides", VARIANTS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
def test_causal_future_tokens_do_not_change_the_past(overrides, tiny_model):
    model = tiny_model(**overrides)
    idx = torch.randint(0, 101, (1, 20))
    changed = idx.clone()
    changed[0, 12:] = (changed[0, 12:] + 1) % 101
    a, _ = model(idx)
    b, _ = model(changed)
    assert torch.allclose(a[0, :12], b[0, :12], atol=1e-6)
    assert not torch.allclose(a[0, 12:], b[0, 12:], atol=1e-3)


@pytest.mark.parametrize("overrides", VARIANTS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
def test_kv_cache_matches_full_forward_at_every_step(overrides, tiny_model):
    model = tiny_model(**overrides)
    idx = torch.randint(0, 101, (2, 24))
    full, _ = model(idx)
    cache = model.new_kv_cache(batch=2)
    # Prefill 5 tokens, then a chunk of 3 (multi-token step on a non-empty cache), then one at a time.
    pieces = [model(idx[:, :5], kv_cache=cache)[0], model(idx[:, 5:8], kv_cache=cache)[0]]
    for t in range(8, 24):
        pieces.append(model(idx[:, t:t + 1], kv_cache=cache)[0])
    assert cache.length == 24
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, atol=1e-5, rtol=0)


def test_tied_weights_share_storage(tiny_model):
    model = tiny_model()
    assert model.lm_head.weight is model.tok_embed.weight
    assert model.lm_head.weight.data_ptr() == model.tok_embed.weight.data_ptr()
    with torch.no_grad():
        model.tok_embed.weight[0, 0] = 123.0
    assert model.lm_head.weight[0, 0].item() == 123.0
    untied = tiny_model(tie_weights=False)
    assert untied.lm_head.weight.data_ptr() != untied.tok_embed.weight.data_ptr()


def test_sdpa_equals_explicit_attention():
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 4, 10, 8) for _ in range(3))
    explicit, weights = attention_explicit(q, k, v, mask=None)
    fused = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    torch.testing.assert_close(explicit, fused, atol=1e-5, rtol=0)
    assert torch.allclose(weights.sum(-1), torch.ones(2, 4, 10))
    assert weights[0, 0].triu(1).abs().max() == 0  # no weight on the future


@pytest.mark.parametrize("overrides", [{}, {"n_kv_head": 2}, {"n_kv_head": 1, "qk_norm": True, "norm": "rmsnorm"}],
                         ids=["mha", "gqa", "mqa-qknorm"])
def test_attention_module_fused_and_written_out_paths_agree(overrides):
    """Observing hook_pattern switches the module to the written-out formula; the output must not change."""
    config = ModelConfig(vocab_size=11, context_length=16, n_layer=1, n_head=4, d_model=32, **overrides)
    torch.manual_seed(0)
    attn = CausalSelfAttention(config).eval()
    x = torch.randn(2, 12, 32)
    fused = attn(x)
    seen = {}
    with attn.hook_pattern.register_forward_hook(lambda m, i, o: seen.setdefault("weights", o)):
        explicit = attn(x)
    assert seen["weights"].shape == (2, 4, 12, 12)
    torch.testing.assert_close(fused, explicit, atol=1e-5, rtol=0)
    assert not attn.hook_pattern.has_hooks   # the handle's removal is counted


def test_causal_mask_with_offset():
    mask = causal_mask(2, 5)
    assert mask.tolist() == [[True, True, True, True, False], [True, True, True, True, True]]


def analytic_parameter_count(c: ModelConfig) -> int:
    """The formula of ModelConfig's docstring, extended by every decision, written independently of the model."""
    d, f, V, N, L, hs = c.d_model, c.hidden_dim, c.vocab_size, c.context_length, c.n_layer, c.head_dim
    kv = c.n_kv_head or c.n_head

    def norm(width):
        return width if c.norm == "rmsnorm" or not c.bias else 2 * width

    qkv_width = (c.n_head + 2 * kv) * hs
    attention = d * qkv_width + (qkv_width if c.has_qkv_bias else 0) + d * d + (d if c.has_attention_out_bias else 0)
    attention += 2 * norm(hs) if c.qk_norm else 0
    matrices, biases = (3, 2 * f + d) if c.mlp == "gated" else (2, f + d)
    mlp = 0 if c.attention_only else matrices * d * f + (biases if c.has_mlp_bias else 0)
    norms_per_block = norm(d) if (c.block_layout == "parallel" or c.attention_only) else 2 * norm(d)
    total = V * d + L * (attention + mlp + norms_per_block)
    total += N * d if c.positional == "learned" else 0
    total += norm(d) if c.norm_placement == "pre" else 0
    total += 0 if c.tie_weights else V * d + (V if c.lm_head_bias else 0)
    return total


@pytest.mark.parametrize("size", list(SIZES))
def test_named_size_parameter_counts(size):
    config = model_config(size, vocab_size=50257)
    with torch.device("meta"):  # count without allocating GPT-2-sized tensors
        model = GPT(config)
    assert model.num_parameters() == analytic_parameter_count(config)


def test_gpt2_shape_is_124m():
    with torch.device("meta"):
        model = GPT(model_config("gpt2", vocab_size=50257))
    assert model.num_parameters() == 124_439_808


@pytest.mark.parametrize("overrides", VARIANTS[1:], ids=str)
def test_variant_parameter_counts(overrides, tiny_model):
    model = tiny_model(**overrides)
    assert model.num_parameters() == analytic_parameter_count(model.config)


def test_init_scales_residual_projections(tiny_model):
    model = tiny_model(vocab_size=512, context_length=64, n_layer=8, d_model=256)  # enough weights for a std
    assert abs(model.blocks[0].attn.qkv.weight.std().item() - 0.02) < 0.002
    expected = 0.02 / math.sqrt(2 * 8)
    assert abs(model.blocks[0].attn.proj.weight.std().item() - expected) < 0.001
    assert abs(model.blocks[0].mlp.down.weight.std().item() - expected) < 0.001


def test_config_validation_and_round_trip():
    with pytest.raises(ValueError):
        ModelConfig(d_model=30, n_head=4)
    with pytest.raises(ValueError):
        ModelConfig(positional="alibi")
    config = ModelConfig(positional="rope", rotary_fraction=0.5)
    assert ModelConfig.from_dict(config.to_dict()) == config


def test_hook_points_read_and_replace_activations(tiny_model):
    model = tiny_model()
    names = model.hook_points()
    assert "blocks.0.hook_resid_pre" in names and "blocks.1.attn.hook_pattern" in names
    seen = {}
    handle = names["blocks.1.attn.hook_pattern"].register_forward_hook(lambda m, i, o: seen.setdefault("p", o))
    idx = torch.randint(0, 101, (1, 9))
    base, _ = model(idx)
    handle.remove()
    assert seen["p"].shape == (1, 4, 9, 9)
    # Replacing the residual stream after the last block with zeros makes every position predict the same.
    handle = names["blocks.1.hook_resid_post"].register_forward_hook(lambda m, i, o: torch.zeros_like(o))
    zeroed, _ = model(idx)
    handle.remove()
    assert torch.allclose(zeroed[0, 0], zeroed[0, 5]) and not torch.allclose(base[0, 0], base[0, 5])


def test_grouped_query_heads_share_keys_and_the_cache_holds_only_them(tiny_model):
    """n_kv_head = 2 of 4: query heads 0, 1 read key/value head 0 and heads 2, 3 head 1; the cache is half size."""
    from gptscratch.model.attention import repeat_kv

    model = tiny_model(n_kv_head=2, positional="rope")
    cache = model.new_kv_cache(batch=1)
    assert cache.layers[0].k.shape == (1, 2, 32, 8)
    kv = torch.arange(2.0).view(1, 2, 1, 1).expand(1, 2, 3, 8)
    assert repeat_kv(kv, 2)[0, :, 0, 0].tolist() == [0.0, 0.0, 1.0, 1.0]
    seen = {}
    points = model.hook_points()
    with points["blocks.0.attn.hook_k"].register_forward_hook(lambda m, i, o: seen.setdefault("k", o)), \
            points["blocks.0.attn.hook_pattern"].register_forward_hook(lambda m, i, o: seen.setdefault("p", o)):
        model(torch.randint(0, 101, (1, 5)))
    assert seen["k"].shape == (1, 2, 5, 8) and seen["p"].shape == (1, 4, 5, 5)


def test_llama3_rope_scaling_equals_transformers():
    """The Llama 3 frequency scaling, against transformers' own implementation of it."""
    transformers = pytest.importorskip("transformers")
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    from gptscratch.model.embeddings import RotaryEmbedding

    hf = transformers.LlamaConfig(hidden_size=512, num_attention_heads=4, max_position_embeddings=32768,
                                  rope_theta=500000.0, rope_scaling={
                                      "rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                      "high_freq_factor": 4.0, "original_max_position_embeddings": 8192})
    expected, _ = ROPE_INIT_FUNCTIONS["llama3"](hf, "cpu")
    ours = RotaryEmbedding(128, 500000.0, (8.0, 1.0, 4.0, 8192)).inverse_frequencies()
    plain = RotaryEmbedding(128, 500000.0).inverse_frequencies()
    torch.testing.assert_close(ours, expected.float(), atol=0, rtol=1e-6)
    assert (ours < plain).any() and (ours == plain).any()       # slow pairs slowed, fast pairs kept


def test_logit_softcap_bounds_the_logits(tiny_model):
    capped, plain = tiny_model(logit_softcap=0.5, tie_weights=False), tiny_model(tie_weights=False)
    ids = torch.randint(0, 101, (1, 6))
    with torch.no_grad():
        for model in (capped, plain):
            model.lm_head.weight.mul_(1000)
        big, _ = plain(ids)
        logits, _ = capped(ids)
    assert big.abs().max() > 10 and logits.abs().max() <= 0.5      # (tanh saturates to exactly ±1 in fp32)
    torch.testing.assert_close(logits, 0.5 * torch.tanh(big / 0.5))
