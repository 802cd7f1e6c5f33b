"""Bad input to generate, interpret and eval ends in one line naming the fix (exit 2), never an "unexpected"
error; and the interpret tools work on models whose output layer is padded past the tokenizer's vocabulary
(every trained model: the vocabulary is rounded up to a multiple of 64)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gptscratch.checkpoint import save_checkpoint
from gptscratch.generation.sampling import SamplingConfig
from gptscratch.interpret.logit_lens import logit_lens
from gptscratch.errors import UsageError
from gptscratch.tasks import parse_task
from gptscratch.tokenizers import get_tokenizer

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture()
def padded_byte_model(tiny_model):
    """A byte-tokenizer model with 320 output rows (257 real + 63 padding) whose padding rows would win, and a
    64-token context (the bad-value tests below name it)."""
    model = tiny_model(vocab_size=320, context_length=64)
    with torch.no_grad():
        model.tok_embed.weight[257:] *= 200  # tied: the padding ids get huge logits
    return model


@pytest.fixture()
def padded_checkpoint(tmp_path, padded_byte_model):
    return save_checkpoint(tmp_path / "padded", padded_byte_model, get_tokenizer("byte").spec())


def test_logit_lens_ignores_padding_ids(padded_byte_model):
    model = padded_byte_model
    ids = list(b"hello world")
    unlimited = logit_lens(model, ids, k=3)
    assert any(i >= 257 for layer in unlimited.top_ids for pos in layer for i in pos)  # the trap is armed
    lens = logit_lens(model, ids, k=3, vocab_limit=257)
    assert all(i < 257 for layer in lens.top_ids for pos in layer for i in pos)
    assert all(r is None or r <= 257 for layer in lens.target_rank for r in layer)


def test_interpret_cli_on_a_padded_model(padded_checkpoint, run_cli):
    result = run_cli("interpret", "logit-lens", str(padded_checkpoint), "--text", "hello there", "--json")
    assert result.returncode == 0, result.stderr
    assert all(i < 257 for layer in json.loads(result.stdout)["top_ids"] for pos in layer for i in pos)
    result = run_cli("interpret", "patch", str(padded_checkpoint), "--clean", "abc", "--corrupted", "abd",
                     "--target", "x", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["foil"] < 257


@pytest.mark.parametrize("stdin", [b"caf\xe9 au lait", b"\x7fELF\x00\x01binary"])
@pytest.mark.parametrize("command", [["generate", "--max-tokens", "3"], ["interpret", "attention"]])
def test_piped_binary_or_non_utf8_stdin_is_a_usage_error(padded_checkpoint, command, stdin):
    args = [*command, "--checkpoint", str(padded_checkpoint)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-m", "gptscratch", *args], input=stdin, capture_output=True,
                            env=env, timeout=120)
    stderr = result.stderr.decode()
    assert result.returncode == 2, stderr
    assert "standard input" in stderr and ("UTF-8" in stderr) and "unexpected" not in stderr
    assert "Traceback" not in stderr


@pytest.mark.parametrize("args, message", [
    (["generate", "-c", "CK", "--temperature", "nan", "--max-tokens", "2"], "temperature must be a number"),
    (["generate", "-c", "CK", "--temperature", "inf", "--max-tokens", "2"], "temperature must be a number"),
    (["generate", "-c", "CK", "--prompt-file", "FOLDER"], "is a folder"),
    (["interpret", "patch", "CK", "--clean", "abc", "--corrupted", "abd", "--target", ""], "answer text is empty"),
    (["eval", "perplexity", "CK", "--file", "TEXT", "--context", "1000"], "--context must be in 1..64"),
])
def test_impossible_values_are_one_line_usage_errors(padded_checkpoint, tmp_path, run_cli, args, message):
    text = tmp_path / "text.txt"
    text.write_text("hello world, " * 20)
    places = {"CK": str(padded_checkpoint), "FOLDER": str(tmp_path), "TEXT": str(text)}
    result = run_cli(*[places.get(a, a) for a in args])
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "unexpected" not in result.stderr and "Traceback" not in result.stderr


def test_sampling_config_refuses_non_finite_values():
    for bad in (dict(temperature=float("nan")), dict(temperature=float("inf")),
                dict(repetition_penalty=float("nan"))):
        with pytest.raises(ValueError):
            SamplingConfig(**bad)


def test_unknown_task_is_named_with_or_without_the_prefix():
    with pytest.raises(UsageError, match="unknown task 'bogus'"):
        parse_task("bogus")
    with pytest.raises(UsageError, match="unknown task 'bogus'"):
        parse_task("task:bogus")


@pytest.mark.parametrize("args, message", [
    (["generate", "--bogus"], "No such option: --bogus; see `gptscratch generate --help`"),
    (["eval", "compare"], "Missing argument 'checkpoints'; see `gptscratch eval compare --help`"),
    (["train", "--max-steps", "abc"], "Invalid value for '--max-steps'"),
])
def test_usage_errors_found_by_the_parser_are_one_line_too(run_cli, args, message):
    result = run_cli(*args)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"error: {result.stderr.split('error: ', 1)[1].strip()}"]
    assert message in result.stderr and "╭" not in result.stderr


def test_a_group_without_its_command_prints_help_and_exits_2(run_cli):
    result = run_cli("data")
    assert result.returncode == 2 and "prepare" in result.stdout and result.stderr.strip() == ""


@pytest.mark.parametrize("plot", ["FOLDER", "FOLDER/x.jpg", "FOLDER/missing/x.png"])
def test_a_bad_plot_path_fails_before_anything_is_printed(padded_checkpoint, tmp_path, run_cli, plot):
    plot = plot.replace("FOLDER", str(tmp_path))
    if plot == str(tmp_path):
        plot = str(tmp_path / "dir.png")
        Path(plot).mkdir()
    result = run_cli("interpret", "attention", str(padded_checkpoint), "--text", "hello", "--plot", plot)
    assert result.returncode == 2 and result.stdout == "", result.stderr
    assert "--plot" in result.stderr or "folder" in result.stderr


def test_hellaswag_source_problems_are_usage_errors_with_one_line(padded_checkpoint, tmp_path, run_cli):
    result = run_cli("eval", "hellaswag", str(padded_checkpoint), "--source", str(tmp_path / "missing"))
    assert result.returncode == 2 and "does not exist" in result.stderr
    corrupt = tmp_path / "hs"
    corrupt.mkdir()
    (corrupt / "validation.jsonl").write_text("{not json\n")
    result = run_cli("eval", "hellaswag", str(padded_checkpoint), "--source", str(corrupt))
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("device:")]
    assert len(lines) == 1 and lines[0].startswith("error: cannot read HellaSwag"), result.stderr


def test_pretrained_download_checks_dtype_before_the_network(run_cli):
    result = run_cli("pretrained", "download", "gpt2", "--dtype", "nonsense")
    assert result.returncode == 2 and "unknown dtype 'nonsense'" in result.stderr


@pytest.mark.parametrize("args, message", [
    (["--clean", "", "--corrupted", "abd", "--target", "x"], "give --clean some text"),
    (["--clean", "a" * 80, "--corrupted", "b" * 80, "--target", "x"], "shorten --clean"),
    (["--clean", "abc", "--corrupted", "abd", "--target", "x", "--top", "0"], "--top must be ≥ 1"),
])
def test_patch_messages_name_patch_flags(padded_checkpoint, run_cli, args, message):
    result = run_cli("interpret", "patch", str(padded_checkpoint), *args)
    assert result.returncode == 2 and message in result.stderr, result.stderr


@pytest.mark.parametrize("edit, message", [
    (lambda c: c["tokenizer"].update(name="bogus"), "names a tokenizer gptscratch cannot build"),
    (lambda c: c["model"].update(n_head="four"), "has an invalid model config"),
])
def test_an_edited_checkpoint_config_is_a_checkpoint_error(padded_checkpoint, run_cli, edit, message):
    config_file = Path(padded_checkpoint) / "config.json"
    config = json.loads(config_file.read_text())
    edit(config)
    config_file.write_text(json.dumps(config))
    result = run_cli("generate", "-c", str(padded_checkpoint), "--max-tokens", "2")
    assert result.returncode == 1 and message in result.stderr and "unexpected" not in result.stderr


@pytest.mark.parametrize("args", [["--help"], ["info"], ["pretrained", "list"]])
def test_a_reader_that_stops_early_is_not_a_failure(args):
    """`gptscratch ... | head` under `set -o pipefail`: a closed stdout ends the command with exit 0, quietly."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen([sys.executable, "-m", "gptscratch", *args], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=env)
    process.stdout.close()  # the reader is gone before anything is written
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=120) == 0, stderr
    assert "Traceback" not in stderr and "error" not in stderr
