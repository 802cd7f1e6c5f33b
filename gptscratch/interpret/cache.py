"""The activation cache every interpretability tool shares: read and replace the model's named activations.

The model routes each interesting tensor through a `HookPoint` (gptscratch/model/hooks.py) with a stable,
TransformerLens-style name. This module is the small layer on top:

    hooks(model, {name: fn})            context manager: fn(activation, name) may return a replacement;
                                        the hooks are removed on exit, even after an exception
    run_with_cache(model, ids, names)   one forward pass that stores the named activations
                                        → (logits, ActivationCache)
    run_with_hooks(model, ids, {...})   one forward pass with replacements (activation patching)

Names (B batch, T positions, d d_model, nh heads, hs head width, f MLP width):
    hook_embed                                                  (B, T, d)
    hook_pos_embed (learned/sinusoidal only)                    (T, d)  shared by the batch ((B, T, d) given
                                                                        per-row positions)
    blocks.{i}.hook_resid_pre / hook_resid_post                 (B, T, d)
    blocks.{i}.hook_resid_mid   only for sequential blocks with an MLP: a parallel block (GPT-J, Phi-2) has
                                no point between attention and MLP, and an attention-only block has no MLP
    blocks.{i}.attn.hook_q                                      (B, nh, T, hs)   (after QK-norm and RoPE, when used)
    blocks.{i}.attn.hook_k / hook_v                             (B, n_kv, T, hs) (n_kv = nh unless grouped-query)
    blocks.{i}.attn.hook_pattern                                (B, nh, Tq, Tk)  softmax weights
    blocks.{i}.attn.hook_z                                      (B, T, nh, hs)   per-head output before W_O
    blocks.{i}.hook_attn_out / hook_mlp_out                     (B, T, d)
    blocks.{i}.mlp.hook_pre / hook_post                         (B, T, f)
    hook_final_norm                                             (B, T, d)        what the output layer reads
    blocks.{i}.attn.hook_result  computed by the cache from hook_z (B, T, nh, d)   each head's write, no bias

A cache also answers TransformerLens's short keys: `cache["resid_post", 3]`, `cache["pattern", 0]`,
`cache["result", 1]`. The names, shapes and meanings equal TransformerLens's (checked against TransformerLens
itself by tests/test_transformer_lens.py); the differences — hook_q/k/v put heads before positions,
hook_pos_embed has no batch dimension, hook_final_norm is TransformerLens's ln_final.hook_out — are tabled in
transformer_lens.py (HOOKS) and docs/interpret.md.

Cost: nothing when no hook is registered. Reading `hook_pattern` switches attention from the fused kernel to
the written-out formula (same maths, O(B·nh·T²) memory), so filter names to keep memory small.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager

from ..errors import UsageError

ATTENTION_KINDS = ("q", "k", "v", "pattern", "z")
MLP_KINDS = ("pre", "post")
BLOCK_KINDS = ("resid_pre", "resid_mid", "resid_post", "attn_out", "mlp_out")
MODEL_KINDS = ("embed", "pos_embed", "final_norm")
DERIVED_KINDS = ("result",)     # computed by ActivationCache from other activations: read-only, no hook point
HEAD_RESULT = re.compile(r"blocks\.(\d+)\.attn\.hook_result")

NameFilter = str | Iterable[str] | Callable[[str], bool] | None
HookFn = Callable[..., object]


def hook_name(kind: str, layer: int | None = None) -> str:
    """The full name of a short key: ("resid_post", 3) → "blocks.3.hook_resid_post"."""
    if kind in MODEL_KINDS:
        return f"hook_{kind}"
    if layer is None:
        raise UsageError(f"activation {kind!r} belongs to a block; give a layer, e.g. ({kind!r}, 0)")
    if kind in ATTENTION_KINDS + DERIVED_KINDS:
        return f"blocks.{layer}.attn.hook_{kind}"
    if kind in MLP_KINDS:
        return f"blocks.{layer}.mlp.hook_{kind}"
    if kind in BLOCK_KINDS:
        return f"blocks.{layer}.hook_{kind}"
    raise UsageError(f"unknown activation kind {kind!r}; choose one of "
                     f"{', '.join(MODEL_KINDS + BLOCK_KINDS + ATTENTION_KINDS + DERIVED_KINDS + MLP_KINDS)}")


def missing_reason(model, name: str) -> str:
    """Why `name` is not a hook point of this model, phrased as problem + fix."""
    config = model.config
    if HEAD_RESULT.fullmatch(name):
        return (f"{name} is not a hook point: the cache computes it from hook_z (read cache[\"result\", i] after "
                "caching blocks.{i}.attn.hook_z); to patch a head, patch its slice of blocks.{i}.attn.hook_z")
    if name.endswith("hook_resid_mid") and config.block_layout == "parallel":
        return (f"{name} does not exist: this model's blocks are parallel (attention and MLP both read the same "
                "normalised input and add to the stream together), so there is no mid-block residual; use "
                "hook_resid_pre / hook_resid_post or hook_attn_out / hook_mlp_out")
    if config.attention_only and (name.endswith("hook_resid_mid") or ".mlp." in name or "mlp_out" in name):
        return (f"{name} does not exist: this model is attention-only (no MLP), so blocks have no MLP "
                "activations and no mid-block residual; use hook_resid_pre / hook_resid_post / hook_attn_out")
    if name == "hook_pos_embed" and config.positional == "rope":
        return ("hook_pos_embed is never called in this model: RoPE rotates queries and keys instead of adding "
                "position vectors; read blocks.{i}.attn.hook_q / hook_k")
    return (f"no activation named {name!r}; the names are listed by model.hook_points() "
            "(e.g. blocks.0.hook_resid_post, blocks.0.attn.hook_pattern)")


def select_names(model, names: NameFilter = None) -> list[str]:
    """Hook names matching a filter: None = all, a name, a list of names, or a predicate on names.

    An explicitly named activation the model lacks raises UsageError saying why (e.g. parallel blocks have no
    resid_mid) instead of silently returning nothing.
    """
    points = model.hook_points()
    if names is None:
        return list(points)
    if callable(names):
        return [name for name in points if names(name)]
    wanted = [names] if isinstance(names, str) else list(names)
    for name in wanted:
        if name not in points:
            raise UsageError(missing_reason(model, name))
    return list(dict.fromkeys(wanted))


@contextmanager
def hooks(model, fwd_hooks: Mapping[str, HookFn]) -> Iterator[object]:
    """Attach `fn(activation, name) -> replacement | None` to each named hook point for the block's duration.

    Returning None keeps the activation; returning a tensor replaces it (the rest of the forward pass uses it).
    Hooks are always removed, even when the forward pass raises, so a model is never left instrumented.
    """
    points = model.hook_points()
    handles = []
    try:
        for name, fn in fwd_hooks.items():
            if name not in points:
                raise UsageError(missing_reason(model, name))
            handles.append(points[name].register_forward_hook(
                lambda module, args, output, fn=fn, name=name: fn(output, name)))
        yield model
    finally:
        for handle in handles:
            handle.remove()


class ActivationCache(Mapping):
    """Activations of one forward pass, by hook name (detached tensors, batch dimension kept).

    Built by `run_with_cache`. Keys are full hook names or TransformerLens-style (kind, layer) pairs; the derived
    `blocks.{i}.attn.hook_result` / ("result", i) is computed from hook_z on request (`head_result`).
    """

    def __init__(self, activations: dict, model):
        self._activations = activations
        self.model = model

    def _key(self, key) -> str:
        return hook_name(*key) if isinstance(key, tuple) else key

    def __getitem__(self, key):
        name = self._key(key)
        if name not in self._activations:
            derived = HEAD_RESULT.fullmatch(name)
            if derived:
                return self.head_result(int(derived.group(1)))
            if name in self.model.hook_points():
                raise KeyError(f"{name} was not cached; include it in run_with_cache(names=...)")
            raise UsageError(missing_reason(self.model, name))
        return self._activations[name]

    def __contains__(self, key) -> bool:
        return self._key(key) in self._activations

    def __iter__(self):
        return iter(self._activations)

    def __len__(self) -> int:
        return len(self._activations)

    def accumulated_resid(self, incl_mid: bool = False, apply_ln: bool = True):
        """The residual stream after each layer, as TransformerLens's `accumulated_resid(apply_ln=True)`.

        Returns (stack (S, B, T, d), labels): "0_pre", "1_pre", …, "{L-1}_pre", "final_post", plus "{i}_mid"
        after each "{i}_pre" with incl_mid. With apply_ln the model's final norm is applied to every entry,
        its statistics recomputed per entry (TransformerLens does the same for the full stack), so each entry
        is what the output layer would read if the model stopped there. Parallel and attention-only blocks
        have no mid-block residual: incl_mid raises UsageError for them rather than inventing one.
        """
        import torch

        n_layer = self.model.config.n_layer
        entries, labels = [], []
        for layer in range(n_layer):
            entries.append(self["resid_pre", layer])
            labels.append(f"{layer}_pre")
            if incl_mid:
                entries.append(self["resid_mid", layer])
                labels.append(f"{layer}_mid")
        entries.append(self["resid_post", n_layer - 1])
        labels.append("final_post")
        stack = torch.stack(entries)
        if apply_ln:
            with torch.no_grad():
                stack = self.model.ln_f(stack)
        return stack, labels

    def head_result(self, layer: int):
        """Each head's contribution to the residual stream, (B, T, nh, d): z_h · W_O[:, h-slice]ᵀ.

        The output projection is linear, so attn_out = Σ_h result_h + b_O; like TransformerLens's hook_result
        the bias is left out. Computed from hook_z (no extra hook point needed); also `cache["result", layer]`.
        """
        import torch

        z = self["z", layer]                                              # (B, T, nh, hs)
        proj = self.model.blocks[layer].attn.proj.weight                  # (d, nh·hs): out = z_flat @ Wᵀ
        n_head, head_dim = z.shape[2], z.shape[3]
        w_o = proj.T.reshape(n_head, head_dim, -1)                        # (nh, hs, d)
        with torch.no_grad():
            return torch.einsum("bthk,hkd->bthd", z, w_o)


def _as_batch(ids):
    import torch

    ids = torch.as_tensor(ids, dtype=torch.long)
    return ids.unsqueeze(0) if ids.dim() == 1 else ids


def model_device(model):
    return next(model.parameters()).device


def run_with_cache(model, ids, names: NameFilter = None):
    """Run `ids` ((T,) or (B, T)) once and store the selected activations → (logits (B, T, V), cache)."""
    import torch

    selected = select_names(model, names)
    stored: dict = {}

    def store(activation, name):
        stored[name] = activation.detach()

    ids = _as_batch(ids).to(model_device(model))
    with torch.no_grad(), hooks(model, {name: store for name in selected}):
        logits, _ = model(ids)
    return logits, ActivationCache(stored, model)


def run_with_hooks(model, ids, fwd_hooks: Mapping[str, HookFn]):
    """Run `ids` with hooks that may replace activations (patching, ablation) → logits (B, T, V)."""
    import torch

    ids = _as_batch(ids).to(model_device(model))
    with torch.no_grad(), hooks(model, fwd_hooks):
        logits, _ = model(ids)
    return logits
