"""Checks of exercise 01b: one BPE merge and the choice of the pair to merge, against gptscratch/tokenizers/bpe.py."""

from __future__ import annotations

import random

from ...tokenizers import bpe
from ..checking import CheckList, expect_equal

CHECKS = CheckList()
CASES = [([97, 97, 97, 98], (97, 97)), ([97, 97, 97, 97], (97, 97)), ([1, 2, 1, 2, 1], (1, 2)),
         ([5, 6, 7], (6, 7)), ([5, 6, 7], (7, 5)), ([], (1, 2)), ([3], (3, 3)), ([256, 97, 256, 97], (256, 97))]
TEXT = ("the cat sat on the mat; the hat is on the cat. " * 6
        + "a mat, a hat, a cat: that is that. aaa aaaa aaaaa " * 4)


def _words(rng: random.Random, n: int, alphabet: int) -> list[list[int]]:
    return [[rng.randrange(alphabet) for _ in range(rng.randint(0, 9))] for _ in range(n)]


@CHECKS.add("merge equals bpe.merge_word on overlapping runs, the ends and absent pairs (exact)")
def merge_cases(learner):
    for word, pair in CASES:
        expected, _ = bpe.merge_word(list(word), pair, 300)
        expect_equal(f"merge({word}, {pair}, 300)", learner.merge(list(word), pair, 300), expected)


@CHECKS.add("merge equals bpe.merge_word on 300 random words over 3 ids (exact)")
def merge_random(learner):
    rng = random.Random(0)
    for word in _words(rng, 300, 3):
        pair = (rng.randrange(3), rng.randrange(3))
        expected, _ = bpe.merge_word(list(word), pair, 7)
        expect_equal(f"merge({word}, {pair}, 7)", learner.merge(list(word), pair, 7), expected)


@CHECKS.add("most_frequent_pair picks bpe.train's first merge, counts weighted, ties to the smallest (exact)")
def best_pair(learner):
    rng = random.Random(1)
    corpora = [([[1, 2], [3, 4]], [5, 5]), ([[3, 4], [1, 2]], [5, 5]), ([[9, 9, 9], [1, 2]], [1, 2]), ([[4, 2, 4, 2], [2, 4]], [1, 1])]
    for _ in range(40):
        words = [w for w in _words(rng, 6, 4) if w]
        corpora.append((words, [rng.randint(1, 5) for _ in words]))
    for words, counts in corpora:
        chunk_counts: dict[bytes, int] = {}
        for word, count in zip(words, counts):
            chunk_counts[bytes(word)] = chunk_counts.get(bytes(word), 0) + count
        learned = bpe.train(chunk_counts, 1)
        expected = learned[0] if learned else None
        got = learner.most_frequent_pair([list(w) for w in words], list(counts))
        expect_equal(f"most_frequent_pair({words}, counts={counts})", None if got is None else tuple(got), expected)


@CHECKS.add("20 rounds of most_frequent_pair + merge learn bpe.train's 20 merges on a text (exact)")
def learns_the_merges(learner):
    chunk_counts = bpe.count_chunks([TEXT], "gpt4")
    words, counts = [list(chunk) for chunk in chunk_counts], list(chunk_counts.values())
    merges = []
    for k in range(20):
        pair = learner.most_frequent_pair(words, counts)
        if pair is None:
            break
        merges.append(tuple(pair))
        words = [learner.merge(word, tuple(pair), 256 + k) for word in words]
    expected = bpe.train(chunk_counts, 20)
    for k, (got, want) in enumerate(zip(merges, expected)):
        expect_equal(f"merge {k} (id {256 + k})", got, want)
    expect_equal("number of merges", len(merges), len(expected))
