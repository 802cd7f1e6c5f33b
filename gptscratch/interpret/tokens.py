"""Text in, readable tokens out: how the interpretability tools read a prompt and show what they found.

Every tool works on token ids, but a person thinks in text and reads results as tokens. Three conventions are
shared by all of them (and by the `gptscratch interpret` commands), so they live here once:

    encode_text(tokenizer, text, bos)        the ids to analyse, with end-of-text in front as TransformerLens does
    check_context(ids, context_length)       refuse ids the model cannot read at once, with the fix in one line
    first_token(tokenizer, text)             an answer such as " Mary" as the one token a metric compares
    token_label(tokenizer, id)               a token as visible text: ␣ for spaces, escapes for control bytes
"""

from __future__ import annotations

from ..errors import UsageError


def encode_text(tokenizer, text: str, bos: bool = True) -> list[int]:
    """Token ids of `text`, with the start id in front when `bos` — the model's BOS, or end-of-text for models
    trained on documents separated by it (TransformerLens prepends BOS too: position 0 becomes a neutral sink)."""
    ids = tokenizer.encode(text)
    return ([tokenizer.start_id] if bos else []) + ids


def check_context(ids: list[int], context_length: int, flag: str = "--text") -> list[int]:
    """`ids`, or a UsageError naming `flag` (the option that gave the text) when they exceed the model's context:
    every tool reads the whole sequence in one forward pass."""
    if len(ids) > context_length:
        raise UsageError(f"the text has {len(ids)} tokens but the model's context is {context_length}; "
                         f"shorten {flag}")
    return ids


def first_token(tokenizer, text: str) -> tuple[int, int]:
    """(first token id of `text`, how many tokens `text` has)."""
    ids = tokenizer.encode(text)
    if not ids:
        raise UsageError("the answer text is empty; give a non-empty --target / --foil")
    return ids[0], len(ids)


def token_label(tokenizer, token) -> str:
    """A token as readable text: spaces shown as ␣, control characters and stray bytes escaped."""
    raw = tokenizer.decode_bytes([int(token)])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return repr(raw)[2:-1]
    return repr(text)[1:-1].replace(" ", "␣")
