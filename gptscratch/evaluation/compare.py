"""Score checkpoints on text they all agree on: a prepared dataset's split or a text file.

`score_checkpoint` loads one checkpoint, picks the tokens (a dataset split, tokenized once by `prepare`, or a
text file tokenized with the checkpoint's own tokenizer) and returns its row: size, tokens trained, the val loss
recorded during training, and loss / perplexity / bits per byte measured now (perplexity.py).

Same data: a dataset's tokens only make sense to a model with the same tokenizer, so a mismatch is a UsageError
that points at --file (bits per byte compare across tokenizers) or at re-preparing the data. Without --data and
--file, a checkpoint is scored on the validation split of the dataset it was trained on.
"""

from __future__ import annotations

from collections.abc import Callable

from gptscratch.errors import UsageError
from gptscratch.tokenizers.files import spec_identity


def dataset_tokens(loaded, data: str | None, split: str, max_tokens: int | None):
    """(tokens, label) of a dataset split for the checkpoint `loaded`, checking the tokenizer matches."""
    from gptscratch.data import open_dataset

    name = data or loaded.training.get("data")
    if not name:
        raise UsageError(f"{loaded.path} does not record its training data; pass --data NAME or --file PATH")
    dataset = open_dataset(name)
    if spec_identity(dataset.tokenizer.spec()) != spec_identity(loaded.tokenizer.spec()):
        raise UsageError(f"dataset {dataset.name!r} uses tokenizer {dataset.tokenizer_name} but {loaded.path} "
                         f"uses {loaded.tokenizer.name}; score a text file with --file PATH (bits per byte compare "
                         f"across tokenizers) or prepare the data with --tokenizer {loaded.tokenizer.name}")
    if split not in ("train", "val"):
        raise UsageError(f"unknown split {split!r}; choose train or val")
    tokens = dataset.tokens(split)
    if len(tokens) < 2:
        raise UsageError(f"the {split} split of {dataset.name!r} has fewer than 2 tokens; use --file PATH")
    if max_tokens is not None:
        tokens = tokens[:max_tokens]
    return tokens, f"{dataset.name}:{split}"


def check_same_training_data(checkpoints: list[str]) -> None:
    """UsageError when the checkpoints were trained on different datasets: each would then be scored on its own
    validation split (the default without --data and --file), and the losses would not compare."""
    from gptscratch.checkpoint import read_config, resolve_checkpoint

    trained_on = {read_config(resolve_checkpoint(c)).get("training", {}).get("data") for c in checkpoints}
    if len(trained_on) > 1:
        raise UsageError(f"the checkpoints were trained on different data ({', '.join(map(str, trained_on))});"
                         " pass --data NAME or --file PATH so all are scored on the same text")


def score_checkpoint(checkpoint: str, *, data: str | None = None, text: str | None = None, split: str = "val",
                     max_tokens: int | None = None, context: int | None = None, stride: int | None = None,
                     batch_size: int = 4, device: str = "cpu",
                     progress: Callable[[dict], None] | None = None) -> dict:
    """One checkpoint's row: identity, training record and measured loss/perplexity/bits per byte."""
    import numpy as np

    from gptscratch.checkpoint import load_checkpoint

    from .perplexity import evaluate_tokens, text_tokens

    loaded = load_checkpoint(checkpoint, device=device)
    if text is not None:
        tokens, label = text_tokens(loaded.tokenizer, text), "file"
        if max_tokens is not None:
            tokens = tokens[:max_tokens]
    else:
        tokens, label = dataset_tokens(loaded, data, split, max_tokens)
        tokens = np.asarray(tokens, dtype=np.int64)
    if context is not None and not 1 <= context <= loaded.model.config.context_length:
        raise UsageError(f"--context must be in 1..{loaded.model.config.context_length}, the model's context "
                         f"length (got {context}); omit it to use the whole context")
    try:
        result = evaluate_tokens(loaded.model, tokens, tokenizer=loaded.tokenizer, context=context,
                                 stride=stride, batch_size=batch_size, progress=progress)
    except ValueError as exc:
        raise UsageError(f"{exc}; check --stride / --max-tokens") from None
    training = loaded.training
    return {"checkpoint": str(loaded.path), "data": label, "parameters": loaded.model.num_parameters(),
            "tokenizer": loaded.tokenizer.name, "tokens_trained": training.get("tokens"),
            "step": training.get("step"), "recorded_val_loss": training.get("val_loss"), **result.to_dict()}
