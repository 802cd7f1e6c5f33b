"""Synthetic tasks: definitions, held-out test sets, task datasets, exact-match accuracy."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from gptscratch.data import prepare, resolve_dataset
from gptscratch.errors import UsageError
from gptscratch.evaluation.accuracy import evaluate_accuracy
from gptscratch.tasks import TASK_ALPHABET, parse_task
from gptscratch.tokenizers import CharTokenizer


def test_counting_and_digit_ops_examples_follow_their_rules():
    counting = parse_task("task:counting")
    assert counting.make(3, 7).text == "count 3 7=34567" and counting.make(8, 1).text == "count 8 1=8901"
    assert counting.space_size() == 100 and len(counting.test_set()) == 20
    ops = parse_task("task:digit-ops")
    assert [ops.make(op, [3, 8, 2, 5]).text for op in ops.operations] == [
        "first 3825=3", "second 3825=8", "last 3825=5", "max 3825=8", "min 3825=2"]
    small = parse_task("task:digit-ops:args=3,digits=5,ops=max+min,train=300")
    assert small.source == "task:digit-ops:args=3,digits=5,ops=max+min,train=300"
    examples = list(small.train_examples())
    assert len(examples) == 300 and {e.operation for e in examples} == {"max", "min"}
    assert all(len(e.prompt) == len("max 123=") and set(e.prompt[4:7]) <= set("01234") for e in examples)
    assert all(set(e.text) <= set(TASK_ALPHABET) for e in examples + small.test_set())


def test_test_set_is_fixed_and_held_out_of_training():
    for source in ("task:counting", "task:digit-ops", "task:digit-ops:seed=3,test=50"):
        task = parse_task(source)
        test = task.test_set()
        assert test == parse_task(source).test_set()  # same options, same examples, every time
        assert len({e.prompt for e in test}) == len(test)
        held_out = {e.prompt for e in test}
        assert not any(e.prompt in held_out for e in task.train_examples())
    assert parse_task("task:digit-ops:seed=1").test_set() != parse_task("task:digit-ops").test_set()


@pytest.mark.parametrize("source, message", [
    ("task:nope", "unknown task 'nope'"),
    ("task:counting:digits=11", "digits must be 2..10"),
    ("task:digit-ops:args=x", "must be an integer"),
    ("task:digit-ops:colour=red", "has no option 'colour'"),
    ("task:digit-ops:ops=first+median", "unknown operation"),
    ("task:digit-ops:args", "name=value"),
])
def test_bad_task_sources_are_usage_errors(source, message):
    with pytest.raises(UsageError, match=message):
        prepare(source)


def test_task_dataset_holds_training_examples_and_the_test_set_as_val():
    dataset = prepare("task:digit-ops:train=2000")
    assert dataset.name == "task-digit-ops-train2000-char" and dataset.manifest["split_rule"] == "task"
    tok = dataset.tokenizer
    assert isinstance(tok, CharTokenizer) and tok.chars == list(TASK_ALPHABET) and tok.vocab_size == 40
    task = parse_task("task:digit-ops:train=2000")

    def documents(split):
        ids = np.asarray(dataset.tokens(split))
        return tok.decode(ids.tolist()).split("<|endoftext|>")[1:]

    assert documents("val") == [e.text for e in task.test_set()]
    assert documents("train") == [e.text for e in task.train_examples()]
    assert resolve_dataset("task:digit-ops:train=2000", None).path == dataset.path
    as_bytes = resolve_dataset("task:digit-ops:train=2000", "byte")  # any tokenizer works too
    assert as_bytes.name == "task-digit-ops-train2000-byte" and as_bytes.num_documents("val") == 500


class Oracle(torch.nn.Module):
    """Stands in for a GPT: puts all probability on the right next character (or on a wrong one)."""

    def __init__(self, task, tokenizer, wrong_ops=()):
        super().__init__()
        self.answers = {e.prompt: e.answer for e in task.test_set()}
        self.tok, self.wrong_ops = tokenizer, set(wrong_ops)
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.config = type("Config", (), {"context_length": 64})()

    def forward(self, idx, only_last=False):
        logits = torch.zeros(idx.shape[0], 1, 64)
        for row, ids in enumerate(idx.tolist()):
            text = self.tok.decode(ids[1:])
            prompt, written = text[: text.index("=") + 1], text[text.index("=") + 1:]
            answer = self.answers[prompt]
            if prompt.split()[0] in self.wrong_ops:
                answer = "x" + answer
            nxt = self.tok.encode(answer[len(written)])[0] if len(written) < len(answer) else self.tok.eot_id
            logits[row, 0, nxt] = 1.0
        return logits, None


def test_accuracy_scores_exact_matches_per_operation(tmp_path):
    task = parse_task("task:digit-ops:test=100")
    tok = CharTokenizer(TASK_ALPHABET)
    checkpoint = type("Loaded", (), {"model": Oracle(task, tok, wrong_ops={"max"}), "tokenizer": tok,
                                     "path": tmp_path, "config": {}})()
    result = evaluate_accuracy(task="task:digit-ops:test=100", loaded=checkpoint)
    per_op = result["by_operation"]
    assert set(per_op) == {"first", "second", "last", "max", "min"} and result["examples"] == 100
    assert per_op["max"]["accuracy"] == 0.0 and per_op["max"]["correct"] == 0
    assert all(per_op[op]["accuracy"] == 1.0 for op in ("first", "second", "last", "min"))
    assert result["correct"] == 100 - per_op["max"]["examples"]
    assert result["failures"][0]["got"].startswith("x")
    with pytest.raises(UsageError, match="was not trained on a task"):
        evaluate_accuracy(loaded=checkpoint)


def counting_config(steps: int):
    from gptscratch.training import TrainConfig

    return TrainConfig(data="task:counting", tokenizer="char", size="tiny", model={"context_length": 32},
                       batch_size=32, max_steps=steps, eval_every=steps, eval_batches=2, log_every=50,
                       precision="fp32", lr=1e-2, seed=1337)


def test_training_on_a_task_and_the_accuracy_command(tmp_path):
    """Fast variant: a few steps through the real trainer, then `eval accuracy` reads the task from the run."""
    import typer
    from typer.testing import CliRunner

    from gptscratch.cli.eval_accuracy import accuracy
    from gptscratch.training import train

    result = train(counting_config(6), label="count")
    scored = evaluate_accuracy(str(result.run_dir))
    assert scored["task"] == "task:counting" and scored["examples"] == 20 and 0 <= scored["accuracy"] <= 1
    app = typer.Typer()
    app.command()(accuracy)
    app.command("unused")(lambda: None)  # two commands: `accuracy` stays a subcommand
    cli = CliRunner().invoke(app, ["accuracy", str(result.run_dir), "--json", "--limit", "5"])
    assert cli.exit_code == 0, cli.output
    payload = json.loads(cli.stdout.strip().splitlines()[-1])
    assert payload["examples"] == 5 and payload["by_operation"]["count"]["examples"] == 5


@pytest.mark.slow
def test_tiny_model_masters_counting():
    """A 2-layer, 64-wide model reaches 100% on the held-out counting examples (~10 s on a quiet 2-core CPU)."""
    from gptscratch.training import train

    result = train(counting_config(500), label="count")
    scored = evaluate_accuracy(str(result.run_dir))
    assert scored["accuracy"] == 1.0, scored["failures"]


@pytest.mark.slow
def test_small_rope_model_masters_digit_ops():
    """≥ 95% exact match on the held-out digit-ops examples after ~1 minute of CPU training.

    The recipe (also in docs/data.md): 2 layers × 128 wide × 4 heads with rotary positions, context 32,
    batch 32, lr 3e-3, 3000 steps: 99.6% and 99.8% with seeds 1 and 2. Fewer steps are not robust: at 1300-2000
    steps the result swung between 74% and 99% with the seed or the number of threads. Rotary positions matter: first/second/last are lookups at a fixed
    distance from '=', which relative positions express directly (learned positions reached ~59% in the
    same time).
    """
    from gptscratch.training import TrainConfig, train

    config = TrainConfig(data="task:digit-ops", size="tiny", batch_size=32, max_steps=3000, eval_every=3000,
                         eval_batches=4, log_every=100, lr=3e-3, seed=1337,
                         model={"n_layer": 2, "d_model": 128, "n_head": 4, "context_length": 32,
                                "positional": "rope"})
    scored = evaluate_accuracy(str(train(config, label="digit-ops").run_dir))
    assert scored["accuracy"] >= 0.95, scored["by_operation"]
