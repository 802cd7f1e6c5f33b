"""lm-evaluation-harness scoring gptscratch checkpoints: the `gptscratch` lm-eval model (evaluation/harness.py),
`gptscratch eval harness`, and `python -m gptscratch.evaluation.harness` (lm-eval's own command line).

Offline throughout: the lm-eval tasks are YAML files written here (`dataset_path: json` reading a small
HellaSwag-style jsonl written here too), the model a tiny random checkpoint saved here. Each number lm-eval reports
is checked against gptscratch's own code or a direct computation with the model:
    multiple choice  acc / acc_norm (and every choice's log-likelihood) = `gptscratch eval hellaswag` on the same items
    loglikelihood    = Σ log_softmax of the continuation's tokens, by hand; is_greedy = greedy decoding's tokens
    rolling          = `gptscratch eval perplexity --stride CONTEXT` (loss × tokens), and the windows by hand
    generate_until   = gptscratch's unbatched greedy engine, cut before the first `until` string
Skipped without lm-eval (the optional `harness` extra). The subprocess runs (≈ 5-15 s each: lm-eval indexes its
thousands of built-in task files when a name is not local) are marked slow.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("lm_eval")

from conftest import REPO_ROOT  # noqa: E402
from helpers import SAMPLE_TEXT, build_tiny_model, run_cli_in_process  # noqa: E402

CONTEXT = 128   # every item below fits (ctx + ending < 128 bytes): no truncation, where the two tools differ

ITEMS = [  # HellaSwag's schema (ctx, endings, label); ASCII, so one byte token per character
    {"ctx": "A man walks down the street. he", "endings": ["stops.", "eats a car.", "is a cloud.", "turns left."],
     "label": 0},
    {"ctx": "A female chef shows a stack of baking pans. the pans",
     "endings": ["contain egg yolks.", "are then placed in the oven.", "fly away.", "sing."], "label": 1},
    {"ctx": "Two kids play catch in the yard. the boy",
     "endings": ["throws the ball back to his sister.", "melts.", "becomes a tree in the rain.", "reads."],
     "label": 0},
    {"ctx": "A woman paints a fence. she", "endings": ["dips the brush in the can.", "swims home.", "is blue.",
                                                     "flies to the moon on a brush."], "label": 0},
    {"ctx": "The dog runs to the door. it", "endings": ["barks at the mailman.", "reads a book.", "sings.",
                                                      "cooks dinner for the cat."], "label": 0},
    {"ctx": "A man lifts weights at the gym. he", "endings": ["drinks the bar.", "puts the bar down slowly.",
                                                            "turns into a bird.", "sleeps."], "label": 1},
    {"ctx": "Snow falls on the city at night. people", "endings": ["swim.", "eat the moon.",
                                                                 "walk home in heavy coats.", "fly."], "label": 2},
    {"ctx": "A cook cracks an egg into a bowl. then he", "endings": ["sings.", "drives the bowl.",
                                                                   "eats the table.", "whisks it with a fork."],
     "label": 3},
]

TASK = """task: {name}
dataset_path: json
dataset_kwargs:
  data_files:
    validation: {data}
test_split: validation
output_type: multiple_choice
doc_to_text: "{{{{ctx}}}}"
doc_to_target: label
doc_to_choice: {choices}
target_delimiter: "{delimiter}"
metric_list:
  - metric: acc
  - metric: acc_norm
"""


# -- fixtures: one checkpoint, one task folder, one adapter per module ---------------------------------------------
def save_tiny(path: Path, tokenizer: str, seed: int, **shape) -> str:
    """The tiny random model (output layer padded to 320 rows; `shape` overrides) saved at `path`."""
    from gptscratch.checkpoint import save_checkpoint
    from gptscratch.tokenizers import get_tokenizer

    tok = get_tokenizer(tokenizer, texts=[SAMPLE_TEXT])
    model = build_tiny_model(vocab_size=320, context_length=CONTEXT, seed=seed, **shape)
    save_checkpoint(path, model, tok.spec(), training={"step": 0})
    return str(path)


@pytest.fixture(scope="module")
def module_env(tmp_path_factory, shared_measurements):
    """conftest's hermetic environment for the module-scoped fixtures too (they run before its per-test one)."""
    from conftest import HERMETIC_ENV

    with pytest.MonkeyPatch.context() as patch:
        for name, value in HERMETIC_ENV.items():
            patch.setenv(name, value)
        patch.setenv("GPTSCRATCH_HOME", str(tmp_path_factory.mktemp("home")))
        patch.setenv("GPTSCRATCH_MEASUREMENTS", str(shared_measurements))
        yield


