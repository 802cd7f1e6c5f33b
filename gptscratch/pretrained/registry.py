"""The pretrained models gptscratch knows how to fetch: where they live on the Hub, and what they cost.

Pure data and path logic (no torch, no network), so `gptscratch pretrained list` is instant. Parameter counts
are exact (tests rebuild each model on the meta device and count); download sizes are those of the Hub's
safetensors files (GPT-2's include the causal-mask buffers `attn.bias`, 4 MiB per layer, which we drop).

A model converted by `gptscratch pretrained download NAME` is a checkpoint folder at
`pretrained_root()/NAME/` — the name then works wherever a checkpoint is accepted.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from gptscratch.errors import CheckpointNotFoundError, GptScratchError, UsageError
from gptscratch.paths import pretrained_root


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

    def to_dict(self) -> dict:
        return asdict(self)


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
                    5_560_000_000, "float16", "MIT", "Microsoft Phi-2 (2023): parallel blocks, partial RoPE"),
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
    """One row per supported model, with whether it is converted (ready) and where."""
    return [{**m.to_dict(), "converted": is_converted(m.name), "path": str(converted_path(m.name)),
             "memory_gb": memory_gb(m.parameters)} for m in REGISTRY.values()]
