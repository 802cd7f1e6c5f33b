"""Loss, perplexity and bits per byte of a token stream under a model, with a sliding window for long texts.

For tokens t₀ … t_{N−1} the model predicts each t_i from the tokens before it; the loss is the mean negative
log-likelihood in nats over the N − 1 predictions:

    loss = −(1 / (N−1)) Σ_i ln p(t_i | t_<i)        perplexity = e^loss
    bits per byte = Σ_i −ln p(t_i | t_<i) / ln 2 / (UTF-8 bytes of t₁ … t_{N−1})

Perplexity is per *token*, so two tokenizers are not comparable by it (a byte model predicts ~4× more, easier
tokens than a BPE model). Bits per byte divides the same total information by the bytes of text instead, and is
comparable across tokenizers. A text file is scored with an end-of-text token in front, so its first token is
predicted too and every byte of the file counts.

Sliding window: the model sees at most `context` tokens. Windows of `context` tokens start every `stride`
tokens; each window scores only the targets that no earlier window scored (its last `stride`), so every token is
scored once and, after the first window, with at least context − stride tokens before it. stride = context is
the fast, disjoint split (early tokens of each window see little); a smaller stride is slower (context / stride
forward passes per token) and closer to the model's true loss. Default stride: context / 2.
Cost: ≈ 2 · parameters · N · context / stride FLOPs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F


@dataclass
class PerplexityResult:
    tokens: int              # predictions scored
    bytes: int | None        # UTF-8 bytes of the scored tokens (end-of-text excluded); None when unknown
    loss: float              # mean nats per predicted token
    perplexity: float
    bits_per_byte: float | None
    context: int
    stride: int
    windows: int

    def to_dict(self) -> dict:
        return asdict(self)


def window_plan(num_tokens: int, context: int, stride: int) -> list[tuple[int, int, int]]:
    """(begin, end, first_scored) per window: inputs tokens[begin:end], targets tokens[begin+1:end+1],
    scoring targets whose index is > first_scored (indices into the token stream)."""
    plan, scored_until = [], 0
    last_target = num_tokens - 1
    for begin in range(0, max(last_target, 0), stride):
        end = min(begin + context, last_target)
        plan.append((begin, end, scored_until))
        scored_until = end
        if end == last_target:
            break
    return plan


def byte_lengths(tokenizer, ids) -> dict[int, int]:
    """UTF-8 byte length of each distinct token id (end-of-text and BOS count 0 bytes: they are not text)."""
    markers = {tokenizer.eot_id, tokenizer.start_id}
    return {int(t): 0 if int(t) in markers else len(tokenizer.decode_bytes([int(t)]))
            for t in set(int(i) for i in ids)}


@torch.inference_mode()
def evaluate_tokens(model, tokens: Sequence[int], *, tokenizer=None, context: int | None = None,
                    stride: int | None = None, batch_size: int = 4,
                    progress: Callable[[dict], None] | None = None) -> PerplexityResult:
    """Score `tokens` (1-D) under `model`; see the module docstring. tokenizer enables bits per byte."""
    tokens = torch.as_tensor(list(tokens) if not hasattr(tokens, "__array__") else tokens, dtype=torch.long)
    if tokens.numel() < 2:
        raise ValueError("need at least 2 tokens to score a prediction")
    context = min(context or model.config.context_length, model.config.context_length)
    stride = stride or max(context // 2, 1)
    if not 0 < stride <= context:
        raise ValueError(f"stride must be in 1..{context} (got {stride})")
    model.eval()
    device = model.tok_embed.weight.device
    plan = window_plan(tokens.numel(), context, stride)
    total_nll, scored = 0.0, 0
    for first in range(0, len(plan), batch_size):
        group = plan[first: first + batch_size]
        x = torch.zeros(len(group), context, dtype=torch.long)
        y = torch.full((len(group), context), -1, dtype=torch.long)
        for row, (begin, end, scored_until) in enumerate(group):
            width = end - begin
            x[row, :width] = tokens[begin:end]
            targets = tokens[begin + 1: end + 1].clone()
            targets[: scored_until - begin] = -1          # already scored by an earlier window
            y[row, :width] = targets
        logits, _ = model(x.to(device))
        nll = F.cross_entropy(logits.float().flatten(0, 1), y.to(device).flatten(), ignore_index=-1,
                              reduction="sum")
        total_nll += nll.item()
        scored += int((y >= 0).sum())
        if progress is not None:
            progress({"completed": min(first + batch_size, len(plan)), "total": len(plan), "unit": "windows"})
    loss = total_nll / scored
    num_bytes = bits = None
    if tokenizer is not None:
        counts = torch.bincount(tokens[1:])
        lengths = byte_lengths(tokenizer, counts.nonzero().flatten().tolist())
        num_bytes = sum(int(counts[t]) * n for t, n in lengths.items())
        bits = total_nll / math.log(2) / num_bytes if num_bytes else None
    return PerplexityResult(tokens=scored, bytes=num_bytes, loss=loss, perplexity=math.exp(loss),
                            bits_per_byte=bits, context=context, stride=stride, windows=len(plan))


def text_tokens(tokenizer, text: str) -> list[int]:
    """A text scored on its own: the start id first (BOS, or end-of-text), so the first real token is predicted
    too."""
    return [tokenizer.start_id, *tokenizer.encode(text)]
