"""Byte-pair encoding, by hand: the training algorithm and the encoder, in plain Python, one idea per function.

A tokenizer turns text into integers. The byte tokenizer is the simplest (one id per UTF-8 byte, 256 of them),
but its sequences are long: "the" costs three tokens. Byte-pair encoding (BPE; Sennrich et al. 2016,
https://arxiv.org/abs/1508.07909, and GPT-2's byte-level form, Radford et al. 2019) *learns* longer tokens from
a corpus by repeating one step: find the most frequent adjacent pair of tokens and give it a new id.

    text "aaabdaaabac"     bytes  a a a b d a a a b a c        (ids 97 97 97 98 100 ...)
    most frequent pair (a, a), 4 times   -> 256:  256 a b d 256 a b a c
    (a, b) and (256, a), 2 times each: the smaller pair (a, b) -> 257:  256 257 d 256 257 a c
    (256, 257), 2 times                   -> 258:  258 d 258 a c

The list of merges, in the order they were learned, *is* the tokenizer. Encoding new text replays them: start from
bytes and keep applying the earliest-learned merge that occurs, until none does.

The functions below, in the order the algorithm uses them:

    valid_unicode(text)            text that UTF-8 can encode (a lone surrogate becomes U+FFFD, as tiktoken does)
    split_text(text, pattern)      the pre-split into chunks ("words"); merges never cross a chunk boundary
    count_chunks(texts, pattern)   how often each chunk occurs: the corpus shrinks to its distinct chunks
    count_pairs(words)             how often each adjacent pair occurs, weighted by the chunk counts
    merge_word(word, pair, new)    one chunk with one merge applied, and how its pair counts change
    train(chunk_counts, merges)    the merge loop: the incremental version of "count, pick the best, merge"
    vocabulary(merges)             the bytes every id stands for
    encode_chunk / encode          replaying the merges on new text
    recover_merge(ranks, token)    the pair a token was made from, given only the token → rank table

Which pair wins a tie? The one that sorts first: the smallest (left id, right id). Any rule would do, but both
implementations in gptscratch must use the same one to learn the same merges — the fast trainer
(bpe_fast.py, the Rust library rustbpe) breaks ties this way, so this file does too.

Cost: counting chunks is one pass over the corpus (memory ∝ distinct chunks, not corpus size). A naive merge
loop recounts every pair for every merge, O(merges × corpus); `train` keeps the counts up to date instead and
only revisits the chunks that contain the merged pair, with a heap to find the most frequent pair.
"""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable

# How text is cut into chunks before BPE. Merges happen only inside a chunk, so " dog", " dog." and "dog!" share
# the token " dog" instead of each growing its own. Both patterns keep a leading space with the word after it.
PATTERNS: dict[str, str] = {
    # GPT-2 (2019): contractions, letters, digits, other symbols, whitespace.
    "gpt2": r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""",
    # GPT-4's cl100k_base: case-insensitive contractions, numbers in groups of at most three digits, newlines kept
    # apart from other whitespace. (`?+` and `++` are possessive: they never give characters back.)
    "gpt4": r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|"""
            r"""\s+(?!\S)|\s+""",
    # No pre-split: a whole document is one chunk (minbpe's BasicTokenizer). Tokens can then span words and
    # spaces, and training memory grows with the corpus: for teaching, not for large data.
    "none": r"""[\s\S]+""",
}
BYTES = 256  # ids 0..255 are the byte values; merge k (counting from 0) gets id 256 + k

Pair = tuple[int, int]


def valid_unicode(text: str) -> str:
    """`text` with every lone UTF-16 surrogate ("\\ud800", which UTF-8 cannot encode) replaced by U+FFFD — the
    same repair tiktoken makes, so every gptscratch BPE sees the same text.

    >>> valid_unicode("ok \\ud800!")
    'ok \\ufffd!'
    """
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def compile_pattern(pattern: str):
    """The pattern compiled by the `regex` package (Python's `re` has no \\p{L} or possessive quantifiers)."""
    import regex

    return regex.compile(pattern)


