"""The logit lens: what the model would predict if it stopped after each layer.

nostalgebraist (2020, "interpreting GPT: the logit lens") noticed that the residual stream of a pre-norm
transformer lives in one space from the first block to the last, so the output layer can read it anywhere:

    logits_ℓ = lm_head(final_norm(resid_ℓ))        for resid_ℓ = 0_pre (embeddings), 1_pre, …, final_post

This is TransformerLens's `cache.accumulated_resid(apply_ln=True)` followed by the unembedding (with the
output bias when the model has one, e.g. Phi-2): the final norm's statistics are recomputed for every entry.
The last entry, final_post, is exactly what the model computes, so its logits equal the model's own output
(tests/test_interpret.py checks it). Watching the correct next token's rank climb layer by layer shows where a
prediction forms; early layers of GPT-2 mostly predict the current token or a frequent continuation.

For each layer and position the result keeps the top-k tokens with probabilities and the correct token's
rank (1 = the top prediction; tied tokens count as ranked above it, so a flat distribution ranks V) and
probability. The correct token at position t is the input token t+1; at the last position it is `target`
when given. Cost: one forward pass plus S·T·V for the S re-read layers.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import UsageError
from .cache import run_with_cache


@dataclass
class LogitLens:
    """Layer-by-layer predictions for one token sequence. S = layers read (labels), T = positions, k = top-k."""

    labels: list[str]            # "0_pre", …, "final_post" (TransformerLens's accumulated_resid labels)
    tokens: list[int]            # the input ids (T,)
    targets: list[int | None]    # the correct next token per position (None where unknown)
    top_ids: list                # [S][T][k] token ids, most likely first
    top_probs: list              # [S][T][k]
    target_rank: list            # [S][T] 1-based rank of the correct token (None where unknown)
    target_prob: list            # [S][T]

    def layer_index(self, label: str) -> int:
        return self.labels.index(label)

    def position(self, position: int | None = None) -> int:
        """The position to detail: `position` (negative counts from the end; UsageError outside the text), or by
        default the last one whose correct next token is known (the last position when none is)."""
        length = len(self.tokens)
        if position is None:
            known = [i for i, t in enumerate(self.targets) if t is not None]
            position = known[-1] if known else length - 1
        if not -length <= position < length:
            raise UsageError(f"--position {position} is outside the {length} tokens of the text")
        return position % length

    def to_dict(self, decode=None) -> dict:
        """JSON-ready; `decode(id) -> str` adds readable token strings."""
        data = {"labels": self.labels, "tokens": self.tokens, "targets": self.targets, "top_ids": self.top_ids,
                "top_probs": self.top_probs, "target_rank": self.target_rank, "target_prob": self.target_prob}
        if decode is not None:
            data["token_strings"] = [decode(t) for t in self.tokens]
            data["top_strings"] = [[[decode(t) for t in row] for row in layer] for layer in self.top_ids]
        return data


def lens_logits(model, cache, incl_mid: bool = False):
    """Logits read from every accumulated-residual entry → ((S, B, T, V), labels)."""
    import torch

    stack, labels = cache.accumulated_resid(incl_mid=incl_mid, apply_ln=True)
    with torch.no_grad():
        return model.lm_head(stack), labels


def logit_lens(model, ids, k: int = 5, target: int | None = None, incl_mid: bool = False,
               vocab_limit: int | None = None) -> LogitLens:
    """Run the logit lens on one sequence `ids` (list or (T,) tensor of token ids).

    vocab_limit: the tokenizer's vocabulary size. Trained models pad their output layer to a multiple of 64
    (faster matmuls); those padding ids are no tokens, so predictions and ranks are taken over the first
    vocab_limit logits only.

    target: the correct token after the last position (e.g. the answer to a prompt); without it the last
    position has no correct token. incl_mid adds the mid-block residual of sequential blocks (UsageError for
    parallel / attention-only blocks, which have none).
    """
    import torch

    ids = torch.as_tensor(ids, dtype=torch.long).flatten()
    if ids.numel() == 0:
        raise ValueError("logit_lens needs at least one token")
    names = [f"blocks.{i}.hook_resid_pre" for i in range(model.config.n_layer)]
    names.append(f"blocks.{model.config.n_layer - 1}.hook_resid_post")
    if incl_mid:
        names += [f"blocks.{i}.hook_resid_mid" for i in range(model.config.n_layer)]
    _, cache = run_with_cache(model, ids, names)

    tokens = ids.tolist()
    targets: list[int | None] = tokens[1:] + [target]
    known = torch.tensor([t is not None for t in targets])
    target_ids = torch.tensor([t if t is not None else 0 for t in targets], device=ids.device)
    stack, labels = cache.accumulated_resid(incl_mid=incl_mid, apply_ln=True)
    top_ids, top_probs, ranks, probs = [], [], [], []
    with torch.no_grad():
        for entry in stack:                                   # one layer at a time: (1, T, d) → (T, V)
            logits = model.lm_head(entry)[0].float()[:, :vocab_limit]
            log_probs = torch.log_softmax(logits, dim=-1)
            values, indices = log_probs.topk(min(k, logits.size(-1)), dim=-1)
            target_logit = logits.gather(-1, target_ids.to(logits.device)[:, None])
            rank = (logits >= target_logit).sum(-1)      # ties count against: a flat distribution ranks V
            prob = log_probs.gather(-1, target_ids.to(logits.device)[:, None])[:, 0].exp()
            top_ids.append(indices.tolist())
            top_probs.append(values.exp().tolist())
            ranks.append([int(r) if ok else None for r, ok in zip(rank.tolist(), known.tolist())])
            probs.append([float(p) if ok else None for p, ok in zip(prob.tolist(), known.tolist())])
    return LogitLens(labels=labels, tokens=tokens, targets=targets, top_ids=top_ids, top_probs=top_probs,
                     target_rank=ranks, target_prob=probs)
