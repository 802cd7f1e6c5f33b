"""gptscratch's interpret numbers are TransformerLens's, checked by TransformerLens itself.

A GPT-2-shaped gptscratch model is exported to the Hugging Face layout and wrapped by TransformerLens 4
(`to_transformer_bridge`: a `TransformerBridge`, which computes attention, hooks and caches with TransformerLens's
own code). Then, on the same token ids:
- every row of the hook table (gptscratch/interpret/transformer_lens.py HOOKS, also docs/interpret.md) gives the
  same activation under both names, and the table covers every hook point of the model;
- our logit lens equals TransformerLens's `accumulated_resid(apply_ln=True)` and its `logit_lens` tool;
- per-head and residual activation patching equal TransformerLens's `patching` sweeps on `hook_z` / resid_pre;
- with HookedTransformer's weight processing, exactly what the table's last column says changes.

GPT-2's initialisation sets every bias to 0 and every LayerNorm to the identity, which would hide a convention
that drops a bias or a norm weight; the fixture randomises them, and scales the matrices ×8 so that attention is
far from uniform and one corrupted token moves the answer (logits of O(1)). Tolerance (fp32): atol 1e-5 and rtol 1e-5 on
activations of O(1) size — two implementations of the same sums in a different order, measured ≤ 1e-6 apart;
recovered fractions atol 1e-4 (a ratio whose denominator, LD clean − LD corrupted, is checked to exceed 0.5).
"""

from __future__ import annotations

from importlib.util import find_spec

import pytest

from gptscratch.errors import UsageError
from gptscratch.interpret.transformer_lens import HOOKS, hook_names, hooks_table

needs_transformer_lens = pytest.mark.skipif(find_spec("transformer_lens") is None,
                                            reason="transformer-lens is not installed")
FP32 = {"atol": 1e-5, "rtol": 1e-5}


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory):
    """(our model, its checkpoint folder, its TransformerBridge with per-head results on)."""
    import torch
    from helpers import build_tiny_model

    from gptscratch.checkpoint import save_checkpoint
    from gptscratch.interpret.transformer_lens import to_transformer_bridge
    from gptscratch.tokenizers import get_tokenizer

    model = build_tiny_model(vocab_size=257, activation="gelu_tanh")
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() == 1:  # biases and LayerNorm weights: not the identity
                parameter.add_(0.2 * torch.randn_like(parameter))
            else:                     # sharper heads: at std 0.02 one corrupted token moves LD by ~0.001
                parameter.mul_(8.0)
    folder = tmp_path_factory.mktemp("tl") / "ckpt"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        save_checkpoint(folder, model, get_tokenizer("byte").spec())
        bridge = to_transformer_bridge(folder)
    bridge.set_use_attn_result(True)
    return model, folder, bridge


def token_ids(batch: int, length: int, seed: int = 0):
    import torch

    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (batch, length), generator=generator)


@needs_transformer_lens
@pytest.mark.slow  # TransformerLens's import and a bridge: ~14 s of the fast suite's budget
def test_every_activation_in_the_table_equals_transformer_lens(gpt2):
    import torch

    from gptscratch.interpret import run_with_cache
    from gptscratch.interpret.cache import HEAD_RESULT

    model, _, bridge = gpt2
    ids = token_ids(2, 16)
    logits, ours = run_with_cache(model, ids)
    their_logits, theirs = bridge.run_with_cache(ids)
    torch.testing.assert_close(their_logits, logits, **FP32)
    rows = hook_names(model.config.n_layer)
    # The table is complete: a new hook point needs its row (the derived hook_result is not a hook point).
    assert {ours_name for ours_name, _, _ in rows if not HEAD_RESULT.fullmatch(ours_name)} == set(model.hook_points())
    for our_name, their_name, pair in rows:
        torch.testing.assert_close(theirs[their_name], pair.to_transformer_lens(ours[our_name], len(ids)), **FP32,
                                   msg=lambda m, n=our_name, t=their_name: f"{n} ↔ {t}: {m}")
    # Not the pre-weight normalisation: the final-norm row pairs with the hook that includes LayerNorm's w and b.
    assert (theirs["ln_final.hook_normalized"] - ours["hook_final_norm"]).abs().max() > 0.1


