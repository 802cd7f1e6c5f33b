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
