"""Training a BPE tokenizer: the readable Python trainer vs rustbpe vs Hugging Face `tokenizers`; then encoding speed.

    python benchmarks/tokenizer_train.py                          # 10 and 100 MB, --vocab-size 8192, all trainers
    python benchmarks/tokenizer_train.py --sizes 10 --vocab-size 4096 --no-hf
    python benchmarks/tokenizer_train.py --skip-python-above 10 --workdir /tmp/tok-bench   # keep the corpus files

The corpus is offline and deterministic: the .py files of this interpreter's site-packages, in sorted path order,
concatenated until the size asked for (MB = 10^6 bytes; written once into --workdir, reused when present). Every
reader streams it, 200 lines to a document, so a trainer's memory is what it keeps, never the corpus.

1. Training, gpt4 split, --vocab-size ids (256 bytes + merges + <|endoftext|>), each run in a fresh process: seconds
   from the first read to the last merge; from wait4, its CPU seconds (imports included) and peak RSS (ru_maxrss),
   beside the peak of a process that only imports the same modules ("imports"): "+MiB" is what training costs.
   The load average is printed too: on a shared machine other work slows the seconds, not the memory.
     python  gptscratch/tokenizers/bpe.py: count_chunks + train (pure Python, one core)
     fast    gptscratch/tokenizers/bpe_fast.py: rustbpe (Rust, all cores), what `data train-tokenizer` uses
     hf      `tokenizers` BpeTrainer, same split (Split(gpt4 regex, isolated) + ByteLevel), for comparison
2. Encoding: a tokenizer trained (fast) on the 10 MB corpus and loaded as TrainedTokenizer (run by tiktoken) vs
   cl100k_base: `encode_batch` over the documents, best of --repeats; the educational encoder bpe.encode on 1 MB
   (and whether it gives tiktoken's ids); and end-to-end `gptscratch.data.prepare` of the same documents (as a
   .jsonl, one row each) with both tokenizers. Speeds are printed, never asserted.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOC_LINES = 200
PATTERN = "gpt4"
RUNS = {"python": "bpe.py", "fast": "rustbpe", "hf": "tokenizers"}


def documents(path: Path, lines: int = DOC_LINES):
    """The corpus file, `lines` lines at a time (read lazily)."""
    with open(path, encoding="utf-8") as handle:
        while batch := list(itertools.islice(handle, lines)):
            yield "".join(batch)


def build_corpus(workdir: Path, megabytes: float) -> dict:
    """site-packages-<N>mb.txt, made once: whole .py files in sorted path order, the last one cut at a line end."""
    path = workdir / f"site-packages-{megabytes:g}mb.txt"
    info_path = path.with_suffix(".json")
    if path.exists() and info_path.exists():
        return json.loads(info_path.read_text())
    root = Path(sysconfig.get_paths()["purelib"])
    target, written, files = int(megabytes * 1e6), 0, 0
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as out:
        for file in sorted(root.rglob("*.py")):
            data = file.read_bytes()
            try:
                data.decode("utf-8")
            except UnicodeDecodeError:
                continue
            data = data if data.endswith(b"\n") else data + b"\n"
            if written + len(data) > target:
                data = data[: data.rfind(b"\n", 0, target - written) + 1]
            out.write(data)
            written, files = written + len(data), files + 1
            if written >= target or not data:
                break
    info = {"path": str(path), "bytes": written, "files": files, "root": str(root)}
    info_path.write_text(json.dumps(info))
    tmp.replace(path)
    return info


def child(spec: dict) -> None:
    """Run in a fresh process: import one trainer's modules, train unless imports_only, print JSON."""
    from gptscratch.tokenizers import bpe

    trainer, merges = spec["trainer"], spec["merges"]
    if trainer == "fast":
        import rustbpe  # noqa: F401  (train_fast imports it late; here so that the baseline holds it too)

        from gptscratch.tokenizers.bpe_fast import train_fast
    elif trainer == "hf":
        from tokenizers import Regex, Tokenizer, models, pre_tokenizers, trainers
    if spec["imports_only"]:
        return print(json.dumps({}))
    texts = documents(Path(spec["path"]))
    started = time.perf_counter()
    result = {}
    if trainer == "python":
        counts = bpe.count_chunks(texts, PATTERN)
        result["chunks"] = len(counts)
        result["learned"] = len(bpe.train(counts, merges))
    elif trainer == "fast":
        result["learned"] = len(train_fast(texts, merges, PATTERN))
    else:
        tokenizer = Tokenizer(models.BPE())
        tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(bpe.PATTERNS[PATTERN]), "isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
        hf_trainer = trainers.BpeTrainer(vocab_size=bpe.BYTES + merges, min_frequency=0, show_progress=False,
                                         initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
        tokenizer.train_from_iterator(texts, hf_trainer)
        result["learned"] = tokenizer.get_vocab_size() - bpe.BYTES
    result["seconds"] = time.perf_counter() - started
    print(json.dumps(result))


def run_child(spec: dict, timeout: float) -> dict:
    """`child(spec)` in a new interpreter; its own peak RSS comes from wait4, even when it is killed."""
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen([sys.executable, __file__, "--child", json.dumps(spec)], stdout=out,
                                stderr=subprocess.STDOUT)
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        _, status, usage = os.wait4(proc.pid, 0)
        timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode("utf-8", "replace").strip()
    measured = {"peak_mib": usage.ru_maxrss / 1024, "cpu_seconds": usage.ru_utime + usage.ru_stime}  # KiB on Linux
    if proc.returncode != 0:
        why = f"killed after {timeout:g} s" if proc.returncode == -9 else (text.splitlines() or ["?"])[-1]
        return {"error": why, **measured}
    return {**json.loads(text.splitlines()[-1]), **measured}


def about() -> dict:
    """The machine and the versions, for the header (in a child: importlib.metadata alone costs ~6 MiB)."""
    from importlib import metadata

    from gptscratch.device import cpu_model

    def version(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "absent"

    return {"cpu": cpu_model(), **{name: version(name) for name in ("torch", "tiktoken", "rustbpe", "tokenizers")}}


def timed(work):
    started = time.perf_counter()
    return work(), time.perf_counter() - started


def load() -> str:
    return "load average (1 min) %.2f" % os.getloadavg()[0]


def encoding(corpus: Path, text_bytes: int, workdir: Path, vocab_size: int, repeats: int) -> None:
    """Section 2, in this process (after the training children, so their peaks are not affected)."""
    os.environ["GPTSCRATCH_HOME"] = str(workdir / "home")
    sys.path.insert(0, str(REPO))
    from gptscratch.data import prepare
    from gptscratch.data.train_tokenizer import train_tokenizer
    from gptscratch.tokenizers import bpe, get_tokenizer, trained

    docs = list(documents(corpus))
    table = workdir / f"{corpus.stem}.jsonl"  # the same documents, one row each: what `data prepare` reads
    if not table.exists():
        table.write_text("".join(json.dumps({"text": doc}) + "\n" for doc in docs), encoding="utf-8")
    mine, seconds = timed(lambda: train_tokenizer(str(table), vocab_size, name="bench-bpe", trainer="fast",
                                                  overwrite=True))
    print(f"\n## Encoding {text_bytes / 1e6:.1f} MB ({len(docs):,} documents of {DOC_LINES} lines); "
          f"'{mine.name}' trained (fast) on it in {seconds:.1f} s")
    print(f"{'tokenizer':<22}{'vocab':>8}{'bytes/token':>13}{'encode_batch MB/s':>19}{'prepare() MB/s':>16}")
    speeds = {}
    for tokenizer in (mine, get_tokenizer("cl100k_base")):
        seconds = min(timed(lambda: tokenizer.encode_batch(docs))[1] for _ in range(repeats))
        tokens = sum(map(len, tokenizer.encode_batch(docs)))
        prepared = text_bytes / 1e6 / timed(lambda: prepare(str(table), tokenizer.name, overwrite=True))[1]
        speeds[tokenizer.name] = text_bytes / 1e6 / seconds
        print(f"{tokenizer.name + (' (trained)' if tokenizer is mine else ''):<22}{tokenizer.vocab_size:>8,}"
              f"{text_bytes / tokens:>13.2f}{speeds[tokenizer.name]:>19.1f}{prepared:>16.1f}")
    print(f"trained / cl100k_base encode_batch speed: {speeds[mine.name] / speeds['cl100k_base']:.2f}x")

    ranks = trained.read_ranks(mine.folder / trained.RANKS_FILE)
    merged = sorted(ranks, key=ranks.get)[bpe.BYTES:]
    merges = [tuple(ranks[part] for part in bpe.recover_merge(ranks, token)) for token in merged]
    sizes = list(itertools.accumulate(len(doc.encode("utf-8")) for doc in docs))
    sample = docs[: next((i + 1 for i, total in enumerate(sizes) if total >= 1_000_000), len(docs))]
    size = sizes[len(sample) - 1]
    ids, seconds = timed(lambda: [bpe.encode(doc, merges, PATTERN) for doc in sample])
    same = ids == mine.encode_batch(sample)
    rate = size / 1e6 / seconds
    print(f"educational bpe.encode on {size / 1e6:.1f} MB: {rate:.3f} MB/s ({speeds[mine.name] / rate:,.0f}x slower "
          f"than tiktoken; same ids as tiktoken: {'yes' if same else 'NO'})")


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        spec = json.loads(sys.argv[2])
        sys.path.insert(0, str(REPO))
        if "workdir" in spec:  # corpus building runs in a child too: listing site-packages costs memory
            return print(json.dumps(build_corpus(Path(spec["workdir"]), spec["mb"])))
        if "about" in spec:
            return print(json.dumps(about()))
        return child(spec)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10,100", help="corpus sizes in MB, comma-separated (default 10,100)")
    parser.add_argument("--vocab-size", type=int, default=8192, help="ids: 256 bytes + merges + <|endoftext|>")
    parser.add_argument("--with-hf", action="store_true", default=True,
                        help="also train with Hugging Face tokenizers' BpeTrainer (the default)")
    parser.add_argument("--no-hf", dest="with_hf", action="store_false", help="leave the `tokenizers` trainer out")
    parser.add_argument("--skip-python-above", type=float, default=None, metavar="MB",
                        help="skip the Python trainer on corpora larger than this")
    parser.add_argument("--timeout", type=float, default=600, help="seconds before a training run is killed")
    parser.add_argument("--repeats", type=int, default=3, help="encoding runs; the best is kept")
    parser.add_argument("--no-encoding", action="store_true", help="skip section 2")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the corpus here (default: a temp folder)")
    args = parser.parse_args()
    sizes = [float(size) for size in args.sizes.split(",")]
    trainers = ["python", "fast"] + (["hf"] if args.with_hf else [])
    merges = args.vocab_size - 256 - 1

    with tempfile.TemporaryDirectory(prefix="gptscratch-tok-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        corpora = {size: run_child({"workdir": str(workdir), "mb": size}, 600) for size in sizes}
        if any("error" in corpus for corpus in corpora.values()):
            sys.exit(f"could not build the corpus: {corpora}")
        info, machine = corpora[max(sizes)], run_child({"about": True}, 600)
        versions = ", ".join(f"{name} {machine[name]}" for name in ("torch", "tiktoken", "rustbpe", "tokenizers"))
        print(f"# {machine['cpu']}, {os.cpu_count()} cores, Python {sys.version.split()[0]}, {versions}")
        print(f"# corpus: the .py files of {info['root']} in sorted path order, concatenated (largest: "
              f"{info['files']:,} files, {info['bytes'] / 1e6:.1f} MB); read {DOC_LINES} lines at a time")
        print(f"# this process's peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB "
              f"(Linux starts each child's high-water mark there, so it is kept small); {load()}")
        baseline = {name: run_child({"trainer": name, "merges": merges, "imports_only": True}, args.timeout)
                    for name in trainers}
        print(f"\n## Training: {PATTERN} split, vocabulary {args.vocab_size:,} ({merges:,} merges); fresh process "
              "per run; peak = its RSS high-water mark, imports = a process that only imports the trainer")
        print(f"{'MB':>6}  {'trainer':<8}{'library':>12}{'seconds':>9}{'MB/s':>7}{'CPU s':>7}{'merges':>8}"
              f"{'chunks':>10}{'peak MiB':>10}{'imports':>9}{'+MiB':>7}")
        for size in sizes:
            corpus = corpora[size]
            for name in trainers:
                label = f"{corpus['bytes'] / 1e6:>6.1f}  {name:<8}{RUNS[name]:>12}"
                if name == "python" and args.skip_python_above is not None and size > args.skip_python_above:
                    print(f"{label}  skipped (--skip-python-above {args.skip_python_above:g})")
                    continue
                run = run_child({"trainer": name, "merges": merges, "imports_only": False, "path": corpus["path"]},
                                args.timeout)
                base = baseline[name]["peak_mib"]
                if "error" in run:
                    print(f"{label}  failed: {run['error']} (peak so far {run['peak_mib']:,.0f} MiB)")
                    continue
                chunks = f"{run['chunks']:,}" if "chunks" in run else "-"
                print(f"{label}{run['seconds']:>9.1f}{corpus['bytes'] / 1e6 / run['seconds']:>7.2f}"
                      f"{run['cpu_seconds']:>7.1f}{run['learned']:>8,}{chunks:>10}{run['peak_mib']:>10,.0f}"
                      f"{base:>9,.0f}{run['peak_mib'] - base:>7,.0f}", flush=True)
        if not args.no_encoding:
            size = min(sizes, key=lambda s: abs(s - 10))
            encoding(Path(corpora[size]["path"]), corpora[size]["bytes"], workdir, args.vocab_size, args.repeats)
        print(f"# {load()}")


if __name__ == "__main__":
    main()
