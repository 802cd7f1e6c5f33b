"""The batched engine: padding is invisible, samples reuse the prefill, seeds are per row, stop strings cut,
bf16 agrees with fp32."""

import pytest
import torch

from gptscratch.generation import Decoder, SamplingConfig, StopMatcher, apply_repetition_penalty, generate_batch
from gptscratch.generation.completion import Completion, GenerationSettings, Piece, stream_completions
from gptscratch.model import GPT, ModelConfig
from gptscratch.tokenizers import get_tokenizer

torch.set_num_threads(1)
GREEDY = SamplingConfig(temperature=0)
PROMPTS = [[1, 2, 3, 4, 5, 6, 7], [9], [4, 4, 8, 15]]


def tiny_model(positional="learned", context=32, **overrides):
    torch.manual_seed(0)
    return GPT(ModelConfig(vocab_size=64, context_length=context, n_layer=2, n_head=2, d_model=32,
                           positional=positional, **overrides)).eval()


def one_by_one(model, prompts, n, sampling, **kwargs):
    return [generate_batch(model, [p], n, sampling, **kwargs)[0] for p in prompts]


@pytest.mark.parametrize("positional", ["learned", "sinusoidal", "rope"])
def test_batched_left_padded_equals_one_by_one_greedy(positional):
    model = tiny_model(positional)
    batched = generate_batch(model, PROMPTS, 20, GREEDY)           # 7 + 20 < 32: no row slides
    assert batched == one_by_one(model, PROMPTS, 20, GREEDY)
    assert all(len(row) == 20 for row in batched)


def test_padded_prefill_logits_match_unpadded():
    model = tiny_model("rope", block_layout="parallel")
    decoder = Decoder(model, PROMPTS, GREEDY)
    for row, prompt in enumerate(PROMPTS):
        alone, _ = model(torch.tensor([prompt]))
        torch.testing.assert_close(decoder.logits[row], alone[0, -1], atol=1e-5, rtol=0)


def test_batched_cached_equals_batched_uncached():
    model = tiny_model("rope")
    cached = generate_batch(model, PROMPTS, 15, GREEDY)
    uncached = generate_batch(model, PROMPTS, 15, GREEDY, use_cache=False)
    assert cached == uncached


def test_seeded_sampling_in_a_batch_equals_alone():
    model = tiny_model()
    sampling = SamplingConfig(temperature=1.0, top_k=20)
    batched = generate_batch(model, PROMPTS, 12, sampling, seed=3)
    assert batched == one_by_one(model, PROMPTS, 12, sampling, seed=3)


def test_num_samples_reuse_the_prefill_and_sample_k_uses_seed_plus_k():
    model = tiny_model()
    sampling = SamplingConfig(temperature=1.0)
    rows = generate_batch(model, [[5, 6, 7]], 10, sampling, num_samples=3, seed=11)
    assert len(rows) == 3 and len({tuple(r) for r in rows}) == 3            # three different samples
    for k in range(3):
        assert rows[k] == generate_batch(model, [[5, 6, 7]], 10, sampling, seed=11 + k)[0]
    decoder = Decoder(model, [[5, 6, 7], [1]], sampling, num_samples=2, seed=0)
    assert decoder.cache.layers[0].k.size(0) == 4 and decoder.logits.size(0) == 4
    torch.testing.assert_close(decoder.logits[0], decoder.logits[1], atol=0, rtol=0)


def test_finished_rows_do_not_consume_randomness():
    model = tiny_model()
    sampling = SamplingConfig(temperature=1.0)
    free = generate_batch(model, PROMPTS, 12, sampling, seed=4)
    stop = free[1][2]
    stopped = generate_batch(model, PROMPTS, 12, sampling, seed=4, stop_ids=(stop,))
    assert stopped[1] == free[1][: free[1].index(stop)]
    for row in (0, 2):
        expected = free[row][: free[row].index(stop)] if stop in free[row] else free[row]
        assert stopped[row] == expected


def test_padded_batches_slide_past_the_window_without_crashing():
    model = tiny_model(context=16)
    rows = generate_batch(model, [list(range(30)), [3]], 40, SamplingConfig(temperature=1.0), seed=0)
    assert [len(r) for r in rows] == [40, 40]


