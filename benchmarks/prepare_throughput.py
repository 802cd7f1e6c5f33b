"""Benchmark `prepare()`: tokens/s, MB/s and peak memory on generated text (no network).

    python benchmarks/prepare_throughput.py                  # 64 MB of JSON lines, cl100k_base
    python benchmarks/prepare_throughput.py --format txt --mb 100 --tokenizer byte

Generates documents of 0.5-8k characters of English-like text (words drawn from Python's
own reference docs, so BPE sees real words) into a temporary folder -- as one .jsonl (the
`datasets` path FineWeb-Edu takes) or as .txt files (one document each) -- then runs
`gptscratch.data.prepare` in a fresh child process and reports, for that process: wall time
(imports included), tokens/s, MB/s of text, and peak RSS. Target on a 2-core CPU with
cl100k_base: >= 3M tokens/s, peak RSS < 500 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

CHILD = """
import json, sys, time
sys.path.insert(0, {repo!r})
started = time.perf_counter()
from gptscratch.data import prepare
dataset = prepare({source!r}, {tokenizer!r}, name="bench", shard_tokens={shard_tokens})
elapsed = time.perf_counter() - started
print(json.dumps({{"tokens": dataset.num_tokens("train") + dataset.num_tokens("val"),
                  "documents": dataset.num_documents("train") + dataset.num_documents("val"), "seconds": elapsed}}))
"""


def generate(folder: Path, megabytes: float, fmt: str, seed: int = 0) -> tuple[str, int]:
    """Write about `megabytes` MB of documents; returns (source, bytes written)."""
    from pydoc_data.topics import topics

    words = " ".join(topics.values()).split()
    rng = random.Random(seed)
    target, written, number = int(megabytes * 1e6), 0, 0
    jsonl = open(folder / "docs.jsonl", "w", encoding="utf-8") if fmt == "jsonl" else None
    if fmt == "txt":
        (folder / "docs").mkdir()
    while written < target:
        text = " ".join(rng.choices(words, k=rng.randint(80, 1300)))
        lines = [text[i : i + 400] for i in range(0, len(text), 400)]
        text = "\n".join(lines)
        if jsonl:
            jsonl.write(json.dumps({"text": text, "id": f"doc-{number}"}) + "\n")
        else:
            (folder / "docs" / f"{number:07d}.txt").write_text(text, encoding="utf-8")
        written += len(text.encode("utf-8"))
        number += 1
    if jsonl:
        jsonl.close()
    return str(folder / ("docs.jsonl" if fmt == "jsonl" else "docs")), written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=64.0, help="megabytes of text to generate (>= 50 for the target)")
    parser.add_argument("--format", choices=("jsonl", "txt"), default="jsonl")
    parser.add_argument("--tokenizer", default="cl100k_base")
    parser.add_argument("--shard-tokens", type=int, default=100_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gptscratch-bench-") as tmp:
        folder = Path(tmp)
        source, text_bytes = generate(folder, args.mb, args.format)
        env = {**os.environ, "GPTSCRATCH_HOME": str(folder / "home"), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
        child = CHILD.format(repo=str(REPO), source=source, tokenizer=args.tokenizer, shard_tokens=args.shard_tokens)
        started = time.perf_counter()
        result = subprocess.run([sys.executable, "-c", child], env=env, capture_output=True, text=True)
        wall = time.perf_counter() - started
        if result.returncode != 0:
            sys.exit(f"prepare failed:\n{result.stderr}")
        stats = json.loads(result.stdout.strip().splitlines()[-1])
        peak_rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # Linux: KiB
        seconds = stats["seconds"]
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        print(json.dumps({
            "format": args.format, "tokenizer": args.tokenizer, "text_mb": round(text_bytes / 1e6, 1),
            "documents": stats["documents"], "tokens": stats["tokens"], "seconds": round(seconds, 2),
            "tokens_per_s": round(stats["tokens"] / seconds), "mb_per_s": round(text_bytes / 1e6 / seconds, 2),
            "peak_rss_mb": round(peak_rss_mb, 1), "wall_s_with_startup": round(wall, 2), "cpus": os.cpu_count(),
            "load_average_1m": round(load, 2),
        }))


if __name__ == "__main__":
    main()
