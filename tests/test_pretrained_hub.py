"""Registry, Hub download and name resolution, without network: HF_HUB_CACHE points at a folder laid out as
huggingface_hub's cache (models--ORG--NAME/refs/main + snapshots/<commit>/...), so hf_hub_download resolves
from it exactly as after a real download. Then the CLI end to end: download → generate --checkpoint gpt2."""

from __future__ import annotations

import json
import shutil
import time

import pytest
from test_pretrained_support import assert_same_logits, tiny_gpt2, tiny_llama, tiny_phi

from gptscratch.checkpoint import load_checkpoint, resolve_checkpoint
from gptscratch.errors import CheckpointNotFoundError, NetworkError, UsageError
from gptscratch.pretrained import hub
from gptscratch.pretrained.convert import install
from gptscratch.pretrained.registry import REGISTRY, explain_missing_checkpoint, is_converted, list_models

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def hub_cache(tmp_path, monkeypatch, repo_id, source, skip=()):
    """Lay out `source`'s files as the HF cache entry of repo_id and point HF_HUB_CACHE at it."""
    cache = tmp_path / "hf-cache"
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(COMMIT)
    snapshot = repo / "snapshots" / COMMIT
    snapshot.mkdir(parents=True, exist_ok=True)
    for file in source.iterdir():
        if file.name not in skip:
            shutil.copyfile(file, snapshot / file.name)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    return snapshot


def test_registry_parameter_counts_are_exact():
    import torch

    from gptscratch.model import GPT
    from gptscratch.pretrained.architectures import ARCHITECTURES

    for model in REGISTRY.values():
        if model.architecture == "gpt2":
            hf = dict(vocab_size=model.vocab_size, n_positions=model.context_length, n_layer=model.n_layer,
                      n_head=model.n_head, n_embd=model.d_model)
        else:  # phi, llama, qwen2: the same config.json keys
            hf = dict(vocab_size=model.vocab_size, max_position_embeddings=model.context_length,
                      num_hidden_layers=model.n_layer, num_attention_heads=model.n_head,
                      num_key_value_heads=model.n_kv_head, hidden_size=model.d_model,
                      intermediate_size=model.d_ff or 4 * model.d_model, partial_rotary_factor=0.4,
                      tie_word_embeddings=model.tie_weights)
            if model.architecture != "phi":
                del hf["partial_rotary_factor"]
        config = ARCHITECTURES[model.architecture].to_config(hf)
        assert config.tie_weights == model.tie_weights, model.name
        with torch.device("meta"):
            assert GPT(config).num_parameters() == model.parameters, model.name
    assert {"gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl", "phi-2", "smollm2-135m", "smollm2-135m-instruct",
            "smollm2-360m", "smollm2-360m-instruct", "qwen2.5-0.5b", "qwen2.5-0.5b-instruct"} <= set(REGISTRY)
    for name in ("smollm2-135m", "smollm2-360m-instruct", "qwen2.5-0.5b", "qwen2.5-0.5b-instruct"):
        assert (REGISTRY[name].license, REGISTRY[name].source_dtype) == ("Apache-2.0", "bfloat16")


def test_download_resolves_from_a_hub_cache_and_converts(tmp_path, monkeypatch):
    tiny_gpt2(tmp_path / "src")
    (tmp_path / "src" / "pytorch_model.bin").write_bytes(b"never needed")
    snapshot = hub_cache(tmp_path, monkeypatch, "openai-community/gpt2", tmp_path / "src")
    assert hub.download_model("openai-community/gpt2") == snapshot
    assert not is_converted("gpt2")
    events = []
    path = install("gpt2", progress=events.append)
    assert is_converted("gpt2") and resolve_checkpoint("gpt2") == path
    assert events[-1]["completed"] == events[-1]["total"]
    loaded = load_checkpoint("gpt2")
    assert loaded.config["pretrained"]["source"] == "hf://openai-community/gpt2@main"
    assert [m["converted"] for m in list_models() if m["name"] == "gpt2"] == [True]


def test_sharded_phi_download_from_cache(tmp_path, monkeypatch):
    reference = tiny_phi(tmp_path / "src")
    reference.save_pretrained(str(tmp_path / "src"), max_shard_size="40KB")
    (tmp_path / "src" / "model.safetensors").unlink(missing_ok=True)
    hub_cache(tmp_path, monkeypatch, "microsoft/phi-2", tmp_path / "src")
    path = install("phi-2")
    assert load_checkpoint(path).model.config.block_layout == "parallel"


def test_smollm2_download_from_cache_converts_with_its_tokenizer_json(tmp_path, monkeypatch):
    from gptscratch.tokenizers import HfJsonTokenizer

    reference = tiny_llama(tmp_path / "src", "llama", tie_word_embeddings=True, rope_theta=100000.0)
    (tmp_path / "src" / "generation_config.json").write_text(json.dumps({"bos_token_id": 0, "eos_token_id": 2}))
    (tmp_path / "src" / "vocab.json").write_text("{}")  # SmolLM2's repo has them too: not needed, not read
    hub_cache(tmp_path, monkeypatch, "HuggingFaceTB/SmolLM2-135M", tmp_path / "src")
    install("smollm2-135m")
    loaded = load_checkpoint("smollm2-135m")
    assert isinstance(loaded.tokenizer, HfJsonTokenizer) and loaded.model.config.norm == "rmsnorm"
    assert loaded.config["pretrained"]["source"] == "hf://HuggingFaceTB/SmolLM2-135M@main"
    assert loaded.config["pretrained"]["generation_config"]["eos_token_id"] == 2
    assert_same_logits(loaded.model, reference)
    hub_cache(tmp_path, monkeypatch, "HuggingFaceTB/SmolLM2-360M", tmp_path / "src", skip=("tokenizer_config.json",))
    with pytest.raises(NetworkError, match="not .completely. in the Hugging Face cache"):  # it names the EOS
        install("smollm2-360m")


