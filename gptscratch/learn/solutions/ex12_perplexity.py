"""Exercise 12 — evaluation: loss, perplexity and bits per byte (docs/lessons/12-evaluation.md): a solution.

A model sees at most `context` tokens, so a long text is scored window by window. Write the sliding-window
loss and the two numbers derived from it, then run `gptscratch learn check 12` (`gptscratch learn hint 12`).
"""

import math

import torch


def sliding_window_loss(model, tokens, context, stride):
    """The mean negative log-likelihood (nats per token) of `tokens` under `model`, every token from index 1 on
    predicted exactly once:

        windows begin at 0, stride, 2·stride, …           (stride ≤ context)
        a window's inputs are tokens[begin:end], end = min(begin + context, N − 1),
                   its targets tokens[begin + 1 : end + 1]  (the next token at each position)
        it scores only the targets whose index is past the previous window's end (the first window: all);
        the window whose end is N − 1 is the last
        loss = (1 / (N − 1)) Σ_i −ln p(tokens[i] | what the window showed before it)

    With stride < context every window after the first gives its scored tokens context − stride tokens of
    history: slower, and closer to the model's true loss. model(x) with x (1, T) int64 returns
    (logits (1, T, V), None); tokens: a list of N ≥ 2 ints. Returns a float.
    Reference: gptscratch/evaluation/perplexity.py, `evaluate_tokens` and its `window_plan`.
    """
    tokens = torch.as_tensor(tokens, dtype=torch.long)
    last = tokens.numel() - 1
    total, scored, scored_until, begin = 0.0, 0, 0, 0
    while True:
        end = min(begin + context, last)
        with torch.no_grad():
            logits, _ = model(tokens[begin:end][None])
        log_probs = torch.log_softmax(logits[0].float(), dim=-1)               # (T, V)
        targets = tokens[begin + 1:end + 1]
        nll = -log_probs.gather(1, targets[:, None])[:, 0]                     # (T,)
        fresh = nll[scored_until - begin:]                                     # targets no window scored yet
        total, scored = total + fresh.sum().item(), scored + fresh.numel()
        scored_until = end
        if end == last:
            return total / scored
        begin += stride


def perplexity(loss):
    """e^loss: the number of equally likely tokens the model is as uncertain as. Returns a float.
    Reference: gptscratch/evaluation/perplexity.py, `PerplexityResult.perplexity`."""
    return math.exp(loss)


def bits_per_byte(loss, num_predictions, num_bytes):
    """The same information per byte of text instead of per token — comparable across tokenizers:

        BPB = loss · num_predictions / (ln 2 · num_bytes)       loss in nats per token

    Returns a float. Reference: gptscratch/evaluation/perplexity.py, `PerplexityResult.bits_per_byte`.
    """
    return loss * num_predictions / (math.log(2) * num_bytes)
