"""From token ids to text while streaming: whole UTF-8 characters only, and stop strings that cut the output.

TextStream: a byte-level token can be half of 'é'; an incremental UTF-8 decoder holds such bytes until the
character is complete. Invalid sequences become U+FFFD rather than an error.

StopMatcher: generation should end *before* a stop string such as "\\n\\n" or "END", and the stop string must
never reach the reader. Text arrives in pieces, and a stop string can straddle two pieces ("EN" + "D"), so the
matcher holds back the longest tail of the text that could still be the beginning of a stop string:

    push("The EN")  → emits "The ", holds "EN"
    push("D more")  → finds "END": emits "" and reports stopped
Cost per piece: O(len(held) · Σ len(stop strings)), tiny for the short stop strings people use.
"""

from __future__ import annotations

import codecs


class TextStream:
    """Turns token ids into text pieces as they arrive, never splitting a UTF-8 character."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def push(self, token: int) -> str:
        return self.decoder.decode(self.tokenizer.decode_bytes([token]))

    def flush(self) -> str:
        return self.decoder.decode(b"", final=True)


class StopMatcher:
    """Cut streamed text at the first stop string. push(piece) → (text safe to emit, stopped?)."""

    def __init__(self, stop_strings=()):
        self.stops = [s for s in stop_strings if s]
        self.held = ""
        self.stopped = False

    def push(self, piece: str) -> tuple[str, bool]:
        if self.stopped:
            return "", True
        text = self.held + piece
        if not self.stops:
            return text, False
        hits = [i for i in (text.find(s) for s in self.stops) if i >= 0]
        if hits:
            self.stopped, self.held = True, ""
            return text[: min(hits)], True
        keep = self._partial_tail(text)
        self.held = text[len(text) - keep:] if keep else ""
        return text[: len(text) - keep], False

    def flush(self) -> str:
        """End of generation: whatever was held back is ordinary text after all."""
        text, self.held = self.held, ""
        return "" if self.stopped else text

    def _partial_tail(self, text: str) -> int:
        """Length of the longest suffix of `text` that is a proper prefix of some stop string."""
        longest = 0
        for stop in self.stops:
            for n in range(min(len(stop) - 1, len(text)), longest, -1):
                if text.endswith(stop[:n]):
                    longest = n
                    break
        return longest
