"""`gptscratch train` configuration (presets, recipe files, --dry-run, --model-size) and seeing runs
(`train runs`, `train plot`), through the real entry point."""

import json
import math

import pytest

from gptscratch.training import PRESETS, load_config_file, parse_count, preset_config
from gptscratch.errors import UsageError
from helpers import write_corpus

TINY = ["--tokenizer", "byte", "--size", "tiny", "--context-length", "32", "--batch-size", "4",
        "--precision", "fp32", "--eval-batches", "2", "--sample-tokens", "16"]


def test_presets_and_tokenizer_variant():
    assert set(PRESETS) == {"quick", "medium", "full"}
    for name in ("medium", "full"):
        config = preset_config(name)
        assert config.data == "fineweb-edu" and config.tokenizer == "cl100k_base"
        assert config.grad_accum >= 16 and config.max_tokens
    quick = preset_config("quick")
    assert (quick.tokenizer, quick.max_time, quick.model["d_model"]) == ("byte", 110.0, 128)
    assert (quick.optimizer, quick.batch_size, quick.lr) == ("muon", 64, 3e-3)  # docs/training.md, measured
    previous = preset_config("quick", optimizer="adamw", batch_size=12)  # the GPT-2 recipe, two flags away
    assert (previous.optimizer, previous.batch_size, previous.model) == ("adamw", 12, quick.model)
    assert "positional" not in quick.model and "norm" not in quick.model  # GPT-2's blocks: the lessons' model
    char = preset_config("quick", tokenizer="char", data="notes.txt")
    assert char.tokenizer == "char" and char.data == "notes.txt" and char.max_time == 110.0
    assert parse_count("50M") == 50_000_000 and parse_count("2.5B") == 2_500_000_000 and parse_count("1e3") == 1000
    with pytest.raises(UsageError):
        parse_count("lots")


def test_recipe_files_toml_and_yaml_with_precedence(tmp_path):
    toml = tmp_path / "r.toml"
    toml.write_text('preset = "quick"\nlr = 0.003\nmax-time = "30s"\nn_layer = 2\n[model]\nd_model = 96\n')
    yaml = tmp_path / "r.yaml"
    yaml.write_text("size: tiny\nbatch_size: 4\nmax_tokens: 10k\nmodel:\n  context_length: 32\n")
    values = load_config_file(toml)
    config = preset_config(None, values, lr=0.005)  # flags beat the file, the file beats the preset
    assert (config.lr, config.max_time, config.tokenizer) == (0.005, 30.0, "byte")
    assert config.model["n_layer"] == 2 and config.model["d_model"] == 96 and config.model["context_length"] == 64
    config = preset_config(None, load_config_file(yaml))
    assert (config.size, config.batch_size, config.max_tokens, config.model) == ("tiny", 4, 10_000, {"context_length": 32})
    (tmp_path / "bad.toml").write_text("learning_rate = 1\nmax_steps = 3\n")
    with pytest.raises(UsageError, match="unknown setting 'learning_rate'"):
        load_config_file(tmp_path / "bad.toml")
    (tmp_path / "broken.yaml").write_text("lr: [1,\n")
    with pytest.raises(UsageError, match="cannot parse"):
        load_config_file(tmp_path / "broken.yaml")


def test_dry_run_reports_and_trains_nothing(tmp_path, run_cli, gptscratch_home):
    corpus = write_corpus(tmp_path / "corpus")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("grad_accum: 3\nmax_steps: 5\n")
    result = run_cli("train", "--data", str(corpus), *TINY, "--model-size", "tiny", "--config", str(recipe),
                     "--dry-run", "--json", "--out", str(tmp_path / "run"))
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    from gptscratch.model import GPT, ModelConfig
    assert plan["parameters"] == GPT(ModelConfig.from_dict(plan["model"])).num_parameters()
    assert plan["tokens_per_step"] == 4 * 32 * 3 and plan["steps"] == 5
    assert plan["flops_per_token"] > 6 * plan["non_embedding_parameters"] and plan["memory_bytes"] > 16 * plan["parameters"]
    assert plan["config"]["grad_accum"] == 3 and plan["model"]["n_layer"] == 2
    assert not (tmp_path / "run").exists() and not (gptscratch_home / "runs").exists()
    human = run_cli("train", "--preset", "medium", "--dry-run")
    assert human.returncode == 0 and "parameters" in human.stdout and "tokens per optimizer step" in human.stdout


def test_runs_table_and_plot(tmp_path, run_cli, gptscratch_home):
    corpus = write_corpus(tmp_path / "corpus")
    trained = run_cli("train", "--data", str(corpus), *TINY, "--max-steps", "8", "--eval-every", "4",
                      "--log-every", "2")
    assert trained.returncode == 0, trained.stderr
    assert "sample:" in trained.stderr and "perplexity" in trained.stderr

    listed = run_cli("train", "runs", "--json")
    assert listed.returncode == 0, listed.stderr
    (row,) = json.loads(listed.stdout)
    assert row["step"] == 8 and row["tokens"] == 8 * 4 * 32 and row["parameters"] > 0
    assert row["best_val_loss"] is not None and math.isfinite(row["best_val_loss"])
    table = run_cli("train", "runs")
    assert row["name"] in table.stdout and "best val loss" in table.stdout

    plotted = run_cli("train", "plot", row["name"], "--json")
    assert plotted.returncode == 0, plotted.stderr
    summary = json.loads(plotted.stdout)
    names = {c["name"]: c for c in summary["curves"]}
    assert set(names) == {"train loss", "val loss", "lr"} and len(names["val loss"]["spark"]) == 2
    png = summary["png"]
    with open(png, "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"

    # Without matplotlib: the terminal summary still works, with a clear note instead of a PNG.
    fake = tmp_path / "no-mpl"
    (fake / "matplotlib").mkdir(parents=True)
    (fake / "matplotlib" / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'matplotlib'\")")
    from conftest import REPO_ROOT
    bare = run_cli("train", "plot", row["path"], "--out", str(tmp_path / "x.png"),
                   env={"PYTHONPATH": f"{fake}:{REPO_ROOT}"})
    assert bare.returncode == 2 and "pip install matplotlib" in bare.stderr
    bare = run_cli("train", "plot", row["path"], env={"PYTHONPATH": f"{fake}:{REPO_ROOT}"})
    assert bare.returncode == 0 and "matplotlib is not installed" in bare.stderr and "train loss" in bare.stdout


def test_plot_of_unknown_run_is_a_usage_error(run_cli):
    result = run_cli("train", "plot", "no-such-run")
    assert result.returncode == 2 and "no checkpoint or run named" in result.stderr
