"""Attention patterns: score every head against known shapes and name what it does.

A head's pattern A (Tq × Tk, rows sum to 1) says where each query position reads from. Known head types have a
recognisable *detection pattern* D (1 where that type attends, 0 elsewhere, lower-triangular):

    previous-token   D[i, i-1] = 1                         (Olsson et al. 2022; half of an induction circuit)
    first-token      D[i, 0] = 1 for i ≥ 1                 ("attention sink": parks attention on the start)
    current-token    D[i, i] = 1 for i ≥ 1                 (reads its own position)
    duplicate-token  D[i, j] = 1 if token j == token i, j < i
    induction        D[i, j] = 1 if token j-1 == token i, j ≤ i   (attends to what followed the earlier copy)

Score (TransformerLens `detect_head`, error_measure="mul", no exclusions):

    score = Σ A ⊙ D / Σ A          = the fraction of all attention that lands where D says

The previous-token, duplicate-token and induction patterns are TransformerLens's; first-token and
current-token follow the same recipe (row 0 is left out: it can only attend to itself). Rows where D is
empty cap the score below 1: on text without repeats a perfect duplicate head still scores ~0. So the
*classification* uses the share = Σ A ⊙ D / (number of rows where D has a 1), i.e. the mean attention on
D among the positions where the behaviour is possible, and calls a head by the first rule that holds:

    a detection share ≥ 0.5 (the largest wins)         → previous-token / first-token / current-token /
                                                         duplicate-token / induction
    mean normalised entropy ≥ 0.85                     → uniform (averages over everything before it)
    mean largest weight ≥ 0.5                          → focused (sharp, but not at a fixed place)
    otherwise                                          → mixed

Entropy of row i: H_i = −Σ_j A[i,j] ln A[i,j] (nats); normalised by ln(i+1), its maximum (0 = one token,
1 = uniform). Reported: mean over rows i ≥ 1. Cost: one forward pass storing L·nh·T² weights.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from .cache import run_with_cache

DETECTORS = ("previous_token", "first_token", "current_token", "duplicate_token", "induction")
SHARE_THRESHOLD = 0.5
UNIFORM_ENTROPY = 0.85
FOCUSED_MAX_WEIGHT = 0.5
CLASS_NAMES = {"previous_token": "previous-token", "first_token": "first-token", "current_token": "current-token",
               "duplicate_token": "duplicate-token", "induction": "induction"}


def detection_patterns(ids):
    """Detection patterns for a batch of ids (B, T) → {detector: (B, T, T) float tensor of 0/1}."""
    import torch

    ids = torch.as_tensor(ids)
    ids = ids.unsqueeze(0) if ids.dim() == 1 else ids
    batch, length = ids.shape
    eye = torch.eye(length, device=ids.device)
    lower = torch.ones(length, length, device=ids.device).tril()
    previous = torch.zeros(length, length, device=ids.device)
    previous[1:, :-1] = torch.eye(length - 1, device=ids.device)
    first = torch.zeros(length, length, device=ids.device)
    first[1:, 0] = 1.0
    current = eye.clone()
    current[0, 0] = 0.0
    duplicate = (ids[:, :, None] == ids[:, None, :]).float() * lower * (1 - eye)      # j < i, same token
    induction = torch.zeros_like(duplicate)
    induction[:, :, 1:] = duplicate[:, :, :-1]                                         # key j where token j-1 == i
    induction = induction * lower
    expand = lambda d: d.expand(batch, length, length)  # noqa: E731
    return {"previous_token": expand(previous), "first_token": expand(first), "current_token": expand(current),
            "duplicate_token": duplicate, "induction": induction}


def detection_score(pattern, detection):
    """TransformerLens's "mul" score Σ A⊙D / Σ A. pattern (..., B, nh, T, T), detection (B, T, T) → (..., nh)."""
    hits = (pattern * detection[:, None]).sum((-2, -1)).sum(-2)
    return hits / pattern.sum((-2, -1)).sum(-2)


def detection_share(pattern, detection):
    """Mean attention on D over the rows where D is non-empty → (..., nh); NaN when no row qualifies."""
    rows = (detection.sum(-1) > 0).float().sum()
    hits = (pattern * detection[:, None]).sum((-2, -1)).sum(-2)
    return hits / rows if rows > 0 else hits * float("nan")


