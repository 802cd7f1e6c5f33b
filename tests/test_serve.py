"""`gptscratch serve` driven by the official `openai` client against a real server on a free loopback port.

The server is a subprocess (`python -m gptscratch serve CKPT --port 0`); the port it got is read from its log
line. Expected texts come from gptscratch's own generation in this process, on the same checkpoint in fp32."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

openai = pytest.importorskip("openai")
httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

import gptscratch.checkpoint as ckpt  # noqa: E402
from gptscratch.chat.template import GptScratchFormat  # noqa: E402
from gptscratch.chat.tokens import add_chat_tokens  # noqa: E402
from gptscratch.generation import SamplingConfig  # noqa: E402
from gptscratch.generation.chat import reply_batch  # noqa: E402
from gptscratch.generation.completion import Completion, GenerationSettings, stream_completions  # noqa: E402
from gptscratch.tokenizers import ByteTokenizer  # noqa: E402
from helpers import build_tiny_model  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
GREEDY = SamplingConfig(temperature=0.0)


def make_checkpoint(folder: Path, context: int, chat: bool = True) -> Path:
    base = build_tiny_model(vocab_size=320, context_length=context, seed=3)
    if not chat:
        return ckpt.save_checkpoint(folder, base, ByteTokenizer().spec())
    config, state, tokenizer = add_chat_tokens(base.config, base.state_dict(), ByteTokenizer())
    model = build_tiny_model(**{k: v for k, v in config.to_dict().items() if v is not None})
    model.load_state_dict(state)
    return ckpt.save_checkpoint(folder, model, tokenizer.spec())


class Server:
    """`gptscratch serve` in a subprocess; `url` once it listens, `stop()` sends SIGTERM and waits."""

    def __init__(self, checkpoint: Path, home: Path, *args: str):
        env = {**os.environ, "GPTSCRATCH_HOME": str(home), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
               "GPTSCRATCH_DEVICE": "cpu", "PYTHONPATH": str(REPO_ROOT)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gptscratch", "serve", str(checkpoint), "--port", "0", "--dtype", "fp32",
             *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO_ROOT)
        self.log: list[str] = []
        self.listening = threading.Event()
        self.url = ""
        threading.Thread(target=self._read, daemon=True).start()
        if not self.listening.wait(90):
            self.process.kill()
            raise AssertionError("the server did not start:\n" + "".join(self.log))

    def _read(self) -> None:
        for line in self.process.stderr:
            self.log.append(line)
            found = re.search(r"serving (\S+) at (http://\S+/v1)", line)
            if found:
                self.model, self.url = found.group(1), found.group(2)
                self.listening.set()

    def client(self, **kwargs) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.url, api_key=kwargs.pop("api_key", "unused"), max_retries=0, **kwargs)

    def health(self) -> dict:
        return httpx.get(self.url.removesuffix("/v1") + "/health", timeout=10).json()

    def stop(self, timeout: float = 60) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout)
        self.process.stdout.close()
        return code


@pytest.fixture(scope="module")
def chat_server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("serve")
    checkpoint = make_checkpoint(folder / "tiny-chat", context=256)
    server = Server(checkpoint, folder / "home", "--max-batch", "8")
    yield server, ckpt.load_checkpoint(checkpoint)
    assert server.stop() == 0


def generated(loaded, prompt: str, max_tokens: int, seed: int | None = None, **sampling) -> Completion:
    """gptscratch's own completion of `prompt` (what the server must answer)."""
    settings = GenerationSettings(max_new_tokens=max_tokens, sampling=SamplingConfig(**sampling), seed=seed)
    return [e for e in stream_completions(loaded.model, loaded.tokenizer, [prompt], settings)
            if isinstance(e, Completion)][0]


def test_completion_equals_gptscratch_generation_and_counts_tokens(chat_server):
    server, loaded = chat_server
    client = server.client()
    assert [m.id for m in client.models.list().data] == [server.model] == ["tiny-chat"]
    answer = client.completions.create(model=server.model, prompt="Hello there", max_tokens=12, temperature=0)
    expected = generated(loaded, "Hello there", 12, temperature=0.0)
    assert answer.choices[0].text == expected.completion
    assert answer.choices[0].finish_reason == ("length" if expected.finish_reason == "length" else "stop")
    assert answer.usage.prompt_tokens == len(loaded.tokenizer.prompt_ids("Hello there"))
    assert answer.usage.completion_tokens == expected.completion_tokens
    # a stop string cuts the text before it, and a seeded sample is the same sample gptscratch draws
    sampled = client.completions.create(model=server.model, prompt="Once", max_tokens=20, temperature=1.0,
                                        seed=7)
    own = generated(loaded, "Once", 20, seed=7, temperature=1.0)
    assert sampled.choices[0].text == own.completion
    cut = own.completion[3:5]
    stopped = client.completions.create(model=server.model, prompt="Once", max_tokens=20, temperature=1.0, seed=7,
                                        stop=[cut])
    assert stopped.choices[0].text == own.completion[: own.completion.find(cut)]
    assert stopped.choices[0].finish_reason == "stop"


