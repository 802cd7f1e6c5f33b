"""`gptscratch learn`: one exercise per lesson, checked against gptscratch's own implementation.

For every exercise the shipped solution passes every check and the stub fails every one of them — each by its
NotImplementedError, reported as a failed check rather than an import error; a typical mistake in each exercise
is caught with a message saying what was expected and what came back; every lesson has exactly one exercise;
and the command line runs start → check (fails) → solution copied → check (passes) with its exit codes.
"""

from __future__ import annotations

import ast
import json
import shutil
import sys
from pathlib import Path

import pytest

from gptscratch.errors import UsageError
from gptscratch.learn import EXERCISES, find_exercise, normalize_id
from gptscratch.learn.checking import checks_of, run_checks
from helpers import run_cli_in_process

LESSONS = Path(__file__).resolve().parent.parent / "docs" / "lessons"
IDS = [exercise.id for exercise in EXERCISES]


@pytest.mark.parametrize("exercise_id", IDS)
def test_the_solution_passes_every_check(exercise_id):
    exercise = find_exercise(exercise_id)
    results = run_checks(exercise, exercise.solution_path)
    assert len(results) == len(checks_of(exercise)) >= 3
    assert [(r.name, r.message) for r in results if not r.passed] == []


@pytest.mark.parametrize("exercise_id", IDS)
def test_the_stub_fails_every_check_because_it_is_not_written(exercise_id, tmp_path):
    exercise = find_exercise(exercise_id)
    stub = tmp_path / exercise.filename
    stub.write_text(exercise.stub_text(), encoding="utf-8")
    results = run_checks(exercise, stub)
    assert [r.name for r in results] == [name for name, _ in checks_of(exercise)]   # imported: every check ran
    for result in results:
        assert not result.passed
        assert "is not written yet (it raises NotImplementedError)" in result.message, result


def _functions(source: str) -> dict[str, tuple[list[str], str]]:
    tree = ast.parse(source)
    return {node.name: ([a.arg for a in node.args.args], ast.get_docstring(node))
            for node in tree.body if isinstance(node, ast.FunctionDef)}


@pytest.mark.parametrize("exercise_id", IDS)
def test_stub_and_solution_ask_for_the_same_functions_with_a_reference(exercise_id):
    exercise = find_exercise(exercise_id)
    stub_text = exercise.stub_text()
    stub, solution = _functions(stub_text), _functions(exercise.solution_path.read_text(encoding="utf-8"))
    assert stub == solution
    assert tuple(stub) == exercise.functions
    for name, (_, docstring) in stub.items():
        assert "Reference: " in docstring, name
        assert f"def {name}" not in docstring
    assert exercise.solution_path.name == exercise.filename
    assert f"gptscratch learn check {exercise.id}" in stub_text and "a solution" not in stub_text
    bodies = [node.body[1:] for node in ast.parse(stub_text).body if isinstance(node, ast.FunctionDef)]
    assert all(len(body) == 1 and isinstance(body[0], ast.Raise) for body in bodies)   # nothing given away


def test_every_lesson_has_exactly_one_exercise():
    lessons = sorted(LESSONS.glob("[0-9][0-9]*-*.md"))
    assert len(lessons) == len(EXERCISES) == 16
    for lesson in lessons:
        number = lesson.name.split("-", 1)[0]
        assert [e.lesson for e in EXERCISES if e.id == number] == [lesson.name]
    assert sorted(e.lesson for e in EXERCISES) == [lesson.name for lesson in lessons]


def test_ids_are_accepted_with_or_without_the_leading_zero():
    assert [normalize_id(raw) for raw in ("3", "03", "1b", "01B", " 15 ", "003")] == ["03", "03", "01b", "01b",
                                                                                      "15", "03"]
    for bad in ("16", "2b", "b", "", "3.0", "lesson3"):
        with pytest.raises(UsageError, match="the exercises are 01, 01b, 02"):
            normalize_id(bad)


