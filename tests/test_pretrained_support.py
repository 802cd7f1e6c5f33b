"""Builders shared by the pretrained tests (imported as `from test_pretrained_support import ...`), plus checks
that the builders themselves produce what the other tests assume. Everything is made locally: no network."""

from __future__ import annotations

import json
from pathlib import Path

TEXT = ("The quick brown fox jumps over the lazy dog. It's what they'd do; we'll see, you're right. "
        "café naïve 漢字 emoji 🎉 numbers 12345 and    spaces\tand tabs\n\nnew lines. ") * 20
ADDED = ["        ", "    ", "  ", "\t\t"]  # Phi-2 style non-special whitespace tokens
GPT2_SHAPE = dict(n_positions=64, n_embd=32, n_layer=2, n_head=4)
PHI_SHAPE = dict(hidden_size=32, intermediate_size=80, num_hidden_layers=2, num_attention_heads=4,
                 max_position_embeddings=64, partial_rotary_factor=0.5)
# Llama / Qwen2 / Qwen3: 4 heads of 8, 2 key/value heads unless a test says otherwise, a SwiGLU width of 72.
LLAMA_SHAPE = dict(vocab_size=320, hidden_size=32, intermediate_size=72, num_hidden_layers=2, num_attention_heads=4,
                   num_key_value_heads=2, max_position_embeddings=64, rms_norm_eps=1e-5)
LLAMA_CLASSES = {"llama": ("LlamaConfig", "LlamaForCausalLM"), "qwen2": ("Qwen2Config", "Qwen2ForCausalLM"),
                 "qwen3": ("Qwen3Config", "Qwen3ForCausalLM")}
CHATML = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
QWEN_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
              r"\s*[\r\n]+|\s+(?!\S)|\s+")
PROMPT = [5, 17, 42, 99, 3, 250, 7]


def make_bpe_files(folder: Path, added: bool = False, vocab_size: int = 300) -> Path:
    """A small byte-level BPE (vocab.json + merges.txt, <|endoftext|> = id 0) trained on TEXT; with `added`,
    saved through GPT2TokenizerFast with Phi-2 style added whitespace tokens (tokenizer.json etc.)."""
    from tokenizers import ByteLevelBPETokenizer

    folder.mkdir(parents=True, exist_ok=True)
    trainer = ByteLevelBPETokenizer()
    trainer.train_from_iterator([TEXT], vocab_size=vocab_size, min_frequency=2, special_tokens=["<|endoftext|>"],
                                show_progress=False)
    trainer.save_model(str(folder))
    if added:
        from transformers import GPT2TokenizerFast

        hf = GPT2TokenizerFast.from_pretrained(str(folder))
        hf.add_tokens(ADDED)
        hf.save_pretrained(str(folder))
    return folder


def hf_vocab_size(folder: Path) -> int:
    from transformers import GPT2TokenizerFast

    return len(GPT2TokenizerFast.from_pretrained(str(folder)))


def make_json_tokenizer(folder: Path, eos: str = "<|endoftext|>") -> Path:
    """tokenizer.json + tokenizer_config.json as Qwen2.5 ships them (SmolLM2's differ only in the split regex): NFC,
    Qwen's split regex and GPT-2's byte-level BPE (300 ids, trained on TEXT), ids 0–2 the ChatML special tokens,
    `eos` the end-of-text token. The pipeline must be Qwen's own: transformers 5 rebuilds it for a folder whose
    config.json says qwen2 or qwen3, whatever tokenizer.json holds."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(QWEN_REGEX), "isolated"),
                                                 pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator([TEXT], trainers.BpeTrainer(vocab_size=300, special_tokens=CHATML, show_progress=False,
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=eos).save_pretrained(str(folder))
    return folder


def tiny_llama(folder: Path, arch: str = "llama", seed: int = 0, **overrides):
    """A random Llama / Qwen2 / Qwen3 model (LLAMA_SHAPE updated with `overrides`) saved with save_pretrained next
    to a tokenizer.json; returns the eval-mode model."""
    import torch
    import transformers

    make_json_tokenizer(folder)
    config_class, model_class = (getattr(transformers, name) for name in LLAMA_CLASSES[arch])
    torch.manual_seed(seed)
    model = model_class(config_class(**{**LLAMA_SHAPE, **overrides})).eval()
    _perturb_layernorms(model)
    model.save_pretrained(str(folder))
    return model


def assert_same_logits(ours, theirs, atol: float = 1e-5) -> float:
    """Our logits equal transformers' on random ids (2 × 24); returns the largest absolute difference."""
    import torch

    torch.manual_seed(1)
    idx = torch.randint(0, ours.config.vocab_size, (2, 24))
    with torch.no_grad():
        expected = theirs(idx).logits
        got, _ = ours(idx)
    torch.testing.assert_close(got, expected, atol=atol, rtol=0)
    return float((got - expected).abs().max())


