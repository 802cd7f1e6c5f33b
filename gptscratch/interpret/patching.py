"""Activation patching: which activations carry the information that makes the answer right?

Take two prompts of the same length that differ in one detail (Meng et al. 2022 "ROME"; Wang et al. 2022 "IOI"):

    clean      "When John and Mary went to the store, John gave a drink to"   → " Mary"
    corrupted  "When John and Mary went to the store, Mary gave a drink to"   → " John"

and a metric, the logit difference at the last position: LD = logit(target) − logit(foil). Run the clean prompt
and cache its activations; then re-run the corrupted prompt many times, each time overwriting ONE activation
with its clean value. If that activation alone carries what differs, the answer comes back:

    recovered = (LD_patched − LD_corrupted) / (LD_clean − LD_corrupted)     0 = corrupted, 1 (100%) = clean

This is real patching (a forward pass per patched activation), not an attribution estimate: patching every
position of blocks.0.hook_resid_pre recovers exactly 100% and patching nothing exactly 0%
(tests/test_interpret.py). Two sweeps, as TransformerLens's `patching.get_act_patch_resid_pre` and
`get_act_patch_attn_head_out_all_pos`:

    residual stream   rows "0_pre" … "{L-1}_pre", "final_post" × every position: patch hook_resid_pre
                      (hook_resid_post of the last block) at one position
    attention heads   layer × head: patch that head's hook_z (its output before W_O) at every position

Each row of a sweep is one batched forward pass (the batch holds one patched copy per position or head), so
the cost is (L + 1) + L forward passes of batch T or nh.

Assessment of |recovered| (the seeds' colour-coded scale): ≥ 50% Critical, ≥ 20% Important, ≥ 5% Moderate,
else Minimal. Negative values mean the clean activation pushes *away* from the clean answer; the assessment
uses the magnitude and the sign stays in the number.

The foil: when none is given, the competing answer is the corrupted run's most likely token other than the
target (`choose_foil`) — what the model says instead once the detail changed, so LD measures that switch.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import UsageError
from .cache import run_with_cache, run_with_hooks
from .tokens import first_token

ASSESSMENT = (("Critical", 0.5), ("Important", 0.2), ("Moderate", 0.05))
NOISY_GAP = 0.1      # clean and corrupted LD closer than this: the recovered fractions mostly amplify noise


def assess(recovered: float) -> str:
    """Critical / Important / Moderate / Minimal from the magnitude of the recovered fraction."""
    for label, threshold in ASSESSMENT:
        if abs(recovered) >= threshold:
            return label
    return "Minimal"


def logit_difference(logits, target: int, foil: int):
    """logit(target) − logit(foil) at the last position → (B,)."""
    last = logits[:, -1, :].float()
    return last[:, target] - last[:, foil]


def resid_names(n_layer: int) -> tuple[list[str], list[str]]:
    """(hook names, labels) of the residual rows: each block's input, then the last block's output."""
    names = [f"blocks.{layer}.hook_resid_pre" for layer in range(n_layer)]
    names.append(f"blocks.{n_layer - 1}.hook_resid_post")
    labels = [f"{layer}_pre" for layer in range(n_layer)] + ["final_post"]
    return names, labels


@dataclass
class PatchExample:
    """One patching question: two prompts of equal length and the two answers the logit difference compares."""

    name: str
    description: str
    clean: list
    corrupted: list
    target: int
    foil: int


def choose_foil(model, corrupted, target: int, vocab_size: int) -> int:
    """The corrupted run's most likely next token other than `target` (ids ≥ vocab_size, padding, excluded)."""
    logits = run_with_hooks(model, corrupted, {})[0, -1, :vocab_size]
    ranked = logits.argsort(descending=True)[:2].tolist()
    return ranked[0] if ranked[0] != target else ranked[1]


def custom_example(model, tokenizer, clean: list[int], corrupted: list[int], target: str,
                   foil: str | None = None) -> PatchExample:
    """A PatchExample from a person's prompts (ids) and answers (text: the first token of each counts); without
    `foil`, choose_foil picks it. UsageError when target and foil start with the same token."""
    target_id = first_token(tokenizer, target)[0]
    if foil is None:
        foil_id = choose_foil(model, corrupted, target_id, tokenizer.vocab_size)
    else:
        foil_id = first_token(tokenizer, foil)[0]
    if foil_id == target_id:
        raise UsageError("--target and --foil start with the same token; "
                         "choose answers that differ in their first token")
    return PatchExample("custom", "", clean, corrupted, target_id, foil_id)


