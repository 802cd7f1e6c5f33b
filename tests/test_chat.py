"""Talking to a model: the multi-turn session keeps its KV cache across turns, fits the context by dropping the
oldest turns, keeps a reply stopped halfway; the `chat` command as a JSONL pipeline and on a terminal; a
pretrained model's own Jinja chat template rendered exactly as transformers renders it, and fine-tuned through.
"""

from __future__ import annotations

import json
import sys

import pytest

from gptscratch import checkpoint as ckpt
from gptscratch.chat import GptScratchFormat, JinjaFormat, chat_format
from gptscratch.chat.tokens import add_chat_tokens
from gptscratch.generation import SamplingConfig
from gptscratch.generation.chat import ChatSession, reply_batch
from gptscratch.tokenizers import ByteTokenizer
from helpers import build_tiny_model

GREEDY = SamplingConfig(temperature=0.0)


def chat_model(context: int = 64):
    base = build_tiny_model(vocab_size=320, context_length=context, seed=1)
    config, state, tokenizer = add_chat_tokens(base.config, base.state_dict(), ByteTokenizer())
    model = build_tiny_model(**{k: v for k, v in config.to_dict().items() if v is not None})
    model.load_state_dict(state)
    return model.eval(), tokenizer, GptScratchFormat(tokenizer)


def test_second_turn_feeds_only_the_new_tokens_and_replies_as_a_full_prefill_does():
    model, tokenizer, fmt = chat_model(context=128)
    session = ChatSession(model, tokenizer, fmt, sampling=GREEDY, max_new_tokens=6)
    first = "".join(session.reply("Hi"))
    assert session.prefilled == len(fmt.prompt_ids(session.messages[:1]))
    second = "".join(session.reply("And 3 4?"))
    full = fmt.prompt_ids(session.messages[:-1])
    cached_before = len(fmt.prompt_ids(session.messages[:1])) + len(session.messages[1]["token_ids"])
    assert session.messages[1]["content"] == first
    assert session.prefilled == len(full) - cached_before < len(full)     # the cache was kept, not rebuilt
    again = reply_batch(model, tokenizer, fmt, [session.messages[:-1]], GREEDY, max_new_tokens=6)[0]
    assert again["reply"] == second                                         # same answer as prefilling it all


def test_a_conversation_longer_than_the_context_drops_its_oldest_turns_and_says_so():
    model, tokenizer, fmt = chat_model(context=64)
    session = ChatSession(model, tokenizer, fmt, system="Be brief.", sampling=GREEDY, max_new_tokens=4)
    for text in ("first message here", "second message here", "third message here"):
        list(session.reply(text))
    assert session.notice is not None and "dropped the" in session.notice
    assert session.messages[0] == {"role": "system", "content": "Be brief."}  # the system prompt stays
    assert len(session.cached) <= 64
    results = reply_batch(model, tokenizer, fmt, [session.messages + [{"role": "user", "content": "x" * 200}]],
                          GREEDY, max_new_tokens=4)
    assert results[0]["dropped"] >= 1 and results[0]["prompt_tokens"] <= 64


def test_a_reply_stopped_halfway_stays_in_the_conversation():
    model, tokenizer, fmt = chat_model()
    session = ChatSession(model, tokenizer, fmt, sampling=SamplingConfig(temperature=1.0), max_new_tokens=50,
                          seed=0)
    stream = session.reply("Hello")
    piece = next(stream)
    stream.close()                      # what Ctrl-C in the terminal does
    assert session.messages[-1]["role"] == "assistant"
    assert session.messages[-1]["content"].startswith(piece)
    list(session.reply("again"))         # and the conversation goes on
    assert [m["role"] for m in session.messages] == ["user", "assistant", "user", "assistant"]


@pytest.fixture
def chat_checkpoint(tmp_path):
    model, tokenizer, _ = chat_model()
    return ckpt.save_checkpoint(tmp_path / "chat", model, tokenizer.spec())


