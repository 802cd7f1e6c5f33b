"""Bad input to `gptscratch train` (and `train plot`): one line naming the problem and the fix, exit 2, no
traceback — and nothing already saved is damaged (an existing run's checkpoints, its metrics log, weights)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from gptscratch.errors import UsageError
from helpers import tiny_train_config, write_corpus

TINY = ["--size", "tiny", "--context-length", "32", "--batch-size", "4", "--eval-every", "2",
        "--eval-batches", "2", "--precision", "fp32"]


def fingerprint(folder: Path) -> dict[str, str]:
    """Every file under `folder` -> sha256 of its bytes (to prove nothing changed)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def one_error_line(result, code: int = 2) -> str:
    assert result.returncode == code, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr and "unexpected" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]


@pytest.fixture
def corpus(tmp_path) -> Path:
    return write_corpus(tmp_path / "corpus")


@pytest.fixture
def existing_run(tmp_path, corpus) -> Path:
    """A finished 2-step run (latest/, best/, metrics.jsonl), trained in-process to keep the test fast."""
    from gptscratch.training import train

    run = tmp_path / "run"
    train(tiny_train_config(str(corpus), max_steps=2, eval_every=2), run_dir=run)
    assert (run / "latest").is_dir() and (run / "best").is_dir() and (run / "metrics.jsonl").is_file()
    return run


# -- 1. a new run never writes into a folder holding a run --------------------------------------------------

def test_out_folder_holding_a_run_is_refused_and_left_intact(existing_run, corpus, run_cli):
    before = fingerprint(existing_run)
    result = run_cli("train", "--data", str(corpus), "--tokenizer", "byte", *TINY, "--n-layer", "1",
                     "--max-steps", "2", "--out", str(existing_run))
    line = one_error_line(result)
    assert "already holds a run" in line and f"--resume {existing_run}" in line and "another --out" in line
    assert fingerprint(existing_run) == before  # weights, best/ and metrics.jsonl untouched


def test_a_failing_new_run_cannot_append_to_an_existing_runs_metrics(existing_run, corpus, monkeypatch):
    """The library refuses too (before the data or the model is touched): a run that would die of NaN at
    step 2 never gets to append its lines to the old run's metrics.jsonl."""
    from gptscratch.training import train

    before = fingerprint(existing_run)
    with pytest.raises(UsageError, match="already holds a run"):
        train(tiny_train_config(str(corpus), lr=1e3, max_steps=5), run_dir=existing_run)
    assert fingerprint(existing_run) == before


def test_folder_with_only_a_metrics_log_is_refused_with_delete_fix(tmp_path, corpus):
    from gptscratch.training import train

    run = tmp_path / "failed"
    run.mkdir()
    (run / "metrics.jsonl").write_text('{"step": 1, "loss": 5.0}\n')
    with pytest.raises(UsageError, match="no complete checkpoint.*delete"):
        train(tiny_train_config(str(corpus)), run_dir=run)
    assert (run / "metrics.jsonl").read_text() == '{"step": 1, "loss": 5.0}\n'