def test_missing_files_fail_fast_with_one_line(tmp_path, monkeypatch):
    tiny_gpt2(tmp_path / "src")
    hub_cache(tmp_path, monkeypatch, "openai-community/gpt2", tmp_path / "src", skip=("model.safetensors",))
    started = time.monotonic()
    with pytest.raises(NetworkError, match="HF_HUB_OFFLINE=1"):
        install("gpt2")
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(hub, "hub_reachable", lambda timeout=3.0: False)
    with pytest.raises(NetworkError, match="cannot reach the Hugging Face Hub") as error:
        install("gpt2")
    assert "\n" not in str(error.value) and time.monotonic() - started < 10


def test_progress_is_forwarded_from_huggingface_hub_bars():
    events = []
    bar_class = hub._progress_class(events.append, {"total": 0, "completed": 0})
    bar = bar_class(total=100, initial=40, unit="B")  # a resumed download: 40 bytes already there
    bar.update(10)
    bar.close()
    assert events == [{"total": 100, "completed": 50, "unit": "bytes"}]


def test_names_resolve_or_explain_how_to_download():
    with pytest.raises(CheckpointNotFoundError) as missing:  # checkpoint.py does not know the registry...
        resolve_checkpoint("gpt2-xl")
    explained = explain_missing_checkpoint(missing.value)  # ...the pretrained layer adds how to get the model
    assert isinstance(explained, UsageError) and explained.exit_code == 2
    assert str(explained) == ("pretrained model gpt2-xl is not downloaded yet; run `gptscratch pretrained download "
                              "gpt2-xl` first")
    other = CheckpointNotFoundError("no checkpoint or run named 'mine'", name="mine")
    assert explain_missing_checkpoint(other) is other
    plain = UsageError("gpt2")  # only a not-found checkpoint is about downloading
    assert explain_missing_checkpoint(plain) is plain
    with pytest.raises(UsageError, match="unknown pretrained model"):
        install("gpt5")


def test_cli_download_list_generate_export(tmp_path, monkeypatch, run_cli):
    tiny_gpt2(tmp_path / "src")
    hub_cache(tmp_path, monkeypatch, "openai-community/gpt2", tmp_path / "src")
    result = run_cli("pretrained", "download", "gpt2", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["name"] == "gpt2"
    listed = json.loads(run_cli("pretrained", "list", "--json").stdout)
    assert {m["name"]: m["converted"] for m in listed}["gpt2"] is True
    generated = run_cli("generate", "--checkpoint", "gpt2", "--prompt", "The quick", "--max-tokens", "5",
                        "--temperature", "0", "--json")
    assert generated.returncode == 0, generated.stderr
    assert json.loads(generated.stdout)["completion_tokens"] == 5
    exported = run_cli("pretrained", "export", "gpt2", "--format", "hf", str(tmp_path / "hf-out"))
    assert exported.returncode == 0 and (tmp_path / "hf-out" / "vocab.json").is_file()


def test_cli_refusals_exit_2_with_one_line(tmp_path, run_cli):
    tiny_gpt2(tmp_path / "src")
    config = json.loads((tmp_path / "src" / "config.json").read_text())
    (tmp_path / "src" / "config.json").write_text(json.dumps({**config, "model_type": "mistral"}))
    result = run_cli("pretrained", "convert", str(tmp_path / "src"))
    assert result.returncode == 2 and "converts only gpt2" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert run_cli("pretrained", "export", "x", str(tmp_path / "o"), "--format", "onnx").returncode == 2
    assert run_cli("pretrained", "download", "gpt5").returncode == 2
    missing = run_cli("pretrained", "export", "gpt2-xl", str(tmp_path / "o"))  # every command gets the hint
    assert missing.returncode == 2 and "run `gptscratch pretrained download gpt2-xl` first" in missing.stderr


def test_tokenizer_reference_gives_a_value_get_tokenizer_accepts(tmp_path, monkeypatch):
    from gptscratch.checkpoint import tokenizer_reference
    from gptscratch.tokenizers import get_tokenizer

    tiny_gpt2(tmp_path / "src")
    hub_cache(tmp_path, monkeypatch, "openai-community/gpt2", tmp_path / "src")
    install("gpt2")
    reference = tokenizer_reference("gpt2")
    assert reference.endswith("tokenizer")
    assert get_tokenizer(reference).encode("The fox") == load_checkpoint("gpt2").tokenizer.encode("The fox")
    with pytest.raises(UsageError, match="made of files"):
        get_tokenizer("hf-bpe")
