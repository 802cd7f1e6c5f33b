"""Export: a gptscratch checkpoint written as a Hugging Face GPT-2 (or Phi) folder loads in transformers and gives
our logits; a converted model goes HF → ours → HF unchanged, tokenizer included; layouts no transformers class has
are refused. (Llama, Qwen2 and Qwen3: tests/test_pretrained_llama.py.)"""

from __future__ import annotations

import json

import pytest
import torch
from test_pretrained_support import TEXT, tiny_gpt2, tiny_phi

from gptscratch.checkpoint import load_checkpoint, save_checkpoint
from gptscratch.errors import UsageError
from gptscratch.pretrained.convert import convert_hf_folder
from gptscratch.pretrained.export import export_hf
from gptscratch.tokenizers import get_tokenizer


def hf_logits(folder, idx):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(folder)).eval()
    with torch.no_grad():
        return model(idx).logits


def our_logits(model, idx):
    with torch.no_grad():
        return model(idx)[0]


@pytest.mark.parametrize("tied", [True, False])
def test_native_checkpoint_exports_to_transformers_with_equal_logits(tmp_path, tied, tiny_model):
    model = tiny_model(vocab_size=257, activation="gelu_tanh", tie_weights=tied)
    save_checkpoint(tmp_path / "ckpt", model, get_tokenizer("byte").spec())
    result = export_hf(tmp_path / "ckpt", tmp_path / "hf")
    assert result["tokenizer"] == "byte"  # written as tokenizer.json (tests/test_export_tokenizer.py)
    hf_config = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert hf_config["model_type"] == "gpt2" and hf_config["tie_word_embeddings"] is tied
    idx = torch.randint(0, 257, (2, 16))
    torch.testing.assert_close(hf_logits(tmp_path / "hf", idx), our_logits(model, idx), atol=1e-5, rtol=0)


def test_hf_to_ours_to_hf_round_trip_keeps_logits_and_tokenizer(tmp_path):
    from transformers import AutoTokenizer

    reference = tiny_gpt2(tmp_path / "orig")
    convert_hf_folder(tmp_path / "orig", tmp_path / "ours")
    result = export_hf(tmp_path / "ours", tmp_path / "back")
    assert result["tokenizer"] == "hf-bpe"
    idx = torch.randint(0, 320, (2, 20))
    with torch.no_grad():
        expected = reference(idx).logits
    torch.testing.assert_close(hf_logits(tmp_path / "back", idx), expected, atol=1e-5, rtol=0)
    ours = load_checkpoint(tmp_path / "ours").tokenizer
    assert AutoTokenizer.from_pretrained(str(tmp_path / "back"))(TEXT[:300])["input_ids"] == ours.encode(TEXT[:300])


def test_phi_round_trip_keeps_logits(tmp_path):
    reference = tiny_phi(tmp_path / "orig")
    convert_hf_folder(tmp_path / "orig", tmp_path / "ours")
    assert export_hf(tmp_path / "ours", tmp_path / "back")["architecture"] == "PhiForCausalLM"
    idx = torch.randint(0, 320, (2, 20))
    with torch.no_grad():
        expected = reference(idx).logits
    torch.testing.assert_close(hf_logits(tmp_path / "back", idx), expected, atol=1e-5, rtol=0)


def test_layouts_no_class_has_and_occupied_folders_are_refused(tmp_path, tiny_model):
    save_checkpoint(tmp_path / "rope", tiny_model(vocab_size=257, positional="rope", block_layout="parallel"),
                    get_tokenizer("byte").spec())  # Phi's layout, but with a tied head and no head bias
    with pytest.raises(UsageError, match="the closest, PhiForCausalLM, needs an untied LM head with a bias$"):
        export_hf(tmp_path / "rope", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    save_checkpoint(tmp_path / "ok", tiny_model(vocab_size=257), get_tokenizer("byte").spec())
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(UsageError, match="not empty"):
        export_hf(tmp_path / "ok", tmp_path / "full")