def test_repetition_penalty_formula_and_effect():
    logits = torch.tensor([[2.0, -2.0, 1.0]])
    seen = torch.tensor([[True, True, False]])
    assert apply_repetition_penalty(logits, seen, 2.0).tolist() == [[1.0, -4.0, 1.0]]
    model = tiny_model()
    plain = generate_batch(model, [[1, 2]], 30, GREEDY)[0]
    penalised = generate_batch(model, [[1, 2]], 30, SamplingConfig(temperature=0, repetition_penalty=3.0))[0]
    assert len(set(penalised)) > len(set(plain))
    same = generate_batch(model, [[1, 2]], 30, SamplingConfig(temperature=0, repetition_penalty=1.0))[0]
    assert same == plain


@pytest.mark.parametrize("pieces, stops, expected", [
    (["The EN", "D more"], ["END"], "The "),
    (["a\n", "\nb"], ["\n\n"], "a"),
    (["abc", "de"], ["x"], "abcde"),
    (["ab", "c"], ["abd"], "abc"),          # a held partial match is released at the end
    (["stop"], ["st", "op"], ""),
])
def test_stop_matcher_never_emits_the_stop_string(pieces, stops, expected):
    matcher = StopMatcher(stops)
    out = "".join(matcher.push(p)[0] for p in pieces) + matcher.flush()
    assert out == expected


def test_stream_completions_reports_reasons_counts_and_order():
    tokenizer = get_tokenizer("byte")
    torch.manual_seed(0)
    model = GPT(ModelConfig(vocab_size=320, context_length=64, n_layer=1, n_head=2, d_model=32)).eval()
    settings = GenerationSettings(max_new_tokens=25, sampling=SamplingConfig(temperature=1.5), seed=1,
                                  num_samples=2, batch_size=1)
    events = list(stream_completions(model, tokenizer, ["ab", ""], settings))
    done = {e.index: e for e in events if isinstance(e, Completion)}
    assert sorted(done) == [0, 1, 2, 3]
    for index, completion in done.items():
        text = "".join(e.text for e in events if isinstance(e, Piece) and e.index == index)
        assert text == completion.completion and completion.finish_reason in ("length", "end_of_text")
        assert completion.completion_tokens <= 25 and completion.tokens_per_second > 0
    assert done[3].prompt == "" and done[3].prompt_tokens == 1 and done[3].sample == 1
    # A stop string made of the first generated character cuts everything.
    first = done[0].completion[:1]
    stopped = [e for e in stream_completions(model, tokenizer, ["ab"], GenerationSettings(
        max_new_tokens=25, sampling=SamplingConfig(temperature=1.5), seed=1, stop_strings=(first,)))
        if isinstance(e, Completion)]
    assert stopped[0].finish_reason == "stop" and stopped[0].completion == ""


@pytest.fixture(scope="module")
def trained_byte_model():
    from helpers import SAMPLE_TEXT

    tokenizer = get_tokenizer("byte")
    data = torch.tensor(tokenizer.encode(SAMPLE_TEXT))
    torch.manual_seed(0)
    model = GPT(ModelConfig(vocab_size=320, context_length=64, n_layer=2, n_head=2, d_model=64))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    for _ in range(150):
        starts = torch.randint(0, len(data) - 65, (8,), generator=generator)
        x = torch.stack([data[s: s + 64] for s in starts])
        y = torch.stack([data[s + 1: s + 65] for s in starts])
        _, loss = model(x, targets=y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 1.5  # it learned the text
    return model.eval(), tokenizer


def test_bf16_greedy_agrees_with_fp32_on_a_trained_model(trained_byte_model):
    """Agreement: identical first 16 greedy tokens, and ≥ 90% of next-token argmaxes equal when both models
    read the fp32 greedy continuation (teacher forcing, so one early flip cannot cascade)."""
    import copy

    model, tokenizer = trained_byte_model
    bf16 = copy.deepcopy(model).to(torch.bfloat16)
    prompts = [tokenizer.encode(p) for p in ("The quick", "Pack my", "How vex")]
    fp32_out = generate_batch(model, prompts, 48, GREEDY)
    bf16_out = generate_batch(bf16, prompts, 48, GREEDY)
    for a, b in zip(fp32_out, bf16_out):
        assert a[:16] == b[:16]
    alone = [generate_batch(bf16, [p], 48, GREEDY)[0] for p in prompts]   # batch 1: fast_decode.py
    for a, b in zip(fp32_out, alone):
        assert a[:16] == b[:16]
    sequences = torch.tensor([p[-7:] + out for p, out in zip(prompts, fp32_out)])
    with torch.inference_mode():
        argmax32 = model(sequences)[0].argmax(-1)
        argmax16 = bf16(sequences)[0].float().argmax(-1)
    assert (argmax32 == argmax16).float().mean().item() >= 0.9
