"""Interpretability tools on tiny models: exact checks (hooks, logit lens, patching) and the classification rules.

The trained-circuit evidence (a 2-layer attention-only model that learns induction) lives in
tests/test_interpret_induction.py.
"""

import pytest
import torch

from gptscratch.errors import UsageError
from gptscratch.interpret import (activation_patching, analyse_heads, assess, find_induction_heads, hooks,
                                  logit_lens, patch_recovered, repeated_random_tokens, run_with_cache)
from gptscratch.interpret.heads import detection_patterns, detection_score, profile_patterns

# Phi-2's layout; two heads of 16 dimensions, so that its 0.4 rotary fraction rotates a whole, even number (6).
PHI_STYLE = dict(block_layout="parallel", positional="rope", rotary_fraction=0.4, tie_weights=False,
                 lm_head_bias=True, activation="gelu_tanh", n_head=2)


# A Llama / Qwen3-style model: RMSNorm, SwiGLU, grouped-query attention (2 key/value heads for 4 query heads),
# QK-norm, rotary positions with a large base, untied output, a logit soft cap.
MODERN = dict(norm="rmsnorm", mlp="gated", activation="silu", n_kv_head=2, qk_norm=True, positional="rope",
              rope_base=5e5, bias=False, tie_weights=False, logit_softcap=30.0)


def ids(length=12, seed=1):
    return torch.randint(0, 63, (length,), generator=torch.Generator().manual_seed(seed))


def test_hooks_are_removed_even_when_the_forward_pass_fails(tiny_model):
    model = tiny_model()

    def explode(activation, name):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        with hooks(model, {"blocks.0.hook_resid_post": explode}):
            model(ids()[None])
    assert not any(point.has_hooks for point in model.hook_points().values())


def test_cache_reads_only_the_filtered_names_and_replacements_take_effect(tiny_model):
    model = tiny_model()
    logits, cache = run_with_cache(model, ids(), ["blocks.1.hook_resid_post"])
    assert list(cache) == ["blocks.1.hook_resid_post"] and cache["resid_post", 1].shape == (1, 12, 32)  # d_model
    _, everything = run_with_cache(model, ids(), lambda name: name.endswith("hook_pattern"))
    assert sorted(everything) == ["blocks.0.attn.hook_pattern", "blocks.1.attn.hook_pattern"]
    assert torch.allclose(everything["pattern", 0].sum(-1), torch.ones(1, 4, 12))   # 4 heads, rows sum to 1
    # per-head results (computed from hook_z and W_O) add up to the attention output minus the bias
    _, cache = run_with_cache(model, ids(), ["blocks.0.attn.hook_z", "blocks.0.hook_attn_out"])
    summed = cache.head_result(0).sum(2) + model.blocks[0].attn.proj.bias
    assert torch.allclose(summed, cache["attn_out", 0], atol=1e-6)
    with pytest.raises(UsageError, match="no activation named"):
        run_with_cache(model, ids(), ["blocks.9.hook_resid_post"])


@pytest.mark.parametrize("overrides", [{}, PHI_STYLE, {"norm_placement": "post"}, {"attention_only": True}, MODERN])
def test_logit_lens_last_layer_equals_the_models_own_output(overrides, tiny_model):
    model, tokens = tiny_model(**overrides), ids()
    lens = logit_lens(model, tokens, k=3, target=5)
    logits, _ = model(tokens[None])
    log_probs = torch.log_softmax(logits[0], -1)
    final = lens.layer_index("final_post")
    assert lens.labels[0] == "0_pre" and final == len(lens.labels) - 1 == model.config.n_layer
    assert lens.top_ids[final] == log_probs.topk(3, -1).indices.tolist()
    assert torch.allclose(torch.tensor(lens.top_probs[final]), log_probs.topk(3, -1).values.exp(), atol=1e-6)
    expected_rank = (logits[0] >= logits[0].gather(-1, torch.tensor(lens.targets)[:, None])).sum(-1)
    assert lens.target_rank[final] == expected_rank.tolist()
    assert lens.targets[-1] == 5 and lens.targets[:-1] == tokens[1:].tolist()


def test_logit_lens_mid_block_residual_is_read_only_where_it_exists(tiny_model):
    sequential = logit_lens(tiny_model(), ids(), incl_mid=True)
    assert sequential.labels == ["0_pre", "0_mid", "1_pre", "1_mid", "final_post"]
    with pytest.raises(UsageError, match="parallel"):
        logit_lens(tiny_model(**PHI_STYLE), ids(), incl_mid=True)


