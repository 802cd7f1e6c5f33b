"""Evaluation library: sliding-window perplexity equals the hand computation, bits per byte, HellaSwag scoring
through the datasets code path, and the speed benchmark's figures."""

import json
import math

import pytest
import torch
import torch.nn.functional as F

from gptscratch.evaluation.perplexity import evaluate_tokens, text_tokens, window_plan
from gptscratch.tokenizers import get_tokenizer

torch.set_num_threads(1)


BYTE_VOCAB = 320   # the byte tokenizer's 257 ids, padded as training pads them


@pytest.mark.parametrize("n, context, stride", [(2, 8, 4), (9, 8, 8), (30, 8, 4), (30, 8, 3), (31, 8, 1), (5, 8, 8)])
def test_window_plan_scores_every_target_once(n, context, stride):
    scored = []
    for begin, end, first in window_plan(n, context, stride):
        assert 0 < end - begin <= context
        scored += list(range(max(begin, first) + 1, end + 1))
    assert scored == list(range(1, n))


def nll_by_hand(model, tokens, context):
    """Each target j predicted from the (up to) `context` tokens right before it, one forward per target."""
    total = 0.0
    with torch.no_grad():
        for j in range(1, len(tokens)):
            inputs = torch.tensor([tokens[max(0, j - context): j]])
            total -= F.log_softmax(model(inputs)[0][0, -1], dim=-1)[tokens[j]].item()
    return total


def test_single_window_loss_is_mean_cross_entropy_and_perplexity_its_exp(tiny_model):
    model = tiny_model(vocab_size=BYTE_VOCAB, context_length=32)
    tokens = torch.randint(0, 256, (20,), generator=torch.Generator().manual_seed(1)).tolist()
    result = evaluate_tokens(model, tokens, tokenizer=get_tokenizer("byte"))
    with torch.no_grad():
        expected = F.cross_entropy(model(torch.tensor([tokens[:-1]]))[0][0], torch.tensor(tokens[1:])).item()
    assert result.tokens == 19 and result.windows == 1
    assert result.loss == pytest.approx(expected, rel=1e-5)
    assert result.perplexity == pytest.approx(math.exp(expected), rel=1e-5)
    assert result.bytes == 19 and result.bits_per_byte == pytest.approx(expected / math.log(2), rel=1e-5)


def test_stride_one_sliding_window_equals_the_per_token_hand_computation(tiny_model):
    model = tiny_model(vocab_size=BYTE_VOCAB, context_length=8)
    tokens = torch.randint(0, 256, (30,), generator=torch.Generator().manual_seed(2)).tolist()
    result = evaluate_tokens(model, tokens, stride=1, batch_size=5)
    assert result.tokens == 29
    assert result.loss == pytest.approx(nll_by_hand(model, tokens, 8) / 29, rel=1e-5)


def test_disjoint_windows_equal_chunked_cross_entropy(tiny_model):
    model = tiny_model(vocab_size=BYTE_VOCAB, context_length=8)
    tokens = torch.randint(0, 256, (25,), generator=torch.Generator().manual_seed(3)).tolist()
    result = evaluate_tokens(model, tokens, stride=8)
    total = 0.0
    with torch.no_grad():
        for begin in range(0, 24, 8):
            x, y = tokens[begin: min(begin + 8, 24)], tokens[begin + 1: min(begin + 8, 24) + 1]
            total += F.cross_entropy(model(torch.tensor([x]))[0][0], torch.tensor(y), reduction="sum").item()
    assert result.windows == 3 and result.loss == pytest.approx(total / 24, rel=1e-5)


def test_bits_per_byte_counts_utf8_bytes_not_tokens(tiny_model):
    tokenizer = get_tokenizer("byte")
    model = tiny_model(vocab_size=BYTE_VOCAB, context_length=16)
    tokens = text_tokens(tokenizer, "héllo wörld")                 # 11 characters, 13 bytes
    assert tokens[0] == tokenizer.eot_id
    result = evaluate_tokens(model, tokens, tokenizer=tokenizer)
    assert result.bytes == 13 and result.tokens == 13
    assert result.bits_per_byte == pytest.approx(result.loss * 13 / math.log(2) / 13, rel=1e-6)


