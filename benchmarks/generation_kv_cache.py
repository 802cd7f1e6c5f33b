"""KV-cache decoding vs full recomputation: 512 new tokens, greedy, batch 1, on the 6 × 256 × 4-head model.

The context is 1024 so the 16-token prompt plus 512 new tokens never slides: the uncached side really re-runs
the whole growing sequence (O(L²) in total) while the cached side feeds one token per step (O(L)). Random
weights: speed does not depend on what the weights are. Runs alternate (cached, uncached, ...) and medians are
reported, because the machine's speed drifts.

    /work/venv/bin/python benchmarks/generation_kv_cache.py [--new-tokens 512] [--vocab 320] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from gptscratch.evaluation.bench import time_decoding  # noqa: E402
from gptscratch.model import GPT, model_config  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--new-tokens", type=int, default=512)
    parser.add_argument("--prompt-tokens", type=int, default=16)
    parser.add_argument("--vocab", type=int, default=320, help="320: byte-level, padded; 50304: GPT-2 BPE")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.manual_seed(0)
    context = max(1024, args.prompt_tokens + args.new_tokens)
    model = GPT(model_config("small", vocab_size=args.vocab, context_length=context)).eval()
    prompt = torch.randint(0, args.vocab, (args.prompt_tokens,), generator=torch.Generator().manual_seed(1)).tolist()
    time_decoding(model, prompt, 8, True), time_decoding(model, prompt, 8, False)     # warm-up
    seconds = {"cached": [], "uncached": []}
    for _ in range(args.repeats):
        for mode in seconds:
            prefill, decode = time_decoding(model, prompt, args.new_tokens, use_cache=mode == "cached")
            seconds[mode].append(prefill + decode)
    rates = {mode: args.new_tokens / statistics.median(s) for mode, s in seconds.items()}
    print(f"6x256x4 model, vocab {args.vocab}, context {context}, {torch.get_num_threads()} threads; "
          f"prompt {args.prompt_tokens}, {args.new_tokens} new tokens, greedy, median of {args.repeats}")
    for mode, rate in rates.items():
        print(f"  {mode:9} {rate:8.1f} tokens/s   ({statistics.median(seconds[mode]):.2f} s)")
    print(f"  KV cache speed-up: {rates['cached'] / rates['uncached']:.1f}x")


if __name__ == "__main__":
    main()
