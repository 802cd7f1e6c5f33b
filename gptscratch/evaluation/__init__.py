"""Evaluation: numbers that say how good a checkpoint is, comparable between checkpoints.

    perplexity.py  loss, perplexity and bits per byte of a token stream, with a sliding window for long texts
    compare.py     several checkpoints scored on the same text, one row each
    bench.py       generation speed: with and without the KV cache, prefill and decode tokens/s, peak memory
    hellaswag.py   HellaSwag validation, completion-style scoring (acc, acc_norm as in build-nanogpt)

Modules are imported directly (`from gptscratch.evaluation.perplexity import ...`); this file imports nothing so
that each command pays only for what it uses.
"""