def test_chat_pipeline_answers_each_jsonl_line_in_order(chat_checkpoint, run_cli):
    lines = [json.dumps({"messages": [{"role": "user", "content": f"question {i}"}]}) for i in range(3)]
    result = run_cli("chat", str(chat_checkpoint), "--temperature", "0", "--max-tokens", "5", "--batch-size", "2",
                     input="\n".join(lines) + "\n")
    assert result.returncode == 0, result.stderr
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o["line"] for o in out] == [1, 2, 3]
    model, tokenizer, fmt = chat_model()
    expected = reply_batch(model, tokenizer, fmt, [[{"role": "user", "content": f"question {i}"}] for i in range(3)],
                           GREEDY, max_new_tokens=5)
    assert [o["reply"] for o in out] == [e["reply"] for e in expected]


def test_chat_pipeline_names_a_bad_line_after_answering_the_good_ones(chat_checkpoint, run_cli):
    good = json.dumps({"messages": [{"role": "user", "content": "hi"}]})
    result = run_cli("chat", str(chat_checkpoint), "--max-tokens", "3", input=good + "\n{oops\n")
    assert result.returncode == 2
    assert "stdin line 2: not valid JSON" in result.stderr and "Traceback" not in result.stderr
    assert json.loads(result.stdout.splitlines()[0])["line"] == 1
    ends_with_reply = json.dumps({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]})
    result = run_cli("chat", str(chat_checkpoint), input=ends_with_reply + "\n")
    assert result.returncode == 2 and "the last message must be the user's" in result.stderr


def test_chat_on_a_terminal_converses_saves_and_resets(chat_checkpoint, tmp_path):
    pexpect = pytest.importorskip("pexpect")
    import os

    saved = tmp_path / "conversation.json"
    env = dict(os.environ, PYTHONPATH=str(__import__("pathlib").Path(__file__).resolve().parent.parent))
    child = pexpect.spawn(sys.executable, ["-m", "gptscratch", "chat", str(chat_checkpoint), "--max-tokens", "4",
                                           "--seed", "0"], env=env, encoding="utf-8", timeout=60)
    child.expect("you> ")
    child.sendline("hello there")
    child.expect("model> ")
    child.expect("you> ")
    child.sendline(f"/save {saved}")
    child.expect("saved 2 messages")
    child.sendline("/reset")
    child.expect("conversation reset")
    child.sendline("/exit")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    messages = json.loads(saved.read_text())["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant"] and messages[0]["content"] == "hello there"


# -- a pretrained model's own template ---------------------------------------------------------------------------
CHATML = ("{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\\n' + messages[0]['content'] + "
          "'<|im_end|>\\n' }}{%- else %}{{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}"
          "{%- endif %}{%- for message in messages %}{%- if message.role != 'system' %}{{- '<|im_start|>' + "
          "message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}{%- endif %}{%- endfor %}"
          "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}")
TURNS = [{"role": "user", "content": "What is the maximum of 3 8 1?"}, {"role": "assistant", "content": "8"},
         {"role": "user", "content": "And the minimum, café?"}, {"role": "assistant", "content": "1"}]


@pytest.fixture(scope="module")
def qwen_folder(tmp_path_factory):
    from test_tokenizer_hf_json import build_qwen2

    folder = tmp_path_factory.mktemp("qwen")
    build_qwen2(folder)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config["chat_template"] = CHATML
    config["eos_token"] = "<|im_end|>"
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    return folder


@pytest.mark.parametrize("messages, generation", [(TURNS, False), (TURNS[:3], True), (TURNS[:1], True),
                                                  ([{"role": "system", "content": "Be brief."}, *TURNS], False)])
def test_a_models_own_template_renders_as_transformers_renders_it(qwen_folder, messages, generation):
    from transformers import AutoTokenizer

    from gptscratch.tokenizers import from_folder

    reference = AutoTokenizer.from_pretrained(str(qwen_folder))
    fmt = chat_format(from_folder(qwen_folder))
    assert isinstance(fmt, JinjaFormat)
    expected = reference.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation)
    assert fmt.text(messages, add_generation_prompt=generation) == expected
    ids = reference.apply_chat_template(messages, tokenize=True, add_generation_prompt=generation)
    ids = ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids
    assert fmt.render(messages, add_generation_prompt=generation).ids == list(ids)


