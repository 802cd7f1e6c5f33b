"""`data train-tokenizer` end to end: the cache (list, rm, overwrite), `--tokenizer NAME` in data prepare and
train, the copy inside datasets and checkpoints, the export AutoTokenizer reads, `data tokenizer-report`, and
every kind of bad input."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
from test_export_tokenizer import TRICKY, export_with, pool_text

from gptscratch import paths
from gptscratch.data.train_tokenizer import train_tokenizer
from gptscratch.tokenizers import get_tokenizer

TINY = ["--size", "tiny", "--context-length", "32", "--batch-size", "4", "--eval-every", "2", "--eval-batches", "1",
        "--precision", "fp32", "--max-steps", "2"]


def tokenizer_folders() -> list[str]:
    root = paths.tokenizers_root()
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


def test_cli_trains_lists_uses_and_removes_a_tokenizer(run_cli, tmp_path):
    fast = run_cli("data", "train-tokenizer", "builtin", "--vocab-size", "600", "--name", "docs", "--json")
    assert fast.returncode == 0, fast.stderr
    summary = json.loads(fast.stdout)
    assert summary["name"] == "docs" and summary["vocab_size"] == 600 and summary["merges"] == 600 - 256 - 1
    assert summary["trainer"] == "rustbpe" and summary["trained_bytes"] > 400_000
    slow = run_cli("data", "train-tokenizer", "builtin", "-v", "600", "--name", "docs-py", "--trainer", "python")
    assert slow.returncode == 0, slow.stderr
    root = paths.tokenizers_root()
    assert (root / "docs" / "bpe.tiktoken").read_bytes() == (root / "docs-py" / "bpe.tiktoken").read_bytes()

    listed = json.loads(run_cli("data", "list", "--json").stdout)
    assert [(e["type"], e["name"]) for e in listed] == [("tokenizer", "docs"), ("tokenizer", "docs-py")]
    assert "trained tokenizers" in run_cli("data", "list").stdout

    prepared = run_cli("data", "prepare", "builtin", "--tokenizer", "docs", "--json")
    assert prepared.returncode == 0, prepared.stderr
    dataset = json.loads(prepared.stdout)
    assert dataset["name"] == "builtin-docs" and dataset["tokenizer"] == "docs"
    assert dataset["train_tokens"] < 0.5 * 466_000  # fewer tokens than bytes: BPE compresses

    removed = run_cli("data", "rm", "docs-py")
    assert removed.returncode == 0 and tokenizer_folders() == ["docs"]
    assert run_cli("data", "rm", "docs-py").returncode == 2


@pytest.mark.slow
def test_a_checkpoint_carries_its_tokenizer_and_exports_it(run_cli, tmp_path):
    train_tokenizer("builtin", 700, name="docs")
    run = tmp_path / "run"
    trained = run_cli("train", "--data", "builtin", "--tokenizer", "docs", *TINY, "--out", str(run))
    assert trained.returncode == 0, trained.stderr
    config = json.loads((run / "latest" / "config.json").read_text())
    assert config["tokenizer"]["name"] == "docs" and config["tokenizer"]["path"] == "tokenizer"
    assert run_cli("data", "rm", "docs", "--tokenizer").returncode == 0
    assert tokenizer_folders() == []
    # The cache entry is gone: the checkpoint's own copy serves generate, eval and export.
    generated = run_cli("generate", "--checkpoint", str(run), "--prompt", "The class", "--max-tokens", "5", "--json")
    assert generated.returncode == 0, generated.stderr
    evaluated = run_cli("eval", "perplexity", str(run), "--data", "builtin-docs", "--json")
    assert evaluated.returncode == 0, evaluated.stderr
    exported = run_cli("pretrained", "export", str(run), str(tmp_path / "hf"))
    assert exported.returncode == 0, exported.stderr

    from transformers import AutoTokenizer

    from gptscratch.checkpoint import load_checkpoint

    hf = AutoTokenizer.from_pretrained(str(tmp_path / "hf"))
    ours = load_checkpoint(run).tokenizer
    for text in [TRICKY, *pool_text(3, 50)]:
        ids = ours.encode(text)
        assert hf(text, add_special_tokens=False)["input_ids"] == ids
        assert hf.decode(ids) == ours.decode(ids)
    assert hf.eos_token == "<|endoftext|>" and hf.eos_token_id == ours.eot_id
    # Fine-tuning the run on more text uses its tokenizer by name: restored into the cache from the checkpoint.
    again = run_cli("train", "--init-from", str(run), "--data", "builtin", "--max-steps", "1", "--eval-batches", "1",
                    "--batch-size", "2", "--out", str(tmp_path / "run2"))
    assert again.returncode == 0, again.stderr
    assert tokenizer_folders() == ["docs"] and get_tokenizer("docs").spec()["digest"] == config["tokenizer"]["digest"]


def test_a_chat_tokenizer_over_a_trained_one_exports_the_chat_tokens(tmp_path):
    from transformers import AutoTokenizer

    from gptscratch.tokenizers.chat import ChatTokenizer

    from gptscratch.chat import chat_format

    chat = ChatTokenizer(train_tokenizer("builtin", 500, name="small"))
    export_with(tmp_path, chat)
    hf = AutoTokenizer.from_pretrained(str(tmp_path / "hf"))
    messages = [{"role": "user", "content": "max of 3 8?"}, {"role": "assistant", "content": "8"}]
    ours = chat_format(chat).render(messages).ids
    assert {501, 502, 503} <= set(ours)  # <|user|>, <|assistant|>, <|end|> after the 500 ids
    assert hf.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"] == ours


def test_a_dataset_of_an_earlier_tokenizer_of_that_name_is_refused_until_overwritten():
    from gptscratch.data import prepare, resolve_dataset
    from gptscratch.data.prepare import StaleTokenizerError

    train_tokenizer("builtin", 400, name="tok")
    first = resolve_dataset("builtin", tokenizer="tok")
    train_tokenizer("builtin", 1200, name="tok", overwrite=True)
    with pytest.raises(StaleTokenizerError, match=r"earlier tokenizer 'tok'.*--tokenizer tok --overwrite"):
        resolve_dataset("builtin", tokenizer="tok")
    assert first.tokenizer.vocab_size == 400  # untouched: its own copy of the earlier tokenizer
    second = prepare("builtin", "tok", overwrite=True)
    assert second.name == "builtin-tok" and second.tokenizer.vocab_size == 1200 == get_tokenizer("tok").vocab_size
    assert second.info()["train_tokens"] < first.info()["train_tokens"]
    assert resolve_dataset("builtin", tokenizer="tok").manifest["tokenizer"]["digest"] == \
        get_tokenizer("tok").spec()["digest"]


def test_a_resumed_run_keeps_its_tokens_after_its_tokenizer_is_trained_again(run_cli, tmp_path):
    train_tokenizer("builtin", 500, name="docs")
    run = tmp_path / "run"
    first = run_cli("train", "--data", "builtin", "--tokenizer", "docs", *TINY, "--out", str(run))
    assert first.returncode == 0, first.stderr
    train_tokenizer("builtin", 500, name="docs", pattern="gpt2", overwrite=True)  # same size, other ids
    fresh = run_cli("train", "--data", "builtin", "--tokenizer", "docs", *TINY, "--out", str(tmp_path / "new"))
    assert fresh.returncode == 2 and "--overwrite" in fresh.stderr
    resumed = run_cli("train", "--resume", str(run), "--max-steps", "3")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((run / "latest" / "trainer_state.json").read_text())["step"] == 3


def test_a_checkpoints_tokenizer_comes_back_under_another_name_when_its_own_is_taken(tmp_path):
    import shutil

    from gptscratch.tokenizers import trained

    old = train_tokenizer("builtin", 400, name="docs")
    copy = tmp_path / "ckpt-tokenizer"
    shutil.copytree(old.folder, copy)
    assert trained.restore(copy) == "docs"  # the very same one is there
    train_tokenizer("builtin", 450, name="docs", overwrite=True)
    name = trained.restore(copy)
    assert name == f"docs-{old.meta['digest'][:8]}" and get_tokenizer(name).spec()["digest"] == old.meta["digest"]
    assert get_tokenizer("docs").vocab_size == 450 and trained.restore(copy) == name


def test_tokenizer_report_compares_compression(run_cli):
    train_tokenizer("builtin", 1024, name="docs1k")
    result = run_cli("data", "tokenizer-report", "builtin", "-t", "byte", "-t", "docs1k", "-t", "cl100k_base",
                     "--max-bytes", "200k", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    rows = {row["tokenizer"]: row for row in report["tokenizers"]}
    assert 200_000 <= report["bytes"] < 260_000 and report["words"] > 10_000
    assert rows["byte"]["bytes_per_token"] == 1.0 and rows["byte"]["tokens"] == report["bytes"]
    assert 2.5 < rows["docs1k"]["bytes_per_token"] < rows["cl100k_base"]["bytes_per_token"]
    assert rows["docs1k"]["ratio_to_first"] == rows["docs1k"]["tokens"] / rows["byte"]["tokens"]
    assert 0.5 < rows["docs1k"]["vocab_used"] <= 1 and rows["cl100k_base"]["vocab_used"] < 0.1
    assert len(rows["cl100k_base"]["longest_tokens"]) == 5
    assert len(rows["cl100k_base"]["longest_tokens"][0]) >= len(rows["docs1k"]["longest_tokens"][-1])
    table = run_cli("data", "tokenizer-report", "builtin", "-t", "byte", "-t", "docs1k", "--max-bytes", "50k")
    assert table.returncode == 0 and "bytes/token" in table.stdout and "docs1k" in table.stdout
    (paths.tokenizers_root() / "docs1k" / "bpe.tiktoken").write_bytes(b"damaged")
    default = run_cli("data", "tokenizer-report", "builtin", "--max-bytes", "50k", "--json")
    assert default.returncode == 0 and "tokenizer docs1k is broken" in default.stderr
    assert [row["tokenizer"] for row in json.loads(default.stdout)["tokenizers"]] == ["byte", "cl100k_base"]


@pytest.mark.parametrize(("args", "message"), [
    (["builtin", "--vocab-size", "200"], "below the base vocabulary"),
    (["builtin", "--vocab-size", "257", "--special-tokens", "<|sep|>"], "below the base vocabulary"),
    (["builtin", "--vocab-size", "500", "--name", "byte"], "taken by a built-in tokenizer"),
    (["builtin", "--vocab-size", "500", "--name", "My Tok"], "is not allowed"),
    (["builtin", "--vocab-size", "500", "--pattern", "gpt5"], "unknown split pattern"),
    (["builtin", "--vocab-size", "500", "--special-tokens", " "], "cannot be empty"),
    (["no/such/file.txt", "--vocab-size", "500"], "no/such/file.txt"),
])
def test_bad_settings_are_one_line_usage_errors(run_cli, args, message):
    result = run_cli("data", "train-tokenizer", *args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert tokenizer_folders() == []


def test_bad_sources_and_names_are_refused(run_cli, tmp_path):
    small = tmp_path / "small.txt"
    small.write_text("abab abab")
    too_big = run_cli("data", "train-tokenizer", str(small), "--vocab-size", "400")
    assert too_big.returncode == 2 and "supports at most 260 tokens" in too_big.stderr  # ab, abab, ' abab'
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    assert run_cli("data", "train-tokenizer", str(empty), "--vocab-size", "300").returncode == 2
    binary = tmp_path / "blob.txt"
    binary.write_bytes(b"\x00\x01\x02 binary")
    refused = run_cli("data", "train-tokenizer", str(binary), "--vocab-size", "300")
    assert refused.returncode == 2 and "binary" in refused.stderr and "Traceback" not in refused.stderr
    assert tokenizer_folders() == []
    assert run_cli("data", "train-tokenizer", "builtin", "-v", "300", "--name", "t").returncode == 0
    before = (paths.tokenizers_root() / "t" / "bpe.tiktoken").read_bytes()
    again = run_cli("data", "train-tokenizer", "builtin", "-v", "400", "--name", "t")
    assert again.returncode == 2 and "--overwrite" in again.stderr
    assert (paths.tokenizers_root() / "t" / "bpe.tiktoken").read_bytes() == before
    assert run_cli("data", "train-tokenizer", "builtin", "-v", "400", "--name", "t", "--overwrite").returncode == 0
    assert get_tokenizer("t").vocab_size == 400 and tokenizer_folders() == ["t"]
    unknown = run_cli("data", "prepare", "builtin", "--tokenizer", "nope")
    assert unknown.returncode == 2 and "trained here: t" in unknown.stderr


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_during_training_leaves_nothing_in_the_cache(tmp_path):
    import os

    from conftest import REPO_ROOT

    import random

    rng = random.Random(0)  # ~250,000 distinct words: the readable trainer needs many seconds for 20,000 merges
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(" ".join("".join(rng.choice("abcdefghij") for _ in range(rng.randint(2, 9)))
                                         for _ in range(20)) for _ in range(20_000)))
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "gptscratch", "data", "train-tokenizer", str(corpus),
                             "--vocab-size", "20000", "--trainer", "python", "--name", "big"],
                            env=env, stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stderr.readline()  # "training a 20,000-token BPE ...": the source is being read
        assert "training" in first
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert tokenizer_folders() == []  # neither the tokenizer nor a temporary folder


def test_special_tokens_come_after_the_merges_and_stay_text_in_encode():
    tok = train_tokenizer("builtin", 400, name="seps", special_tokens=["<|sep|>", "<|doc|>", "<|sep|>"])
    assert tok.vocab_size == 400 and tok.eot_id == 397
    assert tok.special_tokens() == {"<|sep|>": 398, "<|doc|>": 399}
    assert 398 not in tok.encode("<|sep|>hi")
    assert tok.encode_with_specials("<|sep|>hi<|doc|>") == [398, *tok.encode("hi"), 399]


@pytest.mark.parametrize(("token", "message"), [("<|user|>", "chat tokens"), ("=", "single byte"),
                                                (" the", "learned from the text")])
def test_special_tokens_that_would_be_ambiguous_are_refused(token, message):
    from gptscratch.errors import UsageError

    with pytest.raises(UsageError, match=message):
        train_tokenizer("builtin", 600, name="clash", special_tokens=[token])
    assert tokenizer_folders() == []


@pytest.mark.parametrize("pattern", ["gpt4", "gpt2", "none"])
def test_the_exported_tokenizer_json_gives_our_ids_for_every_pattern(tmp_path, pattern):
    from transformers import AutoTokenizer

    ours = train_tokenizer("builtin", 900, name=f"t-{pattern}", pattern=pattern, special_tokens=["<|sep|>"])
    export_with(tmp_path, ours)
    hf = AutoTokenizer.from_pretrained(str(tmp_path / "hf"))
    for text in [TRICKY, *pool_text(7, 60)]:
        ids = ours.encode(text)
        assert hf(text, add_special_tokens=False)["input_ids"] == ids and hf.decode(ids) == ours.decode(ids)
    assert hf.convert_tokens_to_ids("<|sep|>") == ours.special_tokens()["<|sep|>"] == 899


def test_which_tokenizers_export_their_own_files():
    from gptscratch.tokenizers import ALIASES, TOKENIZER_NAMES, trained
    from gptscratch.tokenizers.files import own_hf_files

    hf_bpe = {"name": "hf-bpe", "path": "tokenizer", "vocab_size": 50257, "eot_id": 50256}
    mine = {"name": "docs", "kind": "bpe", "path": "tokenizer", "vocab_size": 600, "eot_id": 599, "digest": "x"}
    assert own_hf_files(hf_bpe) and own_hf_files({"name": "chat", "base": hf_bpe, "special": []})
    assert not own_hf_files(mine) and not own_hf_files({"name": "chat", "base": mine, "special": []})
    assert not own_hf_files({"name": "byte", "vocab_size": 257, "eot_id": 256})
    assert set(TOKENIZER_NAMES) | set(ALIASES) <= set(trained.RESERVED)  # no trained tokenizer hides a built-in
