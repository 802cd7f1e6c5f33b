"""Many clients, one model: a decoding thread that batches every request in flight, step by step.

The model runs on one thread (the GPU or the CPU cores are one resource: two threads decoding at once would only
fight over it). HTTP handlers put Jobs in a queue and wait for events; the decoding thread runs the batched
Decoder of gptscratch/generation/engine.py over the *rows* of every admitted job (one row per choice, `n` of
them per prompt) and hands each new piece of text back as it is decoded.

Batching — iteration-level, by re-prefill. Two simpler policies waste most of the machine:
    one request at a time   a one-row decoding step reads every weight to do a handful of FLOPs per weight;
                            eight rows cost barely more than one (memory-bound), so seven eighths are lost.
    static batches          wait for a whole batch to finish before starting the next: a 5-token reply waits
                            for a 500-token neighbour, and a request arriving mid-batch waits for all of it.
What runs here is *continuous* (iteration-level) batching in the sense of Orca (Yu et al., OSDI 2022): after
every decoding step the scheduler may change the batch — rows that finished leave it, waiting requests join it.
Serving engines do this with a paged KV cache (vLLM) so that rows can be added in place; gptscratch's cache is
one dense (rows, heads, slots, hs) tensor per layer, so joining means *re-prefilling*: a new Decoder is built
over every row's text so far (prompt + generated tokens, left-padded as usual) with each row's own random
generator carried over, so its sampled text continues exactly as if nothing had happened.
    cost of a join:  one prefill of (rows × longest row) tokens — O(rows · L · d²) plus attention's O(L²)
    when:            after a step, if a waiting request fits in the room the running rows leave, or if half the
                     rows are done (a shrinking batch stops paying for finished rows), or if the cache is full
A re-prefill costs about as much as a few decoding steps at short lengths, which is why joins are batched: all
waiting requests that fit join at once. A row never exceeds the context, because a request is refused (400)
when its prompt plus `max_tokens` would not fit (as OpenAI's API does). The *cache* can still fill up: left
padding makes every row as wide as the widest, finished rows included, so when it is full the batch is re-formed
from the running rows alone instead of sliding (which would cut their prompts).

Back-pressure: at most `max_queue` jobs wait to be admitted; `submit` returns False beyond that and the server
answers 429. At most `max_batch` rows decode together. A client that goes away calls `cancel(job)`: a waiting job
leaves the queue at once, a running one's rows stop at the next step.

Events a job receives, in order, through its `emit` callback (called on the decoding thread):
    ("piece", choice, text)                       text that is final (stop strings cut, UTF-8 whole)
    ("done", choice, finish_reason, n_tokens)     finish_reason "stop" (end-of-text, end of turn or a stop
                                                  string) or "length" (max_tokens), as in OpenAI's API
    ("error", message)                            decoding failed; the server stays up
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from ..generation.engine import Decoder
from ..generation.sampling import SamplingConfig
from ..generation.text import StopMatcher, TextStream


@dataclass
class Row:
    """One choice of one job: its prompt, its sampling, and what it has produced so far."""

    job: Job
    choice: int
    prompt_ids: list[int]
    sampling: SamplingConfig
    generator: object                      # torch.Generator: the row's own random stream
    stream: TextStream
    stops: StopMatcher
    generated: list[int] = field(default_factory=list)
    done: bool = False

    def finish(self, reason: str, flush: bool = True) -> None:
        """End the row. `flush`: the text held back (a possible stop string's start) is text after all —
        except when a stop string did match, which ends the text before it."""
        self.done = True
        if flush:
            tail, _ = self.stops.push(self.stream.flush())
            tail += self.stops.flush()
            if tail:
                self.job.emit(("piece", self.choice, tail))
        self.job.emit(("done", self.choice, reason, len(self.generated)))


@dataclass
class Job:
    """One request: prompts (already ids), how to sample them, where its events go.

    `prompts` holds one id list per prompt; each gets `n` choices, numbered prompt-major (choice = p·n + k, as
    OpenAI numbers them). `seed` seeds choice k's generator with seed + k; None draws a fresh seed."""

    prompts: list[list[int]]
    sampling: SamplingConfig
    max_tokens: int
    emit: Callable[[tuple], None]
    n: int = 1
    seed: int | None = None
    stop_strings: tuple[str, ...] = ()
    stop_ids: tuple[int, ...] = ()
    cancelled: bool = False                # set by the server when the client went away

    @property
    def rows_needed(self) -> int:
        return len(self.prompts) * self.n


class Scheduler:
    """The decoding thread and its queue (module docstring). `start()`, `submit(job)`, `close()`."""

    def __init__(self, model, tokenizer, *, max_batch: int = 8, max_queue: int = 64):
        if max_batch < 1 or max_queue < 1:
            raise ValueError("max_batch and max_queue must be ≥ 1")
        self.model, self.tokenizer = model, tokenizer
        self.max_batch, self.max_queue = max_batch, max_queue
        self.device = next(model.parameters()).device
        self.waiting: collections.deque[Job] = collections.deque()
        self.condition = threading.Condition()
        self.closing = False
        self.thread = threading.Thread(target=self._run, name="gptscratch-decoder", daemon=True)
        self.stats = {"steps": 0, "rebuilds": 0, "jobs": 0, "rows": 0, "max_rows": 0, "cancelled_rows": 0}
        self.row_kernels = None     # one-row decoding kernels over the served (fixed) weights, prepared once

    def start(self) -> None:
        from ..accel.decoding import decoding_kernels

        self.row_kernels = decoding_kernels(self.model)
        self.thread.start()

    def submit(self, job: Job) -> bool:
        """Queue `job`; False when the queue is full or the scheduler is closing (the server answers 429/503)."""
        if job.rows_needed > self.max_batch:
            raise ValueError(f"a request may ask for at most {self.max_batch} outputs (prompts × n)")
        with self.condition:
            if self.closing or len(self.waiting) >= self.max_queue:
                return False
            self.waiting.append(job)
            self.condition.notify()
        return True

    def cancel(self, job: Job) -> None:
        """The client went away: drop the job from the queue, or stop its rows at the next step."""
        with self.condition:
            job.cancelled = True
            if job in self.waiting:
                self.waiting.remove(job)

    def close(self, timeout: float | None = None) -> None:
        """Stop admitting new jobs, finish every admitted and queued one, then end the thread."""
        with self.condition:
            self.closing = True
            self.condition.notify()
        if self.thread.is_alive():
            self.thread.join(timeout)

    def _run(self) -> None:
        rows: list[Row] = []
        while True:
            with self.condition:
                while not rows and not self.waiting and not self.closing:
                    self.condition.wait()
                if not rows and not self.waiting:
                    return                                   # closing, and nothing left to do
            try:
                rows = self._decode(self._admit(rows))
            except Exception as exc:  # noqa: BLE001 — the decoding thread must outlive any one failure
                self._fail(rows, exc)
                rows = []

    def _admit(self, rows: list[Row]) -> list[Row]:
        """The rows still running plus every waiting job that fits in the batch, in arrival order."""
        import torch

        with self.condition:
            room = self.max_batch - len(rows)
            while self.waiting and self.waiting[0].rows_needed <= room:
                job = self.waiting.popleft()
                if job.cancelled:
                    continue
                room -= job.rows_needed
                self.stats["jobs"] += 1
                for p, prompt in enumerate(job.prompts):
                    for k in range(job.n):
                        generator = torch.Generator(device=self.device)
                        generator.manual_seed(job.seed + k) if job.seed is not None else generator.seed()
                        rows.append(Row(job, p * job.n + k, prompt, job.sampling, generator,
                                        TextStream(self.tokenizer), StopMatcher(job.stop_strings)))
        return rows

    def _decode(self, rows: list[Row]) -> list[Row]:
        """Decode `rows` until the batch should change (module docstring); returns the rows still running."""
        if not rows:
            return rows
        decoder = Decoder(self.model, [r.prompt_ids + r.generated for r in rows], [r.sampling for r in rows],
                          vocab_limit=self.tokenizer.vocab_size, generators=[r.generator for r in rows],
                          row_kernels=self.row_kernels)
        self.stats["rebuilds"] += 1
        self.stats["max_rows"] = max(self.stats["max_rows"], len(rows))
        while True:
            for row in rows:
                if row.job.cancelled and not row.done:
                    row.done = True                          # the client went away: stop spending on it
                    self.stats["cancelled_rows"] += 1
            running = [r for r in rows if not r.done]
            self.stats["rows"] = len(running)
            if not running or self._should_rebuild(rows, running, decoder):
                return running
            tokens = decoder.step([not r.done for r in rows])
            self.stats["steps"] += 1
            for row, token in zip(rows, tokens):
                if token is not None:
                    self._accept(row, token)

    def _should_rebuild(self, rows: list[Row], running: list[Row], decoder: Decoder) -> bool:
        """Re-form the batch now? (module docstring: a waiting job fits, half the rows are done, the cache is full)"""
        with self.condition:
            waiting = [job for job in self.waiting if not job.cancelled]
        if waiting and waiting[0].rows_needed <= self.max_batch - len(running):
            return True
        if len(running) < len(rows) and len(running) <= len(rows) // 2:
            return True
        cache = decoder.cache
        return cache is not None and decoder.pending is not None and cache.length >= cache.max_len

    def _fail(self, rows: list[Row], exc: Exception) -> None:
        """A batch failed: every job in it gets an error event (its request answers 500); the server goes on."""
        message = f"{type(exc).__name__}: {exc}"
        for job in {id(r.job): r.job for r in rows if not r.done}.values():
            job.emit(("error", message))

    def _accept(self, row: Row, token: int) -> None:
        """One sampled token: end the row at a stop id, a stop string or max_tokens, else emit its text."""
        job = row.job
        if token in job.stop_ids:
            row.finish("stop")
            return
        row.generated.append(token)
        piece, stopped = row.stops.push(row.stream.push(token))
        if piece:
            job.emit(("piece", row.choice, piece))
        if stopped:
            row.finish("stop", flush=False)
        elif len(row.generated) >= job.max_tokens:
            row.finish("length")