def test_streamed_chat_uses_the_chat_template_and_ends_with_usage(chat_server):
    server, loaded = chat_server
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2 + 2?"}]
    stream = server.client().chat.completions.create(model=server.model, messages=messages, max_tokens=10,
                                                     temperature=0, stream=True,
                                                     stream_options={"include_usage": True})
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    fmt = GptScratchFormat(loaded.tokenizer)
    own = reply_batch(loaded.model, loaded.tokenizer, fmt, [messages], GREEDY, max_new_tokens=10)[0]
    assert text == own["reply"]
    assert finish == [own["finish_reason"]]
    assert chunks[-1].usage.completion_tokens == own["completion_tokens"]
    assert chunks[-1].usage.prompt_tokens == len(fmt.prompt_ids(messages))


def test_32_concurrent_clients_are_batched_and_each_gets_its_own_answer(chat_server):
    server, loaded = chat_server
    prompts = [f"Prompt number {i}: " for i in range(32)]

    async def ask_all():
        client = openai.AsyncOpenAI(base_url=server.url, api_key="unused", max_retries=0)
        async with client:
            return await asyncio.gather(*[
                client.completions.create(model=server.model, prompt=p, max_tokens=3 + i % 6,
                                          temperature=0 if i % 2 else 1.0, seed=i)
                for i, p in enumerate(prompts)])

    before = server.health()["scheduler"]
    answers = asyncio.run(ask_all())
    after = server.health()["scheduler"]
    for i, (prompt, answer) in enumerate(zip(prompts, answers)):
        own = generated(loaded, prompt, 3 + i % 6, seed=i, temperature=0.0 if i % 2 else 1.0)
        assert answer.choices[0].text == own.completion, f"request {i}"
    assert after["jobs"] - before["jobs"] == 32
    assert after["max_rows"] > 1                                    # requests did share decoding steps
    assert after["steps"] - before["steps"] < sum(3 + i % 6 for i in range(32))   # fewer than one at a time
    # rows of different lengths: the batch was re-formed mid-generation (finished rows out, waiting ones in), and
    # every sampled row still gave exactly its own seeded text above, its generator carried across rebuilds
    assert after["rebuilds"] - before["rebuilds"] > 32 / 8


def test_bad_requests_get_openai_errors_and_the_server_stays_up(chat_server):
    server, _ = chat_server
    client = server.client()
    cases = [
        (dict(model="no-such-model", prompt="x"), openai.NotFoundError, "model_not_found"),
        (dict(model=server.model, prompt="x", temperature=3), openai.BadRequestError, None),
        (dict(model=server.model, prompt="x", top_p=0), openai.BadRequestError, None),
        (dict(model=server.model, prompt="x", n=100), openai.BadRequestError, None),
        (dict(model=server.model, prompt="x", max_tokens=0), openai.BadRequestError, None),
        (dict(model=server.model, prompt="x", logprobs=3), openai.BadRequestError, None),
        (dict(model=server.model, prompt="x" * 300), openai.BadRequestError, "context_length_exceeded"),
        (dict(model=server.model, prompt="x" * 200, max_tokens=100), openai.BadRequestError,
         "context_length_exceeded"),
    ]
    for kwargs, error, code in cases:
        with pytest.raises(error) as caught:
            client.completions.create(**kwargs)
        body = caught.value.body
        assert set(body) >= {"message", "type", "param", "code"} and body["message"], kwargs
        assert code is None or body["code"] == code, body
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=server.model, messages=[])
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=server.model, messages=[{"role": "robot", "content": "hi"}])
    raw = httpx.post(server.url + "/completions", content=b"{not json", timeout=10,
                     headers={"content-type": "application/json"})
    assert raw.status_code == 400 and "not valid JSON" in raw.json()["error"]["message"]
    bodies = [
        ('{"model": "%s", "prompt": "x", "temperature": NaN}' % server.model, "temperature"),
        ('{"model": "%s", "prompt": "x", "n": true}' % server.model, "n"),
        ('{"model": "%s", "prompt": "x", "stop": [1, 2]}' % server.model, "stop"),
        ('{"model": "%s", "prompt": [1, 2, 3]}' % server.model, "prompt"),
        ('{"model": "%s", "messages": ["hi"]}' % server.model, "messages"),
        ('[1, 2]', None),
    ]
    for body, param in bodies:
        path = "/chat/completions" if "messages" in body else "/completions"
        answer = httpx.post(server.url + path, content=body.encode(), timeout=10,
                            headers={"content-type": "application/json"})
        assert answer.status_code == 400 and answer.json()["error"]["param"] == param, (body, answer.text)
    missing = httpx.get(server.url + "/nothing-here", timeout=10)
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found"
    assert client.completions.create(model=server.model, prompt="still", max_tokens=3).choices[0].text is not None
    assert server.process.poll() is None


