"""The OpenAI API's request and response shapes, checked and built by hand so every error says what was wrong.

Requests arrive as JSON objects; `parse_completion` / `parse_chat` check every field gptscratch uses and turn the
request into a `Request` (prompts still as text or messages: the app encodes them). A field out of range, of the
wrong type, or asking for something gptscratch cannot do (logprobs, tools, presence penalties) raises ApiError,
which the app returns in OpenAI's error shape:

    {"error": {"message": "...", "type": "invalid_request_error", "param": "temperature", "code": null}}

Fields, as in OpenAI's API (https://platform.openai.com/docs/api-reference): model, max_tokens (chat also
max_completion_tokens), temperature [0, 2], top_p (0, 1], n, stop (a string or up to 4), seed, stream,
stream_options.include_usage. Extensions, as vLLM and llama.cpp's server accept them: top_k, repetition_penalty
and ignore_eos (keep generating past end-of-text, for fixed-length benchmarks).
"""

from __future__ import annotations

import math
import time
import uuid
from dataclasses import dataclass

from ..generation.sampling import SamplingConfig


class ApiError(Exception):
    """An error the client caused (4xx) or the server cannot serve now (429/503), in OpenAI's shape."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None,
                 kind: str = "invalid_request_error"):
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.kind = status, message, param, code, kind

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}}


@dataclass
class Request:
    """One checked request. `prompts` (completions) or `messages` (chat) is set, not both."""

    model: str
    sampling: SamplingConfig
    max_tokens: int | None             # None: chat's default, all the room the context leaves
    n: int
    stop: tuple[str, ...]
    seed: int | None
    stream: bool
    include_usage: bool
    ignore_eos: bool
    prompts: list[str] | None = None
    messages: list[dict] | None = None


def _number(body: dict, name: str, default, low: float, high: float, *, integer: bool = False,
            low_open: bool = False):
    value = body.get(name)
    if value is None:
        return default
    wanted = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, wanted) or not math.isfinite(value):
        raise ApiError(400, f"{name} must be {'an integer' if integer else 'a finite number'}, got {value!r}", name)
    if value < low or value > high or (low_open and value == low):
        bracket = "(" if low_open else "["
        raise ApiError(400, f"{name} must be in {bracket}{low}, {high}], got {value}", name)
    return value


def _unsupported(body: dict, checks: dict) -> None:
    """Refuse fields gptscratch does not implement when they ask for something (`checks`: name → allowed)."""
    for name, allowed in checks.items():
        if name in body and body[name] not in allowed:
            raise ApiError(400, f"{name} is not supported by gptscratch serve; leave it out", name)


def _common(body: dict, max_outputs: int) -> dict:
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ApiError(400, "model is required: the name /v1/models lists", "model")
    _unsupported(body, {"presence_penalty": (None, 0, 0.0), "frequency_penalty": (None, 0, 0.0),
                        "logit_bias": (None, {}), "logprobs": (None, False), "top_logprobs": (None, 0)})
    temperature = _number(body, "temperature", 1.0, 0, 2)
    top_p = _number(body, "top_p", 1.0, 0, 1, low_open=True)
    top_k = _number(body, "top_k", None, 1, 1 << 31, integer=True)
    penalty = _number(body, "repetition_penalty", 1.0, 0, 100, low_open=True)
    n = _number(body, "n", 1, 1, max_outputs, integer=True)
    seed = _number(body, "seed", None, -(1 << 63), (1 << 63) - 1, integer=True)
    stop = body.get("stop")
    stop = [stop] if isinstance(stop, str) else (stop or [])
    if not isinstance(stop, list) or len(stop) > 4 or not all(isinstance(s, str) and s for s in stop):
        raise ApiError(400, "stop must be a non-empty string or a list of at most 4 of them", "stop")
    stream = body.get("stream") or False
    options = body.get("stream_options") or {}
    if not isinstance(stream, bool) or not isinstance(options, dict):
        raise ApiError(400, "stream must be true or false and stream_options an object", "stream")
    ignore_eos = body.get("ignore_eos") or False
    if not isinstance(ignore_eos, bool):
        raise ApiError(400, "ignore_eos must be true or false", "ignore_eos")
    sampling = SamplingConfig(temperature=float(temperature), top_k=top_k,
                              top_p=None if top_p == 1 else float(top_p), repetition_penalty=float(penalty))
    return dict(model=model, sampling=sampling, n=n, stop=tuple(stop), seed=seed, stream=stream,
                include_usage=bool(options.get("include_usage")), ignore_eos=ignore_eos)


def parse_completion(body: dict, max_outputs: int) -> Request:
    """POST /v1/completions. `prompt`: a string or a list of strings; max_tokens defaults to 16 as OpenAI's."""
    common = _common(body, max_outputs)
    _unsupported(body, {"echo": (None, False), "suffix": (None, ""), "best_of": (None, 1, common["n"])})
    prompt = body.get("prompt")
    prompts = [prompt] if isinstance(prompt, str) else prompt
    if not isinstance(prompts, list) or not prompts or not all(isinstance(p, str) for p in prompts):
        raise ApiError(400, "prompt must be a string or a non-empty list of strings", "prompt")
    if len(prompts) * common["n"] > max_outputs:
        raise ApiError(400, f"prompts × n must be at most {max_outputs} (this server's --max-batch)", "n")
    max_tokens = _number(body, "max_tokens", 16, 1, 1 << 31, integer=True)
    return Request(**common, max_tokens=max_tokens, prompts=prompts)


def parse_chat(body: dict, max_outputs: int) -> Request:
    """POST /v1/chat/completions. Message content: a string, or a list of {"type": "text", "text"} parts."""
    common = _common(body, max_outputs)
    _unsupported(body, {"tools": (None, []), "tool_choice": (None, "none"), "functions": (None, []),
                        "response_format": (None, {"type": "text"})})
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "messages must be a non-empty list of {role, content} objects", "messages")
    checked = []
    for i, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ("system", "developer", "user", "assistant"):
            raise ApiError(400, f"messages[{i}].role must be system, user or assistant, got {role!r}", "messages")
        content = message.get("content")
        if isinstance(content, list) and all(isinstance(p, dict) and p.get("type") == "text" for p in content):
            content = "".join(str(p.get("text", "")) for p in content)
        if not isinstance(content, str):
            raise ApiError(400, f"messages[{i}].content must be text", "messages")
        checked.append({"role": "system" if role == "developer" else role, "content": content})
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    name = "max_completion_tokens" if "max_completion_tokens" in body else "max_tokens"
    max_tokens = _number({name: max_tokens}, name, None, 1, 1 << 31, integer=True)
    return Request(**common, max_tokens=max_tokens, messages=checked)


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def now() -> int:
    return int(time.time())


def usage(prompt_tokens: int, completion_tokens: int) -> dict:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}
