"""The GPT: a decoder-only transformer language model, end to end.

    idx (B, T) token ids
      → token embedding E[idx] (× √d_model if scale_embeddings)  (+ position table for learned/sinusoidal)
      → N blocks, each adding attention and MLP outputs to the residual stream  (B, T, d_model)
      → final LayerNorm (pre-norm models)
      → output projection to the vocabulary: logits (B, T, V)
      → with targets: cross-entropy = mean over positions of −log softmax(logits)[target]

The output projection is *tied* to the token embedding by default: `lm_head.weight is tok_embed.weight` — one
tensor used twice (Press & Wolf 2017), which saves V·d_model parameters and helps small models. Saving tied
weights stores the tensor once; gptscratch.checkpoint re-ties them on load.

Initialisation (GPT-2): every weight ~ N(0, 0.02), biases 0, and the projections that write into the residual
stream scaled by 1/√(2·n_layer) — each block adds two such outputs, so this keeps the stream's variance from
growing with depth.

Forward cost per token ≈ 2 × (number of parameters) FLOPs, plus attention's O(T · d_model) per layer.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .attention import KVCache, causal_mask
from .block import Block
from .config import ModelConfig
from .embeddings import LearnedPositions, SinusoidalPositions
from .hooks import HookPoint


class GPT(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.tok_embed = nn.Embedding(config.vocab_size, config.d_model)
        if config.positional == "learned":
            self.pos_embed = LearnedPositions(config.context_length, config.d_model)
        elif config.positional == "sinusoidal":
            self.pos_embed = SinusoidalPositions(config.d_model)
        else:
            self.pos_embed = None  # rope rotates queries and keys inside attention instead
        self.embed_dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        # Post-norm blocks already end in a LayerNorm; pre-norm ones need one before the output layer.
        self.ln_f = (nn.LayerNorm(config.d_model, eps=config.layer_norm_eps, bias=config.bias)
                     if config.norm_placement == "pre" else nn.Identity())
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=config.lm_head_bias)
        if config.tie_weights:
            self.lm_head.weight = self.tok_embed.weight  # the same Parameter object, not a copy
        self.hook_embed = HookPoint()       # (B, T, d_model) token embeddings
        self.hook_pos_embed = HookPoint()   # (B, T, d_model) position embeddings (learned/sinusoidal only)
        self.hook_final_norm = HookPoint()  # (B, T, d_model) the normalised stream the output layer reads
        self.apply(self._init_weights)

    def _init_weights(self, module: nn.Module) -> None:
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
        param = self.tok_embed.weight
        return KVCache(self.config, batch, max_len, device=param.device, dtype=param.dtype)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None, kv_cache: KVCache | None = None,
                positions: torch.Tensor | None = None, mask: torch.Tensor | None = None,
                only_last: bool = False):
        """idx (B, T) → (logits (B, T, V) — (B, 1, V) with only_last —, loss or None).

        kv_cache: continue from the cached positions (idx holds only the new tokens); the cache advances by T.
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

        x = self.hook_embed(self.tok_embed(idx))                          # (B, T, d_model)
        if self.config.scale_embeddings:
            x = x * math.sqrt(self.config.d_model)
        if self.pos_embed is not None:
            # (.to: the sinusoidal table is computed in fp32 whatever the weights' dtype, e.g. bf16)
            x = x + self.hook_pos_embed(self.pos_embed(positions).to(x.dtype))  # broadcasts (T, d) over B
        x = self.embed_dropout(x)

        if mask is None and kv_cache is not None and start > 0 and T > 1:
            mask = causal_mask(T, start + T, idx.device)                  # new queries vs cached + new keys
        for i, block in enumerate(self.blocks):
            layer_cache = kv_cache.layers[i] if kv_cache is not None else None
            x, _ = block(x, positions, mask, layer_cache, start)
        if kv_cache is not None:
            kv_cache.length = start + T

        x = self.hook_final_norm(self.ln_f(x))
        if only_last:
            x = x[:, -1:, :]
        logits = self.lm_head(x)                                          # (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.reshape(-1),
                                   ignore_index=-1)
        return logits, loss
