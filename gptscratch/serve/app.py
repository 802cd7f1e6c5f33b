"""The HTTP side of `gptscratch serve`: OpenAI's routes over one model, as a FastAPI (ASGI) application.

    GET  /v1/models                 the one model served, as {"object": "list", "data": [...]}
    POST /v1/completions            text in, text out (prompt: a string or a list of them)
    POST /v1/chat/completions       messages in, a reply out, through the model's chat template
    GET  /health                    {"status": "ok", "scheduler": {steps, rebuilds, jobs, max_rows, waiting}}: the
                                    model is loaded (for load balancers, monitoring and tests)

With "stream": true the answer comes as server-sent events: one `data: {chunk}` line per piece of text as the
decoding thread produces it, then `data: [DONE]`, exactly as OpenAI's clients read them. Each request becomes a
Job for the decoding thread (scheduler.py), which batches all requests in flight; the handler only waits for its
job's events on an asyncio queue, so thousands of idle connections cost no decoding time.

Why FastAPI + uvicorn: a well-kept ASGI stack with streaming responses, client-disconnect detection and graceful
shutdown (uvicorn finishes the requests in flight on SIGTERM, then runs the lifespan's shutdown, which stops the
decoding thread). Writing any of that over raw sockets would be longer and worse.

Errors: every failure is OpenAI's error shape with a 4xx/5xx status (protocol.ApiError); an unexpected one is a
500 in the same shape. A client that goes away cancels its job — mid-stream (the response ends), or while waiting
for a whole answer (checked every half second) — so its rows stop decoding at the next step and the others carry
on; a job still in the queue leaves it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import UsageError
from .protocol import ApiError, new_id, now, parse_chat, parse_completion, usage
from .scheduler import Job, Scheduler


class Served:
    """What the server serves: the model, its tokenizer, its chat template (None: a base model), its name."""

    def __init__(self, model, tokenizer, chat_format, model_id: str):
        self.model, self.tokenizer, self.chat_format, self.model_id = model, tokenizer, chat_format, model_id
        self.context = model.config.context_length
        self.created = now()


def create_app(served: Served, *, api_key: str | None = None, max_batch: int = 8, max_queue: int = 64) -> FastAPI:
    """The ASGI application; its lifespan starts and stops the decoding thread."""
    scheduler = Scheduler(served.model, served.tokenizer, max_batch=max_batch, max_queue=max_queue)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        scheduler.start()
        yield
        await asyncio.to_thread(scheduler.close)

    async def check_key(request: Request) -> None:
        """Every route's dependency: with an API key, /v1 requests must carry it. (A dependency, not an HTTP
        middleware: Starlette's BaseHTTPMiddleware would hide a client's disconnect from the route.)"""
        if api_key is not None and request.url.path.startswith("/v1/"):
            given = request.headers.get("authorization", "")
            if not secrets.compare_digest(given.encode(), f"Bearer {api_key}".encode()):
                raise ApiError(401, "missing or incorrect API key: send `Authorization: Bearer KEY` with the key "
                                    "the server was started with", code="invalid_api_key")

    app = FastAPI(title="gptscratch", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None,
                  dependencies=[Depends(check_key)])
    app.state.scheduler = scheduler

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError):
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):      # a bug, not the client's fault: still OpenAI's shape
        error = ApiError(500, f"internal error ({type(exc).__name__}: {exc})", kind="server_error")
        return JSONResponse(error.body(), status_code=500)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        kind = "not_found" if exc.status_code == 404 else "invalid_request_error"
        error = ApiError(exc.status_code, f"{request.method} {request.url.path}: {exc.detail}", kind=kind)
        return JSONResponse(error.body(), status_code=exc.status_code)

    def model_card() -> dict:
        return {"id": served.model_id, "object": "model", "created": served.created, "owned_by": "gptscratch"}

    @app.get("/health")
    async def health():
        return {"status": "ok", "scheduler": {**scheduler.stats, "waiting": len(scheduler.waiting)}}

    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [model_card()]}

    @app.get("/v1/models/{model_id:path}")
    async def model(model_id: str):
        _check_model(served, model_id)
        return model_card()

    @app.post("/v1/completions")
    async def completions(request: Request):
        req = parse_completion(await _body(request), max_batch)
        _check_model(served, req.model)
        ids = [served.tokenizer.prompt_ids(p) for p in req.prompts]
        stop_ids = () if req.ignore_eos else (served.tokenizer.eot_id,)
        return await _run(served, scheduler, request, req, ids, stop_ids, chat=False)

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        req = parse_chat(await _body(request), max_batch)
        _check_model(served, req.model)
        fmt = served.chat_format
        if fmt is None:
            raise ApiError(400, f"model {served.model_id!r} has no chat template (a base model); fine-tune it with "
                                "`gptscratch train sft`, or use /v1/completions", "messages")
        try:
            ids = [fmt.prompt_ids(req.messages)]
        except (UsageError, ValueError) as exc:       # the template refused the conversation (its own checks)
            raise ApiError(400, f"the chat template cannot render these messages: {exc}", "messages") from None
        stop_ids = () if req.ignore_eos else tuple(fmt.stop_ids)
        return await _run(served, scheduler, request, req, ids, stop_ids, chat=True)

    return app


async def _body(request: Request) -> dict:
    raw = await request.body()
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ApiError(400, f"the request body is not valid JSON ({exc}); send a JSON object") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    return body


def _check_model(served: Served, name: str) -> None:
    if name != served.model_id:
        raise ApiError(404, f"the model {name!r} does not exist here; this server serves {served.model_id!r} "
                            "(GET /v1/models)", "model", code="model_not_found")


def _max_tokens(served: Served, req, ids: list[list[int]]) -> int:
    """max_tokens, checked against the context as OpenAI checks it: prompt + completion must fit."""
    longest = max(len(p) for p in ids)
    max_tokens = req.max_tokens if req.max_tokens is not None else served.context - longest
    if longest + max_tokens > served.context or max_tokens < 1:
        param = "max_tokens" if longest < served.context else "messages" if req.messages else "prompt"
        asked = longest + max(max_tokens, 1)
        raise ApiError(400, f"this model's context is {served.context} tokens, but {asked} were requested "
                            f"({longest} in the prompt, {max(max_tokens, 1)} for the completion); shorten the "
                            "prompt or lower max_tokens", param, code="context_length_exceeded")
    return max_tokens


async def _run(served: Served, scheduler: Scheduler, request: Request, req, ids: list[list[int]],
               stop_ids: tuple[int, ...], chat: bool):
    """Queue the job and answer: one JSON object, or a stream of server-sent events."""
    loop = asyncio.get_running_loop()
    events: asyncio.Queue = asyncio.Queue()

    def emit(event: tuple) -> None:          # called on the decoding thread
        with contextlib.suppress(RuntimeError):   # the loop is gone (shutdown): nobody is listening any more
            loop.call_soon_threadsafe(events.put_nowait, event)

    job = Job(prompts=ids, sampling=req.sampling, max_tokens=_max_tokens(served, req, ids), emit=emit, n=req.n,
              seed=req.seed, stop_strings=req.stop, stop_ids=stop_ids)
    if not scheduler.submit(job):
        if scheduler.closing:
            raise ApiError(503, "the server is shutting down; retry on another instance or after it restarts",
                           kind="server_error", code="shutting_down")
        raise ApiError(429, f"the server is busy: {scheduler.max_queue} requests are already waiting; retry "
                            "after a moment", kind="rate_limit_exceeded", code="queue_full")
    reply = Reply(new_id("chatcmpl" if chat else "cmpl"), served.model_id, chat, job.rows_needed,
                  sum(len(p) for p in ids))
    if req.stream:
        return JobStream(_stream(job, events, reply, req.include_usage), lambda: scheduler.cancel(job),
                         media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    try:
        texts = [""] * job.rows_needed
        async for event in _events(events, job.rows_needed, request):
            if event[0] == "piece":
                texts[event[1]] += event[2]
            else:
                reply.record(event)
        return reply.whole(texts)
    finally:
        scheduler.cancel(job)                # finished, or the client went away while waiting


class Reply:
    """Builds OpenAI's response objects for one request (whole or chunked)."""

    def __init__(self, reply_id: str, model_id: str, chat: bool, choices: int, prompt_tokens: int):
        self.id, self.model, self.chat, self.created = reply_id, model_id, chat, now()
        self.finish: list[str | None] = [None] * choices
        self.counts = [0] * choices
        self.prompt_tokens = prompt_tokens

    def _head(self, chunk: bool) -> dict:
        kind = ("chat.completion.chunk" if chunk else "chat.completion") if self.chat else "text_completion"
        return {"id": self.id, "object": kind, "created": self.created, "model": self.model}

    def record(self, done: tuple) -> None:
        """A ("done", choice, finish_reason, tokens) event."""
        _, index, reason, count = done
        self.finish[index], self.counts[index] = reason, count

    def usage(self) -> dict:
        return usage(self.prompt_tokens, sum(self.counts))

    def whole(self, texts: list[str]) -> dict:
        if self.chat:
            choices = [{"index": i, "message": {"role": "assistant", "content": t}, "logprobs": None,
                        "finish_reason": self.finish[i]} for i, t in enumerate(texts)]
        else:
            choices = [{"index": i, "text": t, "logprobs": None, "finish_reason": self.finish[i]}
                       for i, t in enumerate(texts)]
        return {**self._head(False), "choices": choices, "usage": self.usage()}

    def chunk(self, index: int, text: str | None, finish: str | None = None, role: bool = False) -> dict:
        if self.chat:
            delta = ({"role": "assistant", "content": ""} if role else {}) | ({"content": text} if text else {})
            choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
        else:
            choice = {"index": index, "text": text or "", "logprobs": None, "finish_reason": finish}
        return {**self._head(True), "choices": [choice]}


