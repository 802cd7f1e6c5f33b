"""Exact-match accuracy of a checkpoint on a synthetic task's held-out test set.

For each test example the model reads `EOT + prompt` (in training every example starts right
after an end-of-text id) and greedily writes tokens until it emits end-of-text or has written
answer-length + 1 tokens; the example counts as correct when the decoded text equals the
answer exactly. Accuracy = correct / examples, overall and per operation (first, max, ...).

Batched: prompts of one token length are decoded together, one full forward pass per new
token (no KV cache: tiny models, answers of a few tokens). Cost: examples x (prompt + answer)
tokens of forward passes, well under a second for the default 500 examples on a CPU.
Only real vocabulary ids are considered (a padded output layer has extra, never-trained ids).

Which task: `task` when given (a `task:...` source), else the one the checkpoint was trained
on (the source of its dataset, read from the dataset's manifest or the saved train config).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

from gptscratch.errors import UsageError


def task_of_checkpoint(checkpoint) -> str:
    """The `task:...` source a loaded checkpoint was trained on (UsageError when there is none)."""
    from gptscratch.tasks import is_task_source

    training = checkpoint.config.get("training", {}) or {}
    candidates = [training.get("data"), (training.get("train_config") or {}).get("data")]
    try:
        from gptscratch.checkpoint import load_trainer_state

        _, state = load_trainer_state(checkpoint.path)
        candidates.append((state.get("train_config") or {}).get("data"))
    except Exception:  # a checkpoint without trainer state (e.g. converted weights)
        pass
    for data in filter(None, candidates):
        if is_task_source(data):
            return data
        try:
            from gptscratch.data import open_dataset

            source = open_dataset(data).source
        except Exception:
            continue
        if is_task_source(source):
            return source
    raise UsageError(f"{checkpoint.path} was not trained on a task:... dataset; pass --task task:counting "
                     "or --task task:digit-ops")


def evaluate_accuracy(checkpoint: str | None = None, task: str | None = None, device: str = "cpu",
                      limit: int | None = None, batch_size: int = 256,
                      progress: Callable[[dict], None] | None = None, loaded=None) -> dict:
    """Score a checkpoint (path/run name, or an already `loaded` Checkpoint) on a task's test set."""
    import torch

    from gptscratch.checkpoint import load_checkpoint
    from gptscratch.tasks import parse_task

    emit = progress or (lambda event: None)
    loaded = loaded or load_checkpoint(checkpoint, device=device)
    model, tokenizer = loaded.model.eval(), loaded.tokenizer
    parsed = parse_task(task or task_of_checkpoint(loaded))
    examples = parsed.test_set()[: limit or None]
    context = model.config.context_length
    by_length: dict[int, list[tuple[list[int], object]]] = defaultdict(list)
    for example in examples:
        ids = [tokenizer.start_id] + tokenizer.encode(example.prompt)
        by_length[len(ids)].append((ids, example))
    results: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    failures = []
    done = 0
    model_device = next(model.parameters()).device
    with torch.no_grad():
        for length, group in sorted(by_length.items()):
            for first in range(0, len(group), batch_size):
                chunk = group[first : first + batch_size]
                steps = max(len(tokenizer.encode(ex.answer)) for _, ex in chunk) + 1
                if length + steps > context:
                    raise UsageError(f"prompts of {length} tokens plus answers need {length + steps} positions, the "
                                     f"model has {context}; train with a longer --context-length")
                x = torch.tensor([ids for ids, _ in chunk], dtype=torch.long, device=model_device)
                for _ in range(steps):
                    logits, _ = model(x, only_last=True)
                    next_ids = logits[:, -1, : tokenizer.vocab_size].argmax(dim=-1, keepdim=True)
                    x = torch.cat([x, next_ids], dim=1)
                for row, (_, example) in zip(x[:, length:].tolist(), chunk):
                    answer_ids = row[: row.index(tokenizer.eot_id)] if tokenizer.eot_id in row else row
                    written = tokenizer.decode(answer_ids)
                    correct = written == example.answer
                    results[example.operation][0] += int(correct)
                    results[example.operation][1] += 1
                    if not correct and len(failures) < 10:
                        failures.append({"prompt": example.prompt, "expected": example.answer, "got": written})
                done += len(chunk)
                emit({"total": len(examples), "completed": done, "unit": "examples"})
    correct = sum(c for c, _ in results.values())
    return {
        "checkpoint": str(loaded.path),
        "task": parsed.source,
        "examples": len(examples),
        "correct": correct,
        "accuracy": correct / len(examples) if examples else 0.0,
        "by_operation": {op: {"examples": n, "correct": c, "accuracy": c / n}
                         for op, (c, n) in sorted(results.items())},
        "failures": failures,
    }
