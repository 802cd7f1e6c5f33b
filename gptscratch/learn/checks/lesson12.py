"""Checks of exercise 12: the sliding-window loss, perplexity and bits per byte against
gptscratch/evaluation/perplexity.py's evaluate_tokens, on a small untrained GPT over the byte tokenizer
(relative tolerance 1e-5 on the loss: both sum the same float32 log-probabilities in a different order)."""

from __future__ import annotations

import torch

from ...evaluation.perplexity import evaluate_tokens, text_tokens
from ...tokenizers import get_tokenizer
from ..checking import CheckList, expect_number, tiny_model

CHECKS = CheckList()
TEXT = ("def main():\n    return fibonacci(10)\n\n"
        "The quick brown fox jumps over the lazy dog; über naïve café. " * 2)


def _setup(text: str = TEXT):
    byte = get_tokenizer("byte")
    model = tiny_model(vocab_size=257)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.mul_(3)                                   # a model with opinions: losses away from ln V
    return model, byte, text_tokens(byte, text)


def _loss(learner, context, stride, text=TEXT):
    model, byte, tokens = _setup(text)
    expected = evaluate_tokens(model, tokens, tokenizer=byte, context=context, stride=stride)
    got = learner.sliding_window_loss(model, list(tokens), context, stride)
    expect_number(f"sliding_window_loss({len(tokens)} tokens, context={context}, stride={stride})", got,
                  expected.loss, rel=1e-5)
    return expected


@CHECKS.add("disjoint windows (context 32, stride 32) over a 206-byte text: evaluate_tokens' loss (rel 1e-5)")
def disjoint(learner):
    _loss(learner, 32, 32)


@CHECKS.add("overlapping windows (context 32, stride 8): evaluate_tokens' loss (rel 1e-5)")
def overlapping(learner):
    _loss(learner, 32, 8)


@CHECKS.add("a text shorter than one window (context 32, stride 16): evaluate_tokens' loss (rel 1e-5)")
def short(learner):
    _loss(learner, 32, 16, text="short text")


@CHECKS.add("perplexity and bits_per_byte of evaluate_tokens' loss equal its own (rel 1e-9)")
def derived(learner):
    model, byte, tokens = _setup()
    result = evaluate_tokens(model, tokens, tokenizer=byte, context=32, stride=16)
    expect_number(f"perplexity({result.loss:.6g})", learner.perplexity(result.loss), result.perplexity, rel=1e-9)
    expect_number(f"bits_per_byte({result.loss:.6g}, {result.tokens}, {result.bytes})",
                  learner.bits_per_byte(result.loss, result.tokens, result.bytes), result.bits_per_byte, rel=1e-9)
