"""The exercises, one per lesson: what each asks for, where its files are, and its hint. Importable without torch
(the command line lists them instantly).

Each exercise `ID` (the lesson's number: "01", "01b", "02", … "15") has
    solutions/exNN_topic.py   one way to write them (the tests prove it passes every check)
    the stub                  what the learner starts from, made from the solution (stub.py): the functions to
                              write, each with its formula, shapes and gptscratch's reference in the docstring,
                              and a body that raises NotImplementedError
    checks/lessonNN.py        the checks: the learner's functions against gptscratch's own on seeded inputs
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError

HERE = Path(__file__).resolve().parent
SITE = "https://gptscratch.github.io/gptscratch/lessons/"   # mkdocs.yml's site_url: the lessons for a pipx install


@dataclass(frozen=True)
class Exercise:
    id: str                      # "03", "01b"
    lesson: str                  # the lesson's file in docs/lessons/
    title: str                   # the lesson's title
    functions: tuple[str, ...]   # what the learner writes
    task: str                    # one line: what to write
    hint: str                    # a few lines, shown by `gptscratch learn hint`

    @property
    def filename(self) -> str:
        """The learner's file: the stub's name, e.g. ex03_attention.py."""
        return STUB_FILES[self.id]

    @property
    def url(self) -> str:
        """The lesson on the documentation site."""
        return f"{SITE}{Path(self.lesson).stem}/"

    def stub_text(self) -> str:
        """The learner's starting file: the solution with the bodies of `functions` emptied (see stub.py)."""
        from .stub import make_stub

        return make_stub(self.solution_path.read_text(encoding="utf-8"), self.functions)

    @property
    def solution_path(self) -> Path:
        return HERE / "solutions" / self.filename

    @property
    def checks_module(self) -> str:
        return f"gptscratch.learn.checks.lesson{self.id}"


STUB_FILES = {
    "01": "ex01_embeddings.py", "01b": "ex01b_bpe.py", "02": "ex02_positions.py", "03": "ex03_attention.py",
    "04": "ex04_multi_head.py", "05": "ex05_layernorm_mlp.py", "06": "ex06_block.py",
    "07": "ex07_cross_entropy.py", "08": "ex08_backprop.py", "09": "ex09_adamw.py", "10": "ex10_grad_clip.py",
    "11": "ex11_sampling_kv_cache.py", "12": "ex12_perplexity.py", "13": "ex13_logit_lens.py",
    "14": "ex14_llama.py", "15": "ex15_lora.py",
}