@dataclass
class PatchingResult:
    clean_tokens: list
    corrupted_tokens: list
    target: int
    foil: int
    clean_logit_diff: float
    corrupted_logit_diff: float
    resid_labels: list
    resid: list            # [S][T] recovered fraction per residual row and position
    heads: list            # [L][nh] recovered fraction per head (all positions patched)

    def to_dict(self) -> dict:
        return dict(self.__dict__)

    @property
    def noisy(self) -> bool:
        """True when LD clean and LD corrupted are under NOISY_GAP apart: the percentages then mostly amplify
        noise, and prompts whose answers the model actually tells apart are needed."""
        return abs(self.clean_logit_diff - self.corrupted_logit_diff) < NOISY_GAP

    def assessment(self) -> dict:
        """{"resid": [S][T], "heads": [L][nh]} of assess() labels, shaped like the two sweeps."""
        return {"resid": [[assess(v) for v in row] for row in self.resid],
                "heads": [[assess(v) for v in row] for row in self.heads]}

    def strongest(self, top: int | None = None) -> list[tuple[float, str, int | None]]:
        """Every patched activation as (recovered, activation label, position or None for a head patched at all
        positions), largest |recovered| first (ties in sweep order); the first `top` of them when given."""
        cells = [(v, label, p) for label, row in zip(self.resid_labels, self.resid) for p, v in enumerate(row)]
        cells += [(v, f"L{layer}H{h}", None) for layer, row in enumerate(self.heads) for h, v in enumerate(row)]
        cells.sort(key=lambda cell: abs(cell[0]), reverse=True)
        return cells if top is None else cells[:top]


def _prepare(model, clean, corrupted):
    import torch

    clean = torch.as_tensor(clean, dtype=torch.long).flatten()
    corrupted = torch.as_tensor(corrupted, dtype=torch.long).flatten()
    if clean.numel() != corrupted.numel():
        raise UsageError(f"the clean prompt has {clean.numel()} tokens and the corrupted one {corrupted.numel()}; "
                         "patching position by position needs equal lengths: swap in words with the same token count")
    if clean.numel() == 0:
        raise UsageError("the prompts are empty; give a clean and a corrupted prompt")
    return clean, corrupted


def _recovered(value, corrupted: float, clean: float):
    return (value - corrupted) / (clean - corrupted)


def baseline(model, clean, corrupted, target: int, foil: int, names=None):
    """Clean run (cached) and corrupted run → (clean cache, LD clean, LD corrupted). UsageError if LD is equal."""
    clean, corrupted = _prepare(model, clean, corrupted)
    clean_logits, cache = run_with_cache(model, clean, names)
    clean_diff = float(logit_difference(clean_logits, target, foil)[0])
    corrupted_diff = float(logit_difference(run_with_hooks(model, corrupted, {}), target, foil)[0])
    if abs(clean_diff - corrupted_diff) < 1e-6:
        raise UsageError(f"the clean and corrupted prompts give the same logit difference ({clean_diff:.4g}), so "
                         "nothing can be recovered; corrupt the detail the answer depends on, or change --target/--foil")
    return cache, clean_diff, corrupted_diff


def patch_recovered(model, clean, corrupted, target: int, foil: int, names, positions=None) -> float:
    """Recovered fraction when every activation in `names` (at `positions`, default all) takes its clean value.

    With names=[] nothing is patched (exactly 0); with ["blocks.0.hook_resid_pre"] everything downstream is the
    clean run (exactly 1).
    """
    names = list(names)
    cache, clean_diff, corrupted_diff = baseline(model, clean, corrupted, target, foil, names)
    clean_ids, corrupted_ids = _prepare(model, clean, corrupted)

    def patch(activation, name):
        patched = activation.clone()
        where = slice(None) if positions is None else list(positions)
        patched[:, where] = cache[name][:, where]
        return patched

    logits = run_with_hooks(model, corrupted_ids, {name: patch for name in names})
    return _recovered(float(logit_difference(logits, target, foil)[0]), corrupted_diff, clean_diff)


def activation_patching(model, clean, corrupted, target: int, foil: int, heads: bool = True,
                        progress=None) -> PatchingResult:
    """The residual (rows × positions) and per-head sweeps described in the module docstring."""
    import torch

    clean, corrupted = _prepare(model, clean, corrupted)
    n_layer, n_head, length = model.config.n_layer, model.config.n_head, clean.numel()
    names, labels = resid_names(n_layer)
    z_names = [f"blocks.{layer}.attn.hook_z" for layer in range(n_layer)] if heads else []
    cache, clean_diff, corrupted_diff = baseline(model, clean, corrupted, target, foil, names + z_names)
    total = len(names) + len(z_names)
    done = 0

    def tick(what: str):
        nonlocal done
        done += 1
        if progress is not None:
            progress({"completed": done, "total": total, "unit": "passes", "patching": what})

    rows = torch.arange(length)
    resid = []
    for name, label in zip(names, labels):
        def patch_one_position(activation, hook, name=name):     # batch row p patches position p
            patched = activation.clone()
            patched[rows, rows] = cache[name][0].to(patched.dtype)
            return patched
        logits = run_with_hooks(model, corrupted.expand(length, length), {name: patch_one_position})
        resid.append(_recovered(logit_difference(logits, target, foil), corrupted_diff, clean_diff).tolist())
        tick(label)

    head_grid = []
    heads_index = torch.arange(n_head)
    for layer, name in enumerate(z_names):
        def patch_one_head(z, hook, name=name):                  # batch row h patches head h everywhere
            patched = z.clone()
            patched[heads_index, :, heads_index] = cache[name][0].transpose(0, 1).to(patched.dtype)
            return patched
        logits = run_with_hooks(model, corrupted.expand(n_head, length), {name: patch_one_head})
        head_grid.append(_recovered(logit_difference(logits, target, foil), corrupted_diff, clean_diff).tolist())
        tick(f"layer {layer} heads")
    return PatchingResult(clean.tolist(), corrupted.tolist(), int(target), int(foil), clean_diff, corrupted_diff,
                          labels, resid, head_grid)
