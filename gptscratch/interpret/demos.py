"""Built-in examples for `--demo`.

The texts are classics of the literature so that a learner can compare with published pictures:
the logit lens on a factual prompt (nostalgebraist 2020), a repeated sentence where duplicate-token and
induction heads light up (Olsson et al. 2022), and the indirect-object-identification pair for patching
(Wang et al. 2022, "Interpretability in the Wild"). The IOI pair only makes sense when each name is one token
(GPT-2's BPE: yes; a byte or character model: no), so the patching demo adds it only then and always includes
an induction pair built from random tokens, which every tokenizer can express.
"""

from __future__ import annotations

from ..errors import GptScratchError
from .patching import PatchExample
from .tokens import encode_text, first_token

LENS_TEXTS = (
    "The Eiffel Tower is located in the city of Paris",
    "one two three four five six seven eight nine ten",
)
ATTENTION_TEXT = "The cat sat on the mat because the mat was warm. The cat sat on the mat because the mat was warm."
IOI = ("When John and Mary went to the store, John gave a drink to",
       "When John and Mary went to the store, Mary gave a drink to", " Mary", " John")


def induction_example(tokenizer, context_length: int, seed: int = 0, bos: bool = True) -> PatchExample:
    """[bos] S S[:k] → S[k], corrupted by replacing S[k] in the first copy with another token Z → Z."""
    import torch

    length = max(3, min(10, (context_length - 1) // 2))
    vocab = [t for t in range(tokenizer.vocab_size) if t not in (tokenizer.eot_id, tokenizer.start_id)]
    generator = torch.Generator().manual_seed(seed)
    picks = torch.randperm(len(vocab), generator=generator)[: length + 1].tolist()
    sequence, other = [vocab[i] for i in picks[:length]], vocab[picks[length]]
    k = length // 2
    prefix = [tokenizer.start_id] if bos else []
    clean = prefix + sequence + sequence[:k]
    corrupted_first = sequence[:k] + [other] + sequence[k + 1:]
    corrupted = prefix + corrupted_first + sequence[:k]
    return PatchExample("induction", f"random tokens repeated: after the second copy of token {k - 1} the model "
                        "should copy what followed it in the first copy; the corrupted first copy has a different "
                        "token there", clean, corrupted, sequence[k], other)


def ioi_example(tokenizer, bos: bool = True) -> PatchExample | None:
    """The IOI pair, or None when the tokenizer cannot express it position by position."""
    try:
        clean, corrupted = encode_text(tokenizer, IOI[0], bos), encode_text(tokenizer, IOI[1], bos)
        target, target_len = first_token(tokenizer, IOI[2])
        foil, foil_len = first_token(tokenizer, IOI[3])
    except GptScratchError:          # e.g. a character vocabulary without capital letters
        return None
    if len(clean) != len(corrupted) or target == foil or target_len != 1 or foil_len != 1:
        return None
    return PatchExample("ioi", "indirect object identification: the answer is the name that was not repeated",
                        clean, corrupted, target, foil)


def patch_examples(tokenizer, context_length: int, bos: bool = True) -> list[PatchExample]:
    examples = [ioi_example(tokenizer, bos), induction_example(tokenizer, context_length, bos=bos)]
    return [e for e in examples if e is not None]
