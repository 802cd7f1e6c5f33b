"""Ground truth for the tools: a 2-layer attention-only GPT whose induction circuit is known to be there.

The weights are written by hand (no training, so the test is instant and deterministic): the residual stream is
split into subspaces — current token E, position P, previous token E′, output O — and

    L0H0  previous-token head: query position i matches key position i−1 (P → P shifted), copies E into E′
    L1H0  induction head: query token (E) matches keys whose previous token (E′) is the same, copies that
          key's token into O, which the output layer reads
    L0H1, L1H1  zero weights: uniform attention, no output

On [bos] S S the model is near-perfect on the second copy and at chance on the first. The tools must find
exactly this: induction-heads ranks L1H0 first and names L0H0 as its feeder (ablating it kills the score),
attention calls L0H0 a previous-token head, and activation patching of an induction prompt points at L1H0.
"""

import json

import pytest
import torch

from gptscratch.interpret import (activation_patching, analyse_heads, find_induction_heads, logit_lens,
                                  repeated_random_tokens)
from gptscratch.interpret.demos import induction_example
from gptscratch.model import GPT, ModelConfig

V, T, D, HS = 32, 24, 120, 60           # vocabulary (last id = bos), context, width, head width
E, P, E_PREV, O = 0, V, V + T, 2 * V + T  # first dimension of each subspace


def hand_wired_induction_model() -> GPT:
    config = ModelConfig(vocab_size=V, context_length=T, n_layer=2, n_head=2, d_model=D, attention_only=True,
                         tie_weights=False)
    model = GPT(config).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.zero_()
        for block in model.blocks:
            block.ln_1.weight.fill_(1.0)
        model.ln_f.weight.fill_(1.0)
        model.tok_embed.weight[:, E:E + V] = torch.eye(V)
        model.pos_embed.table.weight[:, P:P + T] = torch.eye(T)
        q, k, v = (slice(i * D, i * D + HS) for i in range(3))   # head 0's rows of the fused qkv weight
        layer0, layer1 = model.blocks[0].attn, model.blocks[1].attn
        for i in range(T):                                   # L0H0: position i attends to position i − 1
            layer0.qkv.weight[q][i, P + i] = 3.0
            if i + 1 < HS:
                layer0.qkv.weight[k][i + 1, P + i] = 3.0
        for t in range(V):
            layer0.qkv.weight[v][t, E + t] = 1.0             # L0H0 reads the token …
            layer0.proj.weight[E_PREV + t, t] = 0.13         # … and writes it into E′ (LN made it ≈ 7.7)
            layer1.qkv.weight[q][t, E + t] = 3.0             # L1H0: current token …
            layer1.qkv.weight[k][t, E_PREV + t] = 3.0        # … against each key's previous token
            layer1.qkv.weight[v][t, E + t] = 1.0             # copies the key's own token …
            layer1.proj.weight[O + t, t] = 0.2               # … into O
            model.lm_head.weight[t, O + t] = 5.0             # which the output layer reads
    return model


@pytest.fixture(scope="module")
def model():
    return hand_wired_induction_model()


def repeated(length=10, batch=8):
    return repeated_random_tokens(V, length, batch=batch, seed=0, bos_id=V - 1, exclude=(V - 1,))


def test_the_hand_wired_model_copies_in_context(model):
    report = find_induction_heads(model, repeated(), 10, 1)
    assert report.loss_second_copy < 0.1 < 1.5 < report.loss_first_copy
    assert report.loss_drop > 1.5


def test_induction_heads_ranks_the_layer_1_head_first_and_finds_its_feeder(model):
    report = find_induction_heads(model, repeated(), 10, 1)
    best, runner_up = report.ranked[0], report.ranked[1]
    assert (best.layer, best.head) == (1, 0)
    assert best.score > 0.9 and runner_up.score < 0.2          # a clear score, nothing else close
    feeder = best.feeders[0]
    assert (feeder.layer, feeder.head) == (0, 0) and feeder.previous_token_score > 0.9
    assert feeder.score_after_ablation < 0.3                     # without the previous-token head: no induction


def test_attention_finds_the_previous_token_head_in_layer_0(model):
    text = repeated(length=8, batch=1)[0]
    profiles = {p.name: p for p in analyse_heads(model, text)}
    assert profiles["L0H0"].kind == "previous-token" and profiles["L0H0"].scores["previous_token"] > 0.9
    assert profiles["L1H0"].kind == "induction"
    assert profiles["L0H1"].kind == profiles["L1H1"].kind == "uniform"


def test_logit_lens_shows_the_answer_appearing_only_after_layer_1(model):
    tokens = repeated(length=8, batch=1)[0]
    lens = logit_lens(model, tokens, k=1)
    second_copy = range(10, 16)                                  # positions whose next token is a repeat
    assert all(lens.target_rank[-1][p] == 1 for p in second_copy)
    assert all(lens.target_rank[1][p] > 1 or lens.target_prob[1][p] < 0.2 for p in second_copy)


class _Tokens:
    """The smallest tokenizer the demo builder needs: ids 0..V−1, the document start (EOT) = V−1."""
    vocab_size, eot_id, start_id = V, V - 1, V - 1


def test_patching_an_induction_prompt_points_at_the_induction_head(model):
    example = induction_example(_Tokens(), T)
    result = activation_patching(model, example.clean, example.corrupted, example.target, example.foil)
    assert result.clean_logit_diff > 5 > -5 > result.corrupted_logit_diff
    heads = {(layer, head): value for layer, row in enumerate(result.heads) for head, value in enumerate(row)}
    assert max(heads, key=lambda h: abs(heads[h])) == (1, 0) and heads[(1, 0)] > 0.9
    assert abs(heads[(0, 1)]) < 0.01 and abs(heads[(1, 1)]) < 0.01        # the idle heads do nothing
    corrupted_position = example.corrupted.index(example.foil)
    assert result.resid[0][corrupted_position] == pytest.approx(1.0, abs=1e-4)  # the one differing token
    assert result.resid[-1][-1] == pytest.approx(1.0, abs=1e-4)


def test_cli_on_the_hand_wired_checkpoint(model, tmp_path, run_cli):
    from gptscratch.checkpoint import save_checkpoint
    from gptscratch.tokenizers import CharTokenizer

    tokenizer = CharTokenizer([chr(ord("a") + i) for i in range(V - 1)])   # + end-of-text = V ids
    checkpoint = save_checkpoint(tmp_path / "induction", model, tokenizer.spec())

    result = run_cli("interpret", "induction-heads", str(checkpoint), "--length", "10", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ranked"][0]["name"] == "L1H0" and report["ranked"][0]["feeders"][0]["name"] == "L0H0"
    assert report["loss_drop"] > 1.5

    result = run_cli("interpret", "attention", str(checkpoint), "--text", "abcdefgabcdefg", "--json")
    assert result.returncode == 0, result.stderr
    kinds = {h["name"]: h["kind"] for h in json.loads(result.stdout)["heads"]}
    assert kinds["L0H0"] == "previous-token" and kinds["L1H0"] == "induction"

    plot = tmp_path / "patch.png"
    result = run_cli("interpret", "patch", str(checkpoint), "--demo", "--plot", str(plot))
    assert result.returncode == 0, result.stderr
    assert "L1H0" in result.stdout and "Critical" in result.stdout
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