@pytest.fixture(scope="module")
def files(tmp_path_factory, module_env):
    """{ckpt (byte tokenizer), char_ckpt (char tokenizer, untied output layer: its greedy text varies instead of
    repeating one character), data, tasks}."""
    root = tmp_path_factory.mktemp("lm_eval")
    data = root / "hellaswag"
    data.mkdir()
    with open(data / "validation.jsonl", "w", encoding="utf-8") as handle:
        for item in ITEMS:
            handle.write(json.dumps({**item, "spaced_endings": [" " + e for e in item["endings"]]}) + "\n")
    tasks = root / "tasks"
    tasks.mkdir()
    # hs_std: lm-eval's HellaSwag layout (" " is the target delimiter; acc_norm divides by the ending's characters).
    # hs_tok: the space belongs to the choice, so acc_norm divides by len(" " + ending) = its byte tokens.
    for name, choices, delimiter in (("hs_std", "endings", " "), ("hs_tok", "spaced_endings", "")):
        (tasks / f"{name}.yaml").write_text(TASK.format(name=name, data=data / "validation.jsonl", choices=choices,
                                                        delimiter=delimiter), encoding="utf-8")
    return {"ckpt": save_tiny(root / "byte", "byte", seed=3),
            "char_ckpt": save_tiny(root / "char", "char", seed=0, tie_weights=False),
            "data": data, "tasks": tasks}


@pytest.fixture(scope="module")
def lm(files):
    from gptscratch.evaluation.harness import GptScratchLM

    return GptScratchLM(checkpoint=files["ckpt"], device="cpu", batch_size=3)


@pytest.fixture(scope="module")
def harness_result(files):
    from gptscratch.evaluation.harness import evaluate_tasks

    return evaluate_tasks(["hs_std", "hs_tok"], checkpoint=files["ckpt"], device="cpu", batch_size=5,
                          include_path=files["tasks"], log_samples=True)


def cli(capsys, monkeypatch, *args):
    return run_cli_in_process(capsys, monkeypatch, *args)


def request(kind: str, *args):
    from lm_eval.api.instance import Instance

    return Instance(request_type=kind, doc={}, arguments=tuple(args), idx=0)


def log_probs_by_hand(model, ids: list[int], scored: int) -> float:
    """Σ log p of the last `scored` ids, each given everything before it (one forward pass, no batching)."""
    import torch

    with torch.no_grad():
        logits, _ = model(torch.tensor([ids[:-1]]))
    log_probs = torch.log_softmax(logits[0].double(), dim=-1)
    targets = torch.tensor(ids[1:])
    return float(log_probs[torch.arange(len(targets)), targets][-scored:].sum())


# -- (1) multiple choice: lm-eval's acc / acc_norm = `gptscratch eval hellaswag` -----------------------------------
@pytest.mark.slow  # lm-eval, datasets and a scored task: ~16 s of the fast suite's 10-minute budget
def test_multiple_choice_equals_gptscratch_hellaswag(files, harness_result, lm, capsys, monkeypatch):
    import torch
    import torch.nn.functional as F

    from gptscratch.evaluation.hellaswag import render_example

    code, out, err = cli(capsys, monkeypatch, "eval", "hellaswag", files["ckpt"], "--source", str(files["data"]),
                         "--json")
    ours = json.loads(out)
    assert code == 0 and ours["examples"] == len(ITEMS), err
    tasks = harness_result["tasks"]
    assert harness_result["samples"] == {"hs_std": len(ITEMS), "hs_tok": len(ITEMS)}
    # The same log-likelihood per choice, so the same argmax: acc agrees in both layouts.
    assert tasks["hs_tok"]["acc"] == tasks["hs_std"]["acc"] == ours["acc"]
    # acc_norm: gptscratch divides by the ending's tokens (" " + ending), lm-eval by the choice's characters.
    assert tasks["hs_tok"]["acc_norm"] == ours["acc_norm"]

    records = {name: sorted(harness_result["records"][name], key=lambda r: r["doc_id"]) for name in tasks}
    norm_by_characters = []
    for item, std, tok in zip(ITEMS, records["hs_std"], records["hs_tok"]):
        # Every choice's log-likelihood is gptscratch's summed ending loss (hellaswag.render_example's rows)...
        tokens, mask = render_example(lm.tokenizer, item, CONTEXT)
        with torch.no_grad():
            logits, _ = lm.model(tokens)
        losses = F.cross_entropy(logits[:, :-1].flatten(0, 1), tokens[:, 1:].flatten(), reduction="none")
        total = (losses.view(len(item["endings"]), -1) * mask[:, 1:]).sum(dim=1)
        for record in (std, tok):
            lls = [response[0] for response in record["filtered_resps"]]
            assert lls == pytest.approx((-total).tolist(), rel=1e-5, abs=1e-4)
        # ... and acc_norm of the standard layout is that log-likelihood divided by the ending's characters.
        scores = [-t / len(e) for t, e in zip(total.tolist(), item["endings"])]
        norm_by_characters.append(scores.index(max(scores)) == item["label"])
        assert std["acc_norm"] == float(norm_by_characters[-1])
    assert tasks["hs_std"]["acc_norm"] == pytest.approx(sum(norm_by_characters) / len(ITEMS))
    # The two definitions do pick differently on these items (0.625 against 0.125 with this seed).
    assert tasks["hs_std"]["acc_norm"] != ours["acc_norm"]