def test_a_models_own_template_trains_the_replies_and_stops_at_its_end_of_turn(qwen_folder):
    from gptscratch.tokenizers import from_folder

    tokenizer = from_folder(qwen_folder)
    fmt = chat_format(tokenizer)
    rendered = fmt.render(TURNS)
    trained = tokenizer.decode([i for i, t in zip(rendered.ids, rendered.trained) if t])
    assert trained == "8<|im_end|>\n1<|im_end|>\n"
    assert fmt.stop_ids[0] == tokenizer.special_tokens()["<|im_end|>"]


def test_sft_of_a_model_with_its_own_template_keeps_its_tokenizer(qwen_folder, tmp_path, gptscratch_home):
    from gptscratch.evaluation.chat import evaluate_chat
    from gptscratch.model import pad_vocab
    from gptscratch.tokenizers import from_folder
    from gptscratch.training import preset_config, train

    tokenizer = from_folder(qwen_folder)
    model = build_tiny_model(vocab_size=pad_vocab(tokenizer.vocab_size), context_length=256)
    base = ckpt.save_checkpoint(tmp_path / "qwen-base", model, tokenizer.spec())
    data = tmp_path / "chats.jsonl"
    data.write_text("".join(json.dumps({"messages": TURNS[:2]}) + "\n" for _ in range(4)))
    config = preset_config(None, None, stage="sft", data=str(data), init_from=str(base), batch_size=2, max_steps=3,
                           eval_every=3, eval_batches=1, precision="fp32", sample_tokens=2)
    train(config, run_dir=tmp_path / "sft")
    loaded = ckpt.load_checkpoint(tmp_path / "sft")
    assert loaded.tokenizer.name == "hf-json" and loaded.model.config.vocab_size == model.config.vocab_size
    result = evaluate_chat(str(tmp_path / "sft"), str(data), max_new_tokens=3)
    assert result["template"]["name"] == "jinja" and result["questions"] == 4 and not result["chat_tokens_added"]


def test_an_exported_chat_model_renders_the_same_ids_in_transformers(chat_checkpoint, tmp_path):
    from transformers import AutoTokenizer

    from gptscratch.pretrained.export import export_hf

    export_hf(str(chat_checkpoint), tmp_path / "hf")
    reference = AutoTokenizer.from_pretrained(str(tmp_path / "hf"))
    _, tokenizer, fmt = chat_model()
    messages = [{"role": "system", "content": "Be brief."}, *TURNS[:3]]
    ids = reference.apply_chat_template(messages, tokenize=True, add_generation_prompt=True)
    ids = ids["input_ids"] if hasattr(ids, "keys") else ids
    assert list(ids) == fmt.prompt_ids(messages)
    assert reference.decode(fmt.render(TURNS).ids) == tokenizer.decode(fmt.render(TURNS).ids)
    from transformers import GenerationConfig

    stops = GenerationConfig.from_pretrained(str(tmp_path / "hf")).eos_token_id
    assert set(fmt.stop_ids) == set(stops)                    # transformers' generate ends a reply where we do


def test_eval_chat_on_a_lora_run_without_chat_tokens_and_with_a_long_reply_budget(tmp_path, gptscratch_home):
    from gptscratch.evaluation.chat import evaluate_chat
    from gptscratch.training import train
    from helpers import tiny_train_config, write_corpus

    corpus = write_corpus(tmp_path / "corpus")
    train(tiny_train_config(str(corpus), max_steps=2, lora_rank=2, model={"context_length": 64}),
          run_dir=tmp_path / "lora")
    result = evaluate_chat(str(tmp_path / "lora"), "builtin-chat", limit=4, max_new_tokens=100)
    assert result["questions"] == 4 and result["chat_tokens_added"]
