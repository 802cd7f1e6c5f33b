"""gptscratch ↔ TransformerLens: the same activations under two names, and a gptscratch model handed to it.

TransformerLens (Nanda & Bloom 2022) is the library most interpretability work is written in; gptscratch's hook
names follow its convention, so a notebook written for one reads the other. Two things live here:

    HOOKS                          the correspondence, one row per activation: our name, TransformerLens's name,
                                   shape, meaning, and what TransformerLens's weight processing does to it
                                   (docs/interpret.md shows hooks_table(); a test keeps the two identical)
    to_transformer_bridge(source)  a checkpoint (path, run or pretrained name), a Checkpoint or a GPT in memory
                                   → a TransformerLens `TransformerBridge`, offline

Since TransformerLens 4.0 its model is `TransformerBridge` (`HookedTransformer` was removed): TransformerLens's
own attention, hooks and caches around a Hugging Face module. So the hand-off is our HF export
(gptscratch/pretrained/export.py, what `gptscratch pretrained export --format hf` writes) loaded with
transformers from a temporary folder and wrapped by TransformerLens's `build_bridge_from_module` — no Hub access,
unlike `TransformerBridge.boot_transformers("gpt2")`, which resolves names and tokenizers online.

Weight processing. HookedTransformer used to rewrite the weights on load (`bridge.enable_compatibility_mode()`
does it now): fold_ln moves every LayerNorm's weight and bias into the linear layer after it,
center_writing_weights removes the mean over d_model from everything written into the residual stream,
center_unembed does the same for the unembedding, fold_value_biases moves b_V into b_O. The model computes the
same probabilities, but some activations change. By default the bridge is left raw (`processing=False`,
TransformerLens 4's own default): then every row of HOOKS equals gptscratch's activation to fp32 rounding, which
is what tests/test_transformer_lens.py checks. With processing the last column applies: "same" (queries, keys,
patterns, MLP neurons: LayerNorm's output is unchanged by a centred input), "centred" (residual-stream
quantities: ours minus its mean over d_model) or "differs" (values, z, head results, the final norm's output —
the folded weights sit elsewhere). Log-probabilities and the logit lens's log-probabilities agree either way.

Only GPT-2-shaped models (learned positions, pre-LayerNorm, sequential blocks, a plain MLP, biases everywhere)
are handed over: that is the architecture whose TransformerLens hooks this table was checked against.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..errors import UsageError

LAYOUTS = ("same", "heads_first", "no_batch")
PROCESSED = {"same": "same", "centred": "minus its mean over d_model", "differs": "differs"}


@dataclass(frozen=True)
class HookPair:
    """One activation under its two names; `{i}` is the layer. `shape` is ours (B batch, T positions, d d_model,
    nh heads, hs head width, f MLP width); `layout` says how ours becomes TransformerLens's: "same",
    "heads_first" (ours (B, nh, T, hs), theirs (B, T, nh, hs)) or "no_batch" (ours (T, d), theirs (B, T, d));
    `processed` is what HookedTransformer's weight processing does to theirs (module docstring)."""

    ours: str
    theirs: str
    shape: str
    meaning: str
    layout: str = "same"
    processed: str = "same"

    def names(self, layer: int | None = None) -> tuple[str, str]:
        """(our name, TransformerLens's name) at `layer` (ignored for model-level activations)."""
        return self.ours.format(i=layer), self.theirs.format(i=layer)

    @property
    def per_layer(self) -> bool:
        return "{i}" in self.ours

    def to_transformer_lens(self, activation, batch: int):
        """Our activation in TransformerLens's layout (a view, no copy)."""
        if self.layout == "heads_first":
            return activation.transpose(1, 2)                         # (B, nh, T, hs) → (B, T, nh, hs)
        if self.layout == "no_batch" and activation.dim() == 2:
            return activation.expand(batch, *activation.shape)        # (T, d) → (B, T, d)
        return activation