async def _events(events: asyncio.Queue, choices: int, request: Request | None = None):
    """The job's events until every choice is done. With `request` (a whole, not streamed, answer), checks every
    half second that the client is still there: nothing else would notice it leaving before the answer is sent."""
    done, clock = 0, asyncio.get_running_loop().time
    checked = clock()
    while done < choices:
        try:
            event = await asyncio.wait_for(events.get(), 0.5) if request is not None else await events.get()
        except asyncio.TimeoutError:
            event = None
        if request is not None and clock() - checked >= 0.5:     # events may never pause: check by the clock
            checked = clock()
            if await request.is_disconnected():
                return
        if event is None:
            continue
        if event[0] == "error":
            raise ApiError(500, f"decoding failed: {event[1]}", kind="server_error")
        if event[0] == "done":
            done += 1
        yield event


class JobStream(StreamingResponse):
    """A streamed answer that cancels its job however the response ends: finished, or cancelled because the
    client went away (the body's generator may then be left suspended at a `yield`, its `finally` not run)."""

    def __init__(self, content, on_close, **kwargs):
        super().__init__(content, **kwargs)
        self.on_close = on_close

    async def __call__(self, scope, receive, send):
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.on_close()


async def _stream(job: Job, events: asyncio.Queue, reply: Reply, include_usage: bool):
    def sse(payload: dict | str) -> str:
        return f"data: {payload if isinstance(payload, str) else json.dumps(payload)}\n\n"

    if reply.chat:
        for i in range(job.rows_needed):
            yield sse(reply.chunk(i, None, role=True))
    try:
        async for event in _events(events, job.rows_needed):
            if event[0] == "piece":
                yield sse(reply.chunk(event[1], event[2]))
            else:
                reply.record(event)
                yield sse(reply.chunk(event[1], None, finish=event[2]))
    except ApiError as exc:                    # headers are sent: the error travels as an event
        yield sse(exc.body())
        return
    if include_usage:
        yield sse({**reply._head(True), "choices": [], "usage": reply.usage()})
    yield sse("[DONE]")
