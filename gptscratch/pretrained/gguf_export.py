"""gptscratch checkpoint → one GGUF file that llama.cpp loads (and so Ollama, LM Studio, llama-cpp-python, ...).

GGUF is llama.cpp's single-file format: a header of typed key/value metadata (the architecture's shape, the
tokenizer), a table of tensor names, shapes and types, then the tensors, each aligned to 32 bytes. llama.cpp
has one hand-written graph per architecture name, and finds each weight by a fixed name.

Which graph: the HF export's choice, reused (architectures.export_architecture picks the transformers class that
expresses every decision of the ModelConfig), then renamed — gpt2 → "gpt2", phi → "phi2", llama → "llama",
qwen2 → "qwen2", qwen3 → "qwen3". llama.cpp's graphs hard-code a little more than transformers' classes, so a few
more configurations are refused in one line (`gguf_problems`): GPT-2 and Phi-2 run GELU and nothing else, the
Llama family SiLU, Qwen2/3 no rope scaling, Qwen3 no attention biases.

Which names: the HF tensor table run backwards (tensor_rules.py, export.hf_tensors: q|k|v split where the HF
class keeps them apart), then gguf-py's own HF → GGUF name map, the table llama.cpp's converter uses:

    ours                           HF (tensor_rules)                        GGUF
    tok_embed.weight               wte / model.embed_tokens                 token_embd.weight
    pos_embed.table.weight         wpe                                      position_embd.weight (GPT-2)
    blocks.{i}.ln_1.weight         h.{i}.ln_1 / input_layernorm             blk.{i}.attn_norm.weight
    blocks.{i}.attn.qkv.weight     h.{i}.attn.c_attn                        blk.{i}.attn_qkv.weight (GPT-2)
                                   self_attn.{q,k,v}_proj                   blk.{i}.attn_{q,k,v}.weight
    blocks.{i}.attn.proj.weight    attn.c_proj / dense / o_proj             blk.{i}.attn_output.weight
    blocks.{i}.mlp.{gate,up,down}  mlp.c_fc, c_proj / fc1, fc2 / *_proj      blk.{i}.ffn_{gate,up,down}.weight
    ln_f, lm_head                  ln_f / model.norm, lm_head               output_norm, output (untied only)

Layout: GGUF lists a shape innermost-first, so nn.Linear's [out, in] row-major weight is written as it is (ggml
reads {in, out}); GPT-2's Conv1D transpose is an HF quirk and is skipped. A tied head is written once — llama.cpp
reuses token_embd when `output` is absent.

RoPE: gptscratch rotates the two *halves* of a head, (x[i], x[i + r/2]) (kernels.rotate, GPT-NeoX's layout).
llama.cpp's Phi-2 and Qwen graphs do the same (ROPE_TYPE_NEOX); its Llama graph rotates *adjacent* pairs
(x[2i], x[2i+1]), Meta's original layout. So for "llama" the rows of each q and k head are permuted, half-split
→ interleaved: new row 2i + j = old row j·(hs/2) + i, j ∈ {0, 1} (what llama.cpp's own converter does to HF Llama).
Queries and keys move together, so every dot product q·k — all attention sees — is unchanged; v is untouched.
Llama 3 rope scaling becomes llama.cpp's `rope_freqs` tensor: θ_i / θ'_i per pair, from embeddings.py's formula.

Precision (--dtype): f32, f16 or bf16 for the 2-D weights; norms and biases (1-D) stay f32, as llama.cpp's own
converter keeps them. llama.cpp itself computes in f32 but rounds to the weights' type where it multiplies (f16
or bf16 activations against f16 or bf16 weights), keeps its KV cache in f16 by default and evaluates GELU from an
f16 table, so its logits differ from ours by rounding (tests/test_gguf.py measures how much).

Tokenizer: gguf_tokenizer.py (which tokenizers, and the refusals). Written atomically: a temporary file renamed.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable
from pathlib import Path

from gptscratch.errors import UsageError

LLAMA_CPP_ARCHS = {"gpt2": "gpt2", "phi": "phi2", "llama": "llama", "qwen2": "qwen2", "qwen3": "qwen3"}
DTYPES = {"f32": "f32", "float32": "f32", "f16": "f16", "float16": "f16", "bf16": "bf16", "bfloat16": "bf16"}
_STORED = {"F32": "f32", "F16": "f16", "BF16": "bf16"}
_BYTES = {"f32": 4, "f16": 2, "bf16": 2}
_NUMPY = {"f32": "float32", "f16": "float16", "bf16": "int16"}   # bf16 travels as its 16 bits


def check_gguf_dtype(dtype: str) -> str:
    """"auto" or a GGUF tensor type (f32, f16, bf16; float32, float16, bfloat16 too); UsageError otherwise."""
    key = dtype.strip().lower()
    if key != "auto" and key not in DTYPES:
        raise UsageError(f"unknown GGUF dtype {dtype!r}; choose auto (the checkpoint's own), f32, f16 or bf16")
    return "auto" if key == "auto" else DTYPES[key]


def gguf_problems(hf_name: str, config) -> list[str]:
    """What llama.cpp's graph for HF class `hf_name` hard-codes that `config` lacks (empty: it can run it).

    gptscratch's "gelu" (erf) is accepted for GPT-2 and Phi: llama.cpp's tanh form is within 4.8e-4 of it, less
    than llama.cpp's own GELU rounding (an f16 table: 2^-11 relative on input and output)."""
    act = config.activation
    gelu, silu = (act in ("gelu", "gelu_tanh"), f"GELU (has {act})"), (act == "silu", f"SiLU (has {act})")
    unscaled = (config.rope_scaling == "none", "unscaled rotary positions (has llama3 scaling)")
    checks = {"gpt2": [gelu], "phi": [gelu], "llama": [silu], "qwen2": [silu, unscaled],
              "qwen3": [silu, unscaled, (not config.has_attention_out_bias, "no attention biases")]}
    return [needed for ok, needed in checks[hf_name] if not ok]


