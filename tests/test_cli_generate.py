"""`gptscratch generate` as a pipeline tool: prompt sources, JSON lines, samples, stops, compare, bad values,
and a reader that closes the pipe early."""

import io
import json
import subprocess
import sys

import pytest

from gptscratch.cli import main

TRAINING = {"step": 0, "tokens": 0, "val_loss": None, "data": "none"}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """The tiny model with a byte tokenizer (320 output rows) and a 64-token context, saved once per module."""
    from gptscratch.checkpoint import save_checkpoint
    from gptscratch.tokenizers import get_tokenizer
    from helpers import build_tiny_model

    model = build_tiny_model(vocab_size=320, context_length=64)
    path = tmp_path_factory.mktemp("ckpt") / "run" / "latest"
    save_checkpoint(path, model, get_tokenizer("byte").spec(), training=TRAINING)
    return str(path)


def cli(capsys, monkeypatch, *args, stdin=None):
    """Run the real entry point in-process; returns (exit code, stdout, stderr).

    Output is captured like a pipe, where render.show gives a table the width it needs (no folded cells); rich
    reads TTY_COMPATIBLE when it prints, so a FORCE_COLOR in the caller's environment cannot make it a terminal."""
    monkeypatch.setenv("TTY_COMPATIBLE", "0")
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    with pytest.raises(SystemExit) as exit_info:
        main(["--device", "cpu", *args])
    out, err = capsys.readouterr()
    return exit_info.value.code or 0, out, err


def test_each_line_from_stdin_gives_json_lines_in_order(checkpoint, capsys, monkeypatch):
    code, out, err = cli(capsys, monkeypatch, "generate", "-c", checkpoint, "--each-line", "--json",
                         "--max-tokens", "6", "--batch-size", "2", "--seed", "1",
                         stdin="first\n\nsecond prompt\nthird\n")
    assert code == 0, err
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["prompt"] for r in records] == ["first", "second prompt", "third"]
    assert [r["index"] for r in records] == [0, 1, 2]
    for r in records:
        assert set(r) >= {"prompt", "completion", "prompt_tokens", "completion_tokens", "finish_reason",
                          "tokens_per_second"}
        assert r["finish_reason"] in ("length", "end_of_text") and r["completion_tokens"] <= 6
    assert "skipped 1 blank line" in err and out.count("\n") == 3


def test_batched_lines_equal_separate_runs(checkpoint, capsys, monkeypatch):
    args = ["generate", "-c", checkpoint, "--json", "--max-tokens", "8", "--seed", "3", "--temperature", "1"]
    _, out, _ = cli(capsys, monkeypatch, *args, "--each-line", stdin="ab\nlonger prompt here\n")
    together = [json.loads(line)["completion"] for line in out.splitlines()]
    alone = [json.loads(cli(capsys, monkeypatch, *args, "--prompt", p)[1])["completion"]
             for p in ("ab", "longer prompt here")]
    assert together == alone


def test_prompt_file_samples_and_stop_strings(checkpoint, capsys, monkeypatch, tmp_path):
    prompt_file = tmp_path / "prompt.txt"
    prompt_file.write_text("Once upon\n", encoding="utf-8")
    code, out, _ = cli(capsys, monkeypatch, "generate", "-c", checkpoint, "-f", str(prompt_file), "-k", "3",
                       "--json", "--max-tokens", "10", "--seed", "5", "--ignore-eot")
    records = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [r["sample"] for r in records] == [0, 1, 2]
    assert all(r["prompt"] == "Once upon" for r in records)          # one trailing newline dropped
    greedy = ["generate", "-c", checkpoint, "-p", "Once", "--temperature", "0", "--json", "--max-tokens", "12",
              "--ignore-eot"]
    full = json.loads(cli(capsys, monkeypatch, *greedy)[1])["completion"]
    stop = full[4:6]
    cut = json.loads(cli(capsys, monkeypatch, *greedy, "--stop", stop)[1])
    assert cut["finish_reason"] == "stop" and cut["completion"] == full[: full.index(stop)]


def test_plain_output_streams_and_dtypes_run(checkpoint, capsys, monkeypatch):
    for dtype in ("fp32", "bf16", "auto"):
        code, out, err = cli(capsys, monkeypatch, "generate", "-c", checkpoint, "-p", "x", "--max-tokens", "5",
                             "--dtype", dtype, "--seed", "0")
        assert code == 0 and out.endswith("\n") and "dtype: " in err and "tokens/s" in err