HELLASWAG_ITEMS = [
    {"ind": 4, "activity_label": "Removing ice from car", "ctx_a": "Then, the man writes over the snow.",
     "ctx_b": "then", "ctx": "Then, the man writes over the snow covering the window of a car. then",
     "endings": [", the man adds wax to the windshield.", ", a person board a ski lift.",
                 ", the man puts on a christmas coat.", ", the man continues removing the snow on his car."],
     "source_id": "activitynet~v_-1IBHYS3L-Y", "split": "val", "split_type": "indomain", "label": "3"},
    {"ind": 8, "activity_label": "Baking cookies", "ctx_a": "A female chef in white uniform shows a stack.",
     "ctx_b": "the pans", "ctx": "A female chef shows a stack of baking pans. the pans",
     "endings": ["contain egg yolks.", "are then placed in the oven.", "fly away.", "sing."],
     "source_id": "activitynet~v_-2ZB9Gz6C7I", "split": "val", "split_type": "zeroshot", "label": "1"},
    {"ind": 9, "activity_label": "Walking", "ctx_a": "A man walks.", "ctx_b": "he",
     "ctx": "A man walks down the street. he", "endings": ["stops.", "eats a car.", "is a cloud.", "turns left."],
     "source_id": "x", "split": "val", "split_type": "indomain", "label": "0"},
]


@pytest.fixture
def hellaswag_folder(tmp_path):
    folder = tmp_path / "hellaswag"
    folder.mkdir()
    with open(folder / "validation.jsonl", "w", encoding="utf-8") as handle:
        for item in HELLASWAG_ITEMS:
            handle.write(json.dumps(item) + "\n")
    return folder


def test_hellaswag_loads_through_datasets_and_scores_like_build_nanogpt(hellaswag_folder, tiny_model):
    from gptscratch.evaluation.hellaswag import evaluate_hellaswag, load_examples

    examples = load_examples(str(hellaswag_folder))
    assert [e["label"] for e in examples] == [3, 1, 0] and len(examples[0]["endings"]) == 4
    assert len(load_examples(str(hellaswag_folder), limit=2)) == 2
    tokenizer, model = get_tokenizer("byte"), tiny_model(vocab_size=BYTE_VOCAB, context_length=128)
    correct = correct_norm = 0
    for example in examples:   # the formula by hand: loss of " " + ending after ctx, summed and averaged
        ctx = tokenizer.encode(example["ctx"])
        sums, means = [], []
        for ending in example["endings"]:
            end = tokenizer.encode(" " + ending)
            with torch.no_grad():
                logits = model(torch.tensor([ctx + end]))[0][0]
            losses = F.cross_entropy(logits[len(ctx) - 1: -1], torch.tensor(end), reduction="none")
            sums.append(losses.sum().item())
            means.append(losses.mean().item())
        correct += sums.index(min(sums)) == example["label"]
        correct_norm += means.index(min(means)) == example["label"]
    result = evaluate_hellaswag(model, tokenizer, examples)
    assert result["examples"] == 3 and result["correct"] == correct and result["correct_norm"] == correct_norm
    assert result["acc_norm"] == pytest.approx(correct_norm / 3)


def test_hellaswag_with_missing_columns_is_a_data_error(tmp_path):
    from gptscratch.errors import DataError
    from gptscratch.evaluation.hellaswag import load_examples

    (tmp_path / "validation.jsonl").write_text(json.dumps({"ctx": "a", "endings": ["b"]}) + "\n")
    with pytest.raises(DataError, match="label"):
        load_examples(str(tmp_path))


def test_bench_reports_cached_uncached_prefill_and_memory(tiny_model):
    from gptscratch.evaluation.bench import bench_generation

    result = bench_generation(tiny_model(context_length=32), lengths=[4, 12], prompt_tokens=4, repeats=1)
    assert [r["new_tokens"] for r in result["lengths"]] == [4, 12]
    for row in result["lengths"]:
        assert row["cached_tokens_per_second"] > 0 and row["uncached_tokens_per_second"] > 0
        assert row["decode_tokens_per_second"] >= row["cached_tokens_per_second"]
        assert row["speedup"] == pytest.approx(row["cached_tokens_per_second"] / row["uncached_tokens_per_second"])
    assert result["prefill_tokens"] == 32 and result["prefill_tokens_per_second"] > 0
    assert result["peak_memory_mb"] > 10 and result["weight_bytes"] > 0
