"""The choices behind `gptscratch interpret`, as library functions a Python user calls the same way the CLI does:
the patching foil, the position the logit lens details, the probe's copy length, the strongest effects and their
assessment, prompts that must fit the context, readable token labels, and saving the toy induction model."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from gptscratch.errors import UsageError  # noqa: E402
from gptscratch.interpret import (PatchingResult, activation_patching, check_context, choose_foil,  # noqa: E402
                                  copy_length, custom_example, encode_text, first_token, logit_lens, run_with_hooks,
                                  token_label)
from gptscratch.tokenizers import get_tokenizer  # noqa: E402


@pytest.fixture
def byte_model(tiny_model):
    return tiny_model(vocab_size=320), get_tokenizer("byte")     # 257 byte ids; the rest is padding


def ranked_last_logits(model, ids, vocab_size):
    return run_with_hooks(model, ids, {})[0, -1, :vocab_size].argsort(descending=True).tolist()


def test_the_foil_is_the_corrupted_runs_best_token_other_than_the_target(byte_model):
    model, tokenizer = byte_model
    corrupted = encode_text(tokenizer, "When Mary went")
    ranked = ranked_last_logits(model, corrupted, tokenizer.vocab_size)
    assert choose_foil(model, corrupted, target=ranked[5], vocab_size=tokenizer.vocab_size) == ranked[0]
    assert choose_foil(model, corrupted, target=ranked[0], vocab_size=tokenizer.vocab_size) == ranked[1]
    # ids past the tokenizer's vocabulary (padding rows of the output layer) are never chosen
    small = ranked_last_logits(model, corrupted, 10)
    assert choose_foil(model, corrupted, target=-1, vocab_size=10) == small[0] < 10


def test_a_custom_example_reads_the_answers_first_tokens_and_refuses_equal_ones(byte_model):
    model, tokenizer = byte_model
    clean, corrupted = encode_text(tokenizer, "ab"), encode_text(tokenizer, "ac")
    example = custom_example(model, tokenizer, clean, corrupted, "Mary", "John")
    assert (example.name, example.clean, example.corrupted) == ("custom", clean, corrupted)
    assert (example.target, example.foil) == (ord("M"), ord("J"))
    chosen = custom_example(model, tokenizer, clean, corrupted, "Mary")
    assert chosen.foil == choose_foil(model, corrupted, ord("M"), tokenizer.vocab_size)
    with pytest.raises(UsageError, match="start with the same token"):
        custom_example(model, tokenizer, clean, corrupted, " Mary", " John")
    with pytest.raises(UsageError, match="answer text is empty"):
        custom_example(model, tokenizer, clean, corrupted, "")
    assert first_token(tokenizer, "Mary") == (ord("M"), 4)


def test_strongest_effects_assessment_and_noise():
    result = PatchingResult([1, 2], [1, 3], 5, 6, clean_logit_diff=2.0, corrupted_logit_diff=1.95,
                            resid_labels=["0_pre", "final_post"], resid=[[0.0, 0.3], [1.0, -0.6]],
                            heads=[[0.1, -0.02]])
    assert result.strongest(3) == [(1.0, "final_post", 0), (-0.6, "final_post", 1), (0.3, "0_pre", 1)]
    assert result.strongest()[3:] == [(0.1, "L0H0", None), (-0.02, "L0H1", None), (0.0, "0_pre", 0)]
    assert result.assessment() == {"resid": [["Minimal", "Important"], ["Critical", "Critical"]],
                                   "heads": [["Moderate", "Minimal"]]}
    assert result.noisy                                    # 0.05 apart: the fractions amplify noise
    result.corrupted_logit_diff = 1.0
    assert not result.noisy
    assert set(result.to_dict()) >= {"resid", "heads", "foil"}    # the JSON record holds data, not the methods


def test_strongest_lists_every_patched_activation_of_a_real_sweep(byte_model):
    model, tokenizer = byte_model
    clean, corrupted = encode_text(tokenizer, "abcab"), encode_text(tokenizer, "abdab")
    result = activation_patching(model, clean, corrupted, ord("c"), ord("d"))
    cells = result.strongest()
    n_layer, n_head = model.config.n_layer, model.config.n_head
    assert len(cells) == (n_layer + 1) * len(clean) + n_layer * n_head
    assert [abs(v) for v, _, _ in cells] == sorted((abs(v) for v, _, _ in cells), reverse=True)
    assert (1.0, "0_pre", 3) in [(round(v, 6), label, p) for v, label, p in cells]   # the changed position


def test_the_lens_details_the_last_position_with_a_known_answer(byte_model):
    model, tokenizer = byte_model
    ids = encode_text(tokenizer, "hello")                  # [eot] h e l l o: 6 positions, the last one's answer unknown
    lens = logit_lens(model, ids, k=2, vocab_limit=tokenizer.vocab_size)
    assert lens.position() == 4 and lens.position(-1) == 5 and lens.position(0) == 0
    assert logit_lens(model, ids, k=2, target=ord("!"), vocab_limit=tokenizer.vocab_size).position() == 5
    for outside in (6, -7):
        with pytest.raises(UsageError, match=f"--position {outside} is outside the 6 tokens"):
            lens.position(outside)


def test_copy_length_defaults_to_what_fits_twice():
    assert copy_length(32) == 15 and copy_length(32, bos=False) == 16 and copy_length(1024) == 50
    assert copy_length(32, True, 15) == 15
    for length in (16, 1):
        with pytest.raises(UsageError, match=r"--length must be in 2\.\.15 for a context of 32"):
            copy_length(32, True, length)


def test_text_to_ids_and_ids_to_labels():
    tokenizer = get_tokenizer("byte")
    assert encode_text(tokenizer, "hi") == [tokenizer.eot_id, 104, 105]
    assert encode_text(tokenizer, "hi", bos=False) == [104, 105]
    assert check_context([1, 2, 3], 3) == [1, 2, 3]
    with pytest.raises(UsageError, match="the text has 4 tokens but the model's context is 3; shorten --clean"):
        check_context([1, 2, 3, 4], 3, "--clean")
    assert [token_label(tokenizer, t) for t in (ord(" "), ord("\n"), ord("a"), 0xFF)] == ["␣", "\\n", "a", "\\xff"]


def test_the_trained_toy_model_saves_as_a_checkpoint_the_commands_read(tmp_path):
    from gptscratch.checkpoint import load_checkpoint
    from gptscratch.interpret.toy import ToyInductionSetup, save_induction_model, train_induction_model

    result = train_induction_model(ToyInductionSetup(steps=2, eval_every=1, batch_size=4, seed=3))
    path = save_induction_model(tmp_path / "toy", result)
    loaded = load_checkpoint(str(path), device="cpu")
    assert loaded.training == {**loaded.training, "task": "repeated segments (gptscratch.interpret.toy)",
                               "steps": 2, "seed": 3}
    assert loaded.tokenizer.vocab_size == result.setup.vocab_size == loaded.model.config.vocab_size
    for name, tensor in result.model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[name], tensor), name
