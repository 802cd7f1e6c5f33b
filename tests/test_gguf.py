"""`pretrained export --format gguf`: the file llama.cpp loads gives gptscratch's logits, greedy tokens and token ids.

GPT-2-, Phi- and Llama-style checkpoints (plus Llama 3 rope scaling, Llama biases, Qwen2 and Qwen3), each in f32,
f16 and bf16, are loaded by llama.cpp through llama-cpp-python and compared with our model; the tokenizers with a
GGUF form (byte, char, GPT-2-style hf-bpe with added tokens, trained BPE, chat, cl100k_base, converted
tokenizer.json) must give our ids; what llama.cpp cannot run as we do is refused in one line.

Tolerances (logits, relative to the largest |logit|): llama.cpp rounds where it multiplies — the activations to
the weights' type (unit roundoff u = 2^-11 for f16, 2^-8 for bf16), GELU through an f16 table (u = 2^-11 even in
an f32 file) and, by default, its KV cache to f16. We allow 4u of the coarsest rounding on the path (measured:
about 1u; f16 and bf16 against our model with its weights rounded the same way, so the bound is about llama.cpp's
arithmetic, not the rounding we chose; and 8u against the unrounded model). An f32 file without GELU, read with
an f32 KV cache, has no rounding of its own: float32 summation order only, allowed 1e-5 (measured ≤ 4e-7).

llama_cpp is optional: the tests that need it skip without it, unless GPTSCRATCH_REQUIRE_LLAMA_CPP=1 (CI), where
its absence fails them.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os

import numpy as np
import pytest
import torch
from test_export_tokenizer import TRICKY, pool_text
from test_pretrained_support import CHATML, QWEN_REGEX, TEXT, make_bpe_files

from gptscratch.checkpoint import save_checkpoint
from gptscratch.errors import UsageError
from gptscratch.pretrained.gguf_export import check_gguf_dtype, export_gguf
from gptscratch.pretrained.hf_tokenizer import CHAT_TEMPLATE
from gptscratch.tokenizers import HfBpeTokenizer, get_tokenizer
from gptscratch.tokenizers.chat import ChatTokenizer
from helpers import build_tiny_model

LLAMA = dict(positional="rope", norm="rmsnorm", mlp="gated", activation="silu", bias=False, d_ff=72)
STYLES = {  # ModelConfig overrides of the tiny model (4 heads of 8, 2 layers), as test_pretrained_export.py makes them
    "gpt2": dict(),  # learned positions, LayerNorm, biases, tied; gptscratch's default erf GELU (llama.cpp: tanh)
    "phi": dict(positional="rope", rotary_fraction=0.5, block_layout="parallel", tie_weights=False,
                lm_head_bias=True, activation="gelu_tanh"),
    "llama": dict(LLAMA, n_kv_head=2, tie_weights=False),
}
MORE_STYLES = {
    "llama3-scaled-tied": dict(LLAMA, rope_scaling="llama3", rope_base=1000.0, rope_scaling_factor=4.0,
                               rope_original_context=64),   # one rotary pair kept, one interpolated, two divided
    "llama-mqa-biases": dict(LLAMA, n_kv_head=1, bias=True, tie_weights=False),
    "qwen2": dict(LLAMA, n_kv_head=2, qkv_bias=True),
    "qwen3": dict(LLAMA, n_kv_head=1, qk_norm=True, tie_weights=False),
}
UNIT_ROUNDOFF = {"f32": 2.0 ** -24, "f16": 2.0 ** -11, "bf16": 2.0 ** -8}
TORCH_DTYPES = {"f16": torch.float16, "bf16": torch.bfloat16}
PROMPT = list(b"The quick brown ")


def llama_cpp():
    if os.environ.get("GPTSCRATCH_REQUIRE_LLAMA_CPP") == "1":
        import llama_cpp as module  # CI: a missing llama_cpp is a failure, not a skip
        return module
    return pytest.importorskip("llama_cpp")


def load(path, kv_f32: bool = False, vocab_only: bool = False):
    """llama.cpp's model for a GGUF file (closed when the `with` ends); kv_f32: an f32 KV cache (default f16)."""
    module = llama_cpp()
    cache = {"type_k": module.GGML_TYPE_F32, "type_v": module.GGML_TYPE_F32} if kv_f32 else {}
    return contextlib.closing(module.Llama(model_path=str(path), logits_all=True, verbose=False, n_ctx=32,
                                           n_threads=1, vocab_only=vocab_only, **cache))


