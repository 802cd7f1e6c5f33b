"""The flat one-row decoding step (gptscratch/generation/fast_decode.py) computes what the model's module path
computes, for every supported variant; hooks and unsupported variants take the module path; the fp32 column-major
copies follow weight changes."""

import pytest
import torch

from gptscratch.generation import Decoder, SamplingConfig, generate_batch
from gptscratch.generation import fast_decode, mkl_bf16
from gptscratch.generation.fast_decode import FastDecoder, supports
from gptscratch.model import GPT, ModelConfig

torch.set_num_threads(1)
GREEDY = SamplingConfig(temperature=0)

VARIANTS = [
    {},
    dict(positional="rope", rotary_fraction=0.5),
    dict(positional="sinusoidal", scale_embeddings=True),
    dict(positional="rope", block_layout="parallel"),
    dict(attention_only=True),
    dict(bias=False, activation="relu"),
    dict(activation="gelu_tanh", tie_weights=False, lm_head_bias=True),
]


def tiny_model(**overrides):
    torch.manual_seed(0)
    return GPT(ModelConfig(vocab_size=64, context_length=32, n_layer=2, n_head=2, d_model=32, **overrides)).eval()


def fast_and_module_logits(model, ids, prefix=5):
    """Per decode step: (fast-path logits, module-path logits), both continuing a prefilled cache."""
    pairs = []
    with torch.inference_mode():
        fast_cache, module_cache = model.new_kv_cache(1), model.new_kv_cache(1)
        model(ids[:, :prefix], kv_cache=fast_cache)
        model(ids[:, :prefix], kv_cache=module_cache)
        fast = FastDecoder(model)
        for t in range(prefix, ids.size(1)):
            got = fast.step(int(ids[0, t]), fast_cache)
            expected, _ = model(ids[:, t: t + 1], kv_cache=module_cache)
            pairs.append((got, expected[:, -1]))
        assert fast_cache.length == module_cache.length == ids.size(1)
    return pairs


@pytest.mark.parametrize("overrides", VARIANTS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "gpt2")
def test_fast_step_equals_the_module_path_fp32(overrides):
    model = tiny_model(**overrides)
    assert supports(model)
    ids = torch.randint(0, 64, (1, 20), generator=torch.Generator().manual_seed(1))
    for got, expected in fast_and_module_logits(model, ids):
        assert got.shape == expected.shape == (1, 64)
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("overrides", [{}, dict(positional="rope")])
def test_fast_greedy_tokens_equal_uncached_decoding(overrides):
    model = tiny_model(**overrides)
    prompt = [3, 1, 4, 1, 5]
    decoder = Decoder(model, [prompt], GREEDY)
    assert decoder.fast is not None                                  # one row: the fast path decodes
    cached = generate_batch(model, [prompt], 24, GREEDY)             # 5 + 24 < 32: no slide
    assert cached == generate_batch(model, [prompt], 24, GREEDY, use_cache=False)


def test_fast_step_bf16_stays_close_to_the_module_path():
    model = tiny_model().to(torch.bfloat16)
    ids = torch.randint(0, 64, (1, 20), generator=torch.Generator().manual_seed(2))
    for got, expected in fast_and_module_logits(model, ids):
        assert got.dtype == torch.bfloat16
        torch.testing.assert_close(got.float(), expected.float(), atol=3e-2, rtol=3e-2)


def test_hooks_and_unsupported_models_take_the_module_path():
    model = tiny_model()
    seen = []
    handle = model.hook_points()["blocks.1.hook_resid_post"].register_forward_hook(
        lambda module, args, out: seen.append(out.shape))
    try:
        hooked = generate_batch(model, [[1, 2, 3]], 6, GREEDY)
    finally:
        handle.remove()
    assert len(seen) == 6 and all(s == (1, 1, 32) for s in seen[1:])   # prefill, then every decode step
    assert hooked == generate_batch(model, [[1, 2, 3]], 6, GREEDY)     # the same tokens either way
    post_norm = tiny_model(norm_placement="post")
    assert not supports(post_norm) and Decoder(post_norm, [[1, 2]], GREEDY).fast is None
    assert generate_batch(post_norm, [[1, 2]], 10, GREEDY) == generate_batch(post_norm, [[1, 2]], 10, GREEDY,
                                                                           use_cache=False)


def test_batches_decode_through_the_module_path():
    model = tiny_model()
    assert Decoder(model, [[1, 2], [3, 4]], GREEDY).fast is None
    assert Decoder(model, [[1, 2]], SamplingConfig(temperature=1.0), num_samples=2, seed=0).fast is None