def permute_for_rope(weight, heads: int):
    """Rows of each head from gptscratch's half-split rotary layout to llama.cpp Llama's interleaved pairs.

    weight (heads·hs, ...) → same shape; within a head (hs, ...) → (2, hs/2, ...) → swap → (hs/2, 2, ...), so the
    row pairs (i, i + hs/2) that rotate together become the adjacent rows (2i, 2i + 1). Works for biases (1-D)."""
    rows = weight.shape[0]
    return (weight.reshape(heads, 2, rows // heads // 2, *weight.shape[1:]).transpose(1, 2).reshape(weight.shape))


def rope_factors(config):
    """llama.cpp's rope_freqs for Llama 3 scaling: θ_i / θ'_i (r/2,), fp32, so that its θ_i / factor_i is ours."""
    from gptscratch.model.embeddings import RotaryEmbedding

    llama3 = (config.rope_scaling_factor, config.rope_low_freq_factor, config.rope_high_freq_factor,
              config.rope_original_context)
    plain = RotaryEmbedding(config.rotary_dims, config.rope_base).inverse_frequencies()
    return plain / RotaryEmbedding(config.rotary_dims, config.rope_base, llama3).inverse_frequencies()


def _as_array(tensor, kind: str):
    """The numpy array of a tensor written as kind (f32 / f16 / bf16; rounded to nearest even)."""
    import torch

    if kind == "bf16":   # numpy has no bfloat16: the 16 bits as int16, typed BF16 in the header
        return tensor.to(torch.bfloat16).contiguous().view(torch.int16).numpy()
    return tensor.to(torch.float16 if kind == "f16" else torch.float32).contiguous().numpy()


def _gguf():
    try:
        import gguf
    except ImportError:
        raise UsageError("GGUF export needs the gguf package (llama.cpp's gguf-py): pip install gguf") from None
    return gguf


def _plan(arch, config, weights, read, kind: str) -> list[tuple[str, list[int], str, Callable]]:
    """(GGUF name, shape, tensor type, function giving the tensor) for every tensor of the file, in order.

    Names: our tensor → its HF pieces (export.hf_tensors) → gguf-py's HF → GGUF name map for the architecture.
    Shapes are known from the safetensors header, so the file's tensor table is written before any tensor is
    read; a stacked q|k|v is read once for its three pieces (read_once)."""
    from .export import hf_tensors

    gguf = _gguf()
    model_arch = {name: key for key, name in gguf.MODEL_ARCH_NAMES.items()}[LLAMA_CPP_ARCHS[arch.name]]
    name_map = gguf.get_tensor_name_map(model_arch, config.n_layer)
    read_once = functools.lru_cache(maxsize=1)(read)

    def piece(ours: str, rows: tuple | None, heads: int) -> Callable:
        def tensor():
            whole = read_once(ours)
            part = whole[rows[0]:rows[1]] if rows else whole
            return permute_for_rope(part, heads) if heads else part
        return tensor

    plan = []
    for rule in arch.expanded_rules(config):
        shape = list(weights.get_slice(rule.ours).get_shape())
        for hf_name, _, rows in hf_tensors(rule, tuple(shape), config):
            name = name_map.get_name(hf_name, try_suffixes=(".weight", ".bias"))
            if name is None:
                raise ValueError(f"gguf-py has no {LLAMA_CPP_ARCHS[arch.name]} tensor name for {hf_name}")
            heads = 0   # llama's q and k rows go from half-split to interleaved rotary pairs
            if arch.name == "llama" and hf_name.endswith(("q_proj.weight", "q_proj.bias")):
                heads = config.n_head
            elif arch.name == "llama" and hf_name.endswith(("k_proj.weight", "k_proj.bias")):
                heads = config.kv_heads
            piece_shape = [rows[1] - rows[0], *shape[1:]] if rows else shape
            plan.append((name, piece_shape, kind if len(shape) > 1 else "f32", piece(rule.ours, rows, heads)))
    if config.rope_scaling == "llama3":
        factors = rope_factors(config)
        plan.append(("rope_freqs.weight", list(factors.shape), "f32", lambda: factors))
    return plan


def _write_metadata(writer, config, saved: dict, kind: str, name: str) -> None:
    """The general.* and {arch}.* keys llama.cpp reads for this architecture."""
    gguf = _gguf()
    recorded = (saved.get("pretrained") or {}).get("hf_config") or {}
    context = config.context_length   # a rotary model's own context, before a conversion's cap (as export.py)
    if config.positional == "rope" and (recorded.get("max_position_embeddings") or 0) > context:
        context = recorded["max_position_embeddings"]
    writer.add_name(name)
    writer.add_file_type({"f32": gguf.LlamaFileType.ALL_F32, "f16": gguf.LlamaFileType.MOSTLY_F16,
                          "bf16": gguf.LlamaFileType.MOSTLY_BF16}[kind])
    writer.add_vocab_size(config.vocab_size)
    writer.add_context_length(context)
    writer.add_embedding_length(config.d_model)
    writer.add_block_count(config.n_layer)
    writer.add_feed_forward_length(config.hidden_dim)
    writer.add_head_count(config.n_head)
    writer.add_head_count_kv(config.kv_heads)
    if config.norm == "rmsnorm":
        writer.add_layer_norm_rms_eps(config.layer_norm_eps)
    else:
        writer.add_layer_norm_eps(config.layer_norm_eps)
    if config.positional == "rope":
        writer.add_rope_dimension_count(config.rotary_dims)
        writer.add_rope_freq_base(config.rope_base)


def export_gguf(checkpoint, out_file, dtype: str = "auto", progress=None) -> dict:
    """Write checkpoint (path, run or pretrained name) as one GGUF file; returns what was written.

    dtype: "auto" (the checkpoint's stored precision), f32, f16 or bf16 (check_gguf_dtype). UsageError, before
    anything is written, for an architecture or tokenizer llama.cpp cannot run as gptscratch does, or an
    existing `out_file`."""
    import numpy as np

    from gptscratch.checkpoint import read_config, resolve_checkpoint
    from gptscratch.model import ModelConfig
    from gptscratch.tokenizers import from_spec

    from .architectures import export_architecture
    from .export import checkpoint_weights
    from .gguf_tokenizer import gguf_vocab, write_vocab

    gguf = _gguf()
    kind = check_gguf_dtype(dtype)
    path = resolve_checkpoint(checkpoint)
    saved = read_config(path)
    config = ModelConfig.from_dict(saved["model"])
    arch = export_architecture(config, str(path))
    problems = gguf_problems(arch.name, config)
    if problems:
        raise UsageError(f"cannot export {path} to GGUF: llama.cpp's {LLAMA_CPP_ARCHS[arch.name]} graph needs "
                         f"{'; '.join(problems)}")
    recorded = (saved.get("pretrained") or {}).get("hf_config") or {}
    eos, bos = recorded.get("eos_token_id"), recorded.get("bos_token_id")
    vocab = gguf_vocab(from_spec(saved["tokenizer"], path), config.vocab_size,
                       eos_id=eos if isinstance(eos, int) else None, bos_id=bos if isinstance(bos, int) else None)
    out = Path(out_file).expanduser()
    if out.exists():
        raise UsageError(f"{out} already exists; choose a new file name or delete it")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        with checkpoint_weights(path, saved) as (weights, read):
            if kind == "auto":
                kind = _STORED.get(weights.get_slice("tok_embed.weight").get_dtype(), "f32")
            plan = _plan(arch, config, weights, read, kind)
            writer = gguf.GGUFWriter(tmp, LLAMA_CPP_ARCHS[arch.name])
            try:
                _write_metadata(writer, config, saved, kind, path.name)
                write_vocab(writer, vocab)
                for name, shape, tensor_kind, _ in plan:   # the header: names, shapes, types and offsets
                    writer.add_tensor_info(name, shape, np.dtype(_NUMPY[tensor_kind]),
                                           math.prod(shape) * _BYTES[tensor_kind],
                                           raw_dtype=gguf.GGMLQuantizationType.BF16 if tensor_kind == "bf16" else None)
                writer.write_header_to_file()
                writer.write_kv_data_to_file()
                writer.write_ti_data_to_file()
                for done, (_, _, tensor_kind, tensor) in enumerate(plan, 1):   # then the data, in the same order
                    writer.write_tensor_data(_as_array(tensor(), tensor_kind))
                    if progress:
                        progress({"completed": done, "total": len(plan), "unit": "tensors"})
            finally:
                writer.close()
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return {"path": str(out), "checkpoint": str(path), "architecture": LLAMA_CPP_ARCHS[arch.name],
            "tokenizer": saved["tokenizer"].get("name"), "pre_tokenizer": vocab.pre, "dtype": kind,
            "tensors": len(plan), "bytes": out.stat().st_size}