def split_text(text: str, pattern: str) -> list[str]:
    """Cut `text` into chunks with a split pattern (a key of PATTERNS or a regex).

    >>> split_text("Hello world's 12345 cats!!", "gpt4")
    ['Hello', ' world', "'s", ' ', '123', '45', ' cats', '!!']
    """
    return compile_pattern(PATTERNS.get(pattern, pattern)).findall(text)


def count_chunks(texts: Iterable[str], pattern: str) -> Counter[bytes]:
    """How often each chunk (as UTF-8 bytes) occurs in `texts`. Training only ever needs these counts: a corpus of
    gigabytes is a few million distinct chunks.

    >>> count_chunks(["the cat", "the hat"], "gpt4")
    Counter({b'the': 2, b' cat': 1, b' hat': 1})
    """
    split = compile_pattern(PATTERNS.get(pattern, pattern)).findall
    counts: Counter[bytes] = Counter()
    for text in texts:
        counts.update(chunk.encode("utf-8") for chunk in split(valid_unicode(text)))
    return counts


def count_pairs(words: list[list[int]], counts: list[int]) -> tuple[Counter[Pair], dict[Pair, set[int]]]:
    """(pair → occurrences, pair → the indices of the words holding it). A word that occurs 5 times counts its
    pairs 5 times; an overlapping run counts every pair in it ("aaa" holds (a, a) twice).

    >>> pairs, where = count_pairs([[97, 97, 97], [98, 97]], [1, 5])
    >>> pairs[(97, 97)], pairs[(98, 97)], sorted(where[(97, 97)])
    (2, 5, [0])
    """
    pairs: Counter[Pair] = Counter()
    where: dict[Pair, set[int]] = defaultdict(set)
    for index, (word, count) in enumerate(zip(words, counts)):
        for pair in zip(word, word[1:]):
            pairs[pair] += count
            where[pair].add(index)
    return pairs, where


def merge_word(word: list[int], pair: Pair, new_id: int) -> tuple[list[int], list[tuple[Pair, int]]]:
    """`word` with every occurrence of `pair` replaced by `new_id`, left to right without overlap, and the change
    in the word's pair counts: each merged occurrence removes (left, a), (a, b), (b, right) and adds
    (left, new), (new, right).

    >>> merge_word([97, 97, 97, 98], (97, 97), 256)
    ([256, 97, 98], [((97, 97), -1), ((97, 97), -1), ((256, 97), 1)])
    """
    a, b = pair
    out: list[int] = []
    deltas: list[tuple[Pair, int]] = []
    i = 0
    while i < len(word):
        if i + 1 < len(word) and word[i] == a and word[i + 1] == b:
            if out:  # the token before, which may itself be a merge made a moment ago in this word
                deltas += [((out[-1], a), -1), ((out[-1], new_id), 1)]
            deltas.append(((a, b), -1))
            if i + 2 < len(word):
                deltas += [((b, word[i + 2]), -1), ((new_id, word[i + 2]), 1)]
            out.append(new_id)
            i += 2
        else:
            out.append(word[i])
            i += 1
    return out, deltas


