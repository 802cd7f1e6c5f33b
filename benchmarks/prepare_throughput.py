"""Benchmark `prepare()`: tokens/s, MB/s and peak memory on generated text (no network).

    python benchmarks/prepare_throughput.py                  # 64 MB of JSON lines, cl100k_base
    python benchmarks/prepare_throughput.py --format txt --mb 100 --tokenizer byte
    python benchmarks/prepare_throughput.py --format parquet     # a local parquet table (FineWeb's format)
    python benchmarks/prepare_throughput.py --mb 50 --ceiling   # also time tiktoken alone

Generates documents of 0.5-8k characters of English-like text (words drawn from Python's
own reference docs, so BPE sees real words) into a temporary folder -- as one .jsonl (a
local table, one row per document), as one .parquet (the same rows, with FineWeb-style extra
columns) or as .txt files (one document each) -- then runs
`gptscratch.data.prepare` in a fresh child process and reports, for that process: wall time
(imports included), tokens/s, MB/s of text, and peak RSS. Target on a 2-core CPU with
cl100k_base: >= 3M tokens/s, peak RSS < 500 MB.

--ceiling (tiktoken tokenizers) also times tiktoken alone on the same texts, in another child:
the texts already in memory, joined into 512k-character chunks, encoded on one thread per core
-- only the encoding is timed. `fraction_of_ceiling` = our tokens/s / that; on a shared machine
it is the figure to compare between runs (both sides slow down together).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

CHILD = """
import json, resource, shutil, sys, time
sys.path.insert(0, {repo!r})
started = time.perf_counter()
from gptscratch.data import prepare
dataset = prepare({source!r}, {tokenizer!r}, name="bench", shard_tokens={shard_tokens}, overwrite=True)
elapsed = time.perf_counter() - started
print(json.dumps({{"tokens": dataset.num_tokens("train") + dataset.num_tokens("val"),
                  "documents": dataset.num_documents("train") + dataset.num_documents("val"), "seconds": elapsed,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))  # Linux: KiB
shutil.rmtree(dataset.path)
"""

CEILING = """
import json, os, sys, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
sys.path.insert(0, {repo!r})
from gptscratch.tokenizers import EOT_TEXT, get_tokenizer
encoding = get_tokenizer({tokenizer!r}).encoding
source = Path({source!r})
if source.is_dir():
    texts = [path.read_text(encoding="utf-8") for path in sorted(source.iterdir())]
elif source.suffix == ".parquet":
    import pyarrow.parquet as pq
    texts = pq.read_table(source, columns=["text"]).column("text").to_pylist()
else:
    texts = [json.loads(line)["text"] for line in source.open("rb")]
chunks, group, size = [], [], 0
for text in texts:
    group.append(text)
    size += len(text)
    if size >= 1 << 19:
        chunks.append(EOT_TEXT.join(group))
        group, size = [], 0
chunks.append(EOT_TEXT.join(group))
def encode(chunk):
    return len(encoding.encode_to_numpy(chunk, allowed_special={{EOT_TEXT}}, disallowed_special=()))
started = time.perf_counter()
with ThreadPoolExecutor(os.cpu_count()) as pool:
    tokens = sum(pool.map(encode, chunks))
print(json.dumps({{"tokens": tokens, "seconds": time.perf_counter() - started}}))
"""


def run_child(code: str, env: dict) -> dict:
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"benchmark child failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def generate(folder: Path, megabytes: float, fmt: str, seed: int = 0) -> tuple[str, int]:
    """Write about `megabytes` MB of documents; returns (source, bytes written)."""
    from pydoc_data.topics import topics

    words = " ".join(topics.values()).split()
    rng = random.Random(seed)
    target, written, number = int(megabytes * 1e6), 0, 0
    jsonl = open(folder / "docs.jsonl", "w", encoding="utf-8") if fmt == "jsonl" else None
    # Parquet is written 1000 rows (one row group) at a time: Linux carries this process's peak RSS over
    # into the child it starts, so a whole table in memory here would show up as the child's peak.
    rows: list[dict] = []
    writer = None
    if fmt == "txt":
        (folder / "docs").mkdir()
    while written < target:
        text = " ".join(rng.choices(words, k=rng.randint(80, 1300)))
        lines = [text[i : i + 400] for i in range(0, len(text), 400)]
        text = "\n".join(lines)
        if jsonl:
            jsonl.write(json.dumps({"text": text, "id": f"doc-{number}"}) + "\n")
        elif fmt == "parquet":  # FineWeb carries url, date, language score... beside the text
            rows.append({"text": text, "id": f"doc-{number}", "url": f"https://example.org/{number}",
                         "language_score": rng.random(), "token_count": len(text) // 4})
            if len(rows) == 1000:
                writer = _write_rows(writer, folder / "docs.parquet", rows)
        else:
            (folder / "docs" / f"{number:07d}.txt").write_text(text, encoding="utf-8")
        written += len(text.encode("utf-8"))
        number += 1
    if jsonl:
        jsonl.close()
    if fmt == "parquet":
        _write_rows(writer, folder / "docs.parquet", rows).close()
        return str(folder / "docs.parquet"), written
    return str(folder / ("docs.jsonl" if fmt == "jsonl" else "docs")), written


def _write_rows(writer, path: Path, rows: list[dict]):
    """Append rows as one row group (opening the writer on first use); empties `rows`."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist(rows)
    writer = writer or pq.ParquetWriter(path, table.schema)
    if rows:
        writer.write_table(table)
    rows.clear()
    return writer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=64.0, help="megabytes of text to generate (>= 50 for the target)")
    parser.add_argument("--format", choices=("jsonl", "parquet", "txt"), default="jsonl")
    parser.add_argument("--tokenizer", default="cl100k_base")
    parser.add_argument("--shard-tokens", type=int, default=100_000_000)
    parser.add_argument("--ceiling", action="store_true", help="also time tiktoken alone on the same texts")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each (alternating); medians are reported")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gptscratch-bench-") as tmp:
        folder = Path(tmp)
        source, text_bytes = generate(folder, args.mb, args.format)
        env = {**os.environ, "GPTSCRATCH_HOME": str(folder / "home"), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
        child = CHILD.format(repo=str(REPO), source=source, tokenizer=args.tokenizer, shard_tokens=args.shard_tokens)
        ceiling_child = CEILING.format(repo=str(REPO), tokenizer=args.tokenizer, source=source)
        runs, ceilings = [], []
        for _ in range(max(1, args.repeat)):
            runs.append(run_child(child, env))
            if args.ceiling:
                ceilings.append(run_child(ceiling_child, env))
        stats = runs[0]
        rates = [run["tokens"] / run["seconds"] for run in runs]
        rate, seconds = statistics.median(rates), statistics.median(run["seconds"] for run in runs)
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        report = {
            "format": args.format, "tokenizer": args.tokenizer, "text_mb": round(text_bytes / 1e6, 1),
            "documents": stats["documents"], "tokens": stats["tokens"], "seconds": round(seconds, 2),
            "tokens_per_s": round(rate), "mb_per_s": round(text_bytes / 1e6 / seconds, 2),
            "peak_rss_mb": round(max(run["peak_rss_mb"] for run in runs), 1), "cpus": os.cpu_count(),
            "load_average_1m": round(load, 2),
        }
        if len(runs) > 1:
            report["tokens_per_s_range"] = [round(min(rates)), round(max(rates))]
        if ceilings:
            ceiling = statistics.median(run["tokens"] / run["seconds"] for run in ceilings)
            report["tiktoken_alone_tokens_per_s"] = round(ceiling)
            report["fraction_of_ceiling"] = round(rate / ceiling, 3)
        print(json.dumps(report))


if __name__ == "__main__":
    main()
