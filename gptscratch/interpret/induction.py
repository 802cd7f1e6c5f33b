"""Induction heads: find the heads that complete "… A B … A" with "B", and the heads that feed them.

An induction head (Elhage et al. 2021; Olsson et al. 2022, "In-context learning and induction heads") attends
from the current token A to the token *after* an earlier A, and copies it. It needs to know, at every key
position, which token came before — written there by a *previous-token head* in an earlier layer (K-
composition). Two heads in two layers: the smallest circuit that learns from the context.

The test is TransformerLens's: feed sequences of random tokens repeated twice, [bos] S S with |S| = n. The
first copy is unpredictable (loss ≈ ln V); on the second copy a model with induction heads predicts almost
perfectly. Measured here:

    induction score of head h = mean over the second copy's positions q of A_h[q, q − n + 1]
        (the diagonal stripe TransformerLens's demo averages; we keep only the second-copy rows it covers)
    in-context loss drop      = mean loss on copy 1 − mean loss on copy 2 (both predicting S[1:] ; nats)
    feeders of an induction head = earlier-layer heads with a high previous-token score (TransformerLens's
        detection score on the same sequences) whose zero-ablation (hook_z of that head set to 0) lowers the
        induction head's score: causal evidence of K-composition, not a weight-based guess.

Cost: one forward pass for the scores, one more per candidate feeder (at most `max_feeders`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import UsageError
from .cache import run_with_cache, run_with_hooks
from .heads import detection_patterns, detection_score

FEEDER_PREVIOUS_SCORE = 0.3   # a candidate feeder attends at least this much to the previous token
INDUCTION_SCORE_MIN = 0.2     # below this a head is not treated as an induction head (no feeder search)


def copy_length(context_length: int, bos: bool = True, length: int | None = None) -> int:
    """|S| for the [bos] S S probe: `length`, or by default min(50, (context − bos) / 2); UsageError when two
    copies of it do not fit the context or it is under 2."""
    offset = 1 if bos else 0
    length = length if length is not None else min(50, (context_length - offset) // 2)
    if length < 2 or offset + 2 * length > context_length:
        raise UsageError(f"--length must be in 2..{(context_length - offset) // 2} for a context of "
                         f"{context_length} (two copies must fit)")
    return length


def repeated_random_tokens(vocab_size: int, length: int, batch: int = 4, seed: int = 0, bos_id: int | None = None,
                           exclude=()):
    """(batch, [1 +] 2·length) LongTensor: random tokens S (uniform over the vocabulary minus `exclude`) twice.

    Within one copy the tokens are distinct when the vocabulary allows it, so every query in the second copy has
    exactly one earlier occurrence: with a small vocabulary (a character model) repeats inside S would make the
    "token after the earlier occurrence" ambiguous. With GPT-2's 50k tokens this changes nothing.
    """
    import torch

    allowed = torch.tensor([t for t in range(vocab_size) if t not in set(exclude)])
    if allowed.numel() < 2 or length < 2:
        raise ValueError("repeated sequences need a vocabulary of at least 2 tokens and length ≥ 2")
    generator = torch.Generator().manual_seed(seed)
    if length <= allowed.numel():
        picks = torch.stack([torch.randperm(allowed.numel(), generator=generator)[:length] for _ in range(batch)])
    else:
        picks = torch.randint(0, allowed.numel(), (batch, length), generator=generator)
    half = allowed[picks]
    tokens = torch.cat([half, half], dim=1)
    if bos_id is not None:
        tokens = torch.cat([torch.full((batch, 1), bos_id), tokens], dim=1)
    return tokens


def induction_stripe(patterns, length: int, offset: int):
    """Mean of A[q, q − n + 1] over second-copy queries. patterns (L, B, nh, T, T) → (L, nh)."""
    import torch

    queries = torch.arange(offset + length, offset + 2 * length, device=patterns.device)
    stripe = patterns[..., queries, queries - length + 1]          # (L, B, nh, n)
    return stripe.mean(-1).mean(1)


def copy_losses(logits, tokens, length: int, offset: int):
    """Per-position loss (T−1,) averaged over the batch, and the mean losses on copy 1 and copy 2."""
    import torch

    log_probs = torch.log_softmax(logits.float()[:, :-1], dim=-1)
    loss = -log_probs.gather(-1, tokens[:, 1:, None].to(log_probs.device))[..., 0].mean(0)     # (T−1,)
    first = loss[offset:offset + length - 1].mean()            # predicting S[1..n-1] in copy 1
    second = loss[offset + length:offset + 2 * length - 1].mean()
    return loss, float(first), float(second)


@dataclass
class Feeder:
    layer: int
    head: int
    previous_token_score: float
    score_after_ablation: float   # the induction head's score with this head's output zeroed

    @property
    def name(self) -> str:
        return f"L{self.layer}H{self.head}"


@dataclass
class InductionHead:
    layer: int
    head: int
    score: float
    previous_token_score: float
    feeders: list = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"L{self.layer}H{self.head}"


@dataclass
class InductionReport:
    length: int
    batch: int
    scores: list                 # [L][nh] induction score
    previous_token_scores: list  # [L][nh] TransformerLens previous-token score on the same sequences
    loss_first_copy: float
    loss_second_copy: float
    position_loss: list          # mean loss at each position (T−1)
    ranked: list                 # InductionHead, best first

    @property
    def loss_drop(self) -> float:
        return self.loss_first_copy - self.loss_second_copy

    def to_dict(self) -> dict:
        heads = [{"name": h.name, "layer": h.layer, "head": h.head, "score": h.score,
                  "previous_token_score": h.previous_token_score,
                  "feeders": [{"name": f.name, "layer": f.layer, "head": f.head,
                               "previous_token_score": f.previous_token_score,
                               "score_after_ablation": f.score_after_ablation} for f in h.feeders]}
                 for h in self.ranked]
        return {"length": self.length, "batch": self.batch, "loss_first_copy": self.loss_first_copy,
                "loss_second_copy": self.loss_second_copy, "loss_drop": self.loss_drop, "scores": self.scores,
                "previous_token_scores": self.previous_token_scores, "position_loss": self.position_loss,
                "ranked": heads}


def _zero_head(head: int):
    def ablate(z, name):
        z = z.clone()
        z[:, :, head] = 0.0
        return z
    return ablate


def find_induction_heads(model, tokens, length: int, offset: int, top: int = 3, max_feeders: int = 4,
                         progress=None) -> InductionReport:
    """Score every head on repeated sequences `tokens` ((B, offset + 2·length), see repeated_random_tokens).

    The `top` best heads (those scoring ≥ INDUCTION_SCORE_MIN) get their feeders: up to `max_feeders` earlier-layer heads with a
    previous-token score ≥ FEEDER_PREVIOUS_SCORE (or the best such head when none reaches it), each
    zero-ablated in turn while the induction head's score is re-measured.
    """
    import torch

    tokens = torch.as_tensor(tokens, dtype=torch.long)
    n_layer = model.config.n_layer
    names = [f"blocks.{layer}.attn.hook_pattern" for layer in range(n_layer)]
    logits, cache = run_with_cache(model, tokens, names)
    patterns = torch.stack([cache[name] for name in names]).float()   # (L, B, nh, T, T)
    scores = induction_stripe(patterns, length, offset)
    previous = detection_score(patterns, detection_patterns(tokens.to(patterns.device))["previous_token"])
    position_loss, first, second = copy_losses(logits, tokens, length, offset)

    order = sorted(((float(scores[l, h]), l, h) for l in range(n_layer) for h in range(scores.size(1))), reverse=True)
    ranked = [InductionHead(l, h, s, float(previous[l, h])) for s, l, h in order]
    for rank, induction_head in enumerate(h for h in ranked[:top] if h.score >= INDUCTION_SCORE_MIN):
        if progress is not None:
            progress({"message": f"ablating the feeders of {induction_head.name}", "completed": rank, "total": top})
        earlier = [(float(previous[l, h]), l, h) for l in range(induction_head.layer) for h in range(scores.size(1))]
        candidates = sorted(earlier, reverse=True)
        chosen = [c for c in candidates if c[0] >= FEEDER_PREVIOUS_SCORE][:max_feeders] or candidates[:1]
        for prev_score, layer, head in chosen:
            pattern_name = f"blocks.{induction_head.layer}.attn.hook_pattern"
            captured = {}
            run_with_hooks(model, tokens, {
                f"blocks.{layer}.attn.hook_z": _zero_head(head),
                pattern_name: lambda a, name: captured.__setitem__("pattern", a.float()),
            })
            after = induction_stripe(captured["pattern"][None], length, offset)[0, induction_head.head]
            induction_head.feeders.append(Feeder(layer, head, prev_score, float(after)))
        induction_head.feeders.sort(key=lambda f: f.score_after_ablation)
    return InductionReport(length=length, batch=tokens.size(0), scores=scores.tolist(),
                           previous_token_scores=previous.tolist(), loss_first_copy=first, loss_second_copy=second,
                           position_loss=position_loss.tolist(), ranked=ranked)
