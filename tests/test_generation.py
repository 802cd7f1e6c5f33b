"""Sampling strategies and the cached decoding loop."""

import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from gptscratch.generation import SamplingConfig, TextStream, generate_ids, sample_next, top_k_filter, top_p_filter
from gptscratch.tokenizers import get_tokenizer

torch.set_num_threads(1)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), k=st.integers(1, 20))
def test_top_k_never_samples_outside_the_k_largest(seed, k):
    torch.manual_seed(seed)
    logits = torch.randn(3, 40)
    allowed = torch.topk(logits, k, dim=-1).indices
    gen = torch.Generator().manual_seed(seed)
    for _ in range(5):
        tokens = sample_next(logits, SamplingConfig(temperature=1.5, top_k=k), gen)
        for row, token in enumerate(tokens.tolist()):
            assert token in allowed[row].tolist()


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), p=st.floats(0.05, 1.0))
@example(seed=0, p=0.5)     # drops most tokens
@example(seed=0, p=1.0)     # keeps every token
def test_top_p_keeps_the_smallest_set_reaching_p(seed, p):
    torch.manual_seed(seed)
    logits = torch.randn(2, 30) * 3
    kept = torch.isfinite(top_p_filter(logits, p))
    probs = torch.softmax(logits, dim=-1)
    for row in range(2):
        mass = probs[row][kept[row]].sum().item()
        assert mass >= p - 1e-5                                 # the kept set reaches p
        smallest_kept = probs[row][kept[row]].min().item()
        assert mass - smallest_kept < p + 1e-5                   # dropping its least likely token would not
        # the kept tokens are the most likely ones: in order of probability, kept, then dropped, never mixed
        count = int(kept[row].sum())
        in_order = kept[row][probs[row].argsort(descending=True)].tolist()
        assert in_order == [True] * count + [False] * (30 - count)


def test_greedy_is_argmax_and_filters_compose():
    logits = torch.tensor([[0.1, 3.0, 2.0, -1.0]])
    assert sample_next(logits, SamplingConfig(temperature=0)).item() == 1
    assert torch.isinf(top_k_filter(logits, 2)).tolist() == [[True, False, False, True]]
    assert sample_next(logits, SamplingConfig(temperature=1.0, top_k=3, top_p=0.01)).item() == 1


@pytest.mark.parametrize("bad", [dict(temperature=-0.1), dict(top_k=0), dict(top_p=0.0), dict(top_p=1.5)])
def test_invalid_sampling_values(bad):
    with pytest.raises(ValueError):
        SamplingConfig(**bad)


@pytest.mark.parametrize("positional", ["learned", "sinusoidal", "rope"])
def test_cached_and_uncached_greedy_decoding_agree(positional, tiny_model):
    model = tiny_model(positional=positional)
    greedy = SamplingConfig(temperature=0)
    cached = list(generate_ids(model, [1, 2, 3], 12, greedy))
    uncached = list(generate_ids(model, [1, 2, 3], 12, greedy, use_cache=False))
    assert cached == uncached and len(cached) == 12


def test_same_seed_same_tokens_and_stop_ids(tiny_model):
    model = tiny_model()
    sampling = SamplingConfig(temperature=1.0)
    a = list(generate_ids(model, [5], 10, sampling, seed=42))
    b = list(generate_ids(model, [5], 10, sampling, seed=42))
    assert a == b
    stop = a[3]
    assert list(generate_ids(model, [5], 10, sampling, seed=42, stop_ids=(stop,))) == a[: a.index(stop)]


def test_generation_past_the_context_window_slides(tiny_model):
    model = tiny_model(context_length=16)
    prompt = list(range(30))  # longer than the window
    out = list(generate_ids(model, prompt, 40, SamplingConfig(temperature=1.0), seed=0))
    assert len(out) == 40


def test_vocab_limit_masks_padding_rows(tiny_model):
    model = tiny_model()
    free = list(generate_ids(model, [1], 50, SamplingConfig(temperature=5.0), seed=0))
    assert max(free) >= 10                                   # without the limit, ids past it are drawn
    out = list(generate_ids(model, [1], 50, SamplingConfig(temperature=5.0), seed=0, vocab_limit=10))
    assert max(out) < 10


def test_text_stream_never_splits_a_character():
    tok = get_tokenizer("byte")
    stream = TextStream(tok)
    pieces = [stream.push(t) for t in tok.encode("é漢😀")]
    assert "".join(pieces) + stream.flush() == "é漢😀"
    assert pieces[0] == ""  # first byte of 'é' alone is not printable yet
