"""Peak memory of converting a ~1B-parameter Hugging Face checkpoint (GPT-2- or Llama-shaped) into gptscratch.

    python benchmarks/convert_memory.py                  # GPT-2, 24 layers × 1792 wide: ≈1.02B params, 4.1 GB fp32
    python benchmarks/convert_memory.py --arch llama     # TinyLlama's shape: 22 × 2048, GQA 32/4, SwiGLU 5632,
                                                         # untied head: 1.10B params, 2.2 GB bf16
    python benchmarks/convert_memory.py --layers 4 --d-model 512   # a quick smoke run (either --arch)

1. writes random weights streaming tensor by tensor, with config.json and a byte-level tokenizer: `gpt2` in the
   Hub's GPT-2 layout (no `transformer.` prefix, Conv1D [in, out] weights, fp32, vocab.json/merges.txt); `llama`
   in LlamaForCausalLM's (separate q/k/v projections that conversion stacks, bf16 as SmolLM2 / TinyLlama / Qwen
   ship, tokenizer.json);
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


ARCH_DEFAULTS = {  # --arch → default shape
    "gpt2": dict(layers=24, d_model=1792, vocab=50257, context=1024),
    "llama": dict(layers=22, d_model=2048, vocab=32000, context=2048, heads=32, kv_heads=4, d_ff=5632),
}


def write_source(folder: Path, args) -> int:
    """A random model of args.arch in hub layout, written one tensor at a time; returns the parameter count."""
    import torch

    sys.path.insert(0, str(REPO))
    from gptscratch.pretrained.tensorfile import TensorFileWriter

    folder.mkdir(parents=True, exist_ok=True)
    shapes, dtype = (gpt2_source if args.arch == "gpt2" else llama_source)(folder, args)
    generator = torch.Generator().manual_seed(0)
    with TensorFileWriter(folder / "model.safetensors", [(n, s, dtype) for n, s in shapes],
                          metadata={"format": "pt"}) as writer:
        for name, shape in shapes:
            writer.write(name, (torch.randn(shape, generator=generator) * 0.02).to(dtype))
    return sum(_numel(s) for _, s in shapes)


def gpt2_source(folder: Path, args):
    """GPT-2's tensor names and shapes (fp32), config.json, vocab.json + merges.txt."""
    import torch

    from gptscratch.tokenizers.hf_bpe import bytes_to_unicode

    layers, d, vocab, context = args.layers, args.d_model, args.vocab, args.context
    shapes = [("wte.weight", (vocab, d)), ("wpe.weight", (context, d))]
    for i in range(layers):
        shapes += [(f"h.{i}.ln_1.weight", (d,)), (f"h.{i}.ln_1.bias", (d,)),
                   (f"h.{i}.attn.c_attn.weight", (d, 3 * d)), (f"h.{i}.attn.c_attn.bias", (3 * d,)),
                   (f"h.{i}.attn.c_proj.weight", (d, d)), (f"h.{i}.attn.c_proj.bias", (d,)),
                   (f"h.{i}.ln_2.weight", (d,)), (f"h.{i}.ln_2.bias", (d,)),
                   (f"h.{i}.mlp.c_fc.weight", (d, 4 * d)), (f"h.{i}.mlp.c_fc.bias", (4 * d,)),
                   (f"h.{i}.mlp.c_proj.weight", (4 * d, d)), (f"h.{i}.mlp.c_proj.bias", (d,))]
    shapes += [("ln_f.weight", (d,)), ("ln_f.bias", (d,))]
    (folder / "config.json").write_text(json.dumps({
        "model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "vocab_size": vocab, "n_positions": context,
        "n_embd": d, "n_layer": layers, "n_head": d // 64 if d % 64 == 0 else 1,
        "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5}))
    table = bytes_to_unicode()
    (folder / "vocab.json").write_text(json.dumps({**{table[b]: b for b in range(256)}, "<|endoftext|>": 256}))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return shapes, torch.float32


def llama_source(folder: Path, args):
    """LlamaForCausalLM's tensor names and shapes (bf16, untied head), config.json, tokenizer.json."""
    import torch

    from gptscratch.pretrained.hf_tokenizer import tokenizer_json
    from gptscratch.tokenizers import ByteTokenizer

    layers, d, vocab, heads, kv, ff = args.layers, args.d_model, args.vocab, args.heads, args.kv_heads, args.d_ff
    hs = d // heads
    shapes = [("model.embed_tokens.weight", (vocab, d))]
    for i in range(layers):
        layer = f"model.layers.{i}"
        attn = f"{layer}.self_attn"
        shapes += [(f"{layer}.input_layernorm.weight", (d,)), (f"{attn}.q_proj.weight", (heads * hs, d)),
                   (f"{attn}.k_proj.weight", (kv * hs, d)), (f"{attn}.v_proj.weight", (kv * hs, d)),
                   (f"{attn}.o_proj.weight", (d, heads * hs)),
                   (f"{layer}.post_attention_layernorm.weight", (d,)), (f"{layer}.mlp.gate_proj.weight", (ff, d)),
                   (f"{layer}.mlp.up_proj.weight", (ff, d)), (f"{layer}.mlp.down_proj.weight", (d, ff))]
    shapes += [("model.norm.weight", (d,)), ("lm_head.weight", (vocab, d))]
    (folder / "config.json").write_text(json.dumps({
        "model_type": "llama", "architectures": ["LlamaForCausalLM"], "vocab_size": vocab, "hidden_size": d,
        "intermediate_size": ff, "num_hidden_layers": layers, "num_attention_heads": heads,
        "num_key_value_heads": kv,
        "max_position_embeddings": args.context, "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "hidden_act": "silu",
        "tie_word_embeddings": False, "torch_dtype": "bfloat16"}))
    (folder / "tokenizer.json").write_text(json.dumps(tokenizer_json(ByteTokenizer())))
    (folder / "tokenizer_config.json").write_text(json.dumps({"eos_token": "<|endoftext|>"}))
    return shapes, torch.bfloat16


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
    parser.add_argument("--arch", choices=sorted(ARCH_DEFAULTS), default="gpt2")
    parser.add_argument("--layers", type=int, default=None)
    parser.add_argument("--d-model", type=int, default=None)
    parser.add_argument("--vocab", type=int, default=None)
    parser.add_argument("--context", type=int, default=None)
    parser.add_argument("--heads", type=int, default=None, help="llama: attention heads")
    parser.add_argument("--kv-heads", type=int, default=None, help="llama: key/value heads")
    parser.add_argument("--d-ff", type=int, default=None, help="llama: SwiGLU width")
    parser.add_argument("--workdir", type=Path, default=None, help="where to write (default: a temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the generated and converted folders")
    parser.add_argument("--write-source", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    for key, value in ARCH_DEFAULTS[args.arch].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.arch == "llama" and args.d_model % args.heads:
        args.heads = max(1, args.d_model // 64)  # a smoke run's width: 64-wide heads
        args.kv_heads = min(args.kv_heads, args.heads)
    if args.write_source is not None:  # child mode: generate the random source checkpoint
        print(write_source(args.write_source, args))
        return
    work = Path(tempfile.mkdtemp(prefix="gptscratch-convert-", dir=args.workdir))
    try:
        started = time.perf_counter()
        shape = [f"--{key.replace('_', '-')}={getattr(args, key)}" for key in ARCH_DEFAULTS[args.arch]]
        params = int(subprocess.run(
            [sys.executable, __file__, "--arch", args.arch, "--write-source", str(work / "hf"), *shape],
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
            "arch": args.arch, "parameters": params, "model_gb": gb(model_bytes),
            "generate_source_s": round(generate_s, 1),
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