def tiny(style: dict, seed: int = 0):
    """The tiny model of a style with its final norm's gain ×40: logits of ±20 instead of ±0.5, so that greedy
    choices are decided by clear margins rather than by rounding."""
    model = build_tiny_model(vocab_size=320, seed=seed, **style)
    with torch.no_grad():
        model.ln_f.weight.mul_(40)
    return model


def with_weights_rounded(model, kind: str):
    """Our model with every 2-D weight rounded to `kind` as the export writes it (norms and biases stay f32)."""
    if kind == "f32":
        return model
    rounded = copy.deepcopy(model)
    with torch.no_grad():
        for parameter in rounded.parameters():
            if parameter.dim() > 1:
                parameter.copy_(parameter.to(TORCH_DTYPES[kind]).float())
    return rounded


def tolerance(kind: str, gelu: bool, kv_f32: bool) -> float:
    """4u of the coarsest rounding llama.cpp applies on the path (module docstring), relative to max |logit|."""
    u = max(UNIT_ROUNDOFF[kind], 2.0 ** -11 if gelu or not kv_f32 else 0.0)
    return max(4 * u, 1e-5)


def logits(model, ids) -> np.ndarray:
    with torch.no_grad():
        return model(torch.tensor([ids]))[0][0].numpy()


def check_logits_and_greedy(model, path, kind: str, steps: int = 14) -> None:
    """(a) llama.cpp's logits of a prompt are ours within `tolerance`; (b) its greedy choices, decoded one token at
    a time through its KV cache after our greedy prefix, are gptscratch's (generate_ids) at every step our logits
    decide by more than twice the tolerance (at a closer call either of the near-tied tokens is right); at least
    3/4 of the steps must be that clear, so the check is never vacuous — where all are, llama.cpp's own greedy
    continuation is ours token for token."""
    from gptscratch.generation import SamplingConfig, generate_ids

    kv_f32 = kind == "f32"   # an f32 file is read with an f32 cache; f16/bf16 as llama.cpp runs them by default
    ids = list(TEXT[:24].encode())
    ours = logits(model, ids)
    scale = float(np.abs(ours).max())
    tol = tolerance(kind, model.config.activation.startswith("gelu"), kv_f32) * scale
    expected = list(generate_ids(model, PROMPT, steps, SamplingConfig(temperature=0)))
    steps_logits = logits(model, PROMPT + expected)[len(PROMPT) - 1:-1]   # (steps, V): what each choice saw
    with load(path, kv_f32=kv_f32) as llm:
        llm.eval(ids)
        theirs = np.array(llm.scores[:len(ids)])
        llm.reset()
        llm.eval(PROMPT)
        choices = []
        for token in expected:
            choices.append(int(np.argmax(llm.scores[llm.n_tokens - 1])))
            llm.eval([token])
    np.testing.assert_allclose(theirs, logits(with_weights_rounded(model, kind), ids), rtol=0, atol=tol)
    np.testing.assert_allclose(theirs, ours, rtol=0, atol=2 * tol)   # and against the unrounded model: 8u
    decided = 0
    for step, (choice, token, row) in enumerate(zip(choices, expected, steps_logits)):
        runner_up = np.sort(row)[-2]
        if row[token] - runner_up > 2 * tol:
            assert choice == token, f"step {step}: llama.cpp chose {choice}, gptscratch {token}"
            decided += 1
        else:
            assert row[choice] >= row[token] - 2 * tol, f"step {step}: {choice} is not a near tie of {token}"
    assert decided >= 3 * steps // 4, f"only {decided} of {steps} greedy steps were clear"


