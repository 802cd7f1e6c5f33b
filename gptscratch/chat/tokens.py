"""Adding gptscratch's chat tokens to a base model: new vocabulary rows, initialised so nothing else changes.

A base model trained on the byte tokenizer has 257 real ids (its vocabulary is padded to 320 for speed, and the
padding rows were never a target: training pushed their logits down). The chat template needs four more ids
(gptscratch/tokenizers/chat.py); they take the ids right after the base vocabulary — 257..260 — and when the
padded vocabulary has no room left, the embedding and output matrices grow (to the next multiple of 64).

Initialisation: each new row is the *mean* of the real rows, plus a little noise (std 1% of the rows' own spread)
so the four tokens are not identical. A new output row equal to the mean gives the new tokens a logit equal to the
average logit, so the model's predictions on ordinary text hardly move at step 0 (Hewitt 2021, "Initializing New
Word Embeddings for Pretrained Language Models"); a random N(0, 0.02) row, or a padding row that training pushed
down, would instead start them far from where they are needed. With tied weights the one matrix serves both sides.
"""

from __future__ import annotations


def add_chat_tokens(model_config, state: dict, base_tokenizer, seed: int = 0):
    """(ModelConfig, state dict, ChatTokenizer) of a base model made ready for gptscratch's chat template."""
    import torch

    from gptscratch.model.config import pad_vocab
    from gptscratch.tokenizers.chat import ChatTokenizer

    tokenizer = ChatTokenizer(base_tokenizer)
    real, needed = base_tokenizer.vocab_size, tokenizer.vocab_size
    vocab = model_config.vocab_size if needed <= model_config.vocab_size else pad_vocab(needed)
    generator = torch.Generator().manual_seed(seed)
    state = dict(state)
    grown = {}
    for name in ("tok_embed.weight", "lm_head.weight", "lm_head.bias"):
        if name not in state:
            continue
        old = state[name]
        if old.data_ptr() in grown:  # tied: the same storage under two names stays one tensor
            state[name] = grown[old.data_ptr()]
            continue
        new = torch.zeros((vocab, *old.shape[1:]), dtype=old.dtype, device=old.device)
        new[: old.size(0)] = old
        rows = old[:real].float()
        mean, spread = rows.mean(dim=0), rows.std(dim=0) if rows.dim() > 1 else rows.std()
        noise = torch.randn((needed - real, *old.shape[1:]), generator=generator) * 0.01 * spread.cpu()
        new[real:needed] = (mean.cpu() + noise).to(dtype=old.dtype, device=old.device)
        grown[old.data_ptr()] = state[name] = new
    return model_config.replace(vocab_size=vocab), state, tokenizer


def chat_ready(loaded, choice: str = "auto", seed: int = 1337):
    """(model, tokenizer, ChatFormat) to talk to a loaded checkpoint. A base model without chat tokens gets them
    exactly as `train sft` would at its step 0 (same initialisation, same seed as TrainConfig's default): what
    `eval chat` measures on a base model is where fine-tuning starts from."""
    import torch

    from gptscratch.model import GPT

    from .template import chat_format, needs_chat_tokens

    from gptscratch.model.lora import merge_lora

    model, tokenizer = loaded.model, loaded.tokenizer
    if needs_chat_tokens(tokenizer, choice):
        merge_lora(model)  # a LoRA checkpoint: its adapters folded in, so the state dict is a plain GPT's
        config, state, tokenizer = add_chat_tokens(model.config, model.state_dict(), tokenizer, seed=seed)
        parameter = next(model.parameters())
        with torch.device(parameter.device):
            model = GPT(config).to(parameter.dtype)
        model.load_state_dict(state)
        model.eval()
    return model, tokenizer, chat_format(tokenizer, choice)