@needs_transformer_lens
@pytest.mark.slow  # TransformerLens's import and a bridge: ~14 s of the fast suite's budget
def test_logit_lens_equals_transformer_lens(gpt2):
    import torch
    from transformer_lens.tools.analysis import logit_lens as their_logit_lens

    from gptscratch.interpret import logit_lens, run_with_cache

    model, _, bridge = gpt2
    ids = token_ids(1, 12, seed=1)
    _, ours = run_with_cache(model, ids)
    _, theirs = bridge.run_with_cache(ids)
    stack, labels = ours.accumulated_resid(incl_mid=True, apply_ln=True)
    their_stack, their_labels = theirs.accumulated_resid(incl_mid=True, apply_ln=True, return_labels=True)
    assert labels == their_labels == ["0_pre", "0_mid", "1_pre", "1_mid", "final_post"]
    torch.testing.assert_close(their_stack, stack, **FP32)

    lens = logit_lens(model, ids[0], k=5, target=7, incl_mid=True)
    targets = torch.tensor([lens.targets])                                  # (1, T): next token, then 7
    top = their_logit_lens(bridge, ids, incl_mid=True, positions=None, top_k=5, return_type="probs")
    on_target = their_logit_lens(bridge, ids, incl_mid=True, positions=None, targets=targets, return_type="probs")
    assert top.labels == lens.labels
    assert top.readout.top_ids[:, 0].tolist() == lens.top_ids
    torch.testing.assert_close(top.values[:, 0], torch.tensor(lens.top_probs), **FP32)
    torch.testing.assert_close(on_target.values[:, 0, :, 0], torch.tensor(lens.target_prob), **FP32)
    # Ranks: ours count from 1 (TransformerLens's from 0); no two fp32 logits tie here, so nothing else differs.
    assert (on_target.readout.target_ranks[:, 0, :, 0] + 1).tolist() == lens.target_rank
    assert len({rank for layer in lens.target_rank for rank in layer}) > 5   # the lens says something


@needs_transformer_lens
@pytest.mark.slow  # TransformerLens's import and a bridge: ~14 s of the fast suite's budget
def test_head_and_residual_patching_equal_transformer_lens_patching(gpt2):
    import torch
    from transformer_lens import patching

    from gptscratch.interpret import activation_patching, run_with_hooks

    model, _, bridge = gpt2
    clean = token_ids(1, 10, seed=4)[0].tolist()
    corrupted = clean[:3] + [(clean[3] + 100) % 256] + clean[4:]
    moved = run_with_hooks(model, clean, {})[0, -1] - run_with_hooks(model, corrupted, {})[0, -1]
    target, foil = int(moved.argmax()), int(moved.argmin())      # the answer pair the corruption moves most
    result = activation_patching(model, clean, corrupted, target, foil)
    assert result.clean_logit_diff - result.corrupted_logit_diff > 0.5   # the fractions are not noise

    clean_ids, corrupted_ids = torch.tensor([clean]), torch.tensor([corrupted])
    _, clean_cache = bridge.run_with_cache(clean_ids)

    def logit_difference(logits):
        return logits[0, -1, target] - logits[0, -1, foil]

    with torch.no_grad():
        clean_diff, corrupted_diff = logit_difference(bridge(clean_ids)), logit_difference(bridge(corrupted_ids))
    assert abs(float(clean_diff) - result.clean_logit_diff) < 1e-4
    assert abs(float(corrupted_diff) - result.corrupted_logit_diff) < 1e-4

    def recovered(logits):
        return (logit_difference(logits) - corrupted_diff) / (clean_diff - corrupted_diff)

    heads = patching.get_act_patch_attn_head_out_all_pos(bridge, corrupted_ids, clean_cache, recovered)
    torch.testing.assert_close(heads, torch.tensor(result.heads), atol=1e-4, rtol=0)
    resid = patching.get_act_patch_resid_pre(bridge, corrupted_ids, clean_cache, recovered)   # (L, T)
    torch.testing.assert_close(resid, torch.tensor(result.resid[:model.config.n_layer]), atol=1e-4, rtol=0)
    assert heads.max() - heads.min() > 0.05 and resid[0, 3] == pytest.approx(1.0, abs=1e-4)