# -- (2) loglikelihood = log-softmax sums by hand; is_greedy = greedy decoding ----------------------------------------
@pytest.mark.slow  # lm-eval, datasets and a scored task: ~16 s of the fast suite's 10-minute budget
def test_loglikelihood_equals_a_direct_computation(lm):
    tok, start = lm.tokenizer, lm.tokenizer.start_id
    long_context = SAMPLE_TEXT[:300]                                  # longer than the context: left-truncated
    cases = {  # request → the (context ids, continuation ids) it must be scored as
        ("The quick brown", " fox"): (tok.encode("The quick brown"), tok.encode(" fox")),
        ("Pack my box ", "with five"): (tok.encode("Pack my box"), tok.encode(" with five")),  # the space moves
        ("", "How vexingly"): ([start], tok.encode("How vexingly")),     # empty context: the start id
        (long_context, " jumps over."): (tok.encode(long_context), tok.encode(" jumps over.")),
        ("a", "b"): (tok.encode("a"), tok.encode("b")),
    }
    results = lm.loglikelihood([request("loglikelihood", *pair) for pair in cases])   # batch_size 3: two batches
    assert [lm.encode_pair(*pair) for pair in cases] == list(cases.values())
    for (context_ids, continuation_ids), (logprob, _) in zip(cases.values(), results):
        ids = (context_ids + continuation_ids)[-(CONTEXT + 1):]
        assert logprob == pytest.approx(log_probs_by_hand(lm.model, ids, len(continuation_ids)), rel=1e-5, abs=1e-4)
    assert len(set(round(r[0], 3) for r in results)) == len(cases)     # five different numbers, not one repeated


@pytest.mark.slow  # lm-eval, datasets and a scored task: ~16 s of the fast suite's 10-minute budget
def test_is_greedy_is_what_greedy_decoding_writes(lm, monkeypatch):
    monkeypatch.setenv("GPTSCRATCH_ACCEL", "0")   # one-row decoding without timing its kernels first (accel/)
    from gptscratch.generation.engine import generate_ids
    from gptscratch.generation.sampling import SamplingConfig

    context = lm.tokenizer.encode("The quick brown fox")
    written = list(generate_ids(lm.model, context, 6, SamplingConfig(temperature=0),
                                vocab_limit=lm.tokenizer.vocab_size))
    other = written[:-1] + [(written[-1] + 1) % lm.tokenizer.vocab_size]
    (greedy_lp, greedy), (other_lp, not_greedy) = lm.score_pairs([(context, written), (context, other)])
    assert greedy is True and not_greedy is False and greedy_lp > other_lp
    assert lm.score_pairs([(context, written[:1])])[0][1] is True


