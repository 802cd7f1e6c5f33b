"""Peak memory of converting a ~1B-parameter GPT-2-shaped Hugging Face checkpoint into gptscratch.

    python benchmarks/convert_memory.py                     # 24 layers × 1792 wide: ≈1.02B params, 4.1 GB fp32
    python benchmarks/convert_memory.py --layers 4 --d-model 512   # a quick smoke run

1. writes random weights in the Hub's GPT-2 layout (no `transformer.` prefix, Conv1D [in, out] weights,
   fp32 safetensors) plus config.json and a byte-level vocab.json/merges.txt, streaming tensor by tensor;
2. converts it in a fresh process with gptscratch.pretrained.convert.convert_hf_folder (the code path of
   `gptscratch pretrained convert` / `download`) and reports that process's peak RSS;
3. loads the converted checkpoint in a fresh process (load_checkpoint) and reports its peak RSS;
   and again after touching every weight once (as generation does: the weights are memory-mapped, so pages
   count only when read);
4. a process that only imports torch + gptscratch gives the baseline to subtract.
Every step runs in its own fresh process (Linux carries ru_maxrss over fork/exec, so the parent stays small).
Peak RSS includes the pages of memory-mapped input that were read. The folders are deleted unless --keep.
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CHILD_PRELUDE = "import resource, json, time, sys; sys.path.insert(0, %r); import torch, gptscratch.checkpoint\n" % str(REPO)
CHILD_REPORT = "\nprint(json.dumps({'peak_rss_bytes': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))\n"


def write_source(folder: Path, layers: int, d: int, vocab: int, context: int) -> int:
    """A random GPT-2 in hub layout, written one tensor at a time; returns the parameter count."""
    import torch

    sys.path.insert(0, str(REPO))
    from gptscratch.tokenizers.hf_bpe import bytes_to_unicode
    from gptscratch.pretrained.tensorfile import TensorFileWriter

    folder.mkdir(parents=True, exist_ok=True)
    shapes = [("wte.weight", (vocab, d)), ("wpe.weight", (context, d))]
    for i in range(layers):
        shapes += [(f"h.{i}.ln_1.weight", (d,)), (f"h.{i}.ln_1.bias", (d,)),
                   (f"h.{i}.attn.c_attn.weight", (d, 3 * d)), (f"h.{i}.attn.c_attn.bias", (3 * d,)),
                   (f"h.{i}.attn.c_proj.weight", (d, d)), (f"h.{i}.attn.c_proj.bias", (d,)),
                   (f"h.{i}.ln_2.weight", (d,)), (f"h.{i}.ln_2.bias", (d,)),
                   (f"h.{i}.mlp.c_fc.weight", (d, 4 * d)), (f"h.{i}.mlp.c_fc.bias", (4 * d,)),
                   (f"h.{i}.mlp.c_proj.weight", (4 * d, d)), (f"h.{i}.mlp.c_proj.bias", (d,))]
    shapes += [("ln_f.weight", (d,)), ("ln_f.bias", (d,))]
    generator = torch.Generator().manual_seed(0)
    with TensorFileWriter(folder / "model.safetensors", [(n, s, torch.float32) for n, s in shapes],
                          metadata={"format": "pt"}) as writer:
        for name, shape in shapes:
            writer.write(name, torch.randn(shape, generator=generator) * 0.02)
    (folder / "config.json").write_text(json.dumps({
        "model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "vocab_size": vocab, "n_positions": context,
        "n_embd": d, "n_layer": layers, "n_head": d // 64 if d % 64 == 0 else 1,
        "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5}))
    table = bytes_to_unicode()
    (folder / "vocab.json").write_text(json.dumps({**{table[b]: b for b in range(256)}, "<|endoftext|>": 256}))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return sum(_numel(s) for _, s in shapes)


def _numel(shape) -> int:
    n = 1
    for dim in shape:
        n *= dim
    return n


def child(code: str) -> dict:
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", CHILD_PRELUDE + code + CHILD_REPORT], capture_output=True,
                         text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, default=24)
    parser.add_argument("--d-model", type=int, default=1792)
    parser.add_argument("--vocab", type=int, default=50257)
    parser.add_argument("--context", type=int, default=1024)
    parser.add_argument("--workdir", type=Path, default=None, help="where to write (default: a temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the generated and converted folders")
    parser.add_argument("--write-source", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.write_source is not None:  # child mode: generate the random source checkpoint
        print(write_source(args.write_source, args.layers, args.d_model, args.vocab, args.context))
        return
    work = Path(tempfile.mkdtemp(prefix="gptscratch-convert-", dir=args.workdir))
    try:
        started = time.perf_counter()
        params = int(subprocess.run(
            [sys.executable, __file__, "--write-source", str(work / "hf"), "--layers", str(args.layers),
             "--d-model", str(args.d_model), "--vocab", str(args.vocab), "--context", str(args.context)],
            capture_output=True, text=True, check=True).stdout.split()[-1])
        generate_s = time.perf_counter() - started
        baseline = child("pass")
        convert = child(f"from gptscratch.pretrained.convert import convert_hf_folder\n"
                        f"convert_hf_folder({str(work / 'hf')!r}, {str(work / 'ours')!r})")
        load_code = f"m = gptscratch.checkpoint.load_checkpoint({str(work / 'ours')!r}).model"
        load = child(load_code)
        touched = child(load_code + "\nwith torch.no_grad():\n    total = sum(float(p.sum()) for p in m.parameters())")
        model_bytes = (work / "hf" / "model.safetensors").stat().st_size
        gb = lambda n: round(n / 1e9, 2)  # noqa: E731
        print(json.dumps({
            "parameters": params, "model_gb_fp32": gb(model_bytes), "generate_source_s": round(generate_s, 1),
            "baseline_rss_gb": gb(baseline["peak_rss_bytes"]),
            "convert_peak_rss_gb": gb(convert["peak_rss_bytes"]), "convert_s": convert["seconds"],
            "convert_peak_over_model": round((convert["peak_rss_bytes"] - baseline["peak_rss_bytes"]) / model_bytes, 3),
            "load_peak_rss_gb": gb(load["peak_rss_bytes"]), "load_s": load["seconds"],
            "load_peak_over_model": round((load["peak_rss_bytes"] - baseline["peak_rss_bytes"]) / model_bytes, 3),
            "load_and_touch_peak_rss_gb": gb(touched["peak_rss_bytes"]),
            "load_and_touch_peak_over_model": round(
                (touched["peak_rss_bytes"] - baseline["peak_rss_bytes"]) / model_bytes, 3),
        }))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
