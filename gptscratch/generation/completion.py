"""Text in, text out: prompts → streamed pieces and finished completions with counts, reason and speed.

This is the layer the CLI uses. It encodes prompts, runs the batched Decoder (engine.py) over groups of
`batch_size` prompts, turns tokens into text (TextStream), cuts at stop strings (StopMatcher), and reports
each row's end as a Completion:

    finish_reason  "end_of_text"  the model produced its end-of-text token (not part of the text)
                   "stop"         a stop string appeared (cut before it)
                   "length"       max_new_tokens were generated

stream_completions yields Piece(index, text) as text becomes final and Completion(...) when a row ends, in the
order rows end. `index` numbers the outputs prompt-major: prompt i's sample k has index i·num_samples + k.
Prompts are encoded by `tokenizer.prompt_ids`: after the BOS where the model's own tokenizer puts one (Llama's
`<s>`), and an empty prompt without one starts from the end-of-text token: an unconditional sample.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from .engine import Decoder
from .sampling import SamplingConfig
from .text import StopMatcher, TextStream

FINISH_REASONS = ("end_of_text", "stop", "length")


@dataclass(frozen=True)
class GenerationSettings:
    max_new_tokens: int = 200
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    num_samples: int = 1
    seed: int | None = None
    stop_strings: tuple[str, ...] = ()
    stop_at_end_of_text: bool = True
    use_cache: bool = True
    batch_size: int = 8

    def __post_init__(self) -> None:
        if self.max_new_tokens < 0:
            raise ValueError(f"max tokens must be ≥ 0 (got {self.max_new_tokens})")
        if self.num_samples < 1:
            raise ValueError(f"number of samples must be ≥ 1 (got {self.num_samples})")
        if self.batch_size < 1:
            raise ValueError(f"batch size must be ≥ 1 (got {self.batch_size})")


@dataclass(frozen=True)
class Piece:
    index: int
    text: str


@dataclass
class Completion:
    index: int
    prompt: str
    sample: int
    completion: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    seconds: float

    @property
    def tokens_per_second(self) -> float | None:
        return self.completion_tokens / self.seconds if self.seconds > 0 else None

    def to_dict(self) -> dict:
        tps = self.tokens_per_second
        return {"index": self.index, "prompt": self.prompt, "sample": self.sample, "completion": self.completion,
                "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "finish_reason": self.finish_reason, "seconds": round(self.seconds, 4),
                "tokens_per_second": round(tps, 2) if tps is not None else None}


def stream_completions(model, tokenizer, prompts: list[str],
                       settings: GenerationSettings) -> Iterator[Piece | Completion]:
    """Generate for every prompt (see module docstring); yields Piece and Completion objects."""
    k = settings.num_samples
    for start in range(0, len(prompts), settings.batch_size):
        chunk = prompts[start: start + settings.batch_size]
        yield from _run_batch(model, tokenizer, chunk, start * k, settings)


def compare_strategies(model, tokenizer, prompt: str,
                       settings: GenerationSettings) -> Iterator[tuple[str, dict, Completion]]:
    """(name, sampling values, completion) for each strategy of COMPARE_STRATEGIES in turn: one sample of
    `prompt` each, with everything but the sampling taken from `settings`."""
    from dataclasses import replace

    from .presets import COMPARE_STRATEGIES

    for name, values in COMPARE_STRATEGIES.items():
        strategy = replace(settings, sampling=SamplingConfig(**values), num_samples=1)
        done = [e for e in stream_completions(model, tokenizer, [prompt], strategy) if isinstance(e, Completion)]
        yield name, values, done[0]


def _run_batch(model, tokenizer, prompts: list[str], first_index: int,
               settings: GenerationSettings) -> Iterator[Piece | Completion]:
    k = settings.num_samples
    encoded = [tokenizer.prompt_ids(p) for p in prompts]  # BOS first where the model expects one (Llama)
    started = time.perf_counter()
    decoder = Decoder(model, encoded, settings.sampling, num_samples=k, seed=settings.seed,
                      vocab_limit=tokenizer.vocab_size, use_cache=settings.use_cache)
    rows = len(decoder.rows)
    streams = [TextStream(tokenizer) for _ in range(rows)]
    matchers = [StopMatcher(settings.stop_strings) for _ in range(rows)]
    texts: list[list[str]] = [[] for _ in range(rows)]
    counts = [0] * rows
    active = [True] * rows

    def finish(row: int, reason: str) -> Iterator[Piece | Completion]:
        active[row] = False
        if reason != "stop":
            tail, _ = matchers[row].push(streams[row].flush())
            tail += matchers[row].flush()
            if tail:
                texts[row].append(tail)
                yield Piece(first_index + row, tail)
        yield Completion(first_index + row, prompts[row // k], row % k, "".join(texts[row]),
                         len(encoded[row // k]), counts[row], reason, time.perf_counter() - started)

    for _ in range(settings.max_new_tokens):
        for row, token in enumerate(decoder.step(active)):
            if token is None:
                continue
            if settings.stop_at_end_of_text and token == tokenizer.eot_id:
                yield from finish(row, "end_of_text")
                continue
            counts[row] += 1
            piece, stopped = matchers[row].push(streams[row].push(token))
            if piece:
                texts[row].append(piece)
                yield Piece(first_index + row, piece)
            if stopped:
                yield from finish(row, "stop")
        if not any(active):
            break
    for row in range(rows):
        if active[row]:
            yield from finish(row, "length")