@needs_transformer_lens
@pytest.mark.slow  # TransformerLens's import and a bridge: ~14 s of the fast suite's budget
def test_hooked_transformer_processing_changes_what_the_table_says(gpt2):
    import torch
    from transformer_lens.tools.analysis import logit_lens as their_logit_lens

    from gptscratch.interpret import run_with_cache
    from gptscratch.interpret.logit_lens import lens_logits
    from gptscratch.interpret.transformer_lens import to_transformer_bridge

    model, folder, _ = gpt2
    processed = to_transformer_bridge(folder, processing=True)     # fold_ln, centring, value biases folded
    processed.set_use_attn_result(True)
    ids = token_ids(2, 12, seed=2)
    logits, ours = run_with_cache(model, ids)
    their_logits, theirs = processed.run_with_cache(ids)
    for our_name, their_name, pair in hook_names(model.config.n_layer):
        mine, theirs_now = pair.to_transformer_lens(ours[our_name], len(ids)), theirs[their_name]
        if pair.processed == "same":
            torch.testing.assert_close(theirs_now, mine, **FP32)
        elif pair.processed == "centred":
            torch.testing.assert_close(theirs_now, mine - mine.mean(-1, keepdim=True), **FP32)
        else:
            assert (theirs_now - mine).abs().max() > 1e-3, f"{their_name} no longer differs: update HOOKS"
    # center_unembed shifts each position's logits by a constant: log-probabilities are unchanged.
    assert (their_logits - logits).abs().max() > 1e-3
    torch.testing.assert_close(their_logits.log_softmax(-1), logits.log_softmax(-1), **FP32)
    lens, _ = lens_logits(model, ours, incl_mid=True)
    their_lens = their_logit_lens(processed, cache=theirs, incl_mid=True, positions=None, return_type="log_probs")
    torch.testing.assert_close(their_lens.values, lens.log_softmax(-1), **FP32)


@needs_transformer_lens
@pytest.mark.slow  # TransformerLens's import and a bridge: ~14 s of the fast suite's budget
def test_hand_off_takes_a_model_or_a_checkpoint_and_refuses_other_shapes(gpt2, tiny_model):
    import torch

    from gptscratch.checkpoint import load_checkpoint
    from gptscratch.interpret.transformer_lens import to_transformer_bridge
    from gptscratch.tokenizers import get_tokenizer

    model, folder, _ = gpt2
    bare = tiny_model()                                  # vocab 101, exact GELU, no tokenizer
    bridge = to_transformer_bridge(bare)
    ids = torch.randint(0, 101, (2, 9))
    assert bridge.tokenizer is None
    torch.testing.assert_close(bridge(ids), bare(ids)[0], **FP32)
    loaded = to_transformer_bridge(load_checkpoint(folder))     # a Checkpoint: its tokenizer comes along
    text = "hello, lens"
    assert loaded.to_tokens(text)[0].tolist() == [256] + get_tokenizer("byte").encode(text)
    torch.testing.assert_close(loaded(ids), model(ids)[0], **FP32)

    with pytest.raises(UsageError, match=r"GPT-2-shaped .* needs learned positions \(has rope\)$") as refused:
        to_transformer_bridge(tiny_model(positional="rope"))
    assert "\n" not in str(refused.value)
    with pytest.raises(UsageError, match="LayerNorm \\(has rmsnorm\\); a standard MLP"):
        to_transformer_bridge(tiny_model(norm="rmsnorm", mlp="gated"))
    with pytest.raises(UsageError, match="not dict"):
        to_transformer_bridge({"model": bare})
    with pytest.raises(UsageError, match="brings its own tokenizer"):
        to_transformer_bridge(folder, tokenizer=get_tokenizer("byte"))


def test_head_result_is_read_from_the_cache_not_hooked(tiny_model):
    """`hook_result` is TransformerLens's name for a quantity we compute from hook_z; asking to hook it says so."""
    import torch

    from gptscratch.interpret import hooks, run_with_cache

    model = tiny_model()
    _, cache = run_with_cache(model, torch.randint(0, 101, (1, 6)), names=["blocks.1.attn.hook_z"])
    assert torch.equal(cache["result", 1], cache.head_result(1))
    assert torch.equal(cache["blocks.1.attn.hook_result"], cache.head_result(1))
    with pytest.raises(UsageError, match="computes it from hook_z"), hooks(model, {"blocks.0.attn.hook_result": print}):
        pass
    with pytest.raises(KeyError, match="blocks.0.attn.hook_z was not cached"):
        cache["result", 0]


def test_the_docs_show_the_table_the_tests_check():
    from pathlib import Path

    page = (Path(__file__).resolve().parent.parent / "docs" / "interpret.md").read_text(encoding="utf-8")
    regenerate = "python -c 'from gptscratch.interpret.transformer_lens import hooks_table; print(hooks_table())'"
    assert hooks_table() in page, f"docs/interpret.md's hook table is stale; paste the output of {regenerate}"
    assert len(HOOKS) == hooks_table().count("\n") - 1
