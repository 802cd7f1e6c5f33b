"""Conversion parity: how close gptscratch's logits are to transformers' for each architecture it loads.

    python benchmarks/conversion_parity.py [--layers 4] [--hidden 256] [--tokens 128] [--json]

For each case a random `transformers` model is built here (no download) and saved with `save_pretrained` next to a
byte-level BPE `tokenizer.json` trained on the builtin corpus; every 1-D weight (norm gains, biases) is perturbed so
that a mapping mistake cannot hide behind ones and zeros. Then, in fp32:

  convert   `pretrained convert` the folder, load it, and compare logits on 2 random sequences of --tokens ids
            (max |ours − theirs|), and greedy continuations (transformers' generate, ours with and without the KV
            cache: 32 tokens, identical or not);
  export    `pretrained export --format hf` our checkpoint, load it back with `AutoModelForCausalLM`, compare its
            logits with the original's, and its `AutoTokenizer` ids with the original tokenizer's on the corpus.

The cases cover GPT-2, Phi, Llama (grouped-query with 2 key/value heads, multi-query, tied and untied heads, a
non-default rope base, Llama 3 rope scaling), Qwen2 (q/k/v biases) and Qwen3 (QK-norm).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def cases(layers: int, hidden: int) -> dict[str, tuple[str, dict]]:
    heads = hidden // 32
    llama = dict(hidden_size=hidden, intermediate_size=hidden * 8 // 3 // 16 * 16, num_hidden_layers=layers,
                 num_attention_heads=heads, num_key_value_heads=2, max_position_embeddings=512, rms_norm_eps=1e-5)
    return {
        "gpt2": ("GPT2", dict(n_positions=512, n_embd=hidden, n_layer=layers, n_head=heads)),
        "phi": ("Phi", dict(hidden_size=hidden, intermediate_size=4 * hidden, num_hidden_layers=layers,
                            num_attention_heads=heads, max_position_embeddings=512, partial_rotary_factor=0.5)),
        "llama gqa-2 untied": ("Llama", dict(llama, tie_word_embeddings=False, rope_theta=10000.0)),
        "llama mqa tied base 1e5": ("Llama", dict(llama, num_key_value_heads=1, tie_word_embeddings=True,
                                                  rope_theta=100000.0)),
        "llama3 rope scaling": ("Llama", dict(llama, tie_word_embeddings=True, rope_theta=500000.0,
                                              rope_scaling={"rope_type": "llama3", "factor": 8.0,
                                                            "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                                            "original_max_position_embeddings": 128})),
        "qwen2 qkv bias": ("Qwen2", dict(llama, tie_word_embeddings=True, rope_theta=1000000.0)),
        "qwen3 qk-norm": ("Qwen3", dict(llama, head_dim=hidden // heads, tie_word_embeddings=False)),
    }


def corpus_text() -> str:
    from pydoc_data.topics import topics

    return "\n\n".join(topics[key] for key in sorted(topics))


def write_tokenizer(folder: Path, text: str) -> int:
    """A 1,000-id byte-level BPE with <|endoftext|> as its end-of-text token, saved as tokenizer.json and as
    vocab.json + merges.txt (the files GPT-2 and Phi repos ship); returns its size."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer, tok.decoder = pre_tokenizers.ByteLevel(add_prefix_space=False), decoders.ByteLevel()
    tok.train_from_iterator([text], trainers.BpeTrainer(vocab_size=1000, special_tokens=["<|endoftext|>"],
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                                        show_progress=False))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>")
    fast.save_pretrained(str(folder))
    tok.model.save(str(folder))
    return len(fast)


def build(folder: Path, family: str, shape: dict, text: str):
    import torch
    import transformers

    vocab = write_tokenizer(folder, text)
    config = getattr(transformers, f"{family}Config")(vocab_size=vocab, bos_token_id=0, eos_token_id=0, **shape)
    model_class = "GPT2LMHeadModel" if family == "GPT2" else f"{family}ForCausalLM"
    torch.manual_seed(0)
    model = getattr(transformers, model_class)(config).eval()
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() == 1:
                param.add_(torch.randn_like(param) * 0.1)
    model.save_pretrained(str(folder))
    return model


def measure(name: str, family: str, shape: dict, text: str, tokens: int, root: Path) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from gptscratch.checkpoint import load_checkpoint
    from gptscratch.generation import SamplingConfig, generate_ids
    from gptscratch.pretrained.convert import convert_hf_folder
    from gptscratch.pretrained.export import export_hf

    folder = root / name.replace(" ", "_")
    theirs = build(folder / "hf", family, shape, text)
    convert_hf_folder(folder / "hf", folder / "ours", dtype="float32")
    ours = load_checkpoint(folder / "ours").model.eval()
    torch.manual_seed(1)
    ids = torch.randint(0, ours.config.vocab_size, (2, tokens))
    with torch.no_grad():
        expected = theirs(ids).logits
        got, _ = ours(ids)
    prompt = ids[0, :8].tolist()
    theirs.generation_config.eos_token_id, theirs.generation_config.pad_token_id = None, 0
    with torch.no_grad():
        reference = theirs.generate(torch.tensor([prompt]), max_new_tokens=32, min_new_tokens=32,
                                    do_sample=False)[0, len(prompt):].tolist()
    greedy = SamplingConfig(temperature=0)
    same_greedy = all(list(generate_ids(ours, prompt, 32, greedy, use_cache=cache)) == reference
                      for cache in (True, False))
    export_hf(folder / "ours", folder / "exported")
    back = AutoModelForCausalLM.from_pretrained(str(folder / "exported"), dtype=torch.float32).eval()
    with torch.no_grad():
        round_trip = back(ids).logits
    sample = text[:20_000]
    same_ids = (AutoTokenizer.from_pretrained(str(folder / "exported"))(sample)["input_ids"]
                == AutoTokenizer.from_pretrained(str(folder / "hf"))(sample)["input_ids"])
    return dict(case=name, transformers_class=type(theirs).__name__, parameters=sum(p.numel() for p in
                                                                                   theirs.parameters()),
                convert_max_abs_diff=float((got - expected).abs().max()), logit_scale=float(expected.abs().max()),
                greedy_identical=same_greedy, export_class=type(back).__name__,
                export_max_abs_diff=float((round_trip - expected).abs().max()), export_tokenizer_ids_equal=same_ids)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=256, help="a multiple of 32 (heads of 32)")
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import platform

    import torch
    import transformers

    from gptscratch.device import cpu_model

    text = corpus_text()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (family, shape) in cases(args.layers, args.hidden).items():
            rows.append(measure(name, family, shape, text, args.tokens, Path(tmp)))
            print(f"  done: {name}", file=sys.stderr)
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{cpu_model() or platform.processor()}, torch {torch.__version__}, transformers {transformers.__version__},"
          f" fp32, {args.layers} layers × {args.hidden}, 2 × {args.tokens} random ids")
    print(f"{'case':26} {'class':18} {'params':>9} {'max|Δ| convert':>15} {'|logit| max':>11} {'greedy':>7}"
          f" {'max|Δ| export':>14} {'tok ids':>7}")
    for r in rows:
        print(f"{r['case']:26} {r['transformers_class']:18} {r['parameters']:>9,} {r['convert_max_abs_diff']:>15.2e}"
              f" {r['logit_scale']:>11.2f} {'same' if r['greedy_identical'] else 'DIFFER':>7}"
              f" {r['export_max_abs_diff']:>14.2e} {'same' if r['export_tokenizer_ids_equal'] else 'DIFFER':>7}")


if __name__ == "__main__":
    main()
