"""Exercise 01b — byte-pair encoding (docs/lessons/01b-byte-pair-encoding.md).

BPE training repeats one step: find the most frequent adjacent pair of ids and merge it into a new id. Write
the two halves of that step, then run `gptscratch learn check 01b`; `gptscratch learn hint 01b` if stuck.
A "word" is one chunk of the pre-split text as a list of ids (bytes 0 … 255 at first, merges from 256 on);
the corpus is a list of distinct words with how often each occurs.
"""


def most_frequent_pair(words, counts):
    """The adjacent pair of ids that occurs most often in the corpus.

        pairs[(a, b)] = Σ_w counts[w] · (occurrences of a, b side by side in words[w])

    Overlapping runs count every pair: [97, 97, 97] holds (97, 97) twice. Ties go to the smallest pair
    ((1, 9) before (2, 0)). words: list of lists of ints; counts: list of ints, one per word.
    Returns a tuple (a, b), or None when no word has two ids.
    Reference: gptscratch/tokenizers/bpe.py, `count_pairs` and the choice at the top of `train`'s loop.
    """
    raise NotImplementedError


def merge(word, pair, new_id):
    """`word` with every occurrence of `pair` replaced by `new_id`, scanning left to right without overlap.

        merge([97, 97, 97, 98], (97, 97), 256) → [256, 97, 98]

    word: list of ints; pair: (a, b); new_id: int. Returns a new list (the input is left as it was).
    Reference: gptscratch/tokenizers/bpe.py, `merge_word` (its first result).
    """
    raise NotImplementedError