EXERCISES: tuple[Exercise, ...] = (
    Exercise("01", "01-tokens-and-embeddings.md", "Tokens & embeddings", ("byte_encode", "one_hot", "embed"),
             "byte_encode (text → byte ids), one_hot, and embed (the row lookup E[ids])",
             "A byte id is just the value of a UTF-8 byte: str.encode gives them.\n"
             "one_hot: start from zeros of shape ids.shape + (V,) and put a 1 at each id (scatter_, or compare\n"
             "ids[..., None] with torch.arange(V)). embed is plain indexing: table[ids] has shape (B, T, C)."),
    Exercise("01b", "01b-byte-pair-encoding.md", "Byte-pair encoding", ("most_frequent_pair", "merge"),
             "most_frequent_pair (counts weighted by chunk counts, ties → smallest pair) and merge (one BPE merge)",
             "most_frequent_pair: zip(word, word[1:]) lists a word's adjacent pairs; add `count` for each into a\n"
             "dict. The winner is the largest count; among equal counts the smallest pair: max over\n"
             "(count, negated pair) or min over (-count, pair).\n"
             "merge: walk the word left to right with an index i; when word[i], word[i + 1] is the pair, emit\n"
             "new_id and jump by 2, else emit word[i] and step by 1 — so 'a a a' with (a, a) gives 'N a'."),
    Exercise("02", "02-positions.md", "Positions", ("sinusoidal_positions", "rope_rotate"),
             "sinusoidal_positions (the fixed sin/cos table) and rope_rotate (rotary embedding, rotate-half)",
             "Both start from the angular speeds base^(-2i/d) for i = 0 .. d/2 − 1: torch.arange(0, d, 2) / d.\n"
             "angles = positions[:, None] * speeds[None, :] is (T, d/2). The sinusoidal table interleaves:\n"
             "column 2i is sin, column 2i+1 is cos (torch.stack((sin, cos), -1).flatten(-2)).\n"
             "RoPE (rotate-half): x1 = x[..., :hs/2], x2 = x[..., hs/2:]; the result is\n"
             "cat(x1·cos − x2·sin, x2·cos + x1·sin) with cos, sin of the (T, hs/2) angles."),
    Exercise("03", "03-attention.md", "Attention", ("attention",),
             "attention(q, k, v, mask): softmax(q kᵀ / √hs, masked) v, returning the output and the weights",
             "scores = q @ k.transpose(-2, -1) / math.sqrt(hs) is (B, nh, Tq, Tk). Where the mask is False, set\n"
             "the score to -inf (scores.masked_fill(~mask, float('-inf'))) before the softmax, so the weight is 0.\n"
             "Softmax over the last dimension (the keys); out = weights @ v. Don't forget the √hs."),
    Exercise("04", "04-multi-head-and-masking.md", "Multi-head & masking", ("causal_mask", "multi_head_attention"),
             "causal_mask(query_len, key_len) and multi_head_attention (split heads, attend, merge, project)",
             "causal_mask: query i sits at position i + (key_len − query_len); it may see key j when j ≤ that.\n"
             "Compare torch.arange(key_len)[None, :] with (torch.arange(query_len) + offset)[:, None].\n"
             "multi_head_attention: qkv = x @ w_qkv.T + b_qkv, split into three (B, T, C) parts; reshape each to\n"
             "(B, T, nh, hs) and transpose(1, 2) → (B, nh, T, hs); attend with the causal mask; transpose back,\n"
             "reshape to (B, T, C), then the output projection."),
    Exercise("05", "05-residuals-layernorm-mlp.md", "Residuals, LayerNorm & the MLP", ("layer_norm", "mlp"),
             "layer_norm (centre, scale by 1/√(var + ε), then γ and β) and mlp (GELU between two linear layers)",
             "LayerNorm works on the last dimension: mean = x.mean(-1, keepdim=True), and the *biased* variance\n"
             "((x − mean)²).mean(-1, keepdim=True) — not x.var(), which divides by C − 1. ε goes inside the root.\n"
             "A Linear's weight is (out, in): y = x @ W.T + b. GELU is the exact erf form:\n"
             "x · ½(1 + erf(x / √2)) (torch.nn.functional.gelu, or write it with torch.erf)."),
    Exercise("06", "06-block-and-model.md", "The block and the full model",
             ("pre_norm_block", "gpt_logits", "parameter_count"),
             "pre_norm_block (the residual wiring), gpt_logits (the whole forward pass, tied) and parameter_count",
             "The block: x = x + attn(ln_1(x)); then x = x + mlp(ln_2(x)) — each sub-layer reads a normalised copy\n"
             "and adds to the un-normalised stream. gpt_logits: tok_table[idx] + pos_table[:T], every block in\n"
             "turn, ln_f, then @ tok_table.T (tied: the output layer is the embedding table).\n"
             "Parameters: count each tensor. Embedding V·C, positions N·C; per block qkv 3C² + 3C, output C² + C,\n"
             "MLP C·F + F + F·C + C (F = d_ff), two LayerNorms 2·2C; the final LayerNorm 2C; untied: V·C more."),
    Exercise("07", "07-logits-and-loss.md", "Logits, softmax & cross-entropy", ("cross_entropy", "cross_entropy_grad"),
             "cross_entropy (stable log-softmax, targets −1 ignored) and its gradient (softmax − onehot) / N",
             "Stable log-softmax: z − max(z) − log Σ exp(z − max(z)) per row (torch.logsumexp does the last part).\n"
             "Pick the target's entry with gather; average over the rows whose target is not −1 only (N of them).\n"
             "The gradient is softmax(z) with 1 subtracted at the target, divided by N, and zero on ignored rows."),
    Exercise("08", "08-backpropagation.md", "Backpropagation", ("linear_backward", "layer_norm_backward"),
             "linear_backward (∂x, ∂W, ∂b) and layer_norm_backward (∂x, ∂γ, ∂β) by hand",
             "Linear y = x Wᵀ + b: ∂x = g W; ∂W = gᵀ x summed over every position (flatten (B, T) into rows first);\n"
             "∂b = g summed over rows. LayerNorm: recompute x̂ = (x − μ)·r with r = 1/√(σ² + ε); ∂γ = Σ g·x̂,\n"
             "∂β = Σ g over rows; with ĝ = g·γ, ∂x = r·(ĝ − mean(ĝ) − x̂·mean(ĝ·x̂)), means over the last dimension."),
    Exercise("09", "09-training-loop.md", "The training loop, AdamW & schedules", ("adamw_step", "learning_rate"),
             "adamw_step (one AdamW update with bias correction and decoupled weight decay) and learning_rate",
             "AdamW: m and v are running means of g and g²; divide them by (1 − β₁ᵗ) and (1 − β₂ᵗ) with t counted\n"
             "from 1. The decay is decoupled: w − lr·(m̂ / (√v̂ + ε) + λ·w), λ·w using the weight *before* the step.\n"
             "learning_rate: clamp progress to [0, 1]; in warmup peak·max(p / warmup, 0.001); afterwards a cosine\n"
             "from peak down to min_lr_ratio·peak over the rest of the run."),
    Exercise("10", "10-training-dynamics.md", "Training dynamics", ("clip_grad_norm",),
             "clip_grad_norm: the global gradient norm, and every gradient scaled down when it exceeds max_norm",
             "The global norm is √(Σ over every tensor of Σ g²) — one number for all the gradients together.\n"
             "If it exceeds max_norm, multiply every gradient by max_norm / (norm + 1e-6); otherwise leave them\n"
             "alone. Return the norm measured *before* clipping (that is what the training log shows)."),
    Exercise("11", "11-sampling-and-kv-cache.md", "Sampling & the KV cache", ("top_p_filter", "cache_write"),
             "top_p_filter (nucleus sampling's cut) and cache_write (the KV cache's write of new keys and values)",
             "top-p: sort the logits descending, softmax, cumsum. A token is dropped when the tokens *before* it\n"
             "already reach p (cumulative − its own probability ≥ p), so the top token always stays. Put the\n"
             "decisions back in vocabulary order (scatter with the sort's indices) and masked_fill with -inf.\n"
             "cache_write: cache_k[:, :, length:length + T] = k (same for v); return the filled slots [:length + T]."),
    Exercise("12", "12-evaluation.md", "Evaluation & perplexity", ("sliding_window_loss", "perplexity",
                                                                   "bits_per_byte"),
             "sliding_window_loss (every token scored once, windows every `stride`), perplexity, bits_per_byte",
             "Windows start at 0, stride, 2·stride, …; a window's inputs are tokens[begin:end] with\n"
             "end = min(begin + context, N − 1), its targets tokens[begin + 1:end + 1]. Score only targets whose\n"
             "index is past the previous window's end; stop after the window whose end is N − 1. Sum −log p with\n"
             "log_softmax and gather, divide by N − 1. Perplexity is e^loss; bits per byte divides the total\n"
             "nats (loss · predictions) by ln 2 and by the bytes."),
    Exercise("13", "13-interpretability.md", "Interpretability", ("logit_lens", "induction_score"),
             "logit_lens (the final LayerNorm and output layer applied to an earlier residual stream) and "
             "induction_score",
             "logit_lens: a LayerNorm over the last dimension with the final norm's γ, β and ε, then @ unembed.T;\n"
             "it works on any leading shape. induction_score: on [bos] S S, query q in the second copy\n"
             "(q = offset + length … offset + 2·length − 1) should look at key q − length + 1, the token after\n"
             "the earlier occurrence of its own token. Average pattern[..., q, q − length + 1] over those q and\n"
             "over the batch: one number per head."),
    Exercise("14", "14-from-gpt2-to-llama.md", "From GPT-2 to Llama", ("rms_norm", "swiglu_mlp", "repeat_kv"),
             "rms_norm, swiglu_mlp (the gated MLP with SiLU) and repeat_kv (grouped-query attention's sharing)",
             "RMSNorm: x · rsqrt(mean(x², last dimension) + ε) · γ — no mean subtracted, no β.\n"
             "SwiGLU: (silu(x @ w_gate.T) * (x @ w_up.T)) @ w_down.T, silu(z) = z·sigmoid(z).\n"
             "repeat_kv: each key/value head repeated `groups` times *consecutively* (head h of the queries\n"
             "reads kv head h // groups): repeat_interleave(groups, dim=1)."),
    Exercise("15", "15-post-training.md", "Post-training: SFT and LoRA", ("lora_linear", "merge_lora"),
             "lora_linear (y = W x + b + (α/r)·B A x) and merge_lora (W + (α/r)·B A)",
             "r is the rank: lora_A.shape[0]. With the Linear convention y = x @ W.T + b, the adapter is\n"
             "(x @ lora_A.T) @ lora_B.T, scaled by alpha / r. Merging folds the same product into the weight:\n"
             "W + (alpha / r) · lora_B @ lora_A, of shape (out, in) like W."),
)

_BY_ID = {exercise.id: exercise for exercise in EXERCISES}
_ID = re.compile(r"^0*(\d{1,2})([a-z]?)$")


def normalize_id(raw: str) -> str:
    """'3', '03', '1b', '01B' → '03', '03', '01b', '01b'; UsageError naming the valid ids otherwise."""
    match = _ID.match(str(raw).strip().lower())
    exercise_id = f"{int(match.group(1)):02d}{match.group(2)}" if match else None
    if exercise_id not in _BY_ID:
        valid = ", ".join(e.id for e in EXERCISES)
        raise UsageError(f"no exercise {raw!r}; the exercises are {valid} (one per lesson; "
                         "see `gptscratch learn list`)")
    return exercise_id


def find_exercise(raw: str) -> Exercise:
    """The exercise with id `raw` ('3', '03', '1b', ...); UsageError when there is none."""
    return _BY_ID[normalize_id(raw)]
