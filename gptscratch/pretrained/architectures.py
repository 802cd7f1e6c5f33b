"""The architectures gptscratch converts and exports, by Hugging Face `model_type`, and how one is chosen.

    gpt2    GPT2LMHeadModel    gpt2.py    learned positions, LayerNorm, GELU MLP, Conv1D weights
    phi     PhiForCausalLM     phi.py     parallel blocks, partial RoPE, untied head with a bias
    llama   LlamaForCausalLM   llama.py   RMSNorm, SwiGLU, GQA, RoPE (+ llama3 scaling); TinyLlama, SmolLM2
    qwen2   Qwen2ForCausalLM   llama.py   the Llama block with q/k/v biases (Qwen2, Qwen2.5)
    qwen3   Qwen3ForCausalLM   llama.py   the Llama block with QK-norm (Qwen3)

Each is data (tensor_rules.Architecture): a config mapping and a tensor table that convert.py runs forwards and
export.py backwards. Converting picks the class from config.json's `model_type`; exporting picks the first class
that can express every decision of the ModelConfig. What none can — sinusoidal positions; learned positions with
RMSNorm, a gated MLP, GQA or QK-norm; post-norm; attention-only blocks; a logit soft cap; embedding scaling;
a head bias on a tied model — is refused with what the closest class would need.
"""

from __future__ import annotations

from gptscratch.errors import UsageError
from gptscratch.model.config import ModelConfig

from .gpt2 import GPT2
from .llama import LLAMA, QWEN2, QWEN3
from .phi import PHI
from .tensor_rules import Architecture

ARCHITECTURES: dict[str, Architecture] = {a.name: a for a in (GPT2, PHI, LLAMA, QWEN2, QWEN3)}


def architecture_for(hf_config: dict, where: str) -> Architecture:
    """The Architecture of an HF config.json, or a UsageError naming what is supported."""
    model_type = hf_config.get("model_type")
    if model_type not in ARCHITECTURES:
        supported = ", ".join(f"{a.name} ({a.hf_class})" for a in ARCHITECTURES.values())
        raise UsageError(f"{where} is a {model_type or 'unknown'} model "
                         f"({', '.join(hf_config.get('architectures') or ['no architectures listed'])}); "
                         f"gptscratch converts only {supported}")
    return ARCHITECTURES[model_type]


def export_architecture(config: ModelConfig, where: str) -> Architecture:
    """The transformers class that expresses every decision of `config`, or a one-line UsageError naming what
    the closest one would need."""
    problems = {name: arch.export_problems(config) for name, arch in ARCHITECTURES.items()}
    for name, missing in problems.items():
        if not missing:
            return ARCHITECTURES[name]
    closest = min(problems, key=lambda name: len(problems[name]))
    raise UsageError(f"cannot export {where}: no transformers class has its architecture; the closest, "
                     f"{ARCHITECTURES[closest].hf_class}, needs {'; '.join(problems[closest])}")