# -- (3) loglikelihood_rolling = eval perplexity (disjoint windows), and the right-aligned last window by hand -------
@pytest.mark.slow  # lm-eval, datasets and a scored task: ~16 s of the fast suite's 10-minute budget
def test_rolling_loglikelihood_equals_eval_perplexity(lm, files, tmp_path, capsys, monkeypatch):
    text = SAMPLE_TEXT[: 3 * CONTEXT]                      # a whole number of windows: both tools cut the same
    path = tmp_path / "text.txt"
    path.write_text(text, encoding="utf-8")
    code, out, _ = cli(capsys, monkeypatch, "eval", "perplexity", files["ckpt"], "--file", str(path),
                       "--stride", str(CONTEXT), "--json")
    row = json.loads(out)
    assert code == 0 and row["tokens"] == len(text) and row["windows"] == 3
    (total,) = lm.loglikelihood_rolling([request("loglikelihood_rolling", text)])
    assert -total == pytest.approx(row["loss"] * row["tokens"], rel=1e-5)


@pytest.mark.slow  # lm-eval, datasets and a scored task: ~16 s of the fast suite's 10-minute budget
def test_rolling_windows_score_each_token_once_with_a_full_last_window(lm):
    text = SAMPLE_TEXT[:300]
    tokens, start = lm.tokenizer.encode(text), lm.tokenizer.start_id
    windows = lm.rolling_windows(text)
    assert [len(scored) for _, scored in windows] == [128, 128, 44]
    assert [t for _, scored in windows for t in scored] == tokens
    (total,) = lm.loglikelihood_rolling([request("loglikelihood_rolling", text)])
    by_hand = (log_probs_by_hand(lm.model, [start] + tokens[:128], 128)            # BOS/EOT + the first 127
               + log_probs_by_hand(lm.model, tokens[127:256], 128)
               + log_probs_by_hand(lm.model, tokens[300 - 129:300], 44))         # a full 128-token context
    assert total == pytest.approx(by_hand, rel=1e-5)
    assert lm.loglikelihood_rolling([request("loglikelihood_rolling", "")]) == [0]


# -- (4) generate_until = the greedy engine, cut before `until` -----------------------------------------------------
@pytest.mark.slow  # lm-eval, datasets and a scored task: ~16 s of the fast suite's 10-minute budget
def test_generate_until_is_greedy_generation_cut_at_until(files, monkeypatch):
    from gptscratch.evaluation.harness import GptScratchLM
    from gptscratch.generation.engine import generate_ids
    from gptscratch.generation.sampling import SamplingConfig

    monkeypatch.setenv("GPTSCRATCH_ACCEL", "0")   # one-row decoding without timing its kernels first (accel/)
    lm = GptScratchLM(checkpoint=files["char_ckpt"], device="cpu", batch_size=3)
    tok = lm.tokenizer

    def greedy(prompt: str, n: int) -> str:   # one prompt at a time (no padding), no stop strings
        ids = generate_ids(lm.model, tok.prompt_ids(prompt), n, SamplingConfig(temperature=0),
                           stop_ids=(tok.eot_id,), vocab_limit=tok.vocab_size)
        return tok.decode(list(ids))

    prompts = ["The quick brown fox", "Pack", "How vexingly quick daft zebras"]   # left-padded into one batch
    full = [greedy(p, 12) for p in prompts]
    until = [full[0][5:7], full[2][3]]          # text greedy decoding does write; one stop string of two characters
    requests = [request("generate_until", p, {"until": until, "max_gen_toks": 12, "do_sample": False})
                for p in prompts]
    requests += [request("generate_until", p, {"max_gen_toks": 7, "temperature": 0.0}) for p in prompts[:2]]
    outputs = lm.generate_until(requests)

    def cut(text: str) -> str:                  # lm-eval's own reading of `until`: text before the first stop
        for stop in until:
            text = text.split(stop)[0]
        return text

    assert outputs[:3] == [cut(f) for f in full]
    assert len(outputs[0]) <= 5 and len(outputs[2]) <= 3 and outputs != full       # the stops did cut
    assert outputs[3:] == [greedy(p, 7) for p in prompts[:2]] and all(len(o) <= 7 for o in outputs[3:])
    settings = lm.generation_settings({"do_sample": True, "temperature": 0.7, "top_k": 5, "until": "\n\n"})
    assert settings.sampling.temperature == 0.7 and settings.stop_strings == ("\n\n",) and settings.seed is not None


