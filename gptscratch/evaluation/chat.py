"""Answer accuracy of a chat model: ask each held-out question, compare the reply with the expected answer.

For every conversation whose last message is the assistant's (the expected answer), the model reads the
conversation before it through the chat template, with the generation prompt (`<|assistant|>`), and writes greedily
until its end-of-turn token (or `max_new_tokens`). The reply counts as correct when it equals the expected answer
after stripping surrounding whitespace. Accuracy = correct / questions, overall and, for builtin-chat, per
operation (first, max, ...).

A base model has no chat tokens; it is given them as `train sft` would at step 0 (gptscratch/chat/tokens.py), so
the figure for a base model is where fine-tuning starts from. Prompts are decoded in batches (left-padded, KV
cache; gptscratch/generation/engine.py).
"""

from __future__ import annotations

from collections import defaultdict


def chat_accuracy(model, tokenizer, fmt, conversations: list[list[dict]], max_new_tokens: int = 16,
                  batch_size: int = 64, progress=None) -> dict:
    """{"accuracy", "correct", "questions", "by_operation", "examples"} (module docstring)."""
    from gptscratch.chat.builtin import operation_of
    from gptscratch.generation.engine import generate_batch
    from gptscratch.generation.sampling import SamplingConfig

    context = model.config.context_length
    greedy = SamplingConfig(temperature=0.0)
    tally: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    examples, correct = [], 0
    for start in range(0, len(conversations), batch_size):
        chunk = conversations[start:start + batch_size]
        room = context - min(max_new_tokens, context // 4)       # a question keeps at least 3/4 of the context
        prompts = [fmt.prompt_ids(c[:-1])[-room:] for c in chunk]
        replies = generate_batch(model, prompts, max_new_tokens, greedy, stop_ids=fmt.stop_ids,
                                 vocab_limit=tokenizer.vocab_size)
        for conversation, ids in zip(chunk, replies):
            question, expected = conversation[-2]["content"], conversation[-1]["content"].strip()
            reply = tokenizer.decode(ids).strip()
            right = reply == expected
            correct += right
            operation = operation_of(question) or "all"
            tally[operation][0] += right
            tally[operation][1] += 1
            if len(examples) < 5:
                examples.append({"question": question, "expected": expected, "reply": reply, "correct": right})
        if progress is not None:
            progress({"completed": min(start + batch_size, len(conversations)), "total": len(conversations)})
    total = len(conversations)
    return {"accuracy": correct / total if total else 0.0, "correct": correct, "questions": total,
            "by_operation": {op: {"accuracy": c / n, "questions": n} for op, (c, n) in sorted(tally.items())},
            "examples": examples}


def evaluate_chat(checkpoint: str | None, data: str = "builtin-chat", limit: int | None = None,
                  max_new_tokens: int = 16, chat_template: str = "auto", device: str = "cpu",
                  progress=None) -> dict:
    """Load `checkpoint`, make it chat-ready, and score it on the held-out conversations of `data`."""
    from gptscratch import checkpoint as ckpt
    from gptscratch.chat import BUILTIN, read_conversations
    from gptscratch.chat.tokens import chat_ready
    from gptscratch.errors import UsageError

    loaded = ckpt.load_checkpoint(checkpoint, device=device)
    model, tokenizer, fmt = chat_ready(loaded, chat_template)
    name = data.strip()
    split = "test" if name == BUILTIN or name.startswith(BUILTIN + ":") else "train"
    conversations = []
    for where, messages in read_conversations(data, split):
        if messages[-1]["role"] != "assistant" or len(messages) < 2:
            raise UsageError(f"{where}: the last message must be the assistant's expected answer")
        conversations.append(messages)
        if limit is not None and len(conversations) >= limit:
            break
    result = chat_accuracy(model, tokenizer, fmt, conversations, max_new_tokens=max_new_tokens, progress=progress)
    return {"checkpoint": str(loaded.path), "data": data, "template": fmt.describe(),
            "chat_tokens_added": tokenizer is not loaded.tokenizer, **result}