@pytest.mark.parametrize("kind", ["f32", "f16", "bf16"])
@pytest.mark.parametrize("style", list(STYLES))
def test_llama_cpp_gives_our_logits_and_greedy_tokens(tmp_path, style, kind):
    model = tiny(STYLES[style])
    save_checkpoint(tmp_path / "ckpt", model, get_tokenizer("byte").spec())
    result = export_gguf(tmp_path / "ckpt", tmp_path / "model.gguf", dtype=kind)
    assert result["architecture"] == {"gpt2": "gpt2", "phi": "phi2", "llama": "llama"}[style]
    assert result["dtype"] == kind and result["bytes"] == (tmp_path / "model.gguf").stat().st_size
    check_logits_and_greedy(model, tmp_path / "model.gguf", kind)


@pytest.mark.parametrize("style", list(MORE_STYLES))
def test_more_layouts_give_our_logits_and_greedy_tokens(tmp_path, style):
    model = tiny(MORE_STYLES[style], seed=1)
    save_checkpoint(tmp_path / "ckpt", model, get_tokenizer("byte").spec())
    expected = {"llama3-scaled-tied": "llama", "llama-mqa-biases": "llama", "qwen2": "qwen2", "qwen3": "qwen3"}
    assert export_gguf(tmp_path / "ckpt", tmp_path / "m.gguf")["architecture"] == expected[style]
    check_logits_and_greedy(model, tmp_path / "m.gguf", "f32")


def test_a_lora_checkpoint_is_exported_merged(tmp_path):
    """The adapters are folded into the weights as they stream past (export.checkpoint_weights, shared with the
    HF export), before Llama's q/k rows are permuted."""
    from test_lora import randomize_adapters

    from gptscratch.model.lora import apply_lora

    model = tiny(STYLES["llama"])
    plain = logits(model, PROMPT)
    apply_lora(model, rank=4, alpha=16.0)
    randomize_adapters(model)
    assert np.abs(logits(model, PROMPT) - plain).max() > 1   # the adapters change the logits
    save_checkpoint(tmp_path / "lora", model, get_tokenizer("byte").spec())
    export_gguf(tmp_path / "lora", tmp_path / "m.gguf")
    check_logits_and_greedy(model, tmp_path / "m.gguf", "f32")


def test_the_file_holds_llama_cpp_names_types_metadata_and_the_rope_layout(tmp_path):
    """Read back without llama.cpp (gguf-py's reader): what llama.cpp looks up, under the names it uses."""
    from gguf import GGMLQuantizationType, GGUFReader

    model = tiny(MORE_STYLES["llama3-scaled-tied"] | {"n_kv_head": 2})
    save_checkpoint(tmp_path / "ckpt", model, get_tokenizer("byte").spec())
    export_gguf(tmp_path / "ckpt", tmp_path / "m.gguf", dtype="float16")
    reader = GGUFReader(tmp_path / "m.gguf")
    meta = {key: field.contents() for key, field in reader.fields.items()}
    assert {key: meta[key] for key in ("general.architecture", "llama.context_length", "llama.embedding_length",
                                       "llama.block_count", "llama.feed_forward_length",
                                       "llama.attention.head_count", "llama.attention.head_count_kv",
                                       "llama.rope.dimension_count", "llama.rope.freq_base", "tokenizer.ggml.model",
                                       "tokenizer.ggml.pre", "tokenizer.ggml.eos_token_id",
                                       "tokenizer.ggml.add_bos_token")} == {
        "general.architecture": "llama", "llama.context_length": 32, "llama.embedding_length": 32,
        "llama.block_count": 2, "llama.feed_forward_length": 72, "llama.attention.head_count": 4,
        "llama.attention.head_count_kv": 2, "llama.rope.dimension_count": 8, "llama.rope.freq_base": 1000.0,
        "tokenizer.ggml.model": "gpt2", "tokenizer.ggml.pre": "gpt-2", "tokenizer.ggml.eos_token_id": 256,
        "tokenizer.ggml.add_bos_token": False}
    assert meta["llama.attention.layer_norm_rms_epsilon"] == pytest.approx(1e-5)
    tokens, types = meta["tokenizer.ggml.tokens"], meta["tokenizer.ggml.token_type"]
    assert len(tokens) == 320 and tokens[32] == "Ġ" and tokens[65] == "A" and tokens[256] == "<|endoftext|>"
    assert types == [1] * 256 + [3] + [5] * 63 and tokens[300] == "[PAD300]"
    tensors = {t.name: t for t in reader.tensors}
    assert "output.weight" not in tensors and "blk.1.ffn_gate.weight" in tensors   # tied: token_embd serves
    assert tensors["token_embd.weight"].tensor_type == GGMLQuantizationType.F16
    assert tensors["blk.0.attn_norm.weight"].tensor_type == GGMLQuantizationType.F32   # 1-D stays f32
    assert list(tensors["blk.0.attn_k.weight"].shape) == [32, 16]   # ggml order {in, out}: 2 kv heads of 8
    # Llama's q/k rows interleaved: head h's row 2i is our row h·8 + i, row 2i+1 our row h·8 + 4 + i.
    q_ours = model.blocks[0].attn.qkv.weight.detach()[:32].half().numpy()
    q_file = np.asarray(tensors["blk.0.attn_q.weight"].data).reshape(4, 4, 2, 32)   # (head, i, j, in)
    np.testing.assert_array_equal(q_file[:, :, 0], q_ours.reshape(4, 2, 4, 32)[:, 0])
    np.testing.assert_array_equal(q_file[:, :, 1], q_ours.reshape(4, 2, 4, 32)[:, 1])
    v_file = np.asarray(tensors["blk.0.attn_v.weight"].data)
    np.testing.assert_array_equal(v_file, model.blocks[0].attn.qkv.weight.detach()[48:].half().numpy())
    factors = np.asarray(tensors["rope_freqs.weight"].data)   # θ/θ': fast pair kept, slow pairs ÷ 4
    assert factors[0] == 1 and 1 < factors[1] < 4 and factors[2] == factors[3] == pytest.approx(4)