def test_empty_or_unrelated_existing_folder_is_accepted(tmp_path, corpus, run_cli):
    out = tmp_path / "empty"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    result = run_cli("train", "--data", str(corpus), "--tokenizer", "byte", *TINY, "--max-steps", "2",
                     "--out", str(out), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["step"] == 2 and (out / "latest" / "model.safetensors").is_file()
    assert (out / "notes.txt").read_text() == "mine"


# -- 2. --resume refuses flags it cannot apply --------------------------------------------------------------

@pytest.mark.parametrize("flags, words", [
    (["--data", "OTHER"], ["--data", "the run's data", "--init-from"]),
    (["--tokenizer", "char"], ["--tokenizer char", "'byte'", "--init-from"]),
    (["--lr", "0.5"], ["--lr 0.5", "0.003", "drop the flag"]),
    (["--n-layer", "3"], ["--n-layer 3", "n_layer = 2", "drop the flag"]),
    (["--preset", "quick"], ["(from --preset quick)", "differs", "drop the flag"]),
    (["--out", "ELSEWHERE"], ["drop --out"]),
])
def test_resume_refuses_flags_that_would_change_the_run(existing_run, tmp_path, run_cli, flags, words):
    other = write_corpus(tmp_path / "other-corpus", files=2)
    flags = [str(other) if f == "OTHER" else str(tmp_path / "elsewhere") if f == "ELSEWHERE" else f for f in flags]
    before = fingerprint(existing_run)
    line = one_error_line(run_cli("train", "--resume", str(existing_run), *flags, "--max-steps", "4"))
    for word in words:
        assert word in line, line
    assert fingerprint(existing_run) == before


def test_resume_with_the_original_preset_command_line_works(tmp_path, run_cli):
    run = tmp_path / "quick-run"
    first = run_cli("train", "--preset", "quick", "--max-steps", "2", "--out", str(run), "--json")
    assert first.returncode == 0, first.stderr
    again = run_cli("train", "--preset", "quick", "--max-steps", "3", "--out", str(run), "--resume", str(run),
                    "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["step"] == 3
    changed = run_cli("train", "--preset", "quick", "--lr", "0.5", "--resume", str(run), "--max-steps", "4")
    assert changed.returncode == 2 and "--lr 0.5 differs" in changed.stderr


def test_resume_accepts_recorded_values_and_applies_budget_flags(existing_run, corpus, run_cli):
    result = run_cli("train", "--resume", str(existing_run), "--data", str(corpus), "--tokenizer", "byte",
                     "--lr", "3e-3", "--out", str(existing_run), "--max-steps", "3", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["step"] == 3


# -- 3. recipe files: binary, wrong types -------------------------------------------------------------------

def test_binary_config_file_is_a_usage_error(tmp_path, corpus, run_cli):
    recipe = tmp_path / "recipe.toml"
    recipe.write_bytes(b"\xff\xfe\x00\x81binary\x00")
    line = one_error_line(run_cli("train", "--data", str(corpus), "--config", str(recipe), "--max-steps", "1"))
    assert str(recipe) in line and "UTF-8" in line


@pytest.mark.parametrize("text, words", [
    ('lr = "abc"\n', ["lr must be a number, got 'abc'"]),
    ("max_steps = 2.5\n", ["max_steps must be a whole number"]),
    ("batch_size = true\n", ["batch_size must be a whole number, got True"]),
    ('n_layer = "two"\n', ["n_layer must be a whole number, got 'two'"]),
    ("lr = inf\n", ["lr must be a finite number"]),
    ('max_time = "soon"\n', ["max_time", "duration"]),
    ("model = 3\n", ["model must be a table"]),
])
def test_config_value_of_wrong_type_names_file_and_key(tmp_path, corpus, run_cli, text, words):
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(text + ("max_steps = 1\n" if "max_steps" not in text else ""))
    line = one_error_line(run_cli("train", "--data", str(corpus), "--config", str(recipe)))
    assert str(recipe) in line, line
    for word in words:
        assert word in line, line


def test_yaml_exponent_numbers_still_load(tmp_path):
    """PyYAML reads `lr: 3e-3` as a string: the type check must not turn a valid recipe into an error."""
    from gptscratch.training import load_config_file

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("lr: 3e-3\nmax_steps: 5\nmodel:\n  dropout: 0.1\n")
    values = load_config_file(recipe)
    assert values["lr"] == 0.003 and values["max_steps"] == 5 and values["model"] == {"dropout": 0.1}


# -- 4. non-finite hyperparameters ----------------------------------------------------------------------------

@pytest.mark.parametrize("flag, value", [("--lr", "nan"), ("--lr", "inf"), ("--beta1", "nan"),
                                         ("--weight-decay", "inf"), ("--grad-clip", "nan"), ("--warmup", "nan"),
                                         ("--min-lr-ratio", "nan"), ("--dropout", "nan")])
def test_non_finite_hyperparameters_are_refused_before_a_run_folder_exists(tmp_path, corpus, run_cli, flag, value):
    out = tmp_path / "run"
    line = one_error_line(run_cli("train", "--data", str(corpus), *TINY, flag, value, "--max-steps", "2",
                                  "--out", str(out)))
    assert flag in line and "finite" in line, line
    assert not out.exists()


def test_train_config_checks_types_and_finiteness_in_the_library():
    from gptscratch.training import TrainConfig

    with pytest.raises(UsageError, match="--lr must be a number, got 'abc'"):
        TrainConfig(lr="abc", max_steps=1)
    with pytest.raises(UsageError, match="--beta2 must be a finite number"):
        TrainConfig(beta2=float("nan"), max_steps=1)
    with pytest.raises(UsageError, match="--max-time must be a finite number"):
        TrainConfig(max_time=float("inf"))
    assert TrainConfig(lr=1, max_steps=1).lr == 1  # an int is a fine number


# -- 5. train plot --out ----------------------------------------------------------------------------------------

def test_plot_out_never_overwrites_weights_or_makes_folders(existing_run, tmp_path, run_cli):
    weights = existing_run / "latest" / "model.safetensors"
    before = weights.read_bytes()
    line = one_error_line(run_cli("train", "plot", str(existing_run), "--out", str(weights)))
    assert ".png" in line and weights.read_bytes() == before

    line = one_error_line(run_cli("train", "plot", str(existing_run), "--out", str(existing_run / "best")))
    assert "is a folder" in line and ".png" in line

    missing = tmp_path / "no" / "such" / "curves.png"
    line = one_error_line(run_cli("train", "plot", str(existing_run), "--out", str(missing)))
    assert str(missing.parent) in line and "create it" in line
    assert not (tmp_path / "no").exists()

    good = run_cli("train", "plot", str(existing_run), "--out", str(tmp_path / "curves.png"), "--json")
    assert good.returncode == 0, good.stderr
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
