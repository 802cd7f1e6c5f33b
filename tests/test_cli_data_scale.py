"""`gptscratch data download / list / info / rm / path` and table/Hub sources through the real entry point."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq

from gptscratch import paths

README = """---
configs:
- config_name: sample-10BT
  data_files:
  - split: train
    path: sample/10BT/*
---
"""


def make_mirror(root):
    repo = root / "HuggingFaceFW" / "fineweb-edu" / "sample" / "10BT"
    repo.mkdir(parents=True)
    (root / "HuggingFaceFW" / "fineweb-edu" / "README.md").write_text(README)
    rows = [{"text": f"document {i} about the water cycle. " * 4, "id": f"<urn:uuid:{i}>", "dump": "CC-MAIN",
             "url": f"https://e.org/{i}", "score": 3.0, "int_score": 3} for i in range(80)]
    pq.write_table(pa.Table.from_pylist(rows), repo / "000_00000.parquet")
    return root


def test_download_list_info_path_rm(run_cli, tmp_path):
    env = {"GPTSCRATCH_HF_DATASETS_DIR": str(make_mirror(tmp_path / "hub"))}
    result = run_cli("data", "download", "--tokens", "1k", "--tokenizer", "byte", "--shard-tokens", "300", "--json",
                     env=env)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["name"] == "fineweb-edu-byte" and summary["source"] == "fineweb-edu:sample-10BT"
    assert summary["train_tokens"] + summary["val_tokens"] == 1000 and not summary["complete"]
    assert summary["target_tokens"] == 1000 and summary["shards"] >= 4

    listed = run_cli("data", "list", "--json")
    assert [row["name"] for row in json.loads(listed.stdout)] == ["fineweb-edu-byte"]
    table = run_cli("data", "list")
    assert "fineweb-edu-byte (partial)" in table.stdout and "fineweb-edu:sample-10BT" in table.stdout

    info = run_cli("data", "info", "fineweb-edu-byte", "--verify", "--json")
    assert info.returncode == 0, info.stderr
    details = json.loads(info.stdout)
    assert details["verified"] and details["split_rule"] == "hash" and details["dtype"] == "uint16"
    assert sum(s["tokens"] for s in details["shard_files"]["train"]) == summary["train_tokens"]
    assert "split_rule" in run_cli("data", "info", "fineweb-edu-byte").stdout

    assert run_cli("data", "path").stdout.strip() == str(paths.data_root())
    assert run_cli("data", "path", "fineweb-edu-byte").stdout.strip() == summary["path"]

    removed = run_cli("data", "rm", "fineweb-edu-byte", "--json")
    assert removed.returncode == 0 and json.loads(removed.stdout)["removed"] == summary["path"]
    missing = run_cli("data", "rm", "fineweb-edu-byte")
    assert missing.returncode == 2 and missing.stderr.strip().startswith("error: no prepared dataset")


def test_jsonl_with_text_field_and_error_lines(run_cli, tmp_path):
    corpus = tmp_path / "posts.jsonl"
    corpus.write_text("".join(json.dumps({"body": f"post number {i}", "id": str(i)}) + "\n" for i in range(30)))
    result = run_cli("data", "prepare", str(corpus), "--text-field", "body", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["train_documents"] + json.loads(result.stdout)["val_documents"] == 30
    for args, code, expected in [
        ((str(corpus),), 2, "has no field 'text'"),
        (("builtin", "--tokens", "lots"), 2, "is not a count"),
        (("fineweb-edu",), 1, "cannot reach the Hugging Face Hub; use a local source or `gptscratch data download`"),
    ]:
        failed = run_cli("data", "prepare", *args)
        lines = failed.stderr.strip().splitlines()
        assert failed.returncode == code and lines[-1].startswith("error: ") and expected in lines[-1], failed.stderr
        assert "Traceback" not in failed.stderr
