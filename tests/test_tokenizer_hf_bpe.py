"""The "hf-bpe" tokenizer: a model repo's vocab.json + merges.txt run by tiktoken must give exactly the ids of
transformers' GPT2TokenizerFast on the same files (added whitespace tokens included), round-trip any text,
and travel inside a checkpoint folder."""

from __future__ import annotations

import json

import pytest
from test_pretrained_support import ADDED, TEXT, make_bpe_files

from gptscratch.errors import TokenizerError
from gptscratch.tokenizers.hf_bpe import HfBpeTokenizer, bytes_to_unicode
from gptscratch.tokenizers import EOT_TEXT, from_spec, get_tokenizer

SAMPLES = ["hello world", "It's what they'd do; we'll see", "café é 漢字のテスト", "emoji 🎉👍🏽 done",
           "tabs\t\tand\n\nnewlines   x", "a        b    c  d", "numbers 1234567 and ¡¿", " leading", "", "zzqxj",
           TEXT[:500]]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return {"plain": make_bpe_files(tmp_path_factory.mktemp("plain")),
            "added": make_bpe_files(tmp_path_factory.mktemp("added"), added=True)}


def test_byte_table_is_a_bijection_onto_printable_characters():
    table = bytes_to_unicode()
    assert len(table) == 256 and len(set(table.values())) == 256
    assert table[ord("A")] == "A" and table[ord(" ")] == "Ġ" and table[ord("\n")] == "Ċ"
    assert all(c.isprintable() and not c.isspace() for c in table.values())


@pytest.mark.parametrize("kind", ["plain", "added"])
def test_ids_equal_transformers_gpt2_tokenizer_fast(files, kind):
    from transformers import GPT2TokenizerFast

    reference = GPT2TokenizerFast.from_pretrained(str(files[kind]))
    ours = HfBpeTokenizer(files[kind])
    assert ours.vocab_size == len(reference) and ours.eot_id == reference.eos_token_id == 0
    for text in SAMPLES:
        assert ours.encode(text) == reference(text, add_special_tokens=False)["input_ids"], text
    assert ours.encode_batch(SAMPLES) == [ours.encode(t) for t in SAMPLES]


def test_added_tokens_are_cut_out_before_bpe_longest_first(files):
    tok = HfBpeTokenizer(files["added"])
    added_ids = {tok.added[t] for t in ADDED}
    ids = tok.encode("a" + " " * 14 + "b")  # 14 spaces = 8 + 4 + 2
    assert [tok.added["        "], tok.added["    "], tok.added["  "]] == [i for i in ids if i in added_ids]
    assert tok.decode(ids) == "a" + " " * 14 + "b"


@pytest.mark.parametrize("kind", ["plain", "added"])
def test_round_trip_and_eot(files, kind):
    tok = HfBpeTokenizer(files[kind])
    for text in SAMPLES:
        ids = tok.encode(text)
        assert tok.decode(ids) == text and tok.decode_bytes(ids) == text.encode("utf-8")
        assert tok.eot_id not in ids
    assert tok.encode(EOT_TEXT) != [tok.eot_id]  # special text stays ordinary text
    assert tok.decode([tok.eot_id]) == EOT_TEXT


def test_spec_rebuilds_from_absolute_or_relative_path(files, tmp_path):
    tok = HfBpeTokenizer(files["added"])
    spec = json.loads(json.dumps(tok.spec()))
    assert spec["name"] == "hf-bpe" and from_spec(spec).encode(TEXT) == tok.encode(TEXT)
    relative = {**spec, "path": files["added"].name}
    assert from_spec(relative, base_dir=files["added"].parent).encode(TEXT) == tok.encode(TEXT)
    with pytest.raises(TokenizerError, match="relative"):
        from_spec(relative)
    with pytest.raises(TokenizerError, match="missing"):
        from_spec({**spec, "path": str(tmp_path / "gone")})


def test_get_tokenizer_accepts_a_tokenizer_folder(files):
    assert get_tokenizer(str(files["plain"])).encode("hello") == HfBpeTokenizer(files["plain"]).encode("hello")


def test_inconsistent_files_fail_with_one_line(tmp_path, files):
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "vocab.json").write_text((files["plain"] / "vocab.json").read_text())
    (folder / "merges.txt").write_text("#version: 0.2\nzz qq\n")
    with pytest.raises(TokenizerError, match="missing from vocab.json"):
        HfBpeTokenizer(folder)
    with pytest.raises(TokenizerError, match="merges.txt"):
        HfBpeTokenizer(tmp_path)