def test_layout_copies_match_and_follow_weight_changes(monkeypatch):
    model = tiny_model()
    copies = fast_decode._decoding_copies(model)
    weight = model.blocks[0].attn.qkv.weight
    copy = copies[id(weight)]
    assert torch.equal(copy, weight) and copy.stride() == (1, weight.size(0))      # same values, column-major
    assert fast_decode._decoding_copies(model)[id(weight)] is copy                 # built once per model
    with torch.no_grad():
        weight.mul_(2.0)                                                            # an in-place update
    renewed = fast_decode._decoding_copies(model)[id(weight)]
    assert renewed is not copy and torch.equal(renewed, weight)
    ids = torch.randint(0, 64, (1, 12), generator=torch.Generator().manual_seed(3))
    for got, expected in fast_and_module_logits(model, ids):
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
    monkeypatch.setattr(fast_decode, "COPY_BUDGET", 0)
    assert fast_decode._decoding_copies(tiny_model()) == {}                        # over the budget: none


def kernel_available(name):
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setattr(fast_decode, "BF16_KERNEL", name)
    try:
        return fast_decode.bf16_kernel() == name
    finally:
        monkeypatch.undo()


@pytest.mark.parametrize("kernel", ["mkl", "onednn"])
def test_each_bf16_kernel_gives_the_plain_weights_results(monkeypatch, kernel):
    if not kernel_available(kernel):
        pytest.skip(f"the {kernel} bf16 kernel is not available here")
    monkeypatch.setattr(fast_decode, "BF16_KERNEL", kernel)
    model = tiny_model(tie_weights=False, lm_head_bias=True).to(torch.bfloat16)
    copies = fast_decode._decoding_copies(model).values()
    if kernel == "onednn":
        assert all(c.is_mkldnn for c in copies)
    else:                                                              # column-major bf16 copies
        assert all(c.dtype == torch.bfloat16 and c.stride() == (1, c.size(0)) for c in copies)
    ids = torch.randint(0, 64, (1, 16), generator=torch.Generator().manual_seed(4))
    pairs = fast_and_module_logits(model, ids)
    monkeypatch.setattr(fast_decode, "BF16_KERNEL", "mv")
    assert fast_decode._decoding_copies(model) == {}                   # torch.mv multiplies the weights
    plain = [got for got, _ in fast_and_module_logits(model, ids)]
    for (got, expected), other in zip(pairs, plain):
        assert got.dtype == torch.bfloat16
        torch.testing.assert_close(got.float(), expected.float(), atol=3e-2, rtol=3e-2)
        torch.testing.assert_close(got.float(), other.float(), atol=2e-2, rtol=2e-2)


def test_bf16_kernel_falls_back_where_the_faster_ones_are_missing(monkeypatch):
    monkeypatch.setattr(fast_decode, "_has_mkl_bf16", lambda: False)
    monkeypatch.setattr(fast_decode, "BF16_KERNEL", "mkl")                 # asked for, missing: the next one
    assert fast_decode.bf16_kernel() == ("onednn" if fast_decode._packs_bf16() else "mv")
    monkeypatch.setattr(fast_decode, "_packs_bf16", lambda: False)
    assert fast_decode.bf16_kernel() == "mv"
    model = tiny_model().to(torch.bfloat16)
    assert fast_decode._decoding_copies(model) == {}
    assert len(generate_batch(model, [[1, 2, 3]], 5, GREEDY)[0]) == 5      # decodes on the plain weights


@pytest.mark.skipif(mkl_bf16.gemm() is None, reason="this torch build has no usable MKL bf16 GEMM")
def test_mkl_row_product_equals_linear_and_checks_its_input():
    generator = torch.Generator().manual_seed(5)
    weight = torch.randn(70, 45, generator=generator).bfloat16()          # (out, in), odd sizes
    bias = torch.randn(70, generator=generator).bfloat16()
    x = torch.randn(1, 45, generator=generator).bfloat16()
    for b in (bias, None):
        product = mkl_bf16.RowTimesMatrix(weight.t().contiguous(), b)
        got = product(x)
        assert got.dtype == torch.bfloat16 and got.shape == (1, 70)
        expected = x.float() @ weight.float().t() + (b.float() if b is not None else 0)
        torch.testing.assert_close(got.float(), expected, atol=1e-2, rtol=1e-2)   # fp32 sum, one rounding
    for bad in (x.float(), torch.randn(1, 44).bfloat16(), torch.randn(45, 2).bfloat16()[:, 0]):
        with pytest.raises(ValueError):                                 # the C call never sees a wrong buffer
            product(bad)


def test_bf16_sinusoidal_models_generate_on_both_paths():
    """The sinusoidal table is computed in fp32; a bf16 model adds it in its own dtype (it used to crash)."""
    model = tiny_model(positional="sinusoidal").to(torch.bfloat16)
    alone = generate_batch(model, [[1, 2, 3]], 6, GREEDY)                          # fast path
    batched = generate_batch(model, [[1, 2, 3], [1, 2, 3]], 6, GREEDY)             # module path
    assert len(alone[0]) == 6 and batched[0] == batched[1]
