"""The batched engine: padding is invisible, samples reuse the prefill, seeds are per row, stop strings cut,
bf16 agrees with fp32."""

import pytest
import torch

from gptscratch import accel
from gptscratch.accel import decoding
from gptscratch.generation import Decoder, SamplingConfig, StopMatcher, apply_repetition_penalty, generate_batch
from gptscratch.generation.completion import Completion, GenerationSettings, Piece, stream_completions
from gptscratch.model import kernels
from gptscratch.tokenizers import get_tokenizer

torch.set_num_threads(1)
GREEDY = SamplingConfig(temperature=0)
PROMPTS = [[1, 2, 3, 4, 5, 6, 7], [9], [4, 4, 8, 15]]


def one_by_one(model, prompts, n, sampling, **kwargs):
    return [generate_batch(model, [p], n, sampling, **kwargs)[0] for p in prompts]


@pytest.mark.parametrize("positional", ["learned", "sinusoidal", "rope"])
def test_batched_left_padded_equals_one_by_one_greedy(positional, tiny_model):
    model = tiny_model(positional=positional)
    batched = generate_batch(model, PROMPTS, 20, GREEDY)           # 7 + 20 < 32: no row slides
    assert batched == one_by_one(model, PROMPTS, 20, GREEDY)
    assert all(len(row) == 20 for row in batched)


def test_padded_prefill_logits_match_unpadded(tiny_model):
    model = tiny_model(positional="rope", block_layout="parallel")
    decoder = Decoder(model, PROMPTS, GREEDY)
    for row, prompt in enumerate(PROMPTS):
        alone, _ = model(torch.tensor([prompt]))
        torch.testing.assert_close(decoder.logits[row], alone[0, -1], atol=1e-5, rtol=0)


def test_batched_cached_equals_batched_uncached(tiny_model):
    model = tiny_model(positional="rope")
    cached = generate_batch(model, PROMPTS, 15, GREEDY)
    uncached = generate_batch(model, PROMPTS, 15, GREEDY, use_cache=False)
    assert cached == uncached


def test_seeded_sampling_in_a_batch_equals_alone(tiny_model):
    model = tiny_model()
    sampling = SamplingConfig(temperature=1.0, top_k=20)
    batched = generate_batch(model, PROMPTS, 12, sampling, seed=3)
    assert batched == one_by_one(model, PROMPTS, 12, sampling, seed=3)


def test_num_samples_reuse_the_prefill_and_sample_k_uses_seed_plus_k(tiny_model):
    model = tiny_model()
    sampling = SamplingConfig(temperature=1.0)
    rows = generate_batch(model, [[5, 6, 7]], 10, sampling, num_samples=3, seed=11)
    assert len(rows) == 3 and len({tuple(r) for r in rows}) == 3            # three different samples
    for k in range(3):
        assert rows[k] == generate_batch(model, [[5, 6, 7]], 10, sampling, seed=11 + k)[0]
    decoder = Decoder(model, [[5, 6, 7], [1]], sampling, num_samples=2, seed=0)
    assert decoder.cache.layers[0].k.size(0) == 4 and decoder.logits.size(0) == 4
    torch.testing.assert_close(decoder.logits[0], decoder.logits[1], atol=0, rtol=0)


def test_finished_rows_do_not_consume_randomness(tiny_model):
    model = tiny_model()
    sampling = SamplingConfig(temperature=1.0)
    free = generate_batch(model, PROMPTS, 12, sampling, seed=4)
    stop = free[1][2]
    stopped = generate_batch(model, PROMPTS, 12, sampling, seed=4, stop_ids=(stop,))
    assert stopped[1] == free[1][: free[1].index(stop)]
    for row in (0, 2):
        expected = free[row][: free[row].index(stop)] if stop in free[row] else free[row]
        assert stopped[row] == expected


def test_rows_with_their_own_sampling_and_generators_and_a_rebuild_mid_way(tiny_model):
    """One sampling config and one generator per row (what a server's requests bring): each row decodes as it
    would alone, and a new Decoder over the rows' text so far, with the same generators, continues them exactly."""
    model = tiny_model(vocab_size=101, context_length=32)
    prompts = [[1, 2, 3, 4], [5, 6], [7]]
    configs = [SamplingConfig(temperature=0.0), SamplingConfig(temperature=1.0),
               SamplingConfig(temperature=0.7, top_k=5, repetition_penalty=1.3)]

    def generators():
        return [torch.Generator().manual_seed(seed) for seed in (11, 12, 13)]

    together = Decoder(model, prompts, configs, generators=generators())
    steps = [together.step() for _ in range(8)]
    for i, (prompt, config) in enumerate(zip(prompts, configs)):
        alone = Decoder(model, [prompt], config, generators=[generators()[i]])
        assert [alone.step()[0] for _ in range(8)] == [step[i] for step in steps]
    carried = generators()
    first = Decoder(model, prompts, configs, generators=carried)
    head = [first.step() for _ in range(3)]
    second = Decoder(model, first.rows, configs, generators=carried)     # re-prefilled from the text so far
    assert head + [second.step() for _ in range(5)] == steps
    assert len({tuple(step[i] for step in steps) for i in range(3)}) == 3
    with pytest.raises(ValueError, match="one sampling config"):
        Decoder(model, prompts, configs[:2])


