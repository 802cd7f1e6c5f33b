"""Export writes the tokenizer too: for cl100k_base (tiktoken), byte and char checkpoints the exported folder's
`AutoTokenizer` gives exactly our ids and our text, so a model trained here is usable end to end in transformers."""

from __future__ import annotations

import random

import pytest
from test_pretrained_support import TEXT

from gptscratch.checkpoint import save_checkpoint
from gptscratch.errors import TokenizerError
from gptscratch.generation.engine import generate_ids
from gptscratch.generation.sampling import SamplingConfig
from gptscratch.pretrained.export import export_hf
from gptscratch.tokenizers import get_tokenizer
from gptscratch.tokenizers.bpe import recover_merge
from helpers import build_tiny_model

# Text where the three tokenizers are easy to get wrong: digit runs longer than three (cl100k splits them
# 3 by 3), contractions in both cases, whitespace runs before words and at the end, CRLF, non-ASCII.
TRICKY = ("PEP 3132 and 1234567 items; I'LL say don't, THEY'RE here. \r\n\r\n   indented\t\ttabs  \n"
          "Ünïcödé — 漢字 カタカナ emoji 😀🎉 ﬁ ß ١٢٣ no\u00a0break  trailing   ")


def pool_text(seed: int, count: int = 400) -> list[str]:
    pool = list("abcXYZ019 '\n\r\t.,;!?-_()[]{}\"sStlvre") + ["'s", "'LL", "  ", "\n\n", "é", "漢字", "😀",
                                                              "\u00a0", "\u2003", "١٢٣", "ǅ"]
    rng = random.Random(seed)
    return ["".join(rng.choice(pool) for _ in range(rng.randint(1, 40))) for _ in range(count)]


def export_with(tmp_path, tokenizer):
    """Save the tiny model (GPT-2's tanh GELU, one output row per token id) with `tokenizer`, export it."""
    model = build_tiny_model(vocab_size=tokenizer.vocab_size, activation="gelu_tanh")
    save_checkpoint(tmp_path / "ckpt", model, tokenizer.spec())
    result = export_hf(tmp_path / "ckpt", tmp_path / "hf")
    return model, result


@pytest.mark.parametrize("name", ["cl100k_base", "byte", "char"])
def test_exported_tokenizer_gives_our_ids_and_text(tmp_path, name):
    from transformers import AutoTokenizer

    texts = [TEXT, TRICKY, *pool_text(seed=1)]
    tokenizer = get_tokenizer(name, texts=texts) if name == "char" else get_tokenizer(name)
    _, result = export_with(tmp_path, tokenizer)
    assert result["tokenizer"] == name and result["tokenizer_skipped"] is None
    hf = AutoTokenizer.from_pretrained(str(tmp_path / "hf"))
    for text in texts:
        ours = tokenizer.encode(text)
        assert hf(text, add_special_tokens=False)["input_ids"] == ours, repr(text)
        assert hf.decode(ours) == tokenizer.decode(ours)
    assert hf.eos_token == "<|endoftext|>" and hf.eos_token_id == tokenizer.eot_id
    assert hf.decode([tokenizer.eot_id]) == tokenizer.decode([tokenizer.eot_id])


def test_exported_model_and_tokenizer_generate_our_text_in_transformers(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = get_tokenizer("cl100k_base")
    model, _ = export_with(tmp_path, tokenizer)
    prompt = "The quick brown fox"
    ours = tokenizer.decode(generate_ids(model, tokenizer.encode(prompt), 12, SamplingConfig(temperature=0.0)))
    hf_tokenizer = AutoTokenizer.from_pretrained(str(tmp_path / "hf"))
    hf_model = AutoModelForCausalLM.from_pretrained(str(tmp_path / "hf")).eval()
    inputs = hf_tokenizer(prompt, return_tensors="pt")
    output = hf_model.generate(**inputs, max_new_tokens=12, do_sample=False, pad_token_id=tokenizer.eot_id,
                               eos_token_id=None)
    theirs = hf_tokenizer.decode(output[0, inputs["input_ids"].shape[1]:])
    assert theirs == ours


def test_every_multi_byte_token_gets_back_the_merge_tiktoken_makes_last():
    ranks = {bytes([b]): b for b in range(256)}
    for rank, piece in enumerate([b"ab", b"abc", b"bc", b"abcd", b"cd"], start=256):
        ranks[piece] = rank
    assert recover_merge(ranks, b"abc") == (b"ab", b"c")
    # "abcd" (rank 259) comes from "abc" + "d": "ab" is merged first, then "abc" beats "cd"
    assert recover_merge(ranks, b"abcd") == (b"abc", b"d")
    assert recover_merge({**ranks, b"xyz": 300}, b"xyz") is None  # never built by merging: whole pieces only
    # a token ranked below one of its parts (not BPE-trained order) still gets the pair tiktoken joins
    odd = {bytes([b]): b for b in range(256)} | {b"ab": 256, b"abcd": 257, b"cd": 258}
    assert recover_merge(odd, b"abcd") == (b"ab", b"cd")


@pytest.mark.parametrize("encoding_name", ["r50k_base", "o200k_base"])
def test_other_encodings_split_regexes_survive_the_translation(tmp_path, monkeypatch, encoding_name):
    """r50k/p50k/o200k files cannot be loaded offline, so their split regexes are checked with cl100k's ranks:
    the regex is where Oniguruma (tokenizers) and tiktoken's regex engine could disagree."""
    import tiktoken
    import tiktoken_ext.openai_public as public
    from transformers import AutoTokenizer

    from gptscratch.pretrained.hf_tokenizer import write_hf_tokenizer
    from gptscratch.tokenizers import TiktokenTokenizer

    base = get_tokenizer("cl100k_base").encoding
    monkeypatch.setattr(public, "load_tiktoken_bpe", lambda *args, **kwargs: base._mergeable_ranks)
    pattern = getattr(public, encoding_name)()["pat_str"]
    assert pattern != base._pat_str
    encoding = tiktoken.Encoding(name=f"cl100k-ranks-{encoding_name}-regex", pat_str=pattern,
                                 mergeable_ranks=base._mergeable_ranks, special_tokens=base._special_tokens)
    tokenizer = TiktokenTokenizer(encoding.name, encoding)
    assert write_hf_tokenizer(tokenizer, tmp_path, context_length=64)
    hf = AutoTokenizer.from_pretrained(str(tmp_path))
    for text in [TEXT, TRICKY, *pool_text(seed=2)]:
        assert hf(text, add_special_tokens=False)["input_ids"] == tokenizer.encode(text), repr(text)


def test_a_tokenizer_that_cannot_load_still_exports_the_model_and_says_why(tmp_path, monkeypatch):
    def unavailable(spec, base_dir=None):
        raise TokenizerError("r50k_base is not in tiktoken's cache; run once with network")

    monkeypatch.setattr("gptscratch.tokenizers.from_spec", unavailable)
    _, result = export_with(tmp_path, get_tokenizer("byte"))
    assert result["tokenizer"] is None and "tiktoken's cache" in result["tokenizer_skipped"]
    assert (tmp_path / "hf" / "model.safetensors").is_file()
    assert not (tmp_path / "hf" / "tokenizer.json").exists()