HOOKS: tuple[HookPair, ...] = (
    HookPair("hook_embed", "hook_embed", "(B, T, d)", "token embeddings W_E[ids]", processed="centred"),
    HookPair("hook_pos_embed", "hook_pos_embed", "(T, d); TL (B, T, d)", "learned position vectors W_pos[t]",
             layout="no_batch", processed="centred"),
    HookPair("blocks.{i}.hook_resid_pre", "blocks.{i}.hook_resid_pre", "(B, T, d)",
             "residual stream into block i", processed="centred"),
    HookPair("blocks.{i}.attn.hook_q", "blocks.{i}.attn.hook_q", "(B, nh, T, hs); TL (B, T, nh, hs)",
             "queries", layout="heads_first"),
    HookPair("blocks.{i}.attn.hook_k", "blocks.{i}.attn.hook_k", "(B, nh, T, hs); TL (B, T, nh, hs)", "keys",
             layout="heads_first"),
    HookPair("blocks.{i}.attn.hook_v", "blocks.{i}.attn.hook_v", "(B, nh, T, hs); TL (B, T, nh, hs)", "values",
             layout="heads_first", processed="differs"),
    HookPair("blocks.{i}.attn.hook_pattern", "blocks.{i}.attn.hook_pattern", "(B, nh, Tq, Tk)",
             "attention weights (softmax of the masked scores)"),
    HookPair("blocks.{i}.attn.hook_z", "blocks.{i}.attn.hook_z", "(B, T, nh, hs)",
             "each head's output before W_O (what head patching replaces)", processed="differs"),
    HookPair("blocks.{i}.attn.hook_result", "blocks.{i}.attn.hook_result", "(B, T, nh, d)",
             "each head's write z_h·W_O[h], no b_O (ours: computed by the cache from hook_z; TL: after "
             "bridge.set_use_attn_result(True))", processed="differs"),
    HookPair("blocks.{i}.hook_attn_out", "blocks.{i}.hook_attn_out", "(B, T, d)",
             "attention output: Σ_h result_h + b_O", processed="centred"),
    HookPair("blocks.{i}.hook_resid_mid", "blocks.{i}.hook_resid_mid", "(B, T, d)",
             "residual stream between attention and MLP", processed="centred"),
    HookPair("blocks.{i}.mlp.hook_pre", "blocks.{i}.mlp.hook_pre", "(B, T, f)",
             "MLP neurons before the activation function"),
    HookPair("blocks.{i}.mlp.hook_post", "blocks.{i}.mlp.hook_post", "(B, T, f)",
             "MLP neurons after the activation function"),
    HookPair("blocks.{i}.hook_mlp_out", "blocks.{i}.hook_mlp_out", "(B, T, d)", "MLP output",
             processed="centred"),
    HookPair("blocks.{i}.hook_resid_post", "blocks.{i}.hook_resid_post", "(B, T, d)",
             "residual stream out of block i", processed="centred"),
    HookPair("hook_final_norm", "ln_final.hook_out", "(B, T, d)",
             "final LayerNorm's output, weight and bias applied: what the unembedding reads "
             "(TL's ln_final.hook_normalized is before weight and bias)", processed="differs"),
)


def hook_names(n_layer: int) -> list[tuple[str, str, HookPair]]:
    """Every (our name, TransformerLens's name, row) of a model with `n_layer` blocks, in forward order."""
    first = next(index for index, pair in enumerate(HOOKS) if pair.per_layer)
    embeddings = [(*pair.names(), pair) for pair in HOOKS[:first]]
    blocks = [(*pair.names(layer), pair) for layer in range(n_layer) for pair in HOOKS if pair.per_layer]
    return embeddings + blocks + [(*pair.names(), pair) for pair in HOOKS[first:] if not pair.per_layer]


def hooks_table() -> str:
    """HOOKS as the Markdown table docs/interpret.md shows (a test checks the page holds exactly this)."""
    lines = ["| gptscratch | TransformerLens | shape | meaning | with HookedTransformer processing |",
             "|---|---|---|---|---|"]
    for pair in HOOKS:
        lines.append(f"| `{pair.ours}` | `{pair.theirs}` | {pair.shape} | {pair.meaning} | "
                     f"{PROCESSED[pair.processed]} |")
    return "\n".join(lines)


def transformer_lens_problems(config) -> list[str]:
    """What a ModelConfig lacks for the hand-off (empty when it is GPT-2-shaped)."""
    from gptscratch.pretrained.gpt2 import gpt2_export_problems

    return gpt2_export_problems(config)


