"""`gptscratch data prepare` / `data list` through the real entry point (`python -m gptscratch`)."""

from __future__ import annotations

import json

from gptscratch import paths


def test_prepare_and_list_json(run_cli, tmp_path, gptscratch_home):
    notes = tmp_path / "mynotes"
    notes.mkdir()
    for i in range(5):
        (notes / f"note{i}.md").write_text(f"note {i}: héllo 漢字 🎉\n" * 3, encoding="utf-8")

    result = run_cli("data", "prepare", str(notes), "--json")
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.strip().splitlines()) == 1  # data on stdout, progress on stderr
    summary = json.loads(result.stdout)
    assert summary["name"] == "mynotes-byte" and summary["tokenizer"] == "byte"
    assert summary["source"] == str(notes)
    assert summary["train_tokens"] + summary["val_tokens"] == 5 * (len("note 0: héllo 漢字 🎉\n".encode()) * 3 + 1)
    assert summary["train_documents"] >= 1 and summary["val_documents"] >= 1
    assert summary["path"] == str(gptscratch_home.resolve() / "data" / "mynotes-byte")

    result = run_cli("data", "prepare", "builtin", "--tokenizer", "char", "--name", "docs", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["tokenizer"] == "char"

    listed = run_cli("data", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [row["name"] for row in rows] == ["docs", "mynotes-byte"]
    assert rows[1]["train_tokens"] == summary["train_tokens"] and rows[1]["size_bytes"] > 0

    table = run_cli("data", "list")
    assert table.returncode == 0 and "mynotes-byte" in table.stdout and "docs" in table.stdout


def test_prepare_errors_are_one_line_with_exit_code_2(run_cli, tmp_path):
    binary = tmp_path / "src"
    binary.mkdir()
    (binary / "good.txt").write_text("hello")
    (binary / "blob.txt").write_bytes(b"\x00\x01\x02")
    for args, expected in [
        ((str(tmp_path / "missing"),), "does not exist"),
        ((str(binary),), "blob.txt looks binary"),
        (("builtin", "--tokenizer", "nope"), "unknown tokenizer"),
    ]:
        result = run_cli("data", "prepare", *args)
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert lines[-1].startswith("error: ") and expected in lines[-1] and "Traceback" not in result.stderr
    assert not paths.data_root().exists() or not list(paths.data_root().iterdir())


def test_list_when_empty(run_cli):
    result = run_cli("data", "list", "--json")
    assert result.returncode == 0 and json.loads(result.stdout) == []
