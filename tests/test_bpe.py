"""Byte-pair encoding: the readable trainer (gptscratch/tokenizers/bpe.py) is right, and the fast one (rustbpe,
bpe_fast.py) learns exactly the same merges; the stored tokenizer (tiktoken) encodes exactly as the readable
encoder does, losslessly, on any Unicode text."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gptscratch.tokenizers import bpe, get_tokenizer, trained
from gptscratch.tokenizers.bpe_fast import train_fast

WORDS = {
    "english": "the quick brown fox jumps over the lazy dog and we're sure it's THEY'LL 1234567 times".split(),
    "code": ["def", "f(x):", "return", "x**2", "{", "}", "self.value", "==", "import", "torch", "#", "0x1F", "->"],
    "scripts": ["我们", "喜欢", "学习", "语言模型", "。", "مرحبا", "بالعالم", "नमस्ते", "दुनिया", "Привет", "мир",
                "こんにちは", "カタカナ", "ひらがな", "Ünïcödé", "ß", "١٢٣"],
    "emoji": ["😀", "👍🏽", "👨‍👩‍👧", "🇫🇷", "❤️", "🚀🚀", "🎉", "a😀b"],
}
SEPARATORS = [" ", " ", " ", "  ", "\n", "\n\n", "\t", ", ", ". ", "\r\n", "\u00a0", "\u3000"]


def corpus(kinds: tuple[str, ...], seed: int = 0, documents: int = 60) -> list[str]:
    """Random documents from the words of `kinds`, with varied whitespace and punctuation between them."""
    rng = random.Random(seed)
    words = [word for kind in kinds for word in WORDS[kind]]
    return ["".join(rng.choice(words) + rng.choice(SEPARATORS) for _ in range(rng.randint(5, 80)))
            for _ in range(documents)]


def builtin_sample(size: int = 60_000) -> list[str]:
    from gptscratch.data.sources import parse_source

    texts, total = [], 0
    for doc in parse_source("builtin").documents():
        texts.append(doc.text)
        total += len(doc.text)
        if total > size:
            return texts
    return texts


def test_the_worked_example_of_the_docstring_ties_going_to_the_smaller_pair():
    # (a,a) occurs 4 times; then (a,b) and (256,a) both occur twice: the smaller pair (97, 98) wins the tie.
    assert bpe.train({b"aaabdaaabac": 1}, 3) == [(97, 97), (97, 98), (256, 257)]
    merges = bpe.train({b"aaabdaaabac": 1}, 3)
    assert bpe.encode("aaabdaaabac", merges, "none") == [258, ord("d"), 258, ord("a"), ord("c")]


def naive_train(chunk_counts: dict[bytes, int], num_merges: int) -> list[tuple[int, int]]:
    """The textbook loop: recount every pair for every merge. Slow, obviously right."""
    words = {chunk: list(chunk) for chunk in chunk_counts}
    merges = []
    for new_id in range(256, 256 + num_merges):
        pairs: Counter = Counter()
        for chunk, ids in words.items():
            for pair in zip(ids, ids[1:]):
                pairs[pair] += chunk_counts[chunk]
        if not pairs:
            break
        best = max(pairs, key=lambda p: (pairs[p], -p[0], -p[1]))
        merges.append(best)
        words = {chunk: bpe.merge_word(ids, best, new_id)[0] for chunk, ids in words.items()}
    return merges


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_incremental_training_equals_recounting_everything(seed):
    rng = random.Random(seed)
    # Overlapping runs ("aaaa"), repeats and a few letters make many ties and many neighbouring merges.
    chunks = {"".join(rng.choice("aab c") for _ in range(rng.randint(1, 12))).encode(): rng.randint(1, 5)
              for _ in range(80)}
    assert bpe.train(chunks, 60) == naive_train(chunks, 60)


def test_training_stops_when_every_chunk_is_one_token():
    merges = bpe.train({b"abc": 3, b"ab": 1}, 100)
    assert bpe.vocabulary(merges)[256:] == [b"ab", b"abc"]


@pytest.mark.parametrize("pattern", ["gpt4", "gpt2", "none"])
@pytest.mark.parametrize("kinds", [("english",), ("code",), ("scripts",), ("emoji",), ("english", "scripts", "emoji")])
def test_python_and_rustbpe_learn_the_same_merges(kinds, pattern):
    texts = corpus(kinds)
    python = bpe.vocabulary(bpe.train(bpe.count_chunks(texts, pattern), 300))[256:]
    fast = train_fast(texts, 300, pattern)
    assert len(python) > 50 and fast == python


def test_the_same_merges_on_english_prose():
    texts = builtin_sample()
    python = bpe.vocabulary(bpe.train(bpe.count_chunks(texts, "gpt4"), 1000))[256:]
    assert train_fast(texts, 1000, "gpt4") == python


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """A tokenizer trained on every kind of text with the fast trainer, saved and loaded as `--tokenizer` does."""
    texts = corpus(("english", "code", "scripts", "emoji"), documents=200) + builtin_sample(30_000)
    merged = train_fast(texts, 700, "gpt4")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GPTSCRATCH_HOME", str(tmp_path_factory.mktemp("home")))
        folder = trained.save("mixed", [bytes([b]) for b in range(256)] + merged, "gpt4", ["<|endoftext|>"], {})
    tokenizer = trained.TrainedTokenizer(folder)
    python_merges = bpe.train(bpe.count_chunks(texts, "gpt4"), 700)
    assert bpe.vocabulary(python_merges)[256:] == merged
    return tokenizer, python_merges


def test_stored_tokenizer_encodes_as_the_readable_encoder(mixed):
    tokenizer, merges = mixed
    held_out = corpus(("english", "code", "scripts", "emoji"), seed=99, documents=40)
    for text in held_out:
        assert tokenizer.encode(text) == bpe.encode(text, merges, "gpt4")
    assert tokenizer.encode_batch(held_out) == [bpe.encode(text, merges, "gpt4") for text in held_out]
    assert tokenizer.vocab_size == 256 + 700 + 1 and tokenizer.eot_id == 956
    assert len(tokenizer.encode(held_out[0])) < len(held_out[0].encode()) / 2  # it does compress


@settings(max_examples=300, deadline=None)
@given(text=st.text())
def test_any_unicode_text_round_trips_and_both_encoders_agree(mixed, text):
    tokenizer, merges = mixed
    ids = tokenizer.encode(text)
    assert tokenizer.decode(ids) == text
    assert ids == bpe.encode(text, merges, "gpt4")
    assert all(0 <= i < tokenizer.vocab_size - 1 for i in ids)  # ordinary text never yields <|endoftext|>


@settings(max_examples=200, deadline=None)
@given(text=st.text(st.characters(exclude_categories=())))  # lone surrogates included
def test_text_with_lone_surrogates_encodes_as_its_repaired_form(mixed, text):
    tokenizer, merges = mixed
    repaired = bpe.valid_unicode(text)
    repaired.encode("utf-8")  # valid now
    assert tokenizer.encode(text) == tokenizer.encode(repaired) == bpe.encode(text, merges, "gpt4")
    assert tokenizer.decode(tokenizer.encode(text)) == repaired


def test_lone_surrogates_become_the_replacement_character_as_in_tiktoken(mixed):
    tokenizer, merges = mixed
    cl100k = get_tokenizer("cl100k_base")
    text = "a\ud800b \udfff"
    assert tokenizer.encode(text) == tokenizer.encode("a\ufffdb \ufffd") == bpe.encode(text, merges, "gpt4")
    assert cl100k.encode(text) == cl100k.encode("a\ufffdb \ufffd")
    assert tokenizer.decode(tokenizer.encode(text)) == "a\ufffdb \ufffd"


def test_endoftext_typed_in_text_stays_text(mixed):
    tokenizer, _ = mixed
    assert tokenizer.eot_id not in tokenizer.encode("a<|endoftext|>b")
    assert tokenizer.decode([tokenizer.eot_id]) == "<|endoftext|>"


def test_the_docstring_examples_hold():
    import doctest

    result = doctest.testmod(bpe)
    assert result.attempted >= 10 and result.failed == 0
