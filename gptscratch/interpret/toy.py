"""Train the textbook induction circuit: a 2-layer attention-only GPT that learns to copy from its context.

Why this exists: the interpretability tools need ground truth — a model with a circuit *known* to be there
because training put it there. Olsson et al. 2022 ("In-context learning and induction heads") show that 2-layer
attention-only models learn it: a layer-0 *previous-token head* writes "the token before me" into each
position, and a layer-1 *induction head* matches the current token A against that, attends to the position
after the earlier A, and copies its token (K-composition). This module trains one in under a minute of one CPU
core (figures in docs/interpret.md).

The task — which details matter, measured (notes in docs/interpret.md):

    [bos] x₁ … x_T          random tokens, drawn with replacement from ids 0 .. V−2 (V−1 is bos)
    a segment S = x[p : p+n] is copied to x[q : q+n] with q = p + n + gap,
        n ~ U{min_segment .. max_segment}, gap ≥ 1 and p random
    loss = mean CE on the copy positions (the 2nd … nth token of the second S: predictable by copying)
           + noise_weight × mean CE on every other position

- The gap and the random p, n are essential. With the copy right after S ([S S], as in the probe), a *shifted*
  circuit works as well as the textbook one: layer-0 heads at offset k and k+1 feed a layer-1 head that
  attends k tokens after the earlier occurrence. A gap of noise after the first copy breaks every shift but 1:
  the position k after S's i-th token holds S's (i+k)-th token only inside S. Without random p and n a
  fixed-offset head solves the task by position alone.
- The loss must concentrate on copy positions: with a plain mean (≈ 10 % of the positions copy) the model
  spends thousands of steps learning the unigram before the circuit starts. A small weight on the others gives
  the first copy a finite "before" loss (5-6 nats at 0.02, ln V ≈ 4.1 at 0.05 — noise tokens also repeat by
  chance, and the less they weigh the more the model bets on copying); 0.05 leaves the second copy at 0.14-0.26
  nats after 1500 steps, 0.02 at ≈ 0.04.
- Tokens are drawn *with* replacement: with every noise token distinct the non-copy loss rewards "predict a
  token not seen yet" (anti-copying), which fights the circuit's first, blurry stage; training then stalled.
- Learned positions (the TransformerLens attention-only models' choice), untied unembedding, Adam at 3e-3
  without weight decay or dropout, cosine decay to 10 %: the loss on copy positions sits near ln V for a few
  hundred steps, then drops within ~150 steps (the induction "phase change").

Cost per step: one forward/backward of a 60k-parameter model on (batch, T) = (64, 48): ~20-30 ms on one core.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ToyInductionSetup:
    """Everything that defines the run; the defaults are the measured recipe."""

    vocab_size: int = 64            # ids 0 .. 62 are tokens, 63 is bos (a char tokenizer's end-of-text id)
    context_length: int = 48
    d_model: int = 64
    n_head: int = 4
    steps: int = 1500
    batch_size: int = 64
    learning_rate: float = 3e-3
    min_lr_fraction: float = 0.1    # cosine decay ends at this fraction of the learning rate
    min_segment: int = 3
    max_segment: int = 10
    noise_weight: float = 0.02
    seed: int = 0
    probe_length: int = 10          # |S| of the held-out [bos] S S probe measured during training
    eval_every: int = 100
    stop_below: float | None = None  # stop once the probe's second-copy loss is below this (nats)

    def __post_init__(self) -> None:
        if not 2 <= self.min_segment <= self.max_segment:
            raise ValueError("segments need 2 ≤ min_segment ≤ max_segment")
        if 2 * self.max_segment + 1 > self.context_length:
            raise ValueError("two segments and a gap must fit in the context: 2·max_segment + 1 ≤ context_length")
        if 2 * self.probe_length + 1 > self.context_length:
            raise ValueError("the probe [bos] S S must fit in the context: 2·probe_length + 1 ≤ context_length")
        if self.vocab_size < 3 or min(self.steps, self.batch_size, self.eval_every) < 1:
            raise ValueError("vocab_size ≥ 3 and steps, batch_size, eval_every ≥ 1")

    @property
    def bos_id(self) -> int:
        return self.vocab_size - 1

    def model_config(self):
        from ..model import ModelConfig

        return ModelConfig(vocab_size=self.vocab_size, context_length=self.context_length, n_layer=2,
                           n_head=self.n_head, d_model=self.d_model, attention_only=True, positional="learned",
                           tie_weights=False, dropout=0.0)


def repeated_segment_batch(setup: ToyInductionSetup, generator):
    """One training batch → (tokens (B, T+1) long, copy_mask (B, T+1) bool): token t is predictable by copying.

    The model reads tokens[:, :-1] and predicts tokens[:, 1:]; copy_mask[:, 1:] marks the targets that count as
    copy positions. Layout and rationale: see the module docstring.
    """
    import torch

    B, T = setup.batch_size, setup.context_length
    tokens = torch.randint(0, setup.vocab_size - 1, (B, T + 1), generator=generator)
    tokens[:, 0] = setup.bos_id
    copy_mask = torch.zeros(B, T + 1, dtype=torch.bool)
    draw = lambda low, high: int(torch.randint(low, high + 1, (1,), generator=generator))  # noqa: E731 inclusive
    for b in range(B):
        n = draw(setup.min_segment, setup.max_segment)
        gap = draw(1, T - 2 * n)                      # positions 1 .. T hold the random body
        p = draw(1, T - 2 * n - gap + 1)
        q = p + n + gap
        tokens[b, q:q + n] = tokens[b, p:p + n]
        copy_mask[b, q + 1:q + n] = True              # the first token of the copy is not predictable
    return tokens, copy_mask


@dataclass
class ToyInductionResult:
    model: object                 # the trained GPT, in eval mode
    setup: ToyInductionSetup
    steps: int                    # steps taken (fewer than setup.steps when stop_below was reached)
    seconds: float
    curve: list = field(default_factory=list)   # one dict per eval point: step, loss, copy_loss, probe losses

    @property
    def final(self) -> dict:
        return self.curve[-1] if self.curve else {}


def probe_losses(model, setup: ToyInductionSetup, batch: int = 16, seed: int = 12345) -> tuple[float, float]:
    """(loss on copy 1, loss on copy 2) on held-out [bos] S S sequences, |S| = setup.probe_length (nats)."""
    import torch

    from .induction import copy_losses, repeated_random_tokens

    tokens = repeated_random_tokens(setup.vocab_size, setup.probe_length, batch, seed, setup.bos_id,
                                    exclude=(setup.bos_id,))
    was_training = model.training
    model.eval()
    with torch.no_grad():
        logits, _ = model(tokens)
    model.train(was_training)
    _, first, second = copy_losses(logits, tokens, setup.probe_length, 1)
    return first, second


def train_induction_model(setup: ToyInductionSetup | None = None, progress=None) -> ToyInductionResult:
    """Train a 2-layer attention-only GPT on the repeated-segment task; returns it with its loss curve.

    progress(dict), if given, receives {"completed", "total", "loss", "copy_loss", "probe_first_copy",
    "probe_second_copy", "seconds"} every setup.eval_every steps. Deterministic for a given setup.seed (on CPU).
    """
    import torch
    import torch.nn.functional as F

    from ..model import GPT

    setup = setup or ToyInductionSetup()
    torch.manual_seed(setup.seed)
    model = GPT(setup.model_config())
    optimizer = torch.optim.Adam(model.parameters(), lr=setup.learning_rate, betas=(0.9, 0.99))
    floor = setup.min_lr_fraction
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, step / setup.steps))))
    generator = torch.Generator().manual_seed(10_000 + setup.seed)
    curve, start, step = [], time.perf_counter(), 0
    model.train()
    for step in range(1, setup.steps + 1):
        tokens, copy_mask = repeated_segment_batch(setup, generator)
        logits, _ = model(tokens[:, :-1])
        per_token = F.cross_entropy(logits.flatten(0, 1), tokens[:, 1:].flatten(), reduction="none")
        is_copy = copy_mask[:, 1:].flatten()
        copy_loss, noise_loss = per_token[is_copy].mean(), per_token[~is_copy].mean()
        loss = copy_loss + setup.noise_weight * noise_loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        if step % setup.eval_every == 0 or step == setup.steps:
            first, second = probe_losses(model, setup)
            point = {"step": step, "loss": loss.item(), "copy_loss": copy_loss.item(),
                     "noise_loss": noise_loss.item(), "probe_first_copy": first, "probe_second_copy": second,
                     "seconds": time.perf_counter() - start}
            curve.append(point)
            if progress is not None:
                progress({"completed": step, "total": setup.steps, **point})
            if setup.stop_below is not None and second < setup.stop_below:
                break
    model.eval()
    return ToyInductionResult(model, setup, step, time.perf_counter() - start, curve)


def save_induction_model(path, result: ToyInductionResult):
    """Write the trained model as a checkpoint folder that every `gptscratch interpret` command reads: its
    char tokenizer (toy_tokenizer), and the task, steps and seed as its training record. Returns the folder."""
    from ..checkpoint import save_checkpoint

    return save_checkpoint(path, result.model, toy_tokenizer(result.setup).spec(),
                           training={"task": "repeated segments (gptscratch.interpret.toy)", "steps": result.steps,
                                     "seed": result.setup.seed})


def toy_tokenizer(setup: ToyInductionSetup | None = None):
    """A char tokenizer with exactly setup.vocab_size ids (end-of-text last = bos), to save the model as a
    checkpoint the CLI can read: ids 0 .. 62 print as '0'-'9', 'A'-'Z', 'a'-'z', then more symbols if needed."""
    from ..tokenizers import CharTokenizer

    setup = setup or ToyInductionSetup()
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz" + "".join(
        chr(c) for c in range(0xC0, 0xC0 + max(0, setup.vocab_size)))
    return CharTokenizer(sorted(alphabet[: setup.vocab_size - 1]))
