"""LoRA fine-tuning in the training loop (`--lora-rank R`; the adapters themselves: gptscratch/model/lora.py).

With `lora_rank > 0` the trainer's model gets adapters on the `--lora-targets` layers of every block right after
its starting weights are loaded, and every other parameter is frozen: the optimizer (optimizer.py) takes only
parameters that require gradients, so it holds moments for the adapters alone. Checkpoints then store the
unchanged base weights plus adapter.safetensors (gptscratch/checkpoint.py).

`train sft` on a base model adds chat tokens (gptscratch/chat/tokens.py) whose embedding rows nothing has trained:
frozen at their initial mean, the model could neither tell <|user|> from <|assistant|> nor ever write <|end|>
(measured: 0 % answer accuracy on builtin-chat with rank-8 adapters alone). So those rows — and only those —
train too (`train_new_rows`, the idea of PEFT's trainable tokens): a gradient hook zeroes every other row's
gradient and the matrix is kept out of weight decay, so every base row stays bitwise what it was.

On `--resume` the base weights come from the checkpoint as usual (setup.initial_weights hands over the state dict
without the adapters) and the adapters are rebuilt here and filled with the checkpoint's adapter tensors —
before the optimizer is built, so its saved moments find the same parameters in the same order.
"""

from __future__ import annotations

from .. import checkpoint as ckpt
from ..checkpoint_adapters import lora_entry, read_adapters
from ..errors import CheckpointError, UsageError


def attach_adapters(model, config, resume_from=None) -> list[str]:
    """Wrap `model`'s target layers in LoRA adapters when `config.lora_rank > 0` (and, resuming, load the
    checkpoint's adapters into them); returns the wrapped layers' names ([] when LoRA is off)."""
    from ..model.lora import apply_lora, is_adapter_name, parse_targets

    if config.lora_rank <= 0:
        return []
    if config.manual_backward:
        raise UsageError("--manual-backward cannot train LoRA adapters (its hand-written backward passes cover the "
                         "model's own layers only); drop --manual-backward or --lora-rank")
    try:
        targets = parse_targets(config.lora_targets)
    except ValueError as exc:
        raise UsageError(f"--lora-targets {config.lora_targets!r}: {exc}") from None
    try:
        names = apply_lora(model, config.lora_rank, config.lora_alpha, config.lora_dropout, targets)
    except ValueError as exc:  # e.g. only `gate` asked for, in a model whose MLP has none
        raise UsageError(f"--lora-targets {config.lora_targets!r}: {exc}") from None
    if resume_from is not None:
        adapters = read_adapters(resume_from, ckpt.read_config(resume_from), str(next(model.parameters()).device))
        missing, unexpected = model.load_state_dict(adapters, strict=False)
        missing = [name for name in missing if is_adapter_name(name)]
        if missing or unexpected:
            raise CheckpointError(f"{resume_from} holds adapters for other layers than this run's (missing "
                                  f"{missing[:3]}, unexpected {unexpected[:3]}); the checkpoint was edited")
    return names


def train_new_rows(model, dataset, config) -> list:
    """Let the embedding rows (and untied output rows) of the tokens `train sft` added (the dataset's `new_ids`)
    train, every other row frozen; returns the parameters that train this way (to keep out of weight decay)."""
    import torch

    new_ids = getattr(dataset, "new_ids", range(0))      # pretraining data: no new tokens
    if not len(new_ids):
        return []
    if config.fsdp:  # fully_shard replaces the Parameter, and the row mask (a hook on it) would be lost
        raise UsageError("--fsdp with --lora-rank cannot train the rows of the chat tokens sft adds; fine-tune a "
                         "model that has them (a `train sft` run) or drop --fsdp")
    matrices = [model.tok_embed.weight]
    if model.lm_head.weight is not model.tok_embed.weight:
        matrices.append(model.lm_head.weight)
    for weight in matrices:
        rows = torch.zeros(weight.size(0), 1, dtype=weight.dtype, device=weight.device)
        rows[new_ids.start:new_ids.stop] = 1
        weight.requires_grad_(True)
        weight.register_hook(lambda grad, rows=rows: grad * rows)   # (V, d) gradient, zero outside the new rows
    return matrices


def merged_adapters(init_from: str, state: dict) -> dict:
    """`--init-from` a LoRA checkpoint starts from its merged weights, W + (α/r)·B A (a new run, full or with
    fresh adapters); any other checkpoint's state dict is returned unchanged."""
    from ..model.lora import is_adapter_name, merge_state_dict

    if not any(is_adapter_name(name) for name in state):
        return state
    path = ckpt.resolve_checkpoint(init_from)
    lora = lora_entry(ckpt.read_config(path), path)
    return merge_state_dict(state, lora["alpha"])