def assert_same_greedy_tokens(ours, theirs, new_tokens: int = 20) -> None:
    """Greedy continuations of PROMPT: transformers' generate, ours with the KV cache and ours without, equal."""
    import torch

    from gptscratch.generation import SamplingConfig, generate_ids

    theirs.generation_config.eos_token_id = None  # never stop early: compare every token
    theirs.generation_config.pad_token_id = 0
    with torch.no_grad():
        expected = theirs.generate(torch.tensor([PROMPT]), max_new_tokens=new_tokens, do_sample=False,
                                   min_new_tokens=new_tokens)[0, len(PROMPT):].tolist()
    greedy = SamplingConfig(temperature=0)
    for use_cache in (True, False):
        assert list(generate_ids(ours, PROMPT, new_tokens, greedy, use_cache=use_cache)) == expected


def tiny_gpt2(folder: Path, seed: int = 0, added: bool = False, **overrides):
    """A random GPT2LMHeadModel saved with save_pretrained (+ tokenizer files); returns the eval-mode model."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    make_bpe_files(folder, added=added)
    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=320, bos_token_id=0, eos_token_id=0, **{**GPT2_SHAPE, **overrides})
    model = GPT2LMHeadModel(config).eval()
    _perturb_layernorms(model)
    model.save_pretrained(str(folder))
    return model


def tiny_phi(folder: Path, seed: int = 0, added: bool = True, **overrides):
    import torch
    from transformers import PhiConfig, PhiForCausalLM

    make_bpe_files(folder, added=added)
    torch.manual_seed(seed)
    config = PhiConfig(vocab_size=320, bos_token_id=0, eos_token_id=0, **{**PHI_SHAPE, **overrides})
    model = PhiForCausalLM(config).eval()
    _perturb_layernorms(model)
    model.save_pretrained(str(folder))
    return model


def _perturb_layernorms(model) -> None:
    """Random init leaves LayerNorm at (1, 0) and biases at 0; make them random so a mapping mistake shows."""
    import torch

    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.dim() == 1:
                param.add_(torch.randn_like(param) * 0.1)


def to_hub_layout(folder: Path, buffers: bool = True) -> None:
    """Rewrite a save_pretrained GPT-2 file the way the Hub's gpt2 files look: no `transformer.` prefix and
    the causal-mask buffers `h.{i}.attn.bias` / `masked_bias` stored alongside the weights."""
    import torch
    from safetensors.torch import load_file, save_file

    tensors = {k.removeprefix("transformer."): v for k, v in load_file(str(folder / "model.safetensors")).items()}
    config = json.loads((folder / "config.json").read_text())
    if buffers:
        n = config["n_positions"]
        for i in range(config["n_layer"]):
            tensors[f"h.{i}.attn.bias"] = torch.tril(torch.ones(n, n)).view(1, 1, n, n)
            tensors[f"h.{i}.attn.masked_bias"] = torch.tensor(-1e4)
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})


def test_builders_make_what_the_tests_assume(tmp_path):
    folder = make_bpe_files(tmp_path / "tok", added=True)
    vocab = json.loads((folder / "vocab.json").read_text())
    assert vocab["<|endoftext|>"] == 0 and len(vocab) == 300
    assert hf_vocab_size(folder) == 300 + len(ADDED)
    assert (folder / "tokenizer.json").is_file()
    json_folder = make_json_tokenizer(tmp_path / "json")
    assert not (json_folder / "vocab.json").exists()  # only tokenizer.json: the hf-json path is the one tested
    assert json.loads((json_folder / "tokenizer_config.json").read_text())["eos_token"] == "<|endoftext|>"
    model = tiny_llama(tmp_path / "qwen3", "qwen3")
    assert model.config.model_type == "qwen3" and model.config.num_key_value_heads == 2
