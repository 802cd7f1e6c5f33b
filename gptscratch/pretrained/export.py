"""gptscratch checkpoint → Hugging Face folder that `transformers.AutoModelForCausalLM.from_pretrained` loads.

The conversion table run backwards (tensor_rules.py): the class is the first of architectures.py that expresses
every decision of the checkpoint's ModelConfig — GPT-2 (learned positions, LayerNorm, GELU MLP), Phi (parallel
blocks, partial RoPE), Llama / Qwen2 / Qwen3 (RMSNorm, gated MLP, RoPE, GQA; q/k/v biases → Qwen2, QK-norm →
Qwen3) — and a configuration none of them has is refused in one line with what the closest class would need.
Each rule writes its tensor back under the HF name: Linear weights transposed into GPT-2's Conv1D [in, out],
a stacked q|k|v split at (n_head·hs, n_kv·hs, n_kv·hs), GPT-2's `transformer.` prefix added as save_pretrained
writes it, the tied head stored once. Streamed tensor by tensor like the import.

A converted model goes back with what it came with: its original max_position_embeddings (a conversion may have
capped the context it records, convert.py), its bos/eos ids and its generation_config.json.

A LoRA checkpoint (gptscratch/model/lora.py) is exported merged: each adapted weight is written as
W + (α/r)·B A as it streams past, so transformers needs no adapter support (`merge_checkpoint` writes the same
folding as an ordinary gptscratch checkpoint: `gptscratch pretrained merge`).

Tokenizer: `AutoTokenizer.from_pretrained(out_dir)` works too. A checkpoint whose tokenizer came from files
(hf-bpe: vocab.json + merges.txt; hf-json: tokenizer.json) gets them copied unchanged; tiktoken, byte and char
tokenizers are written as a `tokenizer.json` that gives the same ids (gptscratch/pretrained/hf_tokenizer.py). A chat
model (`train sft`) also gets its chat template, and `<|end|>` among generation_config's eos_token_id, so
transformers' `generate` stops at the end of a reply as gptscratch does.
"""

from __future__ import annotations

import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path

from gptscratch.errors import TokenizerError, UsageError

from .tensor_rules import Rule, stacked_widths


def hf_tensors(rule: Rule, shape: tuple[int, ...], config) -> list[tuple[str, tuple[int, ...], tuple | None]]:
    """The HF tensors one of our tensors (of `shape`) becomes: (name, shape, rows (start, end) or None)."""
    if len(rule.theirs) == 1:
        return [(rule.theirs[0], tuple(reversed(shape)) if rule.transpose else shape, None)]
    pieces, start = [], 0
    for name, width in zip(rule.theirs, stacked_widths(config, len(rule.theirs))):
        pieces.append((name, (width, *shape[1:]), (start, start + width)))
        start += width
    return pieces


def hf_config(arch, config, saved: dict, dtype: str, eot_id: int | None) -> tuple[dict, dict]:
    """(config.json, generation_config.json) of the export; a converted model's own values where it has them."""
    pretrained = saved.get("pretrained") or {}
    recorded = pretrained.get("hf_config") or {}
    bos = recorded.get("bos_token_id", eot_id)
    eos = recorded.get("eos_token_id", eot_id)
    fields = {"architectures": [arch.hf_class], "model_type": arch.name, "vocab_size": config.vocab_size,
              **arch.to_hf_config(config), "tie_word_embeddings": config.tie_weights, "bos_token_id": bos,
              "eos_token_id": eos, "dtype": dtype, "torch_dtype": dtype}
    source_context = recorded.get("max_position_embeddings")  # a rotary model's context, before the cap
    if "max_position_embeddings" in fields and source_context and source_context > config.context_length:
        fields["max_position_embeddings"] = source_context
    generation = pretrained.get("generation_config") or {"bos_token_id": bos, "eos_token_id": eos}
    return fields, generation


@contextmanager
def checkpoint_weights(path: Path, saved: dict):
    """A checkpoint's model.safetensors, open: yields (safe_open handle, read) where read(name) is our tensor with
    its LoRA adapter folded in, W' = W + (α/r)·B A in W's dtype (model/lora.py). A truncated or garbage file is a
    one-line CheckpointError, not a traceback. Shared by the HF and GGUF exports."""
    from safetensors import SafetensorError, safe_open

    from gptscratch.checkpoint import MODEL_FILE, damaged_file_error
    from gptscratch.checkpoint_adapters import lora_entry, read_adapters
    from gptscratch.model.lora import fold

    lora = lora_entry(saved, path)
    adapters = read_adapters(path, saved)   # LoRA (small: r·(in + out) per adapted layer), or {}
    try:
        with safe_open(str(path / MODEL_FILE), framework="pt") as weights:
            def read(name: str):
                tensor, layer = weights.get_tensor(name), name.removesuffix(".weight")
                if f"{layer}.lora_A" in adapters:
                    lora_A, lora_B = adapters[f"{layer}.lora_A"], adapters[f"{layer}.lora_B"]
                    tensor = fold(tensor, lora_A, lora_B, lora["alpha"] / lora_A.size(0))
                return tensor

            yield weights, read
    except SafetensorError as exc:
        raise damaged_file_error(path / MODEL_FILE, exc) from None