# A typical mistake per exercise, made in the solution's text: (exercise, the correct line, the mistaken line, a
# phrase the failing check's message must hold).
MISTAKES = [
    ("01", "return table[ids]", "return table[ids] * 1.0 + 0.5", "embed(ids, E)"),
    ("01b", "return min(totals, key=lambda pair: (-totals[pair], pair))", "return max(totals, key=totals.get)",
     "most_frequent_pair([[3, 4], [1, 2]], counts=[5, 5]): expected (1, 2), got (3, 4)"),
    ("02", "torch.stack((angles.sin(), angles.cos()), dim=-1)", "torch.stack((angles.cos(), angles.sin()), dim=-1)",
     "sinusoidal_positions(arange(16), 32)[0, 0]: expected 0, got 1"),
    ("03", "/ math.sqrt(q.size(-1))", "", "weights (no mask)[0, 0, 0, 0]: expected"),
    ("04", "<= torch.arange(query_len)[:, None] + offset", "<= torch.arange(query_len)[:, None]",
     "causal_mask(1, 5): expected [[1, 1, 1, 1, 1]], got [[1, 0, 0, 0, 0]]"),
    ("05", "var = ((x - mean) ** 2).mean(-1, keepdim=True)", "var = x.var(-1, keepdim=True)",
     "layer_norm(x, γ, β)"),
    ("06", "return x + mlp(ln_2(x))", "return ln_2(x + mlp(x))", "pre_norm_block(x, …)"),
    ("07", "return -picked.mean()", "return -picked.sum() / targets.numel()",
     "cross_entropy(3 of 10 targets −1): expected"),
    ("08", "(g_hat - g_hat.mean(-1, keepdim=True) - x_hat", "(g_hat - x_hat", "layer_norm_backward grad_x"),
    ("09", "m_hat = m / (1 - beta1 ** step)", "m_hat = m", "the weight after step 1"),
    ("10", "[g * scale for g in grads]", "[g * min(1.0, max_norm / (g.norm().item() + 1e-6)) for g in grads]",
     "gradient 0 (shapes (2, 2) and (50,), max 0.5)"),
    ("11", "before = probs.cumsum(dim=-1) - probs", "before = probs.cumsum(dim=-1)",
     "top_p_filter(4 × 50 logits, p=0.5) row 0: expected to keep"),
    ("12", "fresh = nll[scored_until - begin:]", "fresh = nll", "sliding_window_loss("),
    ("13", "queries - length + 1]", "queries - length]", "induction_score(pattern, length=6, offset=1)"),
    ("14", "kv.repeat_interleave(groups, dim=1)", "kv.repeat(1, groups, 1, 1)",
     "repeat_kv(kv with 2 heads, groups=3)"),
    ("15", "(alpha / lora_A.shape[0]) * (x @ lora_A.T)", "alpha * (x @ lora_A.T)", "lora_linear(x, …)"),
]


def test_every_exercise_has_a_mistake_to_catch():
    assert sorted(m[0] for m in MISTAKES) == sorted(IDS)


@pytest.mark.parametrize("exercise_id, correct, mistaken, phrase", MISTAKES, ids=[m[0] for m in MISTAKES])
def test_a_typical_mistake_is_caught_with_expected_and_got(exercise_id, correct, mistaken, phrase, tmp_path):
    exercise = find_exercise(exercise_id)
    source = exercise.solution_path.read_text(encoding="utf-8")
    assert source.count(correct) == 1
    learner = tmp_path / exercise.filename
    learner.write_text(source.replace(correct, mistaken), encoding="utf-8")
    failed = [r for r in run_checks(exercise, learner) if not r.passed]
    assert failed, "the mistake went unnoticed"
    assert any(phrase in r.message for r in failed), [r.message for r in failed]
    for result in failed:
        assert "expected" in result.message and ("got" in result.message or "raised" in result.message), result
        assert "\n" not in result.message and len(result.message) < 400