def test_phi_style_model_has_no_mid_block_residual_and_the_tools_still_work(tiny_model):
    model = tiny_model(**PHI_STYLE)
    names = model.hook_points()
    assert "blocks.0.hook_resid_mid" not in names and "blocks.0.hook_mlp_out" in names
    with pytest.raises(UsageError, match="no mid-block residual"):
        run_with_cache(model, ids(), ["blocks.0.hook_resid_mid"])
    _, cache = run_with_cache(model, ids())
    with pytest.raises(UsageError, match="parallel"):
        cache["resid_mid", 0]
    # parallel block: resid_post = resid_pre + attn_out + mlp_out, no point in between
    rebuilt = cache["resid_pre", 0] + cache["attn_out", 0] + cache["mlp_out", 0]
    assert torch.allclose(rebuilt, cache["resid_post", 0], atol=1e-6)
    assert len(analyse_heads(model, ids())) == 2 * 2       # layers × heads
    clean, corrupted = ids(seed=2), ids(seed=2).clone()
    corrupted[4] = (corrupted[4] + 1) % 63
    assert patch_recovered(model, clean, corrupted, 3, 7, ["blocks.0.hook_resid_pre"]) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("overrides", [{}, PHI_STYLE, MODERN])
def test_patching_everything_recovers_100_percent_and_nothing_0(overrides, tiny_model):
    model = tiny_model(**overrides)
    clean = ids(seed=3)
    corrupted = clean.clone()
    corrupted[5] = (corrupted[5] + 7) % 63
    target, foil = 11, 22
    assert patch_recovered(model, clean, corrupted, target, foil, []) == 0.0
    assert patch_recovered(model, clean, corrupted, target, foil, ["blocks.0.hook_resid_pre"]) == pytest.approx(1, abs=1e-6)
    result = activation_patching(model, clean, corrupted, target, foil)
    assert result.resid_labels == ["0_pre", "1_pre", "final_post"]
    # the last position of the final residual stream is everything the output layer reads: 100%
    assert result.resid[-1][-1] == pytest.approx(1.0, abs=1e-4)
    # patching a position where the prompts agree, before anything has mixed positions, changes nothing
    assert all(abs(v) < 1e-4 for p, v in enumerate(result.resid[0]) if p != 5)
    assert result.resid[0][5] == pytest.approx(1.0, abs=1e-4)       # the one corrupted token carries it all
    # the batched per-head sweep equals patching one head on its own
    one_head = patch_recovered_head(model, clean, corrupted, target, foil, layer=1, head=1)
    assert result.heads[1][1] == pytest.approx(one_head, abs=1e-4)


def patch_recovered_head(model, clean, corrupted, target, foil, layer, head):
    from gptscratch.interpret import logit_difference, run_with_hooks

    _, cache = run_with_cache(model, clean, [f"blocks.{layer}.attn.hook_z"])

    def patch(z, name):
        z = z.clone()
        z[:, :, head] = cache[name][:, :, head]
        return z

    def diff(logits):
        return float(logit_difference(logits, target, foil)[0])

    clean_diff = diff(run_with_hooks(model, clean, {}))
    corrupted_diff = diff(run_with_hooks(model, corrupted, {}))
    patched = diff(run_with_hooks(model, corrupted, {f"blocks.{layer}.attn.hook_z": patch}))
    return (patched - corrupted_diff) / (clean_diff - corrupted_diff)


def test_patching_rejects_prompts_of_different_lengths_and_identical_answers(tiny_model):
    model = tiny_model()
    with pytest.raises(UsageError, match="equal lengths"):
        activation_patching(model, ids(10), ids(11), 1, 2)
    with pytest.raises(UsageError, match="same logit difference"):
        activation_patching(model, ids(), ids(), 1, 2)


def test_assessment_thresholds():
    assert [assess(v) for v in (0.9, -0.6, 0.3, 0.05, 0.049, 0.0)] == [
        "Critical", "Critical", "Important", "Moderate", "Minimal", "Minimal"]


def test_detection_score_is_transformerlens_mul_score():
    tokens = torch.tensor([[5, 6, 5, 6]])
    pattern = torch.tensor([[1, 0, 0, 0], [0.5, 0.5, 0, 0], [0.2, 0.6, 0.2, 0], [0.1, 0.1, 0.1, 0.7]])
    detection = detection_patterns(tokens)
    # previous-token: (0.5 + 0.6 + 0.1) / 4 rows
    assert float(detection_score(pattern[None, None], detection["previous_token"])) == pytest.approx(1.2 / 4)
    # duplicate-token: row 2 (token 5) → key 0, row 3 (token 6) → key 1
    assert float(detection_score(pattern[None, None], detection["duplicate_token"])) == pytest.approx(0.3 / 4)
    # induction: key j where token j-1 equals the query token: row 2 → key 1, row 3 → key 2
    assert float(detection_score(pattern[None, None], detection["induction"])) == pytest.approx(0.7 / 4)