def export_hf(checkpoint, out_dir, progress=None) -> dict:
    """Write checkpoint (path, run or pretrained name) as an HF model folder; returns what was written."""
    from gptscratch.checkpoint import read_config, resolve_checkpoint
    from gptscratch.model import ModelConfig
    from gptscratch.tokenizers import from_spec
    from gptscratch.tokenizers.files import own_hf_files, spec_files

    from .architectures import export_architecture
    from .hf_tokenizer import write_hf_tokenizer
    from .tensorfile import TensorFileWriter

    path = resolve_checkpoint(checkpoint)
    saved = read_config(path)
    config = ModelConfig.from_dict(saved["model"])
    arch = export_architecture(config, str(path))
    out = Path(out_dir).expanduser()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f"{out} already exists and is not empty; choose a new folder or delete it")
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)

    def hf_name(name: str) -> str:  # GPT-2's head sits outside the `transformer.` prefix, as save_pretrained writes it
        return name if name.startswith("lm_head") or not arch.strip_prefix else arch.strip_prefix + name

    try:
        rules = arch.expanded_rules(config)
        with checkpoint_weights(path, saved) as (weights, read):
            first = weights.get_slice("tok_embed.weight")
            dtype = {"F32": "float32", "BF16": "bfloat16", "F16": "float16"}.get(first.get_dtype(), "float32")
            plan = [(rule, hf_tensors(rule, tuple(weights.get_slice(rule.ours).get_shape()), config))
                    for rule in rules]
            entries = [(hf_name(name), shape, _torch_dtype(weights.get_slice(rule.ours).get_dtype()))
                       for rule, pieces in plan for name, shape, _ in pieces]
            with TensorFileWriter(tmp / "model.safetensors", entries, metadata={"format": "pt"}) as writer:
                for done, (rule, pieces) in enumerate(plan, 1):
                    tensor = read(rule.ours)
                    for name, _, rows in pieces:
                        piece = tensor[rows[0]:rows[1]] if rows else tensor
                        writer.write(hf_name(name), piece.t().contiguous() if rule.transpose else piece)
                    if progress:
                        progress({"completed": done, "total": len(plan), "unit": "tensors"})
        spec = saved["tokenizer"]
        tokenizer_written, skipped = False, None
        if own_hf_files(spec):  # a model's own tokenizer files (hf-bpe, hf-json): copied unchanged
            for file in spec_files(spec, path):
                shutil.copyfile(file, tmp / file.name)
            tokenizer_written = True
        else:
            try:
                tokenizer_written = write_hf_tokenizer(from_spec(spec, path), tmp, config.context_length)
            except TokenizerError as exc:  # e.g. an encoding whose file is not cached offline: export the model
                skipped = str(exc)
        fields, generation = hf_config(arch, config, saved, dtype, spec.get("eot_id"))
        if spec.get("name") == "chat" and "<|end|>" in spec.get("special", ()):  # a reply ends at <|end|> too
            end = spec["base"]["vocab_size"] + spec["special"].index("<|end|>")
            generation["eos_token_id"] = [end, generation["eos_token_id"]]
        (tmp / "config.json").write_text(json.dumps(fields, indent=2) + "\n")
        (tmp / "generation_config.json").write_text(json.dumps(generation, indent=2) + "\n")
        if out.exists():
            out.rmdir()
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {"path": str(out), "checkpoint": str(path), "architecture": arch.hf_class,
            "tokenizer": spec.get("name") if tokenizer_written else None, "tokenizer_skipped": skipped,
            "dtype": dtype, "tensors": len(entries)}


# config.json keys write_checkpoint writes itself; every other top-level key (where the weights came from, ...)
# travels with a merged checkpoint.
_OWN_KEYS = ("format", "format_version", "gptscratch_version", "created", "model", "tokenizer", "training", "lora")


def merge_checkpoint(checkpoint, out_dir) -> dict:
    """Write a LoRA checkpoint (path, run or name) as an ordinary checkpoint at `out_dir`: every adapter folded
    into its weight, W' = W + (α/r)·B A (model/lora.py), no adapter.safetensors and no "lora" entry — usable by
    every command, converter and exporter. UsageError for a checkpoint without adapters or an unusable --out."""
    from safetensors.torch import save_file

    from gptscratch.checkpoint import (FORMAT, check_checkpoint_target, load_checkpoint, model_tensors, read_config,
                                       resolve_checkpoint, write_checkpoint)
    from gptscratch.checkpoint_adapters import lora_entry
    from gptscratch.model.lora import merge_lora

    path = resolve_checkpoint(checkpoint)
    saved = read_config(path)
    lora = lora_entry(saved, path)
    if lora is None:
        raise UsageError(f"{path} has no LoRA adapters to merge (its config.json has no \"lora\" entry); it is an "
                         "ordinary checkpoint already")
    out = check_checkpoint_target(out_dir)  # before loading: --out may only be new, empty or a checkpoint
    if out.resolve() == path.resolve():
        raise UsageError(f"--out {out} is the LoRA checkpoint itself; write the merged model to a new folder")
    loaded = load_checkpoint(path)   # in the stored dtype; fold() adds B A in fp32
    merge_lora(loaded.model)
    extra = {key: value for key, value in saved.items() if key not in _OWN_KEYS}
    extra["merged_lora"] = {**lora, "from": str(path)}
    written = write_checkpoint(out, loaded.model.config.to_dict(), loaded.tokenizer.spec(),
                               lambda p: save_file(model_tensors(loaded.model), str(p), metadata={"format": FORMAT}),
                               training=saved.get("training"), extra=extra)
    return {"path": str(written), "checkpoint": str(path), "lora": lora,
            "parameters": loaded.model.num_parameters()}


def _torch_dtype(code: str):
    import torch

    return {"F32": torch.float32, "BF16": torch.bfloat16, "F16": torch.float16, "F64": torch.float64}[code]