def test_top_p_keeping_one_token_too_few_says_which_tokens(tmp_path):
    exercise = find_exercise("11")
    learner = tmp_path / exercise.filename
    learner.write_text(exercise.solution_path.read_text(encoding="utf-8").replace(
        "before = probs.cumsum(dim=-1) - probs", "before = probs.cumsum(dim=-1)"), encoding="utf-8")
    message = next(r.message for r in run_checks(exercise, learner) if not r.passed)
    expected = int(message.split("expected to keep ")[1].split(" ")[0])
    got = int(message.split(", got ")[1].split(" ")[0])
    assert got == expected - 1, message


def test_broken_learner_files_are_failed_checks_not_crashes(tmp_path):
    exercise = find_exercise("03")
    learner = tmp_path / exercise.filename
    learner.write_text("def attention(q, k, v, mask=None)\n    return q\n", encoding="utf-8")
    (result,) = run_checks(exercise, learner)
    assert not result.passed and result.name == "import ex03_attention.py"
    assert result.message.startswith("ex03_attention.py:1: SyntaxError")

    learner.write_text("def attend(q, k, v, mask=None):\n    return q, q\n", encoding="utf-8")
    messages = {r.message for r in run_checks(exercise, learner)}
    assert messages == {"ex03_attention.py defines no `attention`; keep the stub's function names"}

    learner.write_text("import torch\n\ndef attention(q, k, v, mask=None):\n    return q @ k, None\n",
                       encoding="utf-8")
    message = run_checks(exercise, learner)[0].message
    assert message.startswith("raised RuntimeError at ex03_attention.py:4 in `attention`: "), message


