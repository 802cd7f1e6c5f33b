"""`--init-from`: start training from existing weights (fine-tuning, continued pretraining).

Unlike `--resume` (same run, same optimizer moments, same schedule), this starts a *new* run whose weights
come from a checkpoint — a run folder, a checkpoint folder, a run name, or whatever name
gptscratch.checkpoint.resolve_checkpoint understands (pretrained models such as `gpt2`). The optimizer,
schedule and data order start fresh.

The architecture is the checkpoint's (size flags cannot reshape trained weights); only `dropout` may be
changed. The data must be tokenized with the same tokenizer: token id 42 has to mean the same thing to the
weights and to the data. Two tokenizers count as the same when their specs are equal, or when they have the
same vocabulary size and encode a probe text identically (e.g. r50k_base and GPT-2's own BPE files).
"""

from __future__ import annotations

from ..errors import UsageError

_PROBE = "The quick brown fox — 3.14 ünïcödé\n\tcode: x = f(y) # comment"


def same_tokenizer(a, b) -> bool:
    from ..tokenizers.files import spec_identity

    if spec_identity(a.spec()) == spec_identity(b.spec()):
        return True
    if a.vocab_size != b.vocab_size:
        return False
    try:
        return a.encode(_PROBE) == b.encode(_PROBE)
    except Exception:  # noqa: BLE001 - a tokenizer that cannot encode the probe is not the same one
        return False


def checkpoint_tokenizer_name(init_from: str) -> str | None:
    """What --tokenizer defaults to when starting from a checkpoint: its tokenizer's name, or for a tokenizer
    made of files (a converted GPT-2, Llama or Qwen model) the folder in the checkpoint that holds them."""
    from .. import checkpoint as ckpt

    try:
        reference = ckpt.tokenizer_reference(init_from)
    except Exception:  # noqa: BLE001 - the real load reports problems properly
        return None
    from ..tokenizers import trained

    if trained.is_trained_folder(reference):  # a trained BPE is used by its name: back into the cache if gone
        return trained.restore(reference)
    return reference


def load_initial_weights(init_from: str, data_tokenizer, model_overrides: dict, device: str):
    """(ModelConfig, state_dict) of the checkpoint, after checking it fits the data's tokenizer."""
    from .. import checkpoint as ckpt

    loaded = ckpt.load_checkpoint(init_from, device=device)
    if not same_tokenizer(loaded.tokenizer, data_tokenizer):
        raise UsageError(
            f"vocab mismatch: {init_from} was trained with tokenizer {loaded.tokenizer.name} "
            f"({loaded.tokenizer.vocab_size} ids) but the data is tokenized with {data_tokenizer.name} "
            f"({data_tokenizer.vocab_size} ids); pass --tokenizer {loaded.tokenizer.name} (or prepare the data "
            f"with it) so ids mean the same thing")
    config = loaded.model.config
    if "dropout" in model_overrides:
        config = config.replace(dropout=model_overrides["dropout"])
    state = loaded.model.state_dict()
    return config, state
