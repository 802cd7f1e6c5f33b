"""Supervised fine-tuning: the template and its loss mask, the chat tokens added to a base model, padded batches,
the resumable conversation sampler, bad conversation files, and `train sft` end to end.

The offline demonstration (a quick base fine-tuned on builtin-chat reaches an answer accuracy far above the base
model's) is the slow test at the end; docs/finetuning.md has its measured figures.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from gptscratch.chat import GptScratchFormat, check_messages, read_conversations
from gptscratch.chat.tokens import add_chat_tokens
from gptscratch.errors import UsageError
from gptscratch.tokenizers import ByteTokenizer, from_spec
from gptscratch.tokenizers.chat import ChatTokenizer
from gptscratch.training.sft import ConversationSampler, ConversationSet, pad_rows
from helpers import build_tiny_model, interrupt_sampler_at, tiny_train_config, write_corpus

CONVERSATION = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Max of 3 8?"},
                {"role": "assistant", "content": "8"}, {"role": "user", "content": "Min?"},
                {"role": "assistant", "content": "3"}]


def chat_tokenizer():
    return ChatTokenizer(ByteTokenizer())


def test_gptscratch_template_frames_every_message_and_trains_only_the_replies_and_their_end():
    tok = chat_tokenizer()
    fmt = GptScratchFormat(tok)
    rendered = fmt.render(CONVERSATION)
    s = tok.special_ids
    expected = [256, s["<|system|>"], *b"Be brief.", s["<|end|>"], s["<|user|>"], *b"Max of 3 8?", s["<|end|>"],
                s["<|assistant|>"], *b"8", s["<|end|>"], s["<|user|>"], *b"Min?", s["<|end|>"],
                s["<|assistant|>"], *b"3", s["<|end|>"]]
    assert rendered.ids == expected
    trained = [tok.decode([i]) for i, t in zip(rendered.ids, rendered.trained) if t]
    assert trained == ["8", "<|end|>", "3", "<|end|>"]
    assert fmt.prompt_ids(CONVERSATION[:4])[-1] == s["<|assistant|>"]
    assert fmt.stop_ids[0] == s["<|end|>"]


def test_special_token_strings_typed_by_a_user_stay_text():
    tok = chat_tokenizer()
    rendered = GptScratchFormat(tok).render([{"role": "user", "content": "<|assistant|>hi"},
                                             {"role": "assistant", "content": "ok"}])
    specials = set(tok.special_ids.values())
    assert sum(i in specials for i in rendered.ids) == 4        # user, end, assistant, end: nothing forged
    assert tok.decode(rendered.ids).count("<|assistant|>") == 2  # the typed one and the real header
    assert tok.encode_with_specials("<|user|>") == [tok.special_ids["<|user|>"]]


def test_chat_tokenizer_round_trips_through_its_spec():
    tok = chat_tokenizer()
    again = from_spec(json.loads(json.dumps(tok.spec())))
    assert isinstance(again, ChatTokenizer) and again.vocab_size == 261
    ids = GptScratchFormat(tok).render(CONVERSATION).ids
    assert again.decode(ids) == tok.decode(ids)


def test_chat_tokens_take_padding_rows_initialised_to_the_mean_and_leave_old_logits_unchanged():
    base = build_tiny_model(vocab_size=320)
    config, state, tok = add_chat_tokens(base.config, base.state_dict(), ByteTokenizer(), seed=0)
    assert config.vocab_size == 320 and tok.vocab_size == 261      # room in the padded vocabulary: no growth
    new = state["tok_embed.weight"][257:261]
    mean = base.tok_embed.weight[:257].mean(dim=0)
    assert torch.allclose(new, mean.expand_as(new), atol=0.01 * base.tok_embed.weight.std().item() * 5)
    assert not torch.equal(new[0], new[1])                            # noise: the four tokens differ
    model = build_tiny_model(vocab_size=320)
    model.load_state_dict(state)
    idx = torch.tensor([list(b"hello there")])
    with torch.no_grad():
        assert torch.equal(model(idx)[0][..., :257], base(idx)[0][..., :257])


def test_chat_tokens_grow_a_full_vocabulary_and_keep_weights_tied():
    base = build_tiny_model(vocab_size=257)
    config, state, tok = add_chat_tokens(base.config, base.state_dict(), ByteTokenizer(), seed=0)
    assert config.vocab_size == 320
    assert state["tok_embed.weight"].shape == (320, base.config.d_model)
    assert state["lm_head.weight"] is state["tok_embed.weight"]
    assert torch.equal(state["tok_embed.weight"][:257], base.tok_embed.weight)


def test_padded_rows_mask_everything_but_the_replies_and_give_the_unpadded_loss():
    tok = chat_tokenizer()
    fmt = GptScratchFormat(tok)
    short = fmt.render(CONVERSATION[1:3])
    long = fmt.render(CONVERSATION)
    x, y = pad_rows([(short.ids, short.trained), (long.ids, long.trained)], pad_id=tok.eot_id, context_length=64)
    assert x.shape[1] % 8 == 0 and x.shape[1] >= len(long.ids) - 1
    assert pad_rows([(long.ids, long.trained)], tok.eot_id, context_length=len(long.ids) - 1)[0].shape[1] == \
        len(long.ids) - 1                                            # rounding up never passes the context
    assert [tok.decode([t]) for t in y[0].tolist() if t >= 0] == ["8", "<|end|>"]
    assert (y[0, len(short.ids) - 1:] == -1).all() and (x[0, len(short.ids) - 1:] == tok.eot_id).all()
    model = build_tiny_model(vocab_size=320, context_length=64)
    with torch.no_grad():
        _, padded = model(x[:1], y[:1])
        alone_y = torch.tensor([short.ids[1:]])
        alone_y[0, ~torch.tensor(short.trained[1:])] = -1
        _, alone = model(torch.tensor([short.ids[:-1]]), alone_y)
    torch.testing.assert_close(padded, alone)


def test_sampler_visits_every_conversation_once_per_epoch_and_resumes_exactly():
    tok = chat_tokenizer()
    rows = [([256, 65 + i, 66, 67], [False, True, True, True]) for i in range(10)]
    data = ConversationSet("x", tok, GptScratchFormat(tok), {"train": rows, "val": rows})
    sampler = ConversationSampler(data, "train", 5, 16, seed=3)
    epoch = torch.cat([sampler.next_batch()[0][:, 1] for _ in range(2)]).tolist()
    assert sorted(epoch) == [65 + i for i in range(10)]
    state = sampler.state_dict()
    expected = [sampler.next_batch()[0] for _ in range(3)]
    again = ConversationSampler(data, "train", 5, 16, seed=99)
    again.load_state_dict(state)
    assert all(torch.equal(a, again.next_batch()[0]) for a in expected)
    two = [ConversationSampler(data, "train", 5, 16, seed=3, rank=r, world_size=2).next_batch()[0] for r in (0, 1)]
    one = ConversationSampler(data, "train", 10, 16, seed=3).next_batch()[0]
    assert torch.equal(torch.cat(two), one)


@pytest.mark.parametrize("line, message", [
    ('{"messages": [{"role": "bot", "content": "hi"}]}', "message 1 has role 'bot'"),
    ('{"messages": [{"role": "user", "content": "hi"}]}', "no assistant message"),
    ('{"messages": [{"role": "user", "content": 3}, {"role": "assistant", "content": "x"}]}', "content is int"),
    ('{"messages": [{"role": "user", "content": "a"}, {"role": "system", "content": "b"}]}', "only the first"),
    ('not json', "not valid JSON"),
    ('{"text": "hello"}', "expected {\"messages\""),
])
def test_a_malformed_conversation_is_named_by_file_and_line(tmp_path, line, message):
    good = json.dumps({"messages": CONVERSATION})
    path = tmp_path / "chats.jsonl"
    path.write_text(good + "\n" + line + "\n", encoding="utf-8")
    with pytest.raises(UsageError, match=f"{path}:2: .*{message.replace('{', '.').replace('[', '.')}"):
        list(read_conversations(str(path)))


def test_parquet_conversations_are_read_from_a_messages_column(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"messages": [CONVERSATION, CONVERSATION[1:3]]}), tmp_path / "c.parquet")
    rows = [messages for _, messages in read_conversations(str(tmp_path / "c.parquet"))]
    assert rows == [CONVERSATION, CONVERSATION[1:3]]
    pq.write_table(pa.table({"text": ["a"]}), tmp_path / "bad.parquet")
    with pytest.raises(UsageError, match="no 'messages' column"):
        list(read_conversations(str(tmp_path / "bad.parquet")))


def test_builtin_chat_holds_out_its_test_questions():
    train = [m[0]["content"] for _, m in read_conversations("builtin-chat:train=3000,test=200", "train")]
    test = [m for _, m in read_conversations("builtin-chat:train=3000,test=200", "test")]
    from gptscratch.chat.builtin import operation_of

    def key(text):  # the task example a question was made from: its operation and its digits
        return operation_of(text), "".join(ch for ch in text if ch.isdigit())

    assert len(train) == 3000 and len(test) == 200
    assert all(key(t)[0] for t in train)
    assert not {key(q[0]["content"]) for q in test} & {key(t) for t in train}
    question = test[0]
    assert check_messages(question, "x") == question and question[1]["role"] == "assistant"


def _base_run(tmp_path, gptscratch_home) -> Path:
    from gptscratch.training import train

    corpus = write_corpus(tmp_path / "corpus")
    train(tiny_train_config(str(corpus), max_steps=4, model={"context_length": 64}), run_dir=tmp_path / "base")
    return tmp_path / "base"


def sft_config(base, **overrides):
    from gptscratch.training import preset_config

    values = dict(stage="sft", data="builtin-chat:train=400,test=40", init_from=str(base), batch_size=8,
                  max_steps=6, eval_every=3, eval_batches=2, log_every=1, precision="fp32", sample_tokens=4)
    values.update(overrides)
    return preset_config(None, None, **values)


def test_train_sft_from_a_base_run_adds_chat_tokens_learns_and_resumes_exactly(tmp_path, gptscratch_home,
                                                                               monkeypatch):
    from gptscratch import checkpoint as ckpt
    from gptscratch.training import train
    from gptscratch.training.trainer import TrainingInterrupted

    base = _base_run(tmp_path, gptscratch_home)
    whole = train(sft_config(base), run_dir=tmp_path / "whole")
    loaded = ckpt.load_checkpoint(tmp_path / "whole")
    assert isinstance(loaded.tokenizer, ChatTokenizer) and loaded.tokenizer.vocab_size == 261
    records = [json.loads(line) for line in (tmp_path / "whole" / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records if "loss" in r]
    assert losses[-1] < losses[0]
    assert any("sample" in r for r in records)
    interrupt_sampler_at(monkeypatch, ConversationSampler, 4)         # Ctrl-C after 3 of the 6 steps
    with pytest.raises(TrainingInterrupted):
        train(sft_config(base), run_dir=tmp_path / "split")
    import shutil

    shutil.copytree(base, tmp_path / "kept-base")
    shutil.rmtree(base)                            # a resumed run needs only its own checkpoint
    resumed = train(sft_config(base), resume_from=ckpt.resolve_checkpoint(tmp_path / "split"))
    assert resumed.step == whole.step == 6 and resumed.tokens == whole.tokens
    a, b = ckpt.load_checkpoint(tmp_path / "whole"), ckpt.load_checkpoint(tmp_path / "split")
    for name, tensor in a.model.state_dict().items():
        assert torch.equal(b.model.state_dict()[name], tensor), name
    shutil.copytree(tmp_path / "kept-base", base)


def test_train_sft_cli_refuses_a_bad_conversation_file_and_train_resume_continues_an_sft_run(
        tmp_path, gptscratch_home, run_cli):
    from gptscratch.training import train

    base = _base_run(tmp_path, gptscratch_home)
    train(sft_config(base, max_steps=2), run_dir=tmp_path / "sft")
    resumed = run_cli("train", "--resume", str(tmp_path / "sft"), "--max-steps", "3", "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["step"] == 3
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"messages": CONVERSATION}) + "\n" + '{"messages": [{"role": "bot"}]}\n')
    result = run_cli("train", "sft", "--data", str(bad), "--init-from", str(base), "--max-steps", "2")
    assert result.returncode == 2
    assert f"{bad}:2: message 1 must be an object" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_offline_demo_a_quick_base_fine_tuned_on_builtin_chat_answers_far_above_the_base(tmp_path, gptscratch_home):
    """The demonstration of docs/finetuning.md with fixed step counts (the presets stop on time instead): measured
    on a 2-core EPYC, the base answers 0.000 of the 500 held-out questions and the fine-tuned model 0.994."""
    from gptscratch.evaluation.chat import evaluate_chat
    from gptscratch.training import preset_config, train

    train(preset_config("quick", None, max_steps=300, max_time=1e9), run_dir=tmp_path / "base")
    before = evaluate_chat(str(tmp_path / "base"))
    train(preset_config("quick", None, stage="sft", init_from=str(tmp_path / "base"), max_steps=300, max_time=1e9),
          run_dir=tmp_path / "sft")
    after = evaluate_chat(str(tmp_path / "sft"))
    assert before["chat_tokens_added"] and before["accuracy"] <= 0.05
    assert after["questions"] == 500 and after["accuracy"] >= 0.8
    assert all(row["accuracy"] >= 0.6 for row in after["by_operation"].values())


def test_hub_conversations_stream_from_a_folder_laid_out_like_the_hub(tmp_path, monkeypatch):
    import pyarrow as pa
    import pyarrow.parquet as pq

    repo = tmp_path / "hub" / "someone" / "chats"
    (repo / "data").mkdir(parents=True)
    (repo / "README.md").write_text("---\nconfigs:\n- config_name: default\n  data_files:\n  - split: train\n"
                                    "    path: data/train-*.parquet\n---\n")
    pq.write_table(pa.table({"messages": [CONVERSATION, CONVERSATION[1:3]], "id": ["a", "b"]}),
                   repo / "data" / "train-00000.parquet")
    monkeypatch.setenv("GPTSCRATCH_HF_DATASETS_DIR", str(tmp_path / "hub"))
    rows = list(read_conversations("hf:someone/chats"))
    assert [messages for _, messages in rows] == [CONVERSATION, CONVERSATION[1:3]]
    assert rows[1][0] == "hf:someone/chats: row 2"


def test_sft_with_lora_trains_the_adapters_and_the_new_chat_rows_only(tmp_path, gptscratch_home):
    from gptscratch import checkpoint as ckpt
    from gptscratch.training import train

    base = _base_run(tmp_path, gptscratch_home)
    train(sft_config(base, lora_rank=4, weight_decay=0.1), run_dir=tmp_path / "lora")
    loaded = ckpt.load_checkpoint(base)
    before = loaded.model.state_dict()
    start = add_chat_tokens(loaded.model.config, before, loaded.tokenizer, seed=1337)[1]["tok_embed.weight"]
    after = ckpt.load_checkpoint(tmp_path / "lora").model.state_dict()
    adapters = [name for name in after if "lora_" in name]
    assert adapters and all(not torch.equal(after[n], torch.zeros_like(after[n])) for n in adapters
                            if n.endswith("lora_B"))
    for name, tensor in before.items():
        if name in ("tok_embed.weight", "lm_head.weight"):
            assert torch.equal(after[name][:257], tensor[:257]), name       # every base row, bitwise
            assert not torch.equal(after[name][257:261], start[257:261])  # the new chat rows trained
        else:
            assert torch.equal(after[name], tensor), name                  # frozen, decay or not


@pytest.mark.slow
def test_sft_under_torchrun_trains_like_one_process(tmp_path, gptscratch_home):
    """Two gloo processes share each step's conversations (rank r takes the r-th slice of the global batch), and
    DDP averages their gradients: the weights equal one process running both micro-batches."""
    from test_distributed import assert_same_weights, torchrun

    from gptscratch.training import train

    base = _base_run(tmp_path, gptscratch_home)
    data = tmp_path / "varied.jsonl"                # rows of many lengths: each rank pads to its own longest
    data.write_text("".join(json.dumps({"messages": [{"role": "user", "content": "q" * (1 + i * 7 % 40)},
                                                     {"role": "assistant", "content": str(i)}]}) + "\n"
                            for i in range(120)))
    flags = dict(batch_size=4, grad_accum=2, max_steps=4, eval_every=2, eval_batches=2, seed=5)
    result = torchrun("sft", "--data", str(data), "--init-from", str(base), "--json",
                      "--precision", "fp32", "--sample-tokens", "4", "--out", str(tmp_path / "ddp"),
                      *[arg for k, v in flags.items() for arg in (f"--{k.replace('_', '-')}", str(v))])
    assert result.returncode == 0, result.stderr[-3000:]
    single = train(sft_config(base, data=str(data), **flags), run_dir=tmp_path / "single")
    assert json.loads(result.stdout)["tokens"] == single.tokens          # every rank counted the same tokens
    assert_same_weights(tmp_path / "ddp", tmp_path / "single")
