"""Ground truth by training: a 2-layer attention-only GPT learns to copy, and the tools find the circuit.

gptscratch.interpret.toy trains the model on random tokens with a segment repeated after a gap (the recipe and
why each part matters are in its docstring and docs/interpret.md). The slow test trains it (seed 0, ~20-60 s on
one core), checks that it copies — the second copy of a held-out [bos] S S is predicted almost perfectly while
the first stays near ln V — and then runs the real analyses, through the library and through the CLI on a saved
checkpoint: `induction-heads` must rank a layer-1 head first with a clear score, fed by a layer-0 head, and
`attention` must call a layer-0 head a previous-token head. The fast tests pin the data generator.
"""

import json
import math

import pytest
import torch

from gptscratch.interpret import analyse_heads, find_induction_heads, repeated_random_tokens
from gptscratch.interpret.toy import (ToyInductionSetup, probe_losses, repeated_segment_batch, toy_tokenizer,
                                      train_induction_model)


def test_each_sequence_repeats_one_segment_after_a_gap():
    setup = ToyInductionSetup(batch_size=32)
    tokens, copy_mask = repeated_segment_batch(setup, torch.Generator().manual_seed(0))
    assert tokens.shape == copy_mask.shape == (32, setup.context_length + 1)
    assert (tokens[:, 0] == setup.bos_id).all() and (tokens[:, 1:] != setup.bos_id).all()
    for row, mask in zip(tokens, copy_mask):
        copied = mask.nonzero().flatten().tolist()
        n = len(copied) + 1                                        # the copy's first token is not masked
        assert setup.min_segment <= n <= setup.max_segment
        assert copied == list(range(copied[0], copied[0] + n - 1))  # one contiguous run
        q = copied[0] - 1                                          # start of the second copy
        sources = [p for p in range(1, q - n) if torch.equal(row[p:p + n], row[q:q + n])]
        assert sources, "the second copy repeats an earlier segment that ends before a gap"


def test_setup_rejects_segments_that_do_not_fit():
    with pytest.raises(ValueError, match="fit"):
        ToyInductionSetup(context_length=20, max_segment=10)
    with pytest.raises(ValueError, match="min_segment"):
        ToyInductionSetup(min_segment=5, max_segment=4)


def test_training_reports_progress_and_a_loss_curve():
    events = []
    result = train_induction_model(ToyInductionSetup(steps=4, eval_every=2, batch_size=4), progress=events.append)
    assert result.steps == 4 and [p["step"] for p in result.curve] == [2, 4]
    assert [e["completed"] for e in events] == [2, 4] and events[-1]["total"] == 4
    assert not result.model.training and result.model.config.attention_only and result.model.config.n_layer == 2
    first, second = probe_losses(result.model, result.setup)
    assert abs(first - math.log(63)) < 1.0 and abs(second - math.log(63)) < 1.0   # untrained: no copying yet


@pytest.fixture(scope="module")
def trained():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)          # the recipe's timing is for one core; tests share the machine
    try:
        return train_induction_model(ToyInductionSetup(seed=0, stop_below=0.15))
    finally:
        torch.set_num_threads(threads)


def probe(setup, length=10):
    return repeated_random_tokens(setup.vocab_size, length, batch=8, seed=0, bos_id=setup.bos_id,
                                  exclude=(setup.bos_id,))


@pytest.mark.slow
def test_trained_model_copies_in_context(trained):
    curve = trained.curve
    assert curve[0]["probe_second_copy"] > 3.0                     # before the phase change: no copying
    report = find_induction_heads(trained.model, probe(trained.setup), 10, 1)
    assert report.loss_second_copy < 0.3                           # near zero on the second copy …
    assert report.loss_first_copy > 3.5                            # … while the first stays near ln 63 ≈ 4.14


@pytest.mark.slow
def test_tools_find_the_trained_circuit(trained, tmp_path, run_cli):
    from gptscratch.checkpoint import save_checkpoint

    model, setup = trained.model, trained.setup
    report = find_induction_heads(model, probe(setup), 10, 1)
    best = report.ranked[0]
    best_layer_0 = max(h.score for h in report.ranked if h.layer == 0)
    assert best.layer == 1 and best.score > 0.6 and best_layer_0 < 0.2       # a clear layer-1 induction head
    assert best.feeders and best.feeders[0].layer == 0 and best.feeders[0].previous_token_score > 0.5

    profiles = analyse_heads(model, probe(setup, length=8)[0])
    previous = [p for p in profiles if p.kind == "previous-token"]
    assert previous and all(p.layer == 0 for p in previous)
    assert max(p.scores["previous_token"] for p in previous) > 0.8
    assert any(p.layer == 1 and p.kind == "induction" for p in profiles)

    tokenizer = toy_tokenizer(setup)
    checkpoint = save_checkpoint(tmp_path / "trained-induction", model, tokenizer.spec())
    result = run_cli("interpret", "induction-heads", str(checkpoint), "--length", "10", "--json")
    assert result.returncode == 0, result.stderr
    cli_report = json.loads(result.stdout)
    assert cli_report["ranked"][0]["layer"] == 1 and cli_report["ranked"][0]["score"] > 0.6
    assert cli_report["loss_second_copy"] < 0.3 < 3.5 < cli_report["loss_first_copy"]

    result = run_cli("interpret", "attention", str(checkpoint), "--text", "0123456789ABCDEF0123456789ABCDEF",
                     "--json")
    assert result.returncode == 0, result.stderr
    heads = json.loads(result.stdout)["heads"]
    assert any(h["layer"] == 0 and h["kind"] == "previous-token" for h in heads)
    assert any(h["layer"] == 1 and h["kind"] == "induction" for h in heads)