# -- model arguments, registration, bad input -------------------------------------------------------------------------
@pytest.mark.slow  # lm-eval, datasets and a scored task: ~16 s of the fast suite's 10-minute budget
def test_the_model_is_registered_by_name_and_refuses_unknown_arguments(files):
    from lm_eval.api.registry import get_model, model_registry

    from gptscratch.errors import UsageError
    from gptscratch.evaluation.harness import GptScratchLM

    assert get_model("gptscratch") is GptScratchLM
    assert "hf" in model_registry and "vllm" in model_registry       # lm-eval's own names are still there
    made = GptScratchLM.create_from_arg_string(f"checkpoint={files['ckpt']},dtype=float32",
                                               {"batch_size": "auto:4", "device": "cpu"})
    assert made.batch_size == 16 and made.dtype == "fp32" and made.max_length == CONTEXT
    for bad, message in [("pretrained=gpt2", "unknown gptscratch model argument"), ("dtype=int8", "dtype"),
                         ("batch_size=0", "batch size")]:
        with pytest.raises(UsageError, match=message):
            GptScratchLM.create_from_arg_string(f"checkpoint={files['ckpt']},{bad}", {"device": "cpu"})
    with pytest.raises(UsageError, match="not supported"):
        made.generation_settings({"num_beams": 4})


@pytest.mark.parametrize("args, message", [
    (["--tasks", "hs_std", "--include-path", "/no/such/folder"], "--include-path"),
    (["--tasks", "hs_std", "--limit", "0"], "--limit"),
    (["--tasks", " , "], "--tasks is empty"),
    (["--tasks", "hs_std", "--num-fewshot", "-1"], "--num-fewshot"),
])
def test_bad_harness_input_is_one_line_and_exit_2(args, message, capsys, monkeypatch):
    code, out, err = cli(capsys, monkeypatch, "eval", "harness", *args)
    lines = err.strip().splitlines()
    assert code == 2 and out == "" and len(lines) == 1 and message in lines[0], err


def test_without_lm_eval_the_command_names_the_extra(capsys, monkeypatch):
    monkeypatch.delitem(sys.modules, "gptscratch.evaluation.harness", raising=False)
    monkeypatch.setitem(sys.modules, "lm_eval", None)     # what an environment without lm-eval looks like
    code, out, err = cli(capsys, monkeypatch, "eval", "harness", "--tasks", "hellaswag")
    assert code == 2 and err.count("\n") == 1 and "gptscratch[harness]" in err, err


# -- (5) and (6): the command lines, end to end (subprocesses) ------------------------------------------------------
@pytest.mark.slow
def test_eval_harness_command_json_and_unknown_task(files, harness_result, run_cli):
    result = run_cli("--device", "cpu", "eval", "harness", "--tasks", "hs_std,hs_tok", "--checkpoint", files["ckpt"],
                     "--include-path", str(files["tasks"]), "--json")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["tasks"] == harness_result["tasks"] and answer["samples"] == harness_result["samples"]
    table = run_cli("--device", "cpu", "eval", "harness", "--tasks", "hs_tok", "--checkpoint", files["ckpt"],
                    "--include-path", str(files["tasks"]), "--limit", "4")
    assert table.returncode == 0 and "acc_norm" in table.stdout and "hs_tok" in table.stdout, table.stderr
    unknown = run_cli("--device", "cpu", "eval", "harness", "--tasks", "no_such_task_xyz", "--checkpoint",
                      files["ckpt"], "--include-path", str(files["tasks"]))
    errors = [line for line in unknown.stderr.splitlines() if line.startswith("error:")]
    assert unknown.returncode == 2 and len(errors) == 1 and "no_such_task_xyz" in errors[0], unknown.stderr
    assert "Traceback" not in unknown.stderr


@pytest.mark.slow
def test_lm_eval_command_line_with_model_gptscratch(files, harness_result, tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])))
    result = subprocess.run(
        [sys.executable, "-m", "gptscratch.evaluation.harness", "--model", "gptscratch",
         "--model_args", f"checkpoint={files['ckpt']}", "--tasks", "hs_std", "--include_path", str(files["tasks"]),
         "--device", "cpu", "--batch_size", "4", "--output_path", str(tmp_path / "out")],
        capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    (saved,) = (tmp_path / "out").rglob("results_*.json")
    metrics = json.loads(saved.read_text(encoding="utf-8"))["results"]["hs_std"]
    assert metrics["acc,none"] == harness_result["tasks"]["hs_std"]["acc"]
    assert metrics["acc_norm,none"] == harness_result["tasks"]["hs_std"]["acc_norm"]
    assert "gptscratch (" in result.stdout and "hs_std" in result.stdout
