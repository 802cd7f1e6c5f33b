"""`gptscratch eval` through the real entry point: perplexity, compare, bench, hellaswag, bad inputs."""

import json
import subprocess
import sys

import pytest

from helpers import SAMPLE_TEXT, build_tiny_model, run_cli_in_process


def save_tiny(path, seed, data_name="none", tokenizer="byte"):
    """The tiny model (weights drawn with `seed`, 320 output rows for the byte tokenizer) saved at `path`."""
    from gptscratch.checkpoint import save_checkpoint
    from gptscratch.tokenizers import get_tokenizer

    tok = get_tokenizer(tokenizer, texts=[SAMPLE_TEXT])
    model = build_tiny_model(vocab_size=320, seed=seed)
    save_checkpoint(path, model, tok.spec(), training={"step": 5, "tokens": 640 * seed, "val_loss": 5.5,
                                                      "data": data_name})
    return str(path)


def cli(capsys, monkeypatch, *args):
    return run_cli_in_process(capsys, monkeypatch, *args)


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "sample.txt"
    path.write_text(SAMPLE_TEXT[:600], encoding="utf-8")
    return path


def test_perplexity_of_a_file_and_of_the_training_data(tmp_path, capsys, monkeypatch, text_file):
    from gptscratch.data import prepare

    dataset = prepare(str(text_file), "byte", "sample-byte")
    ckpt = save_tiny(tmp_path / "a", 1, data_name=dataset.name)
    code, out, err = cli(capsys, monkeypatch, "eval", "perplexity", ckpt, "--file", str(text_file), "--json")
    row = json.loads(out)
    assert code == 0 and row["tokens"] == 600 and row["bytes"] == 600 and row["windows"] > 1
    assert row["perplexity"] == pytest.approx(2.718281828 ** row["loss"], rel=1e-6)
    code, out, _ = cli(capsys, monkeypatch, "eval", "perplexity", ckpt, "--json", "--stride", "32")
    row = json.loads(out)
    assert code == 0 and row["data"] == "sample-byte:val" and row["tokens"] == dataset.num_tokens("val") - 1
    code, out, _ = cli(capsys, monkeypatch, "eval", "perplexity", ckpt, "--file", str(text_file))
    assert code == 0 and "bits per byte" in out and "perplexity" in out


def test_compare_scores_checkpoints_on_the_same_text(tmp_path, capsys, monkeypatch, text_file):
    a, b = save_tiny(tmp_path / "a", 1), save_tiny(tmp_path / "b", 2)
    copy = save_tiny(tmp_path / "c", 1)
    code, out, _ = cli(capsys, monkeypatch, "eval", "compare", a, b, copy, "--file", str(text_file), "--json")
    rows = json.loads(out)["checkpoints"]
    assert code == 0 and [r["tokens_trained"] for r in rows] == [640, 1280, 640]
    assert rows[0]["loss"] == rows[2]["loss"] != rows[1]["loss"]
    assert rows[0]["parameters"] == rows[1]["parameters"] and rows[0]["recorded_val_loss"] == 5.5
    code, out, _ = cli(capsys, monkeypatch, "eval", "compare", a, b, "--file", str(text_file))
    assert code == 0 and "tokens trained" in out and "perplexity" in out


def test_bench_runs_and_reports(tmp_path, capsys, monkeypatch):
    ckpt = save_tiny(tmp_path / "a", 1)
    code, out, _ = cli(capsys, monkeypatch, "eval", "bench", ckpt, "--lengths", "4,8", "--repeats", "1",
                       "--dtype", "fp32", "--json")
    result = json.loads(out)
    assert code == 0 and [r["new_tokens"] for r in result["lengths"]] == [4, 8]
    assert result["dtype"] == "float32" and result["lengths"][1]["speedup"] > 0
    code, out, _ = cli(capsys, monkeypatch, "eval", "bench", ckpt, "--lengths", "4", "--repeats", "1")
    assert code == 0 and "speed-up" in out


def test_hellaswag_on_a_local_sample(tmp_path, capsys, monkeypatch):
    from test_eval import HELLASWAG_ITEMS

    folder = tmp_path / "hs"
    folder.mkdir()
    (folder / "validation.jsonl").write_text("".join(json.dumps(i) + "\n" for i in HELLASWAG_ITEMS))
    ckpt = save_tiny(tmp_path / "a", 1)
    code, out, _ = cli(capsys, monkeypatch, "eval", "hellaswag", ckpt, "--source", str(folder), "--limit", "2",
                       "--json")
    result = json.loads(out)
    assert code == 0 and result["examples"] == 2 and 0 <= result["acc"] <= 1 and 0 <= result["acc_norm"] <= 1


def test_hellaswag_offline_is_one_clear_line(tmp_path):
    import os

    from conftest import REPO_ROOT

    ckpt = save_tiny(tmp_path / "a", 1)
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), HF_HOME=str(tmp_path / "hf"))
    result = subprocess.run([sys.executable, "-m", "gptscratch", "eval", "hellaswag", ckpt, "--limit", "2"],
                            capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=120)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 1 and len(errors) == 1 and "offline" in errors[0], result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("args, message", [
    (["perplexity", "CKPT", "--data", "x", "--file", "y"], "not both"),
    (["perplexity", "CKPT", "--file", "/no/such.txt"], "does not exist"),
    (["perplexity", "CKPT", "--stride", "0"], "--stride"),
    (["perplexity", "CKPT", "--stride", "100"], "stride"),
    (["perplexity", "CKPT"], "does not record its training data"),
    (["perplexity", "CKPT", "--data", "sample-byte"], "tokenizer"),
    (["compare", "CKPT", "OTHER"], "different data"),
    (["bench", "CKPT", "--lengths", "a,b"], "--lengths"),
    (["hellaswag", "CKPT", "--limit", "0"], "--limit"),
])
def test_bad_inputs_exit_2(tmp_path, capsys, monkeypatch, text_file, args, message):
    from gptscratch.data import prepare

    prepare(str(text_file), "byte", "sample-byte")
    ckpt = save_tiny(tmp_path / "a", 1, data_name=None, tokenizer="char")
    other = save_tiny(tmp_path / "b", 1, data_name="sample-byte")
    args = [{"CKPT": ckpt, "OTHER": other}.get(a, a) for a in args]
    if args[0] == "perplexity" and args[-1] == "100":
        args += ["--file", str(text_file)]
    code, out, err = cli(capsys, monkeypatch, "eval", *args)
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1 and message in errors[0], err


def test_checkpoints_trained_on_different_data_are_refused_by_the_library(tmp_path):
    from gptscratch.errors import UsageError
    from gptscratch.evaluation.compare import check_same_training_data

    same = [save_tiny(tmp_path / "a", 1, data_name="notes"), save_tiny(tmp_path / "b", 2, data_name="notes")]
    check_same_training_data(same)                          # nothing to object to
    other = save_tiny(tmp_path / "c", 3, data_name="essays")
    with pytest.raises(UsageError, match=r"trained on different data .*pass --data NAME or --file PATH"):
        check_same_training_data([*same, other])