def test_compare_shows_every_strategy(checkpoint, capsys, monkeypatch):
    from gptscratch.generation import COMPARE_STRATEGIES

    code, out, _ = cli(capsys, monkeypatch, "generate", "-c", checkpoint, "-p", "The", "--compare",
                       "--max-tokens", "6", "--seed", "0")
    assert code == 0 and all(name in out for name in COMPARE_STRATEGIES)
    _, out, _ = cli(capsys, monkeypatch, "generate", "-c", checkpoint, "-p", "The", "--compare", "--json",
                    "--max-tokens", "6", "--seed", "0")
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["strategy"] for r in records] == list(COMPARE_STRATEGIES)


@pytest.mark.parametrize("args, message", [
    (["--temperature", "-1"], "temperature"),
    (["--top-p", "0"], "top-p"),
    (["--top-p", "1.5"], "top-p"),
    (["--top-k", "0"], "top-k"),
    (["--max-tokens", "-1"], "max tokens"),
    (["--num-samples", "0"], "samples"),
    (["--repetition-penalty", "0"], "repetition"),
    (["--dtype", "fp8"], "--dtype"),
    (["--preset", "wild"], "unknown preset"),
    (["--prompt", ""], "--prompt is empty"),
    (["--prompt", "x", "--prompt-file", "y.txt"], "not both"),
    (["--prompt-file", "/no/such.txt"], "does not exist"),
])
def test_invalid_values_exit_2_with_one_line(checkpoint, capsys, monkeypatch, args, message):
    base = ["generate", "-c", checkpoint]
    if "--prompt" not in args and "--prompt-file" not in args:
        base += ["--prompt", "x"]
    code, out, err = cli(capsys, monkeypatch, *base, *args)
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1 and message in errors[0], err
    assert out == ""


def test_empty_and_binary_prompt_files_exit_2(checkpoint, capsys, monkeypatch, tmp_path):
    (tmp_path / "empty.txt").write_text("\n")
    (tmp_path / "blob.txt").write_bytes(b"\x00\x01abc")
    for name, message in (("empty.txt", "empty"), ("blob.txt", "binary")):
        code, _, err = cli(capsys, monkeypatch, "generate", "-c", checkpoint, "-f", str(tmp_path / name))
        assert code == 2 and message in err
    code, _, err = cli(capsys, monkeypatch, "generate", "-c", checkpoint, "--each-line", stdin="\n \n")
    assert code == 2 and "no non-blank line" in err


@pytest.mark.parametrize("source, output, reader", [
    ("", ["-p", "x", "--max-tokens", "3000"], "head -c 20"),                      # streamed plain text
    ("seq 1 400 | ", ["--each-line", "--json", "--max-tokens", "4", "--batch-size", "2"], "head -n 1"),
])
def test_reader_closing_the_pipe_early_is_quiet_under_pipefail(checkpoint, source, output, reader):
    import os
    import shlex

    from conftest import REPO_ROOT

    command = [sys.executable, "-m", "gptscratch", "generate", "-c", checkpoint, "--ignore-eot", "--seed", "0",
               *output]
    script = f"set -o pipefail; {source}{shlex.join(command)} | {reader} > /dev/null"
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, cwd=REPO_ROOT,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "Error" not in result.stderr


def test_presets_and_the_comparison_are_library_calls(checkpoint):
    """What `generate --preset ... --temperature ...` and `--compare` run, called from Python."""
    from gptscratch.checkpoint import load_checkpoint
    from gptscratch.errors import UsageError
    from gptscratch.generation import COMPARE_STRATEGIES, PRESETS
    from gptscratch.generation.completion import GenerationSettings, compare_strategies, stream_completions
    from gptscratch.generation.presets import preset_sampling
    from gptscratch.generation.sampling import SamplingConfig

    assert preset_sampling("precise") == PRESETS["precise"]
    assert preset_sampling("balanced", temperature=0.0, top_k=None) == {**PRESETS["balanced"], "temperature": 0.0}
    with pytest.raises(UsageError, match="unknown preset 'wild'; choose one of creative, balanced, precise"):
        preset_sampling("wild")
    loaded = load_checkpoint(checkpoint, device="cpu")
    settings = GenerationSettings(max_new_tokens=4, seed=0, num_samples=3)
    rows = list(compare_strategies(loaded.model, loaded.tokenizer, "The ", settings))
    assert [(name, values) for name, values, _ in rows] == list(COMPARE_STRATEGIES.items())
    greedy = GenerationSettings(max_new_tokens=4, seed=0, sampling=SamplingConfig(temperature=0.0))
    alone = [e for e in stream_completions(loaded.model, loaded.tokenizer, ["The "], greedy)
             if hasattr(e, "finish_reason")]
    assert rows[0][2].completion == alone[0].completion and all(c.index == 0 for _, _, c in rows)  # one sample each
