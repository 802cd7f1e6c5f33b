"""The GPT: a decoder-only transformer language model, end to end (Radford et al. 2018/2019, GPT and GPT-2).

    idx (B, T) token ids
      → token embedding E[idx] (× √d_model if scale_embeddings)   (+ position vectors, learned or sinusoidal)
      → n_layer blocks, each adding attention and MLP outputs to the residual stream     (B, T, d_model)
      → final norm (pre-norm models; a post-norm block already ends in one)
      → output projection to the vocabulary: logits (B, T, V)   (optionally soft-capped: c·tanh(z / c))
      → with targets: cross-entropy = mean over positions of −log softmax(logits)[target]

The output projection is *tied* to the token embedding by default: `lm_head.weight is tok_embed.weight` — one
tensor used twice (Press & Wolf 2017, "Using the Output Embedding to Improve Language Models"), which saves
V·d_model parameters and helps small models. Saving tied weights stores the tensor once; gptscratch.checkpoint
re-ties them on load.

Initialisation (GPT-2): every weight ~ N(0, 0.02), biases 0, and the projections that write into the residual
stream scaled by 1/√(2·n_layer) — each block adds two such outputs, so this keeps the stream's variance from
growing with depth.

Forward cost per token ≈ 2 × (number of parameters) FLOPs, plus attention's O(T · d_model) per layer; training
(forward + backward) ≈ 6 × parameters per token (Kaplan et al. 2020).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from . import kernels
from .attention import causal_mask
from .block import Block
from .config import ModelConfig
from .embeddings import LearnedPositions, RotaryEmbedding, SinusoidalPositions
from .hooks import HookPoint
from .kv_cache import KVCache
from .layers import Embedding, Linear
from .norms import make_norm


class GPT(nn.Module):
    """The language model. forward(idx (B, T), targets (B, T) or None) → (logits (B, T, V), loss or None).

    Hook points: hook_embed (B, T, d) token embeddings, hook_pos_embed (B, T, d) position vectors (learned and
    sinusoidal only), hook_final_norm (B, T, d) what the output layer reads; and every block's (block.py)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.tok_embed = Embedding(config.vocab_size, config.d_model)
        self.pos_embed = self.rotary = None
        if config.positional == "learned":
            self.pos_embed = LearnedPositions(config.context_length, config.d_model)
        elif config.positional == "sinusoidal":
            self.pos_embed = SinusoidalPositions(config.d_model)
        else:  # rope adds nothing to the embeddings: its angles, computed once per forward, turn q and k
            llama3 = None if config.rope_scaling == "none" else (
                config.rope_scaling_factor, config.rope_low_freq_factor, config.rope_high_freq_factor,
                config.rope_original_context)
            self.rotary = RotaryEmbedding(config.rotary_dims, config.rope_base, llama3)
        self.embed_dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = make_norm(config) if config.norm_placement == "pre" else nn.Identity()
        self.lm_head = Linear(config.d_model, config.vocab_size, bias=config.lm_head_bias)
        if config.tie_weights:
            self.lm_head.weight = self.tok_embed.weight   # the same Parameter object, not a copy
        self.hook_embed = HookPoint()
        self.hook_pos_embed = HookPoint()
        self.hook_final_norm = HookPoint()
        self.apply(self.init_weights)

    def init_weights(self, module: nn.Module) -> None:
        """GPT-2's initialisation for one module (the module docstring says why)."""
        if isinstance(module, nn.Linear):
            std = 0.02
            if getattr(module, "is_residual_projection", False):
                std /= math.sqrt(2 * self.config.n_layer)
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_parameters(self, non_embedding: bool = False) -> int:
        """Trainable parameters, tied tensors counted once. non_embedding drops the token/position tables."""
        total = sum(p.numel() for p in self.parameters())
        if non_embedding:
            total -= self.tok_embed.weight.numel()
            if isinstance(self.pos_embed, LearnedPositions):
                total -= self.pos_embed.table.weight.numel()
        return total

    def hook_points(self) -> dict[str, HookPoint]:
        """Every named activation point, e.g. 'blocks.0.hook_resid_pre', 'blocks.0.attn.hook_pattern'."""
        return {name: m for name, m in self.named_modules() if isinstance(m, HookPoint)}

    def new_kv_cache(self, batch: int, max_len: int | None = None) -> KVCache:
        """An empty KV cache (kv_cache.py) for `batch` rows, on the model's device and in its dtype."""
        param = self.tok_embed.weight
        return KVCache(self.config, batch, max_len, device=param.device, dtype=param.dtype)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None, kv_cache: KVCache | None = None,
                positions: torch.Tensor | None = None, mask: torch.Tensor | None = None,
                only_last: bool = False):
        """idx (B, T) → (logits (B, T, V) — (B, 1, V) with only_last —, loss or None).

        kv_cache: continue from the cached positions (idx holds only the new tokens); the cache grows by T.
        positions: explicit positions (T,) or (B, T); by default cache length .. cache length + T − 1.
        mask: boolean attention mask broadcastable to (B, nh, T, keys), True = may attend; default causal.
        targets (B, T): next-token ids; positions with target −1 are ignored by the loss.
        """
        B, T = idx.shape
        start = kv_cache.length if kv_cache is not None else 0
        if positions is None:
            if start + T > self.config.context_length:
                raise ValueError(f"sequence of {start + T} tokens exceeds the context length "
                                 f"{self.config.context_length}")
            positions = torch.arange(start, start + T, device=idx.device)

        x = self.hook_embed(self.tok_embed(idx))                           # (B, T, d_model)
        if self.config.scale_embeddings:
            x = x * math.sqrt(self.config.d_model)
        if self.pos_embed is not None:
            # (.to: the sinusoidal table is computed in fp32 whatever the weights' dtype, e.g. bf16)
            x = x + self.hook_pos_embed(self.pos_embed(positions).to(x.dtype))   # broadcasts (T, d) over B
        rope = self.rotary(positions, x.dtype) if self.rotary is not None else None
        x = self.embed_dropout(x)

        if mask is None and start > 0 and T > 1:
            mask = causal_mask(T, start + T, idx.device)                   # new queries vs cached + new keys
        for i, block in enumerate(self.blocks):
            x = block(x, rope, mask, kv_cache.layers[i] if kv_cache is not None else None)

        x = self.hook_final_norm(self.ln_f(x))
        if only_last:
            x = x[:, -1:, :]
        logits = self.lm_head(x)                                           # (B, T, V)
        if self.config.logit_softcap is not None:   # every logit squashed into (−c, c): no runaway confidence
            logits = kernels.active().softcap(logits, self.config.logit_softcap)
        loss = None
        if targets is not None:
            loss = kernels.active().cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1))
        return logits, loss