def train(chunk_counts: dict[bytes, int], num_merges: int,
          progress: Callable[[int, int], None] | None = None) -> list[Pair]:
    """Learn up to `num_merges` merges from chunk counts; returns them in order (merge k made id 256 + k).

    The loop: take the most frequent pair (ties: the smallest pair), give it the next id, rewrite the words that
    hold it, and update the counts of the pairs around each rewrite. Fewer merges come back when every chunk has
    become a single token (the corpus cannot support a larger vocabulary). progress(done, total) is called every
    100 merges.

    The heap holds (−count, pair) entries; a count can only go *down* after it was pushed (a pair gains
    occurrences only when one of its ids is new), so an entry whose count is out of date is re-pushed with the
    true count, and the first up-to-date entry popped is the true maximum.

    >>> train({b"aaabdaaabac": 1}, 3)
    [(97, 97), (97, 98), (256, 257)]
    """
    ordered = sorted(chunk_counts.items())  # a fixed order, so that runs are reproducible
    words = [list(chunk) for chunk, _ in ordered]
    counts = [count for _, count in ordered]
    pairs, where = count_pairs(words, counts)
    heap = [(-count, pair) for pair, count in pairs.items()]
    heapq.heapify(heap)
    merges: list[Pair] = []
    while len(merges) < num_merges and heap:
        negative, pair = heapq.heappop(heap)
        current = pairs.get(pair, 0)
        if current <= 0:
            continue
        if -negative != current:  # stale: the pair lost occurrences since this entry was pushed
            heapq.heappush(heap, (-current, pair))
            continue
        new_id = BYTES + len(merges)
        merges.append(pair)
        grown: dict[Pair, set[int]] = defaultdict(set)
        for index in where.pop(pair):
            words[index], deltas = merge_word(words[index], pair, new_id)
            for changed, delta in deltas:
                pairs[changed] += delta * counts[index]
                if delta > 0:
                    grown[changed].add(index)
        for new_pair, indices in grown.items():  # pairs that contain the new id: counted once, pushed once
            where[new_pair] = indices
            if pairs[new_pair] > 0:
                heapq.heappush(heap, (-pairs[new_pair], new_pair))
        if progress and len(merges) % 100 == 0:
            progress(len(merges), num_merges)
    return merges


def vocabulary(merges: list[Pair]) -> list[bytes]:
    """The bytes each id stands for: the 256 single bytes, then each merge's left + right.

    >>> vocabulary([(104, 105), (256, 33)])[256:]
    [b'hi', b'hi!']
    """
    tokens = [bytes([b]) for b in range(BYTES)]
    for left, right in merges:
        tokens.append(tokens[left] + tokens[right])
    return tokens


def encode_chunk(chunk: bytes, ranks: dict[Pair, int]) -> list[int]:
    """One chunk's ids: start from its bytes and apply the earliest-learned merge present until none is.
    `ranks` maps a pair to the id its merge made (a lower id was learned earlier).

    >>> encode_chunk(b"aaab", {(97, 97): 256, (256, 97): 257, (257, 98): 258})
    [258]
    """
    ids = list(chunk)
    while len(ids) > 1:
        pair = min(zip(ids, ids[1:]), key=lambda p: ranks.get(p, float("inf")))
        if pair not in ranks:
            break
        ids, _ = merge_word(ids, pair, ranks[pair])
    return ids


def encode(text: str, merges: list[Pair], pattern: str) -> list[int]:
    """Text → ids: split into chunks, encode each on its own. (The fast tokenizer, trained.py, gives the same ids
    through tiktoken.)

    >>> encode("hi hi!", [(104, 105), (32, 256)], "gpt4")
    [256, 257, 33]
    """
    ranks = {pair: BYTES + index for index, pair in enumerate(merges)}
    ids: list[int] = []
    for chunk in split_text(valid_unicode(text), pattern):
        ids += encode_chunk(chunk.encode("utf-8"), ranks)
    return ids


def recover_merge(ranks: dict[bytes, int], token: bytes) -> tuple[bytes, bytes] | None:
    """The two tokens `token` was merged from, knowing only a token → rank table (tiktoken's form, which keeps no
    pairs): encode the token's bytes on their own with the lower ranks; the last merge joins the two halves.
    None when BPE never builds the token from its bytes. O(n²) in the token's length.

    >>> recover_merge({b"a": 97, b"b": 98, b"ab": 256, b"abb": 257}, b"abb")
    (b'ab', b'b')
    """
    parts = [bytes([b]) for b in token]
    while len(parts) > 2:
        best = None
        for i in range(len(parts) - 1):
            pair_rank = ranks.get(parts[i] + parts[i + 1])
            if pair_rank is not None and (best is None or pair_rank < best[1]):
                best = (i, pair_rank)
        if best is None:
            return None
        i = best[0]
        parts[i:i + 2] = [parts[i] + parts[i + 1]]
    return (parts[0], parts[1]) if len(parts) == 2 else None
