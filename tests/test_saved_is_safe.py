"""Bad input never damages what is already saved, and damaged files fail as one clear line.

Covers the review of the CLI's bad-input paths: a checkpoint written over a run folder or a file, a
`data prepare --overwrite` whose new source is unusable, and damaged config.json / trainer_state /
model.safetensors / manifest.json files that used to surface as "unexpected <Exception>".
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from gptscratch import checkpoint as ckpt
from gptscratch import paths
from gptscratch.errors import CheckpointError, DataError, UsageError
from gptscratch.tokenizers import get_tokenizer
from helpers import build_tiny_model


def save(folder: Path, **kwargs) -> Path:
    """Save the tiny model (with the byte tokenizer's 257 ids) as a checkpoint at `folder`."""
    return ckpt.save_checkpoint(folder, build_tiny_model(vocab_size=257), get_tokenizer("byte").spec(), **kwargs)


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under root (relative path -> content) plus the names next to it: any change shows."""
    files = {str(p.relative_to(root.parent)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
    if root.is_file():
        files[root.name] = root.read_bytes()
    files["<siblings>"] = " ".join(sorted(p.name for p in root.parent.iterdir())).encode()
    return files


def make_run(folder: Path) -> Path:
    """A training run folder: latest/ and best/ checkpoints plus metrics.jsonl."""
    save(folder / "latest", training={"step": 2})
    save(folder / "best", training={"step": 1})
    (folder / "metrics.jsonl").write_text('{"step": 1, "loss": 5.0}\n')
    return folder


def assert_one_line_error(result, code: int, *phrases: str) -> None:
    assert result.returncode == code, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()  # progress lines may come first; the error is one last line
    assert [line for line in lines if line.startswith("error: ")] == lines[-1:], result.stderr
    assert "Traceback" not in result.stderr and "unexpected" not in result.stderr
    for phrase in phrases:
        assert phrase in lines[-1], lines[-1]


# --- 1. a checkpoint is never written over something that is not a checkpoint --------------------------------


def test_save_refuses_a_run_folder_and_a_file_before_writing_anything(tmp_path):
    run = make_run(tmp_path / "run")
    before = snapshot(run)
    with pytest.raises(UsageError, match="not a checkpoint folder .it holds a training run.; choose a new path"):
        save(run)
    assert snapshot(run) == before

    notes = tmp_path / "notes.txt"
    notes.write_text("my notes")
    with pytest.raises(UsageError, match="not a checkpoint folder .it is a file.; choose a new path or delete it"):
        save(notes)
    assert notes.read_text() == "my notes"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "run"]  # no notes.txt.old, no temp folder

    other = tmp_path / "other"
    other.mkdir()
    (other / "thesis.tex").write_text("x")
    with pytest.raises(UsageError, match="it holds other files"):
        save(other)
    assert (other / "thesis.tex").read_text() == "x"


def test_save_fills_an_empty_folder_and_replaces_a_checkpoint(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert ckpt.load_checkpoint(save(empty, training={"step": 1})).training["step"] == 1
    assert ckpt.load_checkpoint(save(empty, training={"step": 2})).training["step"] == 2  # latest/ and best/ do this
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]


def test_a_foreign_dot_old_folder_next_to_the_target_is_left_alone(tmp_path):
    keep = tmp_path / "model.old"
    keep.mkdir()
    (keep / "precious.txt").write_text("keep me")
    with pytest.raises(UsageError, match=r"model.old is in the way .*; rename or delete it"):
        save(tmp_path / "model")
    assert (keep / "precious.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.old"]


def test_cli_convert_refuses_a_run_folder_as_out(tmp_path, run_cli):
    from test_pretrained_support import tiny_gpt2

    hf = tmp_path / "hf"
    tiny_gpt2(hf)
    run = make_run(tmp_path / "run")
    before = snapshot(run)
    result = run_cli("pretrained", "convert", str(hf), "--out", str(run))
    assert_one_line_error(result, 2, "not a checkpoint folder", "training run", "choose a new path")
    assert snapshot(run) == before

    result = run_cli("pretrained", "convert", str(hf), "--out", str(tmp_path / "converted"), "--json")
    assert result.returncode == 0, result.stderr
    result = run_cli("pretrained", "convert", str(hf), "--out", str(tmp_path / "converted"))  # replacing: fine
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("kind", ["run", "file"])
def test_cli_train_induction_never_replaces_a_run_or_a_file(tmp_path, run_cli, kind):
    if kind == "run":
        target = make_run(tmp_path / "run")
    else:
        target = tmp_path / "results.csv"
        target.write_text("a,b\n1,2\n")
    before = snapshot(target)
    result = run_cli("interpret", "train-induction", str(target), "--steps", "1")
    assert_one_line_error(result, 2, "not a checkpoint folder", "choose a new path or delete it")
    assert snapshot(target) == before


# --- 2. damaged config.json / trainer state -----------------------------------------------------------------


def test_config_json_that_is_not_an_object_is_a_checkpoint_error(tmp_path, run_cli):
    path = save(tmp_path / "c")
    (path / ckpt.CONFIG_FILE).write_text("[1, 2]")
    with pytest.raises(CheckpointError, match=r"config.json .holds a JSON list, not an object.; the file is damaged"):
        ckpt.read_config(path)
    result = run_cli("pretrained", "export", str(path), str(tmp_path / "hf"))
    assert_one_line_error(result, 1, "config.json", "damaged", "use another checkpoint")


def test_damaged_trainer_state_names_the_file_and_the_fix(tmp_path):
    path = save(tmp_path / "latest", state_tensors={"rng": torch.zeros(3)}, state={"step": 3})
    tensors, state = ckpt.load_trainer_state(path)
    assert state == {"step": 3} and tensors["rng"].shape == (3,)

    good = (path / ckpt.STATE_TENSORS_FILE).read_bytes()
    (path / ckpt.STATE_TENSORS_FILE).write_bytes(good[:5])  # truncated inside the header length
    with pytest.raises(CheckpointError, match=r"trainer_state.safetensors .*damaged, resume from the run's best/"):
        ckpt.load_trainer_state(path)
    (path / ckpt.STATE_TENSORS_FILE).write_bytes(good)
    (path / ckpt.STATE_JSON_FILE).write_text('{"step": 3,')
    with pytest.raises(CheckpointError, match=r"trainer_state.json .*damaged.*--init-from"):
        ckpt.load_trainer_state(path)


# --- 3. export of a truncated model.safetensors -------------------------------------------------------------


def test_export_of_a_truncated_model_file_is_one_line(tmp_path, run_cli):
    path = save(tmp_path / "c")
    weights = path / ckpt.MODEL_FILE
    weights.write_bytes(weights.read_bytes()[:100])
    result = run_cli("pretrained", "export", str(path), str(tmp_path / "hf"))
    assert_one_line_error(result, 1, "model.safetensors", "damaged", "use another checkpoint")
    assert not (tmp_path / "hf").exists()


# --- 4. data prepare --overwrite keeps the old dataset until the new one is complete --------------------------


def test_failed_overwrite_keeps_the_existing_dataset(tmp_path, run_cli, gptscratch_home):
    from gptscratch.data import open_dataset

    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "a.txt").write_text("hello world, some text to keep. " * 20)
    (notes / "b.txt").write_text("another file with other text. " * 20)
    assert run_cli("data", "prepare", str(notes), "--name", "keep").returncode == 0
    folder = gptscratch_home / "data" / "keep"
    before = snapshot(folder)

    binary = tmp_path / "blob.txt"
    binary.write_bytes(bytes(range(256)) * 8)
    result = run_cli("data", "prepare", str(binary), "--name", "keep", "--overwrite")
    assert_one_line_error(result, 2)
    assert snapshot(folder) == before
    assert open_dataset("keep").num_tokens("train") > 0

    replacement = tmp_path / "other.txt"
    replacement.write_text("a completely different corpus. " * 30)
    result = run_cli("data", "prepare", str(replacement), "--name", "keep", "--overwrite", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["source"] == str(replacement)
    assert sorted(p.name for p in (gptscratch_home / "data").iterdir()) == ["keep"]  # the old one is gone now


def test_a_killed_overwrite_is_undone_by_the_next_prepare(tmp_path):
    from gptscratch.data import open_dataset, prepare

    text = tmp_path / "story.txt"
    text.write_text("once upon a time there was a tokenizer. " * 30)
    prepare(str(text), name="story")
    folder = paths.data_root() / "story"
    aside = folder.with_name(".story.replaced")
    # State left by a kill -9 during `--overwrite`: the old dataset set aside, a partial new one in place.
    folder.rename(aside)
    folder.mkdir()
    (folder / "manifest.json").write_text(json.dumps({"format": "gptscratch-dataset", "complete": False}))
    dataset = prepare(str(text), name="story")
    assert not aside.exists() and dataset.num_tokens("train") > 0
    assert open_dataset("story").complete


def test_a_killed_bounded_overwrite_that_finished_keeps_the_new_dataset_and_rm_clears_the_old(tmp_path):
    from gptscratch.data import prepare
    from gptscratch.data.dataset import read_manifest, remove_dataset

    text = tmp_path / "story.txt"
    text.write_text("once upon a time there was a tokenizer. " * 200)
    prepare(str(text), "byte", name="old")
    new = prepare(str(text), "byte", name="story", tokens=500)  # a --tokens build: "complete" stays False
    assert not new.complete
    folder = paths.data_root() / "story"
    aside = folder.with_name(".story.replaced")
    (paths.data_root() / "old").rename(aside)  # killed after finishing, before dropping the old copy
    prepare(str(text), "byte", name="story", tokens=500)
    assert not aside.exists() and read_manifest(folder)["name"] == "story"  # not the old one brought back
    aside.mkdir()  # a copy left by a killed --overwrite: `data rm` removes it with the dataset
    remove_dataset("story")
    assert not folder.exists() and not aside.exists()


# --- 5. a manifest missing required keys ------------------------------------------------------------------


def test_manifest_missing_keys_is_a_data_error_and_data_list_still_lists_the_rest(tmp_path, run_cli,
                                                                                  gptscratch_home):
    from gptscratch.data import list_datasets, open_dataset, prepare

    text = tmp_path / "story.txt"
    text.write_text("once upon a time there was a tokenizer. " * 30)
    prepare(str(text), name="good")
    prepare(str(text), name="bad")
    manifest_file = gptscratch_home / "data" / "bad" / "manifest.json"
    manifest = json.loads(manifest_file.read_text())
    del manifest["splits"]
    manifest_file.write_text(json.dumps(manifest))

    with pytest.raises(DataError, match=r"manifest.json is damaged .*'splits'.*--overwrite.*gptscratch data rm bad"):
        open_dataset("bad")
    broken = []
    assert [d.name for d in list_datasets(broken=broken)] == ["good"]
    assert [folder.name for folder, _ in broken] == ["bad"]

    listed = run_cli("data", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [row["name"] for row in json.loads(listed.stdout)] == ["good"]
    assert "warning: dataset bad is broken" in listed.stderr and "data rm bad" in listed.stderr
    table = run_cli("data", "list")
    assert table.returncode == 0 and "good" in table.stdout and "bad is broken" in table.stderr

    info = run_cli("data", "info", "bad")
    assert_one_line_error(info, 1, "manifest.json is damaged", "data rm bad")