# -- the command line ----------------------------------------------------------------------------------------------
def test_start_check_solution_check(capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    exercise = find_exercise("03")
    code, out, err = run_cli_in_process(capsys, monkeypatch, "learn", "start", "3")
    work = Path("gptscratch-exercises") / "ex03_attention.py"
    assert code == 0 and out.strip() == str(work) and "gptscratch learn check 03" in err
    assert work.read_text(encoding="utf-8") == exercise.stub_text()

    code, out, err = run_cli_in_process(capsys, monkeypatch, "learn", "check", "03")
    assert code == 1
    assert out.count("FAIL") == len(checks_of(exercise)) and "NotImplementedError" in out
    assert "0 of 4 checks pass" in err and "gptscratch learn hint 03" in err

    code, out, _ = run_cli_in_process(capsys, monkeypatch, "learn", "check", "3", "--json")
    report = json.loads(out)
    assert code == 1 and report["passed"] is False and report["id"] == "03"
    assert [c["passed"] for c in report["checks"]] == [False] * len(checks_of(exercise))

    code, out, _ = run_cli_in_process(capsys, monkeypatch, "learn", "list")
    assert code == 0 and "0/4 pass" in out

    shutil.copyfile(exercise.solution_path, work)
    code, out, err = run_cli_in_process(capsys, monkeypatch, "learn", "check", "03")
    assert code == 0 and out.count("pass") >= len(checks_of(exercise)) and "FAIL" not in out
    assert "all 4 checks pass" in err and "gptscratch learn start 04" in err
    code, out, _ = run_cli_in_process(capsys, monkeypatch, "learn", "check", "3", "--json")
    assert code == 0 and json.loads(out)["passed"] is True

    code, out, err = run_cli_in_process(capsys, monkeypatch, "learn", "list", "--json")
    rows = {row["id"]: row for row in json.loads(out)}
    assert rows["03"]["status"] == "passed 4/4" and rows["04"]["status"] == "not started"
    assert rows["01b"]["url"].endswith("/lessons/01b-byte-pair-encoding/")


def test_start_never_overwrites_the_learners_work_without_force(capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert run_cli_in_process(capsys, monkeypatch, "learn", "start", "1b", "--dir", "work")[0] == 0
    work = Path("work") / "ex01b_bpe.py"
    work.write_text("# my work\n", encoding="utf-8")
    code, out, err = run_cli_in_process(capsys, monkeypatch, "learn", "start", "01b", "--dir", "work")
    assert code == 2 and out == "" and "--force" in err and "Traceback" not in err
    assert work.read_text(encoding="utf-8") == "# my work\n"
    code, _, _ = run_cli_in_process(capsys, monkeypatch, "learn", "start", "01b", "--dir", "work", "--force")
    assert code == 0 and work.read_text(encoding="utf-8") == find_exercise("01b").stub_text()


def test_bad_ids_and_missing_files_exit_2_with_the_fix(capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    for args in (("check", "99"), ("start", "2b"), ("hint", "x"), ("solution", "16")):
        code, out, err = run_cli_in_process(capsys, monkeypatch, "learn", *args)
        assert code == 2 and out == "" and err.startswith("error: no exercise") and err.count("\n") == 1
    code, _, err = run_cli_in_process(capsys, monkeypatch, "learn", "check", "2")
    assert code == 2 and "run `gptscratch learn start 02` first" in err
    code, _, err = run_cli_in_process(capsys, monkeypatch, "learn", "check", "2", "--dir", "my work")
    assert code == 2 and "run `gptscratch learn start 02 --dir 'my work'` first" in err
    assert not Path("gptscratch-exercises").exists()


def test_hint_solution_and_checking_the_shipped_solution(capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    code, out, _ = run_cli_in_process(capsys, monkeypatch, "learn", "hint", "1b")
    assert code == 0 and find_exercise("01b").hint in out and "raise NotImplementedError" not in out
    code, out, _ = run_cli_in_process(capsys, monkeypatch, "learn", "solution", "15")
    assert code == 0 and out == find_exercise("15").solution_path.read_text(encoding="utf-8")
    code, out, _ = run_cli_in_process(capsys, monkeypatch, "learn", "check", "10", "--solution")
    assert code == 0 and "FAIL" not in out and not Path("gptscratch-exercises").exists()
    code, out, _ = run_cli_in_process(capsys, monkeypatch, "learn", "list")
    assert code == 0 and all(f" {e.id} " in out for e in EXERCISES) and "status" not in out


def test_one_exercise_may_import_another_from_the_work_folder(tmp_path):
    shutil.copyfile(find_exercise("03").solution_path, tmp_path / "ex03_attention.py")
    learner = tmp_path / "ex04_multi_head.py"
    solution = find_exercise("04").solution_path.read_text(encoding="utf-8")
    learner.write_text(solution.replace("import torch\n", "import torch\nfrom ex03_attention import attention\n", 1)
                       .replace("heads = torch.softmax(scores, dim=-1) @ v",
                                "heads, _ = attention(q, k, v, causal_mask(T, T))"), encoding="utf-8")
    text = learner.read_text(encoding="utf-8")
    assert "from ex03_attention import attention" in text and "heads, _ = attention(q, k, v" in text
    assert all(r.passed for r in run_checks(find_exercise("04"), learner))
    assert "ex03_attention" not in sys.modules and str(tmp_path) not in sys.path   # nothing left behind
    # a sibling imported when the function runs, not when the file loads, is found too
    learner.write_text(text.replace("from ex03_attention import attention\n", "").replace(
        "heads, _ = attention(q, k, v", "from ex03_attention import attention\n    heads, _ = attention(q, k, v"),
        encoding="utf-8")
    assert all(r.passed for r in run_checks(find_exercise("04"), learner))
    assert "ex03_attention" not in sys.modules


def test_a_stub_is_the_solution_with_the_bodies_emptied():
    from gptscratch.learn.stub import make_stub

    solution = ('"""Exercise 99 — a test (x.md): a\nsolution."""\n\nimport math\n\n\n'
                'def f(x):\n    """Square it."""\n    y = x * x\n    return y\n\n\n'
                'def g(x, *, k=2):\n    """Keep it."""\n    return x\n')
    assert make_stub(solution, ("f",)) == ('"""Exercise 99 — a test (x.md)."""\n\nimport math\n\n\n'
                                           'def f(x):\n    """Square it."""\n    raise NotImplementedError\n\n\n'
                                           'def g(x, *, k=2):\n    """Keep it."""\n    return x\n')
    with pytest.raises(ValueError, match="defines no h"):
        make_stub(solution, ("h",))
    with pytest.raises(ValueError, match="no docstring"):
        make_stub("def f(x):\n    return x\n", ("f",))