CHATML_TEMPLATE = "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
LLAMA3_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
                r"\s*[\r\n]+|\s+(?!\S)|\s+")


def json_tokenizer(folder, pre: str, byte_fallback: bool = False):
    """A tokenizer.json (300 ids, trained on TEXT) split as the llama.cpp pre-tokenizer `pre` splits: GPT-2's
    ByteLevel alone, SmolLM's digits first, Qwen2's regex (with NFC) or Llama 3's (with ignore_merges)."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    from gptscratch.tokenizers import HfJsonTokenizer

    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=pre in ("gpt-2", "smollm"))
    splits = {"gpt-2": [], "smollm": [pre_tokenizers.Digits(individual_digits=True)],
              "qwen2": [pre_tokenizers.Split(Regex(QWEN_REGEX), "isolated")],
              "llama-bpe": [pre_tokenizers.Split(Regex(LLAMA3_REGEX), "isolated")]}[pre]
    tok = Tokenizer(models.BPE(ignore_merges=pre == "llama-bpe", byte_fallback=byte_fallback))
    if pre == "qwen2":
        tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([*splits, byte_level]) if splits else byte_level
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator([TEXT], trainers.BpeTrainer(vocab_size=300, special_tokens=CHATML, show_progress=False,
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    folder.mkdir(parents=True)
    tok.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps({"eos_token": "<|endoftext|>",
                                                              "chat_template": CHATML_TEMPLATE}))
    return HfJsonTokenizer(folder)


def tokenizers_to_check(tmp_path, texts) -> dict:
    from gptscratch.data.train_tokenizer import train_tokenizer

    return {"byte": get_tokenizer("byte"), "char": get_tokenizer("char", texts=texts),
            "hf-bpe with added tokens": HfBpeTokenizer(make_bpe_files(tmp_path / "bpe", added=True)),
            "trained gpt2 pattern": train_tokenizer("builtin", 700, name="g2", pattern="gpt2",
                                                    special_tokens=["<|sep|>"]),
            "trained gpt4 pattern": train_tokenizer("builtin", 700, name="g4", pattern="gpt4"),
            "chat over byte": ChatTokenizer(get_tokenizer("byte")),
            **{f"hf-json {pre}": json_tokenizer(tmp_path / pre, pre) for pre in ("gpt-2", "smollm", "qwen2",
                                                                               "llama-bpe")}}


def check_ids(tmp_path, name: str, tokenizer, texts) -> str:
    """Export a tiny model with `tokenizer`; llama.cpp's tokenizer must give our ids for every text."""
    model = build_tiny_model(vocab_size=-(-tokenizer.vocab_size // 64) * 64)   # rounded up: padded in the file
    folder = tmp_path / name.replace(" ", "-")
    save_checkpoint(folder, model, tokenizer.spec())
    result = export_gguf(folder, folder.with_suffix(".gguf"))
    with load(folder.with_suffix(".gguf"), vocab_only=True) as llm:
        for text in texts:
            assert llm.tokenize(text.encode(), add_bos=False, special=False) == tokenizer.encode(text), repr(text)
        if isinstance(tokenizer, ChatTokenizer):   # chat tokens are control tokens: parsed only when asked
            turn = "<|user|>hi<|end|><|assistant|>"
            assert llm.tokenize(turn.encode(), add_bos=False, special=True) == tokenizer.encode_with_specials(turn)
            assert llm.metadata["tokenizer.chat_template"] == CHAT_TEMPLATE
        if name.startswith("hf-json"):   # a pretrained model's own template travels with it
            assert llm.metadata["tokenizer.chat_template"] == CHATML_TEMPLATE
    return result["pre_tokenizer"]


def test_llama_cpp_tokenizes_like_gptscratch(tmp_path):
    texts = [TEXT, TRICKY, *pool_text(seed=1, count=100)]
    tokenizers = tokenizers_to_check(tmp_path, texts)
    pres = {name: check_ids(tmp_path, name, tokenizer, texts) for name, tokenizer in tokenizers.items()}
    assert pres["trained gpt4 pattern"] == "llama-bpe" and pres["hf-bpe with added tokens"] == "gpt-2"
    assert [pres[f"hf-json {pre}"] for pre in ("gpt-2", "smollm", "qwen2", "llama-bpe")] == [
        "gpt-2", "smollm", "qwen2", "llama-bpe"]


@pytest.mark.slow
def test_cl100k_base_and_the_other_tiktoken_split_regexes_tokenize_alike(tmp_path, monkeypatch):
    """cl100k itself, and the r50k/p50k/o200k regexes (their files are not cached offline: run with cl100k's
    ranks, as test_export_tokenizer.py does) → llama.cpp's gpt-2 and gpt-4o pre-tokenizers."""
    import tiktoken
    import tiktoken_ext.openai_public as public

    import gptscratch.tokenizers as registry
    from gptscratch.tokenizers import TiktokenTokenizer

    texts = [TEXT, TRICKY, *pool_text(seed=2, count=150)]
    cl100k = get_tokenizer("cl100k_base")
    assert check_ids(tmp_path, "cl100k", cl100k, texts) == "llama-bpe"
    base = cl100k.encoding
    monkeypatch.setattr(public, "load_tiktoken_bpe", lambda *args, **kwargs: base._mergeable_ranks)
    for name, pre in (("r50k_base", "gpt-2"), ("o200k_base", "gpt-4o")):
        encoding = tiktoken.Encoding(name=name, pat_str=getattr(public, name)()["pat_str"],
                                     mergeable_ranks=base._mergeable_ranks, special_tokens=base._special_tokens)
        tokenizer = TiktokenTokenizer(name, encoding)
        monkeypatch.setattr(registry, "from_spec", lambda spec, base_dir=None, t=tokenizer: t)
        assert check_ids(tmp_path, name, tokenizer, texts) == pre


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["gpt2", "qwen2"])
def test_a_converted_model_keeps_its_tokenizer_and_logits_in_llama_cpp(tmp_path, arch):
    """HF → gptscratch → GGUF: GPT-2 with Phi-2 style added tokens (hf-bpe), Qwen2 with its tokenizer.json."""
    from test_pretrained_support import tiny_gpt2, tiny_llama

    from gptscratch.checkpoint import load_checkpoint
    from gptscratch.pretrained.convert import convert_hf_folder

    reference = tiny_gpt2(tmp_path / "hf", added=True) if arch == "gpt2" else tiny_llama(tmp_path / "hf", "qwen2")
    convert_hf_folder(tmp_path / "hf", tmp_path / "ours")
    result = export_gguf(tmp_path / "ours", tmp_path / "m.gguf")
    assert result["pre_tokenizer"] == {"gpt2": "gpt-2", "qwen2": "qwen2"}[arch]
    tokenizer = load_checkpoint(tmp_path / "ours").tokenizer
    ids = tokenizer.encode(TEXT)[:30]
    with torch.no_grad():
        expected = reference(torch.tensor([ids])).logits[0].numpy()
    with load(tmp_path / "m.gguf", kv_f32=True) as llm:
        for text in [TEXT, TRICKY, *pool_text(seed=3, count=100)]:
            assert llm.tokenize(text.encode(), add_bos=False, special=False) == tokenizer.encode(text), repr(text)
        llm.eval(ids)
        scale = np.abs(expected).max()
        np.testing.assert_allclose(np.array(llm.scores[:len(ids)]), expected, rtol=0,
                                   atol=tolerance("f32", arch == "gpt2", True) * scale)


def test_what_llama_cpp_cannot_run_as_we_do_is_refused(tmp_path):
    from gptscratch.data.train_tokenizer import train_tokenizer

    def export(model, tokenizer, name):
        save_checkpoint(tmp_path / name, model, tokenizer.spec())
        with pytest.raises(UsageError) as refused:
            export_gguf(tmp_path / name, tmp_path / f"{name}.gguf")
        assert not (tmp_path / f"{name}.gguf").exists() and "\n" not in str(refused.value)
        return str(refused.value)

    byte = get_tokenizer("byte")
    assert "llama.cpp's llama graph needs SiLU (has relu2)" in export(build_tiny_model(vocab_size=320, **LLAMA | {
        "activation": "relu2"}), byte, "relu2-llama")
    assert "no transformers class" in export(build_tiny_model(vocab_size=320, positional="sinusoidal"), byte, "sin")
    unsplit = train_tokenizer("builtin", 400, name="whole", pattern="none")
    assert "train it with --pattern gpt2 or gpt4" in export(build_tiny_model(vocab_size=400), unsplit, "none")
    assert "only 101 output rows" in export(build_tiny_model(vocab_size=101), byte, "small-vocab")
    sentencepiece_like = json_tokenizer(tmp_path / "sp-files", "gpt-2", byte_fallback=True)
    assert "is not byte-level BPE" in export(build_tiny_model(vocab_size=320), sentencepiece_like, "sp")
    save_checkpoint(tmp_path / "ok", build_tiny_model(vocab_size=257), byte.spec())
    (tmp_path / "taken.gguf").write_text("x")
    with pytest.raises(UsageError, match="already exists"):
        export_gguf(tmp_path / "ok", tmp_path / "taken.gguf")
    with pytest.raises(UsageError, match="choose auto .* f32, f16 or bf16"):
        check_gguf_dtype("q4_0")


def test_the_cli_exports_gguf_and_refuses_in_one_line(tmp_path, run_cli):
    save_checkpoint(tmp_path / "ok", build_tiny_model(vocab_size=320, **STYLES["phi"]), get_tokenizer("byte").spec())
    save_checkpoint(tmp_path / "relu", build_tiny_model(vocab_size=320, activation="relu"),
                    get_tokenizer("byte").spec())
    done = run_cli("pretrained", "export", str(tmp_path / "ok"), str(tmp_path / "out" / "ok.gguf"), "--format",
                   "gguf", "--dtype", "bf16", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["architecture"] == "phi2" and result["dtype"] == "bf16" and result["tokenizer"] == "byte"
    assert (tmp_path / "out" / "ok.gguf").read_bytes()[:4] == b"GGUF"
    refused = run_cli("pretrained", "export", str(tmp_path / "relu"), str(tmp_path / "relu.gguf"), "--format", "gguf")
    assert refused.returncode == 2 and not (tmp_path / "relu.gguf").exists()
    message = refused.stderr.strip()
    assert "\n" not in message and "llama.cpp's gpt2 graph needs GELU (has relu)" in message