def synthetic_pattern(kind, length=10):
    if kind == "previous":
        pattern = torch.zeros(length, length)
        pattern[0, 0] = 1
        pattern[torch.arange(1, length), torch.arange(length - 1)] = 1
    elif kind == "first":
        pattern = torch.zeros(length, length)
        pattern[:, 0] = 1
    elif kind == "uniform":
        pattern = torch.ones(length, length).tril()
        pattern = pattern / pattern.sum(-1, keepdim=True)
    else:  # focused on a content-dependent key, never a fixed offset
        keys = [0, 0, 1, 0, 2, 1, 5, 3, 6, 2]
        pattern = torch.full((length, length), 0.0)
        for q, k in enumerate(keys):
            pattern[q, : q + 1] = 0.1 / (q + 1)
            pattern[q, k] += 0.9
    return pattern


@pytest.mark.parametrize("kind, expected", [("previous", "previous-token"), ("first", "first-token"),
                                            ("uniform", "uniform"), ("focused", "focused")])
def test_heads_are_classified_by_their_pattern(kind, expected):
    tokens = torch.arange(10)[None]                      # no repeats: duplicate/induction impossible
    profile = profile_patterns(synthetic_pattern(kind)[None, None, None], tokens)[0]
    assert profile.kind == expected
    assert profile.shares["duplicate_token"] is None   # reported as impossible, not as 0


def test_induction_tools_run_on_an_untrained_model_without_finding_a_circuit(tiny_model):
    model = tiny_model(attention_only=True)
    tokens = repeated_random_tokens(63, 10, batch=2, bos_id=63)
    assert tokens.shape == (2, 21) and torch.equal(tokens[:, 1:11], tokens[:, 11:])
    report = find_induction_heads(model, tokens, 10, 1)
    assert len(report.ranked) == 2 * 4 and report.ranked[0].score < 0.3      # layers × heads
    assert abs(report.loss_drop) < 0.5                  # random weights: no in-context learning


def test_cli_module_imports_no_heavy_libraries():
    import subprocess
    import sys

    code = ("import sys, gptscratch.cli.interpret; "
            "print(sorted(m for m in ('torch', 'numpy', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_cli_demo_json_and_one_line_errors(tmp_path, run_cli, tiny_model):
    import json

    from gptscratch.checkpoint import save_checkpoint
    from gptscratch.tokenizers import get_tokenizer

    checkpoint = save_checkpoint(tmp_path / "byte", tiny_model(vocab_size=257, context_length=128),
                                 get_tokenizer("byte").spec())
    result = run_cli("interpret", "logit-lens", str(checkpoint), "--demo", "--json", "-k", "2")
    assert result.returncode == 0, result.stderr
    lenses = json.loads(result.stdout)
    assert len(lenses) == 2 and lenses[0]["labels"] == ["0_pre", "1_pre", "final_post"]
    for args, message in [
        (["patch", str(checkpoint)], "needs --clean, --corrupted and --target"),
        (["attention", str(checkpoint), "--text", "abc", "--head", "1"], "--head needs --layer"),
        (["logit-lens", str(checkpoint), "--text", "abc", "--plot", str(tmp_path / "x.jpg")], "PNG"),
        (["patch", str(checkpoint), "--clean", "ab", "--corrupted", "abc", "--target", "c"], "equal lengths"),
    ]:
        result = run_cli("interpret", *args)
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr and len(result.stderr.strip().splitlines()[-1]) > 0
        assert "Traceback" not in result.stderr


def test_head_tools_see_every_query_head_of_a_grouped_query_model(tiny_model):
    """With 2 key/value heads serving 4 query heads, each query head still has its own pattern, output and score."""
    model = tiny_model(**MODERN)
    _, cache = run_with_cache(model, ids())
    assert cache["k", 0].shape == (1, 2, 12, 8) and cache["pattern", 0].shape == (1, 4, 12, 12)
    rebuilt = cache.head_result(0).sum(2)                          # no output bias in this model
    assert torch.allclose(rebuilt, cache["attn_out", 0], atol=1e-5)
    assert len(analyse_heads(model, ids())) == 2 * 4                # layers × query heads
    report = find_induction_heads(model, repeated_random_tokens(63, 6, batch=2, bos_id=63), 6, 1)
    assert len(report.ranked) == 2 * 4
