"""Talking to a model: a multi-turn session that keeps its KV cache between turns, and batched one-shot replies.

A chat is one growing token sequence: each turn appends the user's message (framed by the template) and the
model's reply. Re-running the whole conversation through the model at every turn would cost O(L²) for L tokens of
history; instead the session keeps the KV cache (engine.py) and feeds only what is new:

    turn 1   feed  <s><|user|>Hi<|end|><|assistant|>            decode the reply token by token
    turn 2   feed  <|end|><|user|>And 3 4?<|end|><|assistant|>  (the reply's tokens are already cached)

"What is new" is found by rendering the whole conversation and comparing with the ids already in the cache: when
they are a prefix, only the rest is fed; when not (a template that rewrites old turns, or a reply whose text
re-encodes differently), the cache is rebuilt from the full rendering — correct either way, fast in the usual case.
Each reply the model wrote is kept with its exact ids (`token_ids`), which gptscratch's template renders as they
are, so with it the cache is always reused.

Context limit: the model sees at most `context_length` tokens. When the conversation no longer fits (with room for
a reply), the oldest messages after the system prompt are dropped until it does and the session says so
(`notice`); a single message too long on its own keeps its last tokens. A reply stops at the template's
end-of-turn token, after `max_new_tokens`, or when the context is full.

Streaming: `reply()` yields text as tokens arrive; byte-level tokens may split a UTF-8 character, so bytes go
through an incremental decoder and only complete characters come out. Stopping the iteration early (Ctrl-C in
the terminal) still records the partial reply, so the conversation stays consistent.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator

import torch

from .sampling import SamplingConfig, sample_next


class ChatSession:
    """One conversation with `model` through the template `fmt` (gptscratch/chat/template.py)."""

    def __init__(self, model, tokenizer, fmt, system: str | None = None,
                 sampling: SamplingConfig | None = None, max_new_tokens: int = 256, seed: int | None = None):
        self.model, self.tokenizer, self.fmt = model.eval(), tokenizer, fmt
        self.system, self.sampling = system, sampling or SamplingConfig()
        self.max_new_tokens = max_new_tokens
        self.context = model.config.context_length
        self.device = next(model.parameters()).device
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(seed) if seed is not None else self.generator.seed()
        self.notice: str | None = None     # what the last turn had to drop to fit the context, if anything
        self.finish_reason: str | None = None
        self.prefilled = 0                 # tokens run through the model by the last turn (for tests and stats)
        self.reset()

    def conversation(self) -> list[dict]:
        """The messages as plain {"role", "content"} dicts (what /save writes)."""
        return [{"role": m["role"], "content": m["content"]} for m in self.messages]

    def reset(self) -> None:
        """Forget the conversation (the system prompt stays) and empty the cache."""
        self.messages: list[dict] = [{"role": "system", "content": self.system}] if self.system else []
        self.cache = self.model.new_kv_cache(batch=1)
        self.cached: list[int] = []

    def reply(self, text: str) -> Iterator[str]:
        """Add the user's message and stream the model's reply (module docstring)."""
        self.messages.append({"role": "user", "content": text})
        ids = self._fit()
        logits = self._feed_new(ids)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        reply_ids: list[int] = []
        self.finish_reason = "length"
        try:
            for _ in range(self.max_new_tokens):
                token = int(sample_next(logits, self.sampling, [self.generator])[0])
                if token in self.fmt.stop_ids:
                    self.finish_reason = "stop"
                    break
                reply_ids.append(token)
                piece = decoder.decode(self.tokenizer.decode_bytes([token]))
                if piece:
                    yield piece
                if len(self.cached) >= self.context:
                    self.finish_reason = "context"
                    break
                logits = self._feed([token])
            tail = decoder.decode(b"", final=True)
            if tail:
                yield tail
        finally:  # also when the caller stops early (Ctrl-C): the partial reply is part of the conversation
            self.messages.append({"role": "assistant", "content": self.tokenizer.decode(reply_ids),
                                  "token_ids": reply_ids})

    def _fit(self) -> list[int]:
        """The prompt ids of the conversation, dropping the oldest turns if it does not fit (module docstring)."""
        room = self.context - min(self.max_new_tokens, self.context // 4)
        ids = self.fmt.prompt_ids(self.messages)
        dropped = 0
        first = 1 if self.system else 0
        while len(ids) > room and len(self.messages) - first > 1:
            dropped += drop_oldest(self.messages, first)
            ids = self.fmt.prompt_ids(self.messages)
        self.notice = None
        if dropped:
            self.notice = f"the conversation outgrew the context of {self.context} tokens: dropped the {dropped} " \
                          f"oldest message(s)"
        if len(ids) > room:
            self.notice = f"the message is longer than the context of {self.context} tokens: kept its last {room}"
            ids = ids[-room:]
        return ids

    def _feed_new(self, ids: list[int]) -> torch.Tensor:
        """Feed what the cache lacks of `ids` (everything, when the cache is not a prefix of them)."""
        if self.cached == ids[: len(self.cached)] and len(ids) > len(self.cached):
            new = ids[len(self.cached):]
        else:
            self.cache.reset()
            self.cached, new = [], ids
        self.prefilled = len(new)
        return self._feed(new)

    @torch.inference_mode()
    def _feed(self, ids: list[int]) -> torch.Tensor:
        logits, _ = self.model(torch.tensor([ids], device=self.device), kv_cache=self.cache, only_last=True)
        self.cached += ids
        logits = logits[:, -1]                                            # (1, V)
        logits[:, self.tokenizer.vocab_size:] = float("-inf")            # padding rows are never real tokens
        return logits


def drop_oldest(messages: list[dict], first: int) -> int:
    """Drop the oldest message after `first` (the system prompt's place), then any reply left leading the
    history — templates that insist on user/assistant alternation need it to start with the user. Returns how
    many messages went (the newest one always stays)."""
    del messages[first]
    dropped = 1
    while len(messages) - first > 1 and messages[first]["role"] != "user":
        del messages[first]
        dropped += 1
    return dropped


def reply_batch(model, tokenizer, fmt, conversations: list[list[dict]], sampling: SamplingConfig,
                max_new_tokens: int = 256, seed: int | None = None) -> list[dict]:
    """The next assistant reply to each conversation, decoded together (left-padded batch, engine.py).

    Returns per conversation {"reply", "finish_reason", "prompt_tokens", "completion_tokens", "dropped"}, where
    dropped counts the oldest messages left out to fit the context (module docstring)."""
    from .engine import generate_batch

    context = model.config.context_length
    room = context - min(max_new_tokens, context // 4)
    prompts, dropped = [], []
    for messages in conversations:
        messages = list(messages)
        first = 1 if messages and messages[0]["role"] == "system" else 0
        ids, count = fmt.prompt_ids(messages), 0
        while len(ids) > room and len(messages) - first > 1:
            count += drop_oldest(messages, first)
            ids = fmt.prompt_ids(messages)
        prompts.append(ids[-room:])
        dropped.append(count)
    # One batch decodes in lockstep, so the longest prompt sets the room every reply has (--batch-size 1 gives
    # each conversation its own); a reply cut by it ends with finish_reason "context".
    limit = min(max_new_tokens, context - max(len(p) for p in prompts))
    outputs = generate_batch(model, prompts, limit, sampling, seed=seed, stop_ids=tuple(fmt.stop_ids),
                             vocab_limit=tokenizer.vocab_size)
    results = []
    for prompt, ids, count in zip(prompts, outputs, dropped):
        finish = "stop" if len(ids) < limit else "length" if limit == max_new_tokens else "context"
        results.append({"reply": tokenizer.decode(ids), "finish_reason": finish,
                        "prompt_tokens": len(prompt), "completion_tokens": len(ids), "dropped": count})
    return results