@pytest.mark.slow
def test_an_api_key_is_required_when_given(tmp_path):
    checkpoint = make_checkpoint(tmp_path / "keyed", context=64, chat=False)
    server = Server(checkpoint, tmp_path / "home", "--api-key", "s3cret")
    try:
        with pytest.raises(openai.AuthenticationError):
            server.client(api_key="wrong").models.list()
        assert httpx.get(server.url + "/models", timeout=10).status_code == 401
        client = server.client(api_key="s3cret")
        assert client.completions.create(model="keyed", prompt="a", max_tokens=2).usage.completion_tokens >= 0
        with pytest.raises(openai.BadRequestError, match="no chat template"):   # a base model: completions only
            client.chat.completions.create(model="keyed", messages=[{"role": "user", "content": "hi"}])
    finally:
        assert server.stop() == 0


@pytest.mark.slow
def test_joining_a_running_batch_a_full_queue_429_and_clients_that_leave(tmp_path):
    checkpoint = make_checkpoint(tmp_path / "long", context=4096, chat=False)
    server = Server(checkpoint, tmp_path / "home", "--max-batch", "2", "--max-queue", "1")
    try:
        client = server.client()
        long = dict(model="long", prompt="a", max_tokens=4000, temperature=1.0, extra_body={"ignore_eos": True})
        short = dict(model="long", prompt="b", max_tokens=5, temperature=0, extra_body={"ignore_eos": True})
        first = client.completions.create(stream=True, **long)
        next(iter(first))                                          # A decodes, for thousands of steps
        assert client.completions.create(**short).usage.completion_tokens == 5   # B joins A's batch ...
        assert server.health()["scheduler"]["rows"] == 1           # ... and is done while A still decodes
        second = client.completions.create(stream=True, **long)
        next(iter(second))                                         # C fills the batch (2 rows)
        waiting = {}
        thread = threading.Thread(target=lambda: waiting.update(answer=client.completions.create(**short)))
        thread.start()                                             # D waits: the queue (1) is full
        deadline = time.time() + 30
        while server.health()["scheduler"]["waiting"] < 1 and time.time() < deadline:
            time.sleep(0.02)
        with pytest.raises(openai.RateLimitError) as refused:     # E finds no room
            client.completions.create(model="long", prompt="c", max_tokens=1)
        assert refused.value.status_code == 429 and refused.value.body["code"] == "queue_full"
        first.close()                                              # A and C go away mid-stream
        second.close()
        thread.join(60)
        assert waiting["answer"].usage.completion_tokens == 5       # D got their place
        stats = server.health()["scheduler"]
        assert stats["cancelled_rows"] == 2 and stats["rows"] == 0  # A's and C's rows stopped decoding
        # a client that stops waiting for a whole (not streamed) answer: its rows stop too
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(server.url + "/completions", timeout=1.0, json={"model": "long", "prompt": "e",
                                                                       "max_tokens": 4000, "ignore_eos": True})
        deadline = time.time() + 30
        while server.health()["scheduler"]["cancelled_rows"] < 3 and time.time() < deadline:
            time.sleep(0.05)
        assert server.health()["scheduler"]["cancelled_rows"] == 3
        assert server.health()["scheduler"]["steps"] < 3 * 4000
        assert client.completions.create(model="long", prompt="d", max_tokens=2).choices
    finally:
        assert server.stop() == 0


@pytest.mark.slow
def test_sigterm_finishes_the_requests_in_flight_then_exits_0(tmp_path):
    checkpoint = make_checkpoint(tmp_path / "graceful", context=1024, chat=False)
    server = Server(checkpoint, tmp_path / "home")
    client = server.client(timeout=60)
    result = {}
    thread = threading.Thread(target=lambda: result.update(answer=client.completions.create(
        model="graceful", prompt="x", max_tokens=600, temperature=1.0, extra_body={"ignore_eos": True})))
    thread.start()
    deadline = time.time() + 30
    while server.health()["scheduler"]["steps"] < 5 and time.time() < deadline:
        time.sleep(0.02)                                          # the request is being decoded
    server.process.send_signal(signal.SIGTERM)
    thread.join(60)
    assert result["answer"].usage.completion_tokens == 600         # finished, not cut
    assert result["answer"].choices[0].finish_reason == "length"
    assert server.stop() == 0
    assert "server stopped" in "".join(server.log)
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url + "/models", timeout=5)


def test_serve_refuses_a_port_in_use_in_one_line(tmp_path, run_cli):
    import socket

    checkpoint = make_checkpoint(tmp_path / "busy", context=64, chat=False)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = run_cli("serve", str(checkpoint), "--port", str(port), timeout=120)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and f"127.0.0.1:{port}" in result.stderr, result.stderr


def test_without_the_serve_extra_the_command_names_it(tmp_path, run_cli):
    hidden = tmp_path / "hidden"
    hidden.mkdir()
    (hidden / "uvicorn.py").write_text("raise ImportError(\"No module named 'uvicorn'\", name='uvicorn')\n")
    result = run_cli("serve", "--port", "0", env={"PYTHONPATH": os.pathsep.join([str(hidden), str(REPO_ROOT)])})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: `gptscratch serve` needs the serve extra (uvicorn is missing): pipx install 'gptscratch[serve]' or "
        "pip install 'gptscratch[serve]'"]
