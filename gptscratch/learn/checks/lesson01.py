"""Checks of exercise 01: byte_encode, one_hot and embed against the byte tokenizer and the model's embedding."""

from __future__ import annotations

import torch

from ..checking import CheckList, expect_close, expect_equal, tiny_model

CHECKS = CheckList()
TEXTS = ("Hello, world", "Hé ünïcode", "tokens 🙂 and\ttabs\n", "")


@CHECKS.add("byte_encode equals the byte tokenizer's encode (exact)")
def byte_ids(learner):
    from ...tokenizers import get_tokenizer

    byte = get_tokenizer("byte")
    for text in TEXTS:
        expect_equal(f"byte_encode({text!r})", learner.byte_encode(text), byte.encode(text))


@CHECKS.add("one_hot(ids, 101) equals torch.nn.functional.one_hot as floats (exact)")
def one_hot(learner):
    ids = torch.randint(0, 101, (2, 7))
    expect_close("one_hot(ids, 101)", learner.one_hot(ids, 101),
                 torch.nn.functional.one_hot(ids, 101).float(), atol=0.0)


@CHECKS.add("embed(ids, E) equals the model's token embedding tok_embed(ids) (atol 1e-6)")
def lookup(learner):
    model = tiny_model()
    ids = torch.randint(0, 101, (3, 9))
    table = model.tok_embed.weight.detach()
    with torch.no_grad():
        expected = model.tok_embed(ids)
    expect_close("embed(ids, E)", learner.embed(ids, table), expected, atol=1e-6)


@CHECKS.add("one_hot(ids, V) @ E equals embed(ids, E): a lookup is a one-hot product (atol 1e-6)")
def lookup_is_product(learner):
    ids, table = torch.randint(0, 50, (2, 6)), torch.randn(50, 16)
    expect_close("one_hot(ids, V) @ E", learner.one_hot(ids, 50) @ table, table[ids], atol=1e-6)


@CHECKS.add("embed's gradient reaches only the rows that occur, as gptscratch.manual.embedding's (atol 1e-6)")
def gradient(learner):
    from ...manual import embedding

    ids = torch.tensor([[3, 5, 3, 0], [5, 5, 9, 1]])
    upstream = torch.randn(2, 4, 8)
    table = torch.randn(12, 8, requires_grad=True)
    (got,) = torch.autograd.grad((learner.embed(ids, table) * upstream).sum(), table)
    (expected,) = torch.autograd.grad((embedding(ids, table) * upstream).sum(), table)
    expect_close("∂loss/∂E", got, expected, atol=1e-6)
