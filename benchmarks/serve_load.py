"""`gptscratch serve` under load: throughput and p50/p99 latency at 1, 8 and 32 concurrent clients.

Starts the real server (`python -m gptscratch serve CKPT --port 0`) and drives it with the official `openai`
client (AsyncOpenAI): each of C clients sends its requests one after another (a closed loop, as chat users
do), streamed, with a fixed completion length (`ignore_eos`) so every configuration does the same work. Reported
per level: completion tokens per second over the whole run, requests per second, latency of a whole request
(p50/p99) and time to the first token (p50/p99). The same load is then run against a server with --max-batch 1
(one request at a time), which shows what batching buys.

Default model: the `small` shape (6 layers × 256 wide, 4 heads) with random weights and the byte tokenizer,
context 512: speed does not depend on what the weights are. `--checkpoint NAME` serves a real one instead.

    .venv/bin/python benchmarks/serve_load.py [--levels 1 8 32] [--requests 4] [--max-tokens 64]
                                              [--checkpoint gpt2] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def random_checkpoint(folder: Path) -> Path:
    import torch

    from gptscratch.checkpoint import save_checkpoint
    from gptscratch.model import GPT, model_config
    from gptscratch.tokenizers import ByteTokenizer

    torch.manual_seed(0)
    model = GPT(model_config("small", vocab_size=320, context_length=512)).eval()
    return save_checkpoint(folder / "serve-bench", model, ByteTokenizer().spec())


def start_server(checkpoint: str, home: Path, max_batch: int, dtype: str) -> tuple[subprocess.Popen, str, str]:
    env = {**os.environ, "GPTSCRATCH_HOME": str(home), "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-m", "gptscratch", "serve", checkpoint, "--port", "0",
                                "--max-batch", str(max_batch), "--max-queue", "1024", "--dtype", dtype],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    found: dict = {}
    ready = threading.Event()

    def read():
        for line in process.stderr:
            match = re.search(r"serving (\S+) at (http://\S+/v1)", line)
            if match:
                found.update(model=match.group(1), url=match.group(2))
                ready.set()

    threading.Thread(target=read, daemon=True).start()
    if not ready.wait(300):
        process.kill()
        raise SystemExit("the server did not start")
    return process, found["url"], found["model"]


async def one_level(url: str, model: str, clients: int, requests: int, max_tokens: int) -> dict:
    import openai

    latencies, first_tokens, tokens = [], [], 0
    api = openai.AsyncOpenAI(base_url=url, api_key="unused", max_retries=0, timeout=600)

    async def client(number: int) -> None:
        nonlocal tokens
        for r in range(requests):
            started = time.perf_counter()
            first = None
            stream = await api.completions.create(
                model=model, prompt=f"Client {number}, request {r}: once upon a time", max_tokens=max_tokens,
                temperature=0.8, seed=number * 1000 + r, stream=True, stream_options={"include_usage": True},
                extra_body={"ignore_eos": True})
            async for chunk in stream:
                if first is None and chunk.choices and chunk.choices[0].text:
                    first = time.perf_counter() - started
                if chunk.usage is not None:
                    tokens += chunk.usage.completion_tokens
            latencies.append(time.perf_counter() - started)
            first_tokens.append(first if first is not None else latencies[-1])

    started = time.perf_counter()
    async with api:
        await asyncio.gather(*[client(c) for c in range(clients)])
    wall = time.perf_counter() - started
    return {"clients": clients, "requests": len(latencies), "tokens": tokens, "seconds": round(wall, 2),
            "tokens_per_s": round(tokens / wall, 1), "requests_per_s": round(len(latencies) / wall, 2),
            "latency_p50_s": round(percentile(latencies, 50), 3), "latency_p99_s": round(percentile(latencies, 99), 3),
            "first_token_p50_s": round(percentile(first_tokens, 50), 3),
            "first_token_p99_s": round(percentile(first_tokens, 99), 3)}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    return statistics.quantiles(ordered, n=100, method="inclusive")[int(q) - 1] if q < 100 else ordered[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--requests", type=int, default=4, help="requests per client, one after another")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--max-batch", type=int, default=32, help="the batched server's --max-batch")
    parser.add_argument("--checkpoint", help="serve this checkpoint instead of a random `small` model")
    parser.add_argument("--dtype", default="fp32")
    parser.add_argument("--no-baseline", action="store_true", help="skip the --max-batch 1 comparison")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    results = []
    with tempfile.TemporaryDirectory() as scratch:
        checkpoint = args.checkpoint or str(random_checkpoint(Path(scratch)))
        batches = [args.max_batch] + ([] if args.no_baseline else [1])
        for max_batch in batches:
            process, url, model = start_server(checkpoint, Path(scratch) / "home", max_batch, args.dtype)
            try:
                asyncio.run(one_level(url, model, 1, 1, 8))                      # warm-up
                for clients in args.levels:
                    row = asyncio.run(one_level(url, model, clients, args.requests, args.max_tokens))
                    results.append({"max_batch": max_batch, **row})
                    print(f"max_batch {max_batch:>2}  clients {clients:>2}: {row['tokens_per_s']:>7} tok/s  "
                          f"p50 {row['latency_p50_s']:.2f}s  p99 {row['latency_p99_s']:.2f}s  first token p50 "
                          f"{row['first_token_p50_s']:.3f}s", file=sys.stderr)
            finally:
                process.terminate()
                process.wait(120)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"\n{args.max_tokens} tokens per request, {args.requests} requests per client, "
          f"checkpoint {args.checkpoint or 'random small (6×256, byte tokenizer)'}, {args.dtype}, "
          f"{os.cpu_count()} CPUs")
    print("| max batch | clients | requests | tokens/s | requests/s | latency p50 | latency p99 | first token p50 "
          "| first token p99 |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['max_batch']} | {r['clients']} | {r['requests']} | {r['tokens_per_s']} | {r['requests_per_s']} "
              f"| {r['latency_p50_s']} s | {r['latency_p99_s']} s | {r['first_token_p50_s']} s "
              f"| {r['first_token_p99_s']} s |")


if __name__ == "__main__":
    main()