def entropy_stats(pattern):
    """(mean entropy in nats, mean normalised entropy, mean largest weight) over rows i ≥ 1 → each (..., nh)."""
    import torch

    rows = pattern[..., 1:, :]                                      # row 0 has one choice
    plogp = torch.where(rows > 0, rows * rows.clamp_min(1e-30).log(), torch.zeros_like(rows))
    entropy = -plogp.sum(-1)                                        # (..., B, nh, T-1)
    span = torch.arange(2, pattern.size(-1) + 1, device=pattern.device, dtype=pattern.dtype).log()
    mean = lambda x: x.mean(-1).mean(-2)  # noqa: E731 (over positions, then batch)
    return mean(entropy), mean(entropy / span), mean(rows.max(-1).values)


@dataclass
class HeadProfile:
    """What one head does on the analysed text."""

    layer: int
    head: int
    kind: str                       # previous-token, first-token, …, uniform, focused, mixed
    confidence: float               # the share (or entropy / max weight) that decided the kind
    scores: dict = field(default_factory=dict)   # TransformerLens-style detection scores per detector
    shares: dict = field(default_factory=dict)   # attention share where the behaviour is possible
    entropy: float = 0.0
    normalized_entropy: float = 0.0
    max_weight: float = 0.0

    @property
    def name(self) -> str:
        return f"L{self.layer}H{self.head}"

    def to_dict(self) -> dict:
        return {"name": self.name, **asdict(self)}


def classify(shares: dict, normalized_entropy: float, max_weight: float) -> tuple[str, float]:
    """Apply the rules of the module docstring → (kind, the number that decided it)."""
    candidates = {k: v for k, v in shares.items() if v == v and v >= SHARE_THRESHOLD}   # v == v drops NaN
    if candidates:
        best = max(candidates, key=candidates.get)
        return CLASS_NAMES[best], candidates[best]
    if normalized_entropy >= UNIFORM_ENTROPY:
        return "uniform", normalized_entropy
    if max_weight >= FOCUSED_MAX_WEIGHT:
        return "focused", max_weight
    return "mixed", max(max_weight, 0.0)


def profile_patterns(patterns, ids) -> list[HeadProfile]:
    """Profiles from stored patterns: patterns (L, B, nh, T, T), ids (B, T) → one HeadProfile per head."""
    patterns = patterns.float()
    detections = detection_patterns(ids.to(patterns.device))
    scores = {name: detection_score(patterns, det) for name, det in detections.items()}
    shares = {name: detection_share(patterns, det) for name, det in detections.items()}
    entropy, normalized, max_weight = entropy_stats(patterns)
    profiles = []
    for layer in range(patterns.size(0)):
        for head in range(patterns.size(2)):
            head_scores = {k: float(v[layer, head]) for k, v in scores.items()}
            head_shares = {k: float(v[layer, head]) for k, v in shares.items()}
            kind, confidence = classify(head_shares, float(normalized[layer, head]), float(max_weight[layer, head]))
            profiles.append(HeadProfile(layer, head, kind, confidence, head_scores,
                                        {k: (v if v == v else None) for k, v in head_shares.items()},
                                        float(entropy[layer, head]), float(normalized[layer, head]),
                                        float(max_weight[layer, head])))
    return profiles


def attention_patterns(model, ids, layers=None):
    """Every (or the chosen) layer's attention weights for ids (T,) or (B, T) → (len(layers), B, nh, T, T)."""
    import torch

    layers = list(range(model.config.n_layer)) if layers is None else list(layers)
    names = [f"blocks.{layer}.attn.hook_pattern" for layer in layers]
    _, cache = run_with_cache(model, ids, names)
    return torch.stack([cache[name] for name in names])


def analyse_heads(model, ids, layers=None) -> list[HeadProfile]:
    """Profile and classify every head of the chosen layers on `ids` ((T,) or (B, T); batches are averaged)."""
    import torch

    ids = torch.as_tensor(ids, dtype=torch.long)
    ids = ids.unsqueeze(0) if ids.dim() == 1 else ids
    if ids.size(-1) < 2:
        raise ValueError("attention analysis needs at least two tokens")
    layers = list(range(model.config.n_layer)) if layers is None else list(layers)
    profiles = profile_patterns(attention_patterns(model, ids, layers), ids)
    for profile in profiles:                               # stack index → real layer number
        profile.layer = layers[profile.layer]
    return profiles
