"""Measuring, and remembering what was measured.

Machines differ too much for rules written from CPU flags: on one AVX2 EPYC bf16 *decoding* is 2.5× faster than
fp32 while bf16 *training* is 25× slower; on a Zen 4 with avx512_bf16 bf16 training is slower at width 128 and
2× faster at 256. So each speed decision is a short timing of the candidates, made the first time it is needed
and stored in `measurements.json` in the cache folder, under the machine's key (device.machine_key: processor,
threads, torch version). The next run on the same machine reads the answer instead of measuring again.

    measured(device, question, measure)   the stored answer to `question`, or measure() now and store it
    forget()                               delete every stored answer (`gptscratch info --remeasure`)
    stored_here(), describe(answers)       this machine's answers, and one readable line each (`gptscratch info`)
    GPTSCRATCH_MEASUREMENTS=FILE           keep them in FILE instead (the test suite shares one per session)
    GPTSCRATCH_REMEASURE=1                 measure again, ignoring (and replacing) stored answers

`time_candidates({name: fn})` times candidates against each other: one untimed warm-up call each, then rounds
in which each is called once, until `budget` seconds — interleaved, so load from elsewhere hits them alike — and a
candidate whose first timed call is SLOWER_BY times the fastest one's is not called again, so a kernel 25× slower
than the others costs two calls, not minutes.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from ..atomic import atomic_write_json
from ..device import machine_key
from ..paths import cache_root

FILE_NAME = "measurements.json"
ENV_FILE = "GPTSCRATCH_MEASUREMENTS"      # where to keep them instead (a file path)
ENV_REMEASURE = "GPTSCRATCH_REMEASURE"
SLOWER_BY = 4.0      # a candidate this many times slower than the fastest one (one timed call) is not timed further


def measurements_file() -> Path:
    """cache_root()/measurements.json, or $GPTSCRATCH_MEASUREMENTS."""
    override = os.environ.get(ENV_FILE, "").strip()
    return Path(override).expanduser() if override else cache_root() / FILE_NAME


def _read() -> dict:
    try:
        data = json.loads(measurements_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def stored() -> dict:
    """Everything measured so far: {machine key: {question: answer}}."""
    return _read()


def measured(device: str, question: str, measure: Callable[[], dict]) -> dict:
    """The answer stored for `question` on this machine, or `measure()`'s (stored for next time)."""
    key = machine_key(device)
    if os.environ.get(ENV_REMEASURE, "").strip() not in ("1", "true", "yes"):
        answer = _read().get(key, {}).get(question)
        if isinstance(answer, dict):
            return answer
    import torch

    with torch.random.fork_rng(devices=[]):   # measuring must not move the caller's random stream
        answer = measure()
    data = _read()                        # re-read: another process may have stored other answers meanwhile
    data.setdefault(key, {})[question] = answer
    try:
        atomic_write_json(measurements_file(), data)
    except OSError:
        pass                              # a read-only cache costs a re-measurement next time, nothing else
    return answer


def forget() -> bool:
    """Delete the stored measurements; True if there were any."""
    try:
        measurements_file().unlink()
        return True
    except FileNotFoundError:
        return False


def stored_here(device: str = "cpu") -> tuple[str | None, dict]:
    """(this machine's key, its stored answers {question: answer}). When nothing is stored at all the key is not
    computed — (None, {}) — because computing it imports torch (device.machine_key)."""
    data = _read()
    if not data:
        return None, {}
    key = machine_key(device)
    answers = data.get(key, {})
    return key, answers if isinstance(answers, dict) else {}


def describe(answers: dict) -> list[tuple[str, str]]:
    """One (question, answer) pair of readable text per stored answer, e.g.
    ("decode dtype d768 nh12 T1024 V50304", "fp32 (bf16 0.17 s, fp32 70.0 ms)"): a model shape stored as JSON
    becomes its width, heads, context and vocabulary plus every field that differs from ModelConfig's default."""
    return [(_describe_question(question), _describe_answer(answer)) for question, answer in answers.items()]


def _describe_question(question: str) -> str:
    head, brace, shape = question.partition("{")
    try:
        fields = json.loads(brace + shape) if brace else None
    except ValueError:
        fields = None
    if not isinstance(fields, dict):
        return question
    from ..model.config import ModelConfig

    defaults = {name: value.default for name, value in ModelConfig.__dataclass_fields__.items()}
    short = {"d_model": "d", "n_head": "nh", "context_length": "T", "vocab_size": "V"}
    words = [f"{short[name]}{fields[name]}" for name in short if name in fields]
    words += [f"{name}={value}" for name, value in fields.items()
              if name not in short and name in defaults and value != defaults[name]]
    words += [f"{name}={value}" for name, value in fields.items() if name not in short and name not in defaults]
    return " ".join([head.strip(), *words])


def _describe_answer(answer) -> str:
    if not isinstance(answer, dict) or "best" not in answer:
        return json.dumps(answer)
    per_token = "seconds_per_token" in answer
    timings = answer.get("seconds_per_token" if per_token else "seconds")
    if not isinstance(timings, dict) or not timings:
        return str(answer["best"])
    times = ", ".join(f"{name} {_duration(seconds)}" for name, seconds in sorted(timings.items()))
    return f"{answer['best']} ({times}{' per token' if per_token else ''})"


def _duration(seconds) -> str:
    if not isinstance(seconds, (int, float)):
        return str(seconds)
    if seconds >= 0.1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e6:.0f} µs"


def time_candidates(candidates: dict[str, Callable[[], object]], budget: float = 1.0, max_rounds: int = 7,
                    synchronize: Callable[[], None] | None = None) -> dict[str, float]:
    """{name: median seconds per call}. Each candidate is called once untimed (warm-up: one-time costs such as
    allocations and kernel selection), then the candidates take turns, one timed call each per round, so a
    burst of load elsewhere hits all of them alike; rounds stop after `budget` seconds (at least two rounds) or
    `max_rounds`. A candidate whose first timed call takes SLOWER_BY times the fastest one's has lost and is not
    called again: its one time stands."""
    sync = synchronize or (lambda: None)

    def timed(fn) -> float:
        started = time.perf_counter()
        fn()
        sync()
        return time.perf_counter() - started

    for fn in candidates.values():
        timed(fn)
    times = {name: [timed(fn)] for name, fn in candidates.items()}
    fastest = min(values[0] for values in times.values())
    racing = {name: fn for name, fn in candidates.items() if times[name][0] <= SLOWER_BY * fastest}
    spent, rounds = sum(values[0] for values in times.values()), 1
    while rounds < max_rounds and (spent < budget or rounds < 2):
        for name, fn in racing.items():
            times[name].append(timed(fn))
            spent += times[name][-1]
        rounds += 1
    return {name: statistics.median(values) for name, values in times.items()}
