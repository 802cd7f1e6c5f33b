"""Back-of-the-envelope numbers for a run before it starts (`--dry-run`, the preflight disk check, MFU).

With N parameters (tied output layer counted once), L layers, width d, context T, vocabulary V, micro-batch B:

    training FLOPs per token   ≈ 6·N' + 12·L·d·T      N' = N without the position table (a lookup, no matmul);
                                                      6 = 2 (multiply-add) × 3 (forward + two backward matmuls);
                                                      12·L·d·T: the attention scores QKᵀ and the mix A·V
                                                      (Kaplan et al. 2020, as in nanoGPT's estimate_mfu)
    training memory (bytes)    ≈ 16·N                 fp32 weights 4N + gradients 4N + AdamW moments 8N
                               − 4·N_h with Muon      Muon keeps one moment (4 bytes) for the blocks' N_h matrix
                                                      entries, where AdamW keeps two
                               + L·B·T·d·k            activations kept for backward; k ≈ 34 per 16-bit element
                                                      (Korthikanti et al. 2022), doubled in fp32
                               + B·T·V·(10 or 12)     logits, their fp32 copy and gradient (the big one at 100k V)
    checkpoint (bytes)         ≈ 12·N (− 4·N_h)       weights 4N + optimizer moments (+ a few KB of JSON)

All are estimates (±50% for memory: allocator slack and attention kernels vary); they are for choosing a batch
size and a budget, not for promises.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RunEstimate:
    parameters: int
    non_embedding_parameters: int
    tokens_per_step: int
    tokens_per_micro_batch: int
    flops_per_token: float
    memory_bytes: float
    checkpoint_bytes: float

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def count_parameters(model_config) -> tuple[int, int, int]:
    """(all, non-embedding, Muon-managed) parameters of a ModelConfig, built on the meta device (no memory used).
    Muon-managed: the entries of the 2-D matrices inside the blocks (optimizer.split_parameters)."""
    import torch

    from ..model import GPT
    from .optimizer import split_parameters

    with torch.device("meta"):
        model = GPT(model_config)
    hidden = sum(p.numel() for p in split_parameters(model)[0])
    return model.num_parameters(), model.num_parameters(non_embedding=True), hidden


def flops_per_token(model_config, parameters: int) -> float:
    c = model_config
    position_table = c.context_length * c.d_model if c.positional == "learned" else 0
    return 6.0 * (parameters - position_table) + 12.0 * c.n_layer * c.d_model * c.context_length


def estimate_run(model_config, batch_size: int, grad_accum: int, precision: str = "fp32",
                 optimizer: str = "adamw") -> RunEstimate:
    total, non_embedding, hidden = count_parameters(model_config)
    one_moment = hidden if optimizer == "muon" else 0  # Muon: momentum only, no second moment
    c = model_config
    tokens_micro = batch_size * c.context_length
    per_element = 34 if precision == "bf16" else 68
    activations = c.n_layer * tokens_micro * c.d_model * per_element
    logits = tokens_micro * c.vocab_size * (10 if precision == "bf16" else 12)
    return RunEstimate(
        parameters=total, non_embedding_parameters=non_embedding,
        tokens_per_step=tokens_micro * grad_accum, tokens_per_micro_batch=tokens_micro,
        flops_per_token=flops_per_token(c, total),
        memory_bytes=16.0 * total - 4.0 * one_moment + activations + logits,
        checkpoint_bytes=12.0 * total - 4.0 * one_moment + 64 * 1024,
    )


def peak_flops(device: str, precision: str) -> float | None:
    """Nominal peak FLOP/s used for MFU: a CUDA device's dense peak where known, None otherwise.

    CPU peaks depend on cores × vector width × clock; benchmarks/train_throughput.py measures a matmul
    instead (a measured peak is fairer than a data-sheet number on a shared, virtualised CPU)."""
    if not device.startswith("cuda"):
        return None
    import torch

    name = torch.cuda.get_device_name(device)
    table = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L4": 121e12, "4090": 165e12, "A10": 125e12}
    for key, bf16_peak in table.items():
        if key in name:
            return bf16_peak if precision == "bf16" else bf16_peak / 2  # tf32-ish
    return None


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def _vocabulary(config) -> tuple[int, str]:
    """(vocab size, tokenizer name) of the run without tokenizing a large corpus (dry runs must be instant)."""
    from ..tokenizers import get_tokenizer

    if config.stage == "sft":  # conversations: the starting model's tokenizer, plus the chat tokens sft adds
        from ..chat import needs_chat_tokens
        from ..tokenizers.chat import ChatTokenizer
        from .sft import base_tokenizer

        tokenizer = base_tokenizer(config)
        if needs_chat_tokens(tokenizer, config.chat_template):
            tokenizer = ChatTokenizer(tokenizer)
        return tokenizer.vocab_size, tokenizer.name
    try:
        from ..data.dataset import find_dataset_folder, open_dataset

        folder = find_dataset_folder(config.data)
    except Exception:  # noqa: BLE001 - the data package's internals may move; fall back to the tokenizer
        folder = None
    name = config.tokenizer
    if name is None and folder is None:
        from ..data.sources import parse_source

        name = parse_source(config.data).default_tokenizer
    if folder is not None:
        tokenizer = open_dataset(str(folder)).tokenizer
    elif name == "char":  # the vocabulary *is* the corpus's characters: prepare (small) text
        from ..data import resolve_dataset

        tokenizer = resolve_dataset(config.data, "char").tokenizer
    else:
        tokenizer = get_tokenizer(name)
    return tokenizer.vocab_size, tokenizer.name


def plan_run(config, device: str = "cpu") -> dict:
    """Everything `--dry-run` shows: effective config, model, tokens per step, memory, FLOPs; trains nothing."""
    import math

    from ..errors import UsageError
    from ..model import ModelConfig, model_config, pad_vocab
    from .precision import resolve_precision

    if config.init_from:
        from .. import checkpoint as ckpt

        saved = ckpt.read_config(ckpt.resolve_checkpoint(config.init_from))
        model = ModelConfig.from_dict(saved["model"])
        vocab, tokenizer = model.vocab_size, saved["tokenizer"].get("name")
    else:
        vocab, tokenizer = _vocabulary(config)
        try:
            model = model_config(config.size, pad_vocab(vocab), **config.model)
        except (KeyError, ValueError, TypeError) as exc:
            raise UsageError(f"invalid model settings: {exc.args[0] if exc.args else exc}") from None
    precision = resolve_precision(config.precision, device, model, config.batch_size)
    estimate = estimate_run(model, config.batch_size, config.grad_accum, precision, config.optimizer)
    steps = config.max_steps
    if config.max_tokens:
        by_tokens = math.ceil(config.max_tokens / estimate.tokens_per_step)
        steps = min(steps, by_tokens) if steps else by_tokens
    plan = {"config": config.to_dict(), "device": device, "precision": precision, "tokenizer": tokenizer,
            "vocab_size": vocab, "model": model.to_dict(), **estimate.to_dict(), "steps": steps}
    if steps:
        plan["tokens"] = steps * estimate.tokens_per_step
        plan["total_flops"] = plan["tokens"] * estimate.flops_per_token
    return plan
