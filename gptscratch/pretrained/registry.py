"""The pretrained models gptscratch knows how to fetch: where they live on the Hub, and what they cost.

Pure data and path logic (no torch, no network), so `gptscratch pretrained list` is instant. Parameter counts
are exact (tests rebuild each model on the meta device and count); download sizes are those of the Hub's
safetensors files (GPT-2's include the causal-mask buffers `attn.bias`, 4 MiB per layer, which we drop), exact
for `gpt2` and rounded for the others (bf16 models: 2 bytes per parameter plus a header of a few tens of KB).
`context_length` is the model's own (max_position_embeddings); a conversion records at most CONVERTED_CONTEXT
of it unless asked for more (gptscratch/pretrained/convert.py says why).

A model converted by `gptscratch pretrained download NAME` is a checkpoint folder at
`pretrained_root()/NAME/` — the name then works wherever a checkpoint is accepted.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

from gptscratch.errors import CheckpointNotFoundError, GptScratchError, UsageError
from gptscratch.paths import pretrained_root

CONVERTED_CONTEXT = 8192   # the longest context a conversion records by default (convert.py)


@dataclass(frozen=True)
class PretrainedModel:
    name: str
    repo_id: str
    architecture: str          # key of gptscratch.pretrained.architectures.ARCHITECTURES
    parameters: int
    n_layer: int
    d_model: int
    n_head: int
    context_length: int
    vocab_size: int
    download_bytes: int        # safetensors weights on the Hub (tokenizer + config add ~3 MB)
    source_dtype: str
    license: str
    description: str
    revision: str = "main"
    n_kv_head: int | None = None   # key/value heads when fewer than n_head (grouped-query attention)
    d_ff: int | None = None        # MLP hidden width when not 4 × d_model
    tie_weights: bool = True       # LM head shares the token embedding

    def to_dict(self) -> dict:
        return asdict(self)

    def tuned(self, name: str, repo_id: str, description: str) -> "PretrainedModel":
        """The same weights' shape and size under another name: an -Instruct release of this base model."""
        return replace(self, name=name, repo_id=repo_id, description=description)


_SMOLLM2_135M = PretrainedModel("smollm2-135m", "HuggingFaceTB/SmolLM2-135M", "llama",
                                134_515_008, 30, 576, 9, 8192, 49152, 269_000_000, "bfloat16", "Apache-2.0",
                                "Hugging Face SmolLM2 135M (2024): Llama block, GQA 9/3, 2T tokens", n_kv_head=3,
                                d_ff=1536)
_SMOLLM2_360M = PretrainedModel("smollm2-360m", "HuggingFaceTB/SmolLM2-360M", "llama",
                                361_821_120, 32, 960, 15, 8192, 49152, 724_000_000, "bfloat16", "Apache-2.0",
                                "Hugging Face SmolLM2 360M (2024): Llama block, GQA 15/5, 4T tokens", n_kv_head=5,
                                d_ff=2560)
_QWEN25_05B = PretrainedModel("qwen2.5-0.5b", "Qwen/Qwen2.5-0.5B", "qwen2",
                              494_032_768, 24, 896, 14, 32768, 151936, 988_000_000, "bfloat16", "Apache-2.0",
                              "Alibaba Qwen2.5 0.5B (2024): q/k/v biases, GQA 14/2, 151k vocabulary", n_kv_head=2,
                              d_ff=4864)

