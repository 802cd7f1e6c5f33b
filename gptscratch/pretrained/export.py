"""gptscratch checkpoint → Hugging Face GPT-2 folder that `transformers.AutoModelForCausalLM.from_pretrained` loads.

The GPT-2 conversion table run backwards (gptscratch/pretrained/architectures.py): Linear weights transposed
back into Conv1D's [in, out], names prefixed `transformer.` as `save_pretrained` writes them, the tied head
stored once, and a GPT-2 config.json. Streamed tensor by tensor like the import.

Only GPT-2-compatible configurations can be expressed: learned positions, pre-LN, sequential blocks, biases,
no embedding scaling, no head bias, and an activation GPT-2 offers (gelu_tanh = "gelu_new", gelu, relu).
Anything else (rope, parallel blocks, attention-only, ...) is refused with the reason.

Tokenizer: `AutoTokenizer.from_pretrained(out_dir)` works too. A checkpoint whose tokenizer came from files
(hf-bpe: vocab.json + merges.txt) gets them copied; tiktoken, byte and char tokenizers are written as a
`tokenizer.json` that gives the same ids (gptscratch/pretrained/hf_tokenizer.py).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from gptscratch.errors import TokenizerError, UsageError

HF_ACTIVATIONS = {"gelu_tanh": "gelu_new", "gelu": "gelu", "relu": "relu"}


def gpt2_incompatibilities(config) -> list[str]:
    """Why a ModelConfig cannot be written as HF GPT-2 (empty when it can)."""
    checks = [(config.positional == "learned", f"learned positions (has {config.positional})"),
              (config.norm_placement == "pre", "pre-LayerNorm (has post)"),
              (config.block_layout == "sequential", f"sequential blocks (has {config.block_layout})"),
              (not config.attention_only, "an MLP in every block (is attention-only)"),
              (config.bias, "biases (has none)"), (not config.scale_embeddings, "unscaled embeddings"),
              (not config.lm_head_bias, "no LM-head bias"),
              (config.activation in HF_ACTIVATIONS, f"a GPT-2 activation (has {config.activation})")]
    return [needed for ok, needed in checks if not ok]


def hf_gpt2_config(config, eot_id: int | None, dtype: str) -> dict:
    return {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "vocab_size": config.vocab_size,
            "n_positions": config.context_length, "n_embd": config.d_model, "n_layer": config.n_layer,
            "n_head": config.n_head, "n_inner": config.d_ff, "activation_function": HF_ACTIVATIONS[config.activation],
            "layer_norm_epsilon": config.layer_norm_eps, "tie_word_embeddings": config.tie_weights,
            "resid_pdrop": config.dropout, "embd_pdrop": config.dropout, "attn_pdrop": config.dropout,
            "scale_attn_weights": True, "initializer_range": 0.02, "bos_token_id": eot_id, "eos_token_id": eot_id,
            "dtype": dtype, "torch_dtype": dtype}


def export_hf(checkpoint, out_dir, progress=None) -> dict:
    """Write checkpoint (path, run or pretrained name) as an HF GPT-2 folder; returns what was written."""
    from safetensors import SafetensorError, safe_open

    from gptscratch.checkpoint import MODEL_FILE, damaged_file_error, read_config, resolve_checkpoint
    from gptscratch.model import ModelConfig
    from gptscratch.tokenizers import from_spec
    from gptscratch.tokenizers.hf_bpe import is_hf_spec, spec_folder, tokenizer_files

    from .architectures import ARCHITECTURES
    from .hf_tokenizer import write_hf_tokenizer
    from .tensorfile import TensorFileWriter

    path = resolve_checkpoint(checkpoint)
    saved = read_config(path)
    config = ModelConfig.from_dict(saved["model"])
    problems = gpt2_incompatibilities(config)
    if problems:
        raise UsageError(f"cannot export {path} as Hugging Face GPT-2: it needs {'; '.join(problems)}; only "
                         "GPT-2-compatible models (learned positions, pre-LN, sequential blocks, biases) export")
    out = Path(out_dir).expanduser()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f"{out} already exists and is not empty; choose a new folder or delete it")
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        rules = ARCHITECTURES["gpt2"].expanded_rules(config)
        try:  # a truncated or garbage model.safetensors fails here, not as a traceback
            with safe_open(str(path / MODEL_FILE), framework="pt") as weights:
                first = weights.get_slice("tok_embed.weight")
                dtype = {"F32": "float32", "BF16": "bfloat16", "F16": "float16"}.get(first.get_dtype(), "float32")

                def hf_name(rule):  # the head sits outside the `transformer.` prefix, as save_pretrained writes it
                    return rule.theirs[0] if rule.ours.startswith("lm_head") else "transformer." + rule.theirs[0]

                entries = []
                for rule in rules:
                    shape = tuple(weights.get_slice(rule.ours).get_shape())
                    entries.append((hf_name(rule), tuple(reversed(shape)) if rule.transpose else shape,
                                    _torch_dtype(weights.get_slice(rule.ours).get_dtype())))
                with TensorFileWriter(tmp / "model.safetensors", entries, metadata={"format": "pt"}) as writer:
                    for done, rule in enumerate(rules, 1):
                        tensor = weights.get_tensor(rule.ours)
                        writer.write(hf_name(rule), tensor.t().contiguous() if rule.transpose else tensor)
                        if progress:
                            progress({"completed": done, "total": len(rules), "unit": "tensors"})
        except SafetensorError as exc:
            raise damaged_file_error(path / MODEL_FILE, exc) from None
        spec = saved["tokenizer"]
        eot_id = spec.get("eot_id")
        tokenizer_written, skipped = False, None
        if is_hf_spec(spec):
            for file in tokenizer_files(spec_folder(spec, path)):
                shutil.copyfile(file, tmp / file.name)
            tokenizer_written = True
        else:
            try:
                tokenizer_written = write_hf_tokenizer(from_spec(spec, path), tmp, config.context_length)
            except TokenizerError as exc:  # e.g. an encoding whose file is not cached offline: export the model
                skipped = str(exc)
        (tmp / "config.json").write_text(json.dumps(hf_gpt2_config(config, eot_id, dtype), indent=2) + "\n")
        (tmp / "generation_config.json").write_text(json.dumps(
            {"bos_token_id": eot_id, "eos_token_id": eot_id}, indent=2) + "\n")
        if out.exists():
            out.rmdir()
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {"path": str(out), "checkpoint": str(path), "tokenizer": spec.get("name") if tokenizer_written else None,
            "tokenizer_skipped": skipped,
            "dtype": dtype, "tensors": len(rules)}


def _torch_dtype(code: str):
    import torch

    return {"F32": torch.float32, "BF16": torch.bfloat16, "F16": torch.float16, "F64": torch.float64}[code]