def test_padded_batches_slide_past_the_window_without_crashing(tiny_model):
    model = tiny_model(context_length=16)
    rows = generate_batch(model, [list(range(30)), [3]], 40, SamplingConfig(temperature=1.0), seed=0)
    assert [len(r) for r in rows] == [40, 40]


def teacher_forced_logits(model, tokens, prompt_length, rows=1, step_kernels=None):
    """Decode `tokens` the way the engine does — prefill the prompt into a cache of `rows` identical rows, then
    feed one token per step through `step_kernels` (None: PyTorch's own) — and return the logits that predict
    each token after the prompt, for row 0, as float32 (len(tokens) − prompt_length, V)."""
    ids = torch.tensor([tokens] * rows)
    cache = model.new_kv_cache(batch=rows)
    with torch.inference_mode():
        logits, _ = model(ids[:, :prompt_length], kv_cache=cache, only_last=True)
        steps = [logits[0, -1]]
        for t in range(prompt_length, len(tokens) - 1):
            with kernels.use(step_kernels or kernels.DEFAULT):
                logits, _ = model(ids[:, t:t + 1], kv_cache=cache)
            steps.append(logits[0, -1])
    return torch.stack(steps).float()


# bf16 keeps 8 significant bits, so kernels that add the same products in a different order may round an
# activation one step (2^-8 of its size) apart, and the difference passes through both blocks. The logits of this
# untrained model are below 0.5, where one bf16 step is at most 2^-9 ≈ 0.002; 0.02 leaves room for ten of them.
# A real fault moves them far more: decoding one position off moves these logits by 0.08–0.15.
BF16_LOGITS_ATOL = 0.02


def test_bf16_sinusoidal_models_generate_on_both_paths(tiny_model, monkeypatch):
    """A bf16 model with sinusoidal positions (the table is computed in fp32 and added in the model's dtype; it
    used to crash) decodes the same on every path of the engine: one row through PyTorch's own kernels
    (GPTSCRATCH_ACCEL=0), one row through each one-row product gptscratch.accel can choose (forced here, whichever
    this machine measures fastest), and a batch of rows (always PyTorch's kernels)."""
    model = tiny_model(positional="sinusoidal", dtype=torch.bfloat16)
    prompt, n = [1, 2, 3], 24
    monkeypatch.setenv(accel.ENV_ACCEL, "0")
    plain = generate_batch(model, [prompt], n, GREEDY)[0]
    reference = teacher_forced_logits(model, prompt + plain, len(prompt))
    assert reference.argmax(-1).tolist() == plain          # the helper decodes exactly as the engine does
    monkeypatch.delenv(accel.ENV_ACCEL)

    one_row_products = [p for p in decoding.PRODUCTS if p != "linear"]      # "linear" is PyTorch's own kernel
    for name in ["batched", *one_row_products]:
        rows, step_kernels = (2, None) if name == "batched" else (1, decoding.decoding_kernels(model, name))
        monkeypatch.setattr(decoding, "best_product", lambda model, name=name: name)   # the engine's one-row pick
        decoder = Decoder(model, [prompt] * rows, GREEDY)
        assert decoder.step_kernels is None if rows > 1 else decoder.step_kernels.name == f"decode ({name})"
        generated = generate_batch(model, [prompt] * rows, n, GREEDY)
        assert all(row == generated[0] for row in generated), name
        tokens = generated[0]
        # The logits: every step of the plain path's continuation, fed through this path, within bf16 rounding.
        logits = teacher_forced_logits(model, prompt + plain, len(prompt), rows, step_kernels)
        torch.testing.assert_close(logits, reference, atol=BF16_LOGITS_ATOL, rtol=0,
                                   msg=lambda message, name=name: f"{name}: {message}")
        # The tokens: the same greedy continuation — or one that parts from it only at a step where the plain
        # path's best two logits are within the tolerance, a tie that bf16 rounding may break either way.
        parted = next((i for i, (a, b) in enumerate(zip(tokens, plain)) if a != b), n)
        assert len(tokens) == n and (
            parted == n or reference[parted, tokens[parted]] >= reference[parted].max() - BF16_LOGITS_ATOL), name


def test_repetition_penalty_formula_and_effect(tiny_model):
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


def test_stream_completions_reports_reasons_counts_and_order(tiny_model):
    tokenizer = get_tokenizer("byte")
    # One block, two heads: with seed 1 none of these weights' four samples ends at its first token, so every
    # completion has a speed to report.
    model = tiny_model(vocab_size=320, context_length=64, n_layer=1, n_head=2)
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
    from helpers import SAMPLE_TEXT, build_tiny_model

    tokenizer = get_tokenizer("byte")
    data = torch.tensor(tokenizer.encode(SAMPLE_TEXT))
    model = build_tiny_model(vocab_size=320, context_length=64, n_head=2, d_model=64).train()
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
    alone = [generate_batch(bf16, [p], 48, GREEDY)[0] for p in prompts]   # batch 1: gptscratch.accel's one-row kernels
    for a, b in zip(fp32_out, alone):
        assert a[:16] == b[:16]
    sequences = torch.tensor([p[-7:] + out for p, out in zip(prompts, fp32_out)])
    with torch.inference_mode():
        argmax32 = model(sequences)[0].argmax(-1)
        argmax16 = bf16(sequences)[0].float().argmax(-1)
    assert (argmax32 == argmax16).float().mean().item() >= 0.9