REGISTRY: dict[str, PretrainedModel] = {m.name: m for m in [
    PretrainedModel("gpt2", "openai-community/gpt2", "gpt2", 124_439_808, 12, 768, 12, 1024, 50257,
                    548_105_171, "float32", "MIT", "OpenAI GPT-2 small (2019), WebText"),
    PretrainedModel("gpt2-medium", "openai-community/gpt2-medium", "gpt2", 354_823_168, 24, 1024, 16, 1024, 50257,
                    1_520_000_000, "float32", "MIT", "OpenAI GPT-2 medium"),
    PretrainedModel("gpt2-large", "openai-community/gpt2-large", "gpt2", 774_030_080, 36, 1280, 20, 1024, 50257,
                    3_250_000_000, "float32", "MIT", "OpenAI GPT-2 large"),
    PretrainedModel("gpt2-xl", "openai-community/gpt2-xl", "gpt2", 1_557_611_200, 48, 1600, 25, 1024, 50257,
                    6_430_000_000, "float32", "MIT", "OpenAI GPT-2 XL"),
    PretrainedModel("phi-2", "microsoft/phi-2", "phi", 2_779_683_840, 32, 2560, 32, 2048, 51200,
                    5_560_000_000, "float16", "MIT", "Microsoft Phi-2 (2023): parallel blocks, partial RoPE",
                    tie_weights=False),
    _SMOLLM2_135M,
    _SMOLLM2_135M.tuned("smollm2-135m-instruct", "HuggingFaceTB/SmolLM2-135M-Instruct",
                        "SmolLM2 135M tuned for chat (ChatML)"),
    _SMOLLM2_360M,
    _SMOLLM2_360M.tuned("smollm2-360m-instruct", "HuggingFaceTB/SmolLM2-360M-Instruct",
                        "SmolLM2 360M tuned for chat (ChatML)"),
    _QWEN25_05B,
    _QWEN25_05B.tuned("qwen2.5-0.5b-instruct", "Qwen/Qwen2.5-0.5B-Instruct", "Qwen2.5 0.5B tuned for chat (ChatML)"),
    PretrainedModel("tinyllama-1.1b-chat", "TinyLlama/TinyLlama-1.1B-Chat-v1.0", "llama", 1_100_048_384, 22, 2048,
                    32, 2048, 32000, 2_200_000_000, "bfloat16", "Apache-2.0",
                    "TinyLlama 1.1B Chat v1.0 (2024): Llama 2 block and tokenizer, GQA 32/4, untied head",
                    n_kv_head=4, d_ff=5632, tie_weights=False),
]}


def get_model(name: str) -> PretrainedModel:
    if name not in REGISTRY:
        raise UsageError(f"unknown pretrained model {name!r}; choose one of {', '.join(REGISTRY)} "
                         "(or convert a local folder with `gptscratch pretrained convert HF_DIR`)")
    return REGISTRY[name]


def explain_missing_checkpoint(error: GptScratchError) -> GptScratchError:
    """A checkpoint name that is not found but names a supported model means "download it first".

    gptscratch/checkpoint.py cannot know the supported models (it sits below this package), so it raises a
    plain CheckpointNotFoundError; every command that accepts a checkpoint passes its errors through here (the
    CLI does, for all of them). Any other error is returned unchanged."""
    if isinstance(error, CheckpointNotFoundError) and error.name in REGISTRY:
        return CheckpointNotFoundError(f"pretrained model {error.name} is not downloaded yet; run `gptscratch "
                                       f"pretrained download {error.name}` first", name=error.name)
    return error


def converted_path(name: str) -> Path:
    return pretrained_root() / name


def is_converted(name: str) -> bool:
    path = converted_path(name)
    return (path / "config.json").is_file() and (path / "model.safetensors").is_file()


def memory_gb(parameters: int) -> dict[str, float]:
    """Rough memory needs in GB (10^9 bytes) from bytes per parameter, activations and KV cache not included.

    generate: bf16/fp16 weights (2 B) or fp32 (4 B). Full fine-tuning with AdamW in mixed precision keeps fp32
    weights, fp32 gradients and two fp32 moments: 16 B per parameter, plus activations.
    """
    return {"generate_bf16": round(parameters * 2 / 1e9, 1), "generate_fp32": round(parameters * 4 / 1e9, 1),
            "finetune_adamw_mixed": round(parameters * 16 / 1e9, 1)}


def list_models() -> list[dict]:
    """One row per supported model, with whether it is converted (ready) and where, and the context a
    conversion records by default."""
    return [{**m.to_dict(), "converted": is_converted(m.name), "path": str(converted_path(m.name)),
             "converted_context": min(m.context_length, CONVERTED_CONTEXT), "memory_gb": memory_gb(m.parameters)}
            for m in REGISTRY.values()]