def _check_shape(config, where: str) -> None:
    problems = transformer_lens_problems(config)
    if problems:
        raise UsageError(f"cannot hand {where} to TransformerLens: the hand-off takes GPT-2-shaped models and "
                         f"this one needs {'; '.join(problems)}")


def _checkpoint_folder(source, tokenizer, scratch) -> tuple:
    """(checkpoint folder to export, name, whether the bridge gets a tokenizer) for any accepted source."""
    from gptscratch.checkpoint import Checkpoint, read_config, resolve_checkpoint, save_checkpoint
    from gptscratch.model import GPT, ModelConfig
    from gptscratch.tokenizers import get_tokenizer

    if isinstance(source, (str, os.PathLike)):
        if tokenizer is not None:
            raise UsageError("a checkpoint brings its own tokenizer; pass tokenizer= only with a model")
        path = resolve_checkpoint(source)
        _check_shape(ModelConfig.from_dict(read_config(path)["model"]), str(path))
        return path, path.name, True
    if isinstance(source, Checkpoint):
        tokenizer = source.tokenizer if tokenizer is None else tokenizer
        source, name = source.model, source.path.name
    elif isinstance(source, GPT):
        name = "gptscratch"
    else:
        raise UsageError(f"to_transformer_bridge takes a checkpoint (path, run or pretrained name), a Checkpoint "
                         f"or a gptscratch GPT, not {type(source).__name__}")
    _check_shape(source.config, "this model")
    # The checkpoint format needs a tokenizer; without one the byte tokenizer fills the slot and is not loaded.
    spec = (get_tokenizer("byte") if tokenizer is None else tokenizer).spec()
    return save_checkpoint(scratch / "checkpoint", source, spec), name, tokenizer is not None


def to_transformer_bridge(source, tokenizer=None, *, device: str = "cpu", dtype=None, processing: bool = False):
    """A gptscratch model as a TransformerLens `TransformerBridge` (imports transformer_lens; works offline).

        bridge = to_transformer_bridge("my-run")          # or a Checkpoint, or a GPT (+ tokenizer=)
        logits, cache = bridge.run_with_cache("The Eiffel Tower is in")   # TransformerLens from here on

    source: a checkpoint reference (run folder, checkpoint folder, run name, converted pretrained name), a
    loaded `Checkpoint`, or a `GPT` in memory (its current weights; `tokenizer`: a gptscratch tokenizer, else
    the bridge has none and takes token ids). The model is exported as a Hugging Face GPT-2 folder (LoRA
    merged), loaded with eager attention on `device` in `dtype` (default: the stored dtype) and wrapped.
    TransformerLens's tokenizer puts the end-of-text token in front of text, as gptscratch's tools do.

    processing=True applies HookedTransformer's weight processing (`enable_compatibility_mode()`); the module
    docstring and HOOKS say which activations then stop equalling gptscratch's. Per-head results
    (`hook_result`) need `bridge.set_use_attn_result(True)`. UsageError for a model that is not GPT-2-shaped, or
    without TransformerLens 4 installed.
    """
    import tempfile
    from pathlib import Path

    try:  # TransformerLens 4 (3.x has HookedTransformer and no bridge)
        from transformer_lens.model_bridge.sources import build_bridge_from_module
    except ImportError:
        raise UsageError('the TransformerLens hand-off needs TransformerLens 4: pip install "transformer-lens>=4.3"'
                         ) from None
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from gptscratch.pretrained.export import export_hf

    with tempfile.TemporaryDirectory(prefix="gptscratch-tl-") as scratch:
        checkpoint, name, with_tokenizer = _checkpoint_folder(source, tokenizer, Path(scratch))
        exported = export_hf(checkpoint, Path(scratch) / "hf")
        folder = exported["path"]
        hf_model = AutoModelForCausalLM.from_pretrained(folder, attn_implementation="eager",
                                                        dtype=dtype or "auto").to(device).eval()
        hf_tokenizer = AutoTokenizer.from_pretrained(folder) if with_tokenizer and exported["tokenizer"] else None
        # The bridge reloads the tokenizer from its folder (to prepend BOS), so it is built before the folder goes.
        bridge = build_bridge_from_module(hf_model, exported["architecture"], hf_config=hf_model.config,
                                          tokenizer=hf_tokenizer, model_name=name)
    if processing:
        bridge.enable_compatibility_mode(disable_warnings=True)
    return bridge.eval()
