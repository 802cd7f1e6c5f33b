"""HellaSwag: pick the right ending of a sentence out of four — a common-sense benchmark for small models.

Each validation item has a context `ctx`, four `endings` and the index `label` of the right one (10,042 items).
Completion-style scoring (build-nanogpt, and the Eleuther harness's "acc"/"acc_norm"): feed ctx + " " + ending
for each of the four endings and sum the negative log-likelihood of the *ending* tokens only:

    acc       the ending with the lowest total loss is the answer
    acc_norm  the ending with the lowest *mean* loss per token (long endings are not penalised for length)
Random guessing gives 0.25. References (build-nanogpt's scoring): GPT-2 124M acc_norm 0.2955, GPT-2 XL 0.4893.

Data comes through `datasets.load_dataset(source, split="validation")`: `source` is the hub id Rowan/hellaswag
(downloaded once, then read from the Hugging Face cache) or a local folder holding a validation file
(.jsonl/.parquet) in the same schema — the same code path, only the location differs. When the hub is not
reachable the loader is switched to offline mode at once (a cached copy still works) instead of retrying.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from gptscratch.errors import DataError, NetworkError, UsageError

HUB_ID = "Rowan/hellaswag"
REQUIRED = ("ctx", "endings", "label")


def _hub_reachable(timeout: float = 3.0) -> bool:
    try:
        socket.create_connection(("huggingface.co", 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _go_offline() -> None:
    """Use only the local Hugging Face cache from now on: the libraries' documented switches, which they read
    when first imported (this runs before `datasets` is imported by this command)."""
    os.environ["HF_HUB_OFFLINE"] = os.environ["HF_DATASETS_OFFLINE"] = "1"


def load_examples(source: str = HUB_ID, split: str = "validation", limit: int | None = None) -> list[dict]:
    """HellaSwag items as dicts {ctx, endings (4 str), label (int)}; see the module docstring."""
    local = Path(source).expanduser().exists()
    if not local and source.startswith(("/", ".", "~")):
        raise UsageError(f"--source {source} does not exist; pass a folder holding {split}.jsonl (or .parquet), "
                         "or omit --source to use the Hugging Face copy")
    offline = os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("HF_DATASETS_OFFLINE") == "1"
    if not local and not offline and not _hub_reachable():
        _go_offline()
        offline = True
    import datasets

    datasets.utils.logging.set_verbosity(datasets.utils.logging.CRITICAL)  # its own log lines are not ours to print
    datasets.disable_progress_bars()
    try:
        rows = datasets.load_dataset(str(Path(source).expanduser()) if local else source, split=split)
    except Exception as exc:  # datasets raises many types (connection, not found, builder errors)
        reason = " ".join(str(exc).split())[:200]
        if local:
            raise UsageError(f"cannot read HellaSwag from {source} ({reason}); it needs a {split} file "
                             "(.jsonl or .parquet) with ctx, endings and label") from None
        where = "the hub is unreachable (offline)" if offline else f"loading failed ({reason})"
        raise NetworkError(f"HellaSwag ({source}) is not in the local Hugging Face cache and {where}; connect "
                           "once to download it, or pass --source FOLDER with a validation.jsonl") from None
    missing = [c for c in REQUIRED if c not in rows.column_names]
    if missing:
        raise DataError(f"{source} lacks HellaSwag columns {missing}; each item needs ctx, endings and label")
    if limit is not None:
        rows = rows.select(range(min(limit, len(rows))))
    return [{"ctx": r["ctx"], "endings": list(r["endings"]), "label": int(r["label"])} for r in rows]


def render_example(tokenizer, example: dict, context_length: int):
    """(tokens (4, T), ending mask (4, T)) with the ending tokens marked, right-padded, left-truncated."""
    ctx = tokenizer.encode(example["ctx"])
    rows, masks = [], []
    for ending in example["endings"]:
        end = tokenizer.encode(" " + ending)
        row, mask = (ctx + end)[-context_length:], ([0] * len(ctx) + [1] * len(end))[-context_length:]
        rows.append(row)
        masks.append(mask)
    width = max(len(r) for r in rows)
    tokens = torch.tensor([r + [0] * (width - len(r)) for r in rows])
    mask = torch.tensor([m + [0] * (width - len(m)) for m in masks])
    return tokens, mask


@torch.inference_mode()
def score_example(model, tokenizer, example: dict) -> tuple[int, int]:
    """(prediction by total loss, prediction by mean loss per token) for one item."""
    tokens, mask = render_example(tokenizer, example, model.config.context_length)
    device = model.tok_embed.weight.device
    tokens, mask = tokens.to(device), mask.to(device)
    logits, _ = model(tokens)
    losses = F.cross_entropy(logits[:, :-1].float().flatten(0, 1), tokens[:, 1:].flatten(), reduction="none")
    losses = losses.view(tokens.size(0), -1) * mask[:, 1:]      # only the ending's tokens count
    total = losses.sum(dim=1)
    mean = total / mask[:, 1:].sum(dim=1).clamp(min=1)
    return int(total.argmin()), int(mean.argmin())


def evaluate_hellaswag(model, tokenizer, examples: list[dict],
                       progress: Callable[[dict], None] | None = None) -> dict:
    if not examples:
        raise UsageError("no HellaSwag items to score; check --limit")
    correct = correct_norm = 0
    model.eval()
    for i, example in enumerate(examples, 1):
        if len(example["endings"]) < 2 or not 0 <= example["label"] < len(example["endings"]):
            raise DataError(f"HellaSwag item {i} has an invalid label or endings; the data file is damaged")
        pred, pred_norm = score_example(model, tokenizer, example)
        correct += pred == example["label"]
        correct_norm += pred_norm == example["label"]
        if progress is not None:
            progress({"completed": i, "total": len(examples), "unit": "items", "acc_norm": correct_norm / i})
    n = len(examples)
    return {"examples": n, "acc": correct / n, "acc_norm": correct_norm / n, "correct": correct,
            "correct_norm": correct_norm}
