"""Release check: build the wheel and sdist, install the wheel into a fresh virtual environment, use it.

What a user gets from `pip install gptscratch` is the wheel, not this checkout: a module left out of the
package, a missing dependency or a broken entry point only shows up here. Slow (≈ 1–2 min: a venv, torch
and the dependencies from the local wheel cache/PyPI), so it is marked slow: `pytest -m slow tests/test_release.py`.

torch is installed first and pinned to the version running these tests, so pip never pulls a multi-GB CUDA
build; set TORCH_INDEX (e.g. https://download.pytorch.org/whl/cpu) where no local CPU wheel exists.
The commands run from a scratch folder, so the checkout's `gptscratch/` cannot shadow the installed package.
"""

import json
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from gptscratch import __version__

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def run(*args, cwd, env=None, timeout=900):
    result = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, f"{args} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    return result


def test_wheel_installs_into_a_fresh_venv_and_trains(tmp_path):
    pytest.importorskip("build")
    import torch

    dist = tmp_path / "dist"
    run(sys.executable, "-m", "build", "--outdir", dist, REPO, cwd=tmp_path)
    wheels, sdists = list(dist.glob("*.whl")), list(dist.glob("*.tar.gz"))
    assert [w.name for w in wheels] == [f"gptscratch-{__version__}-py3-none-any.whl"]
    assert [s.name for s in sdists] == [f"gptscratch-{__version__}.tar.gz"]
    names = zipfile.ZipFile(wheels[0]).namelist()
    for module in ("gptscratch/cli/__init__.py", "gptscratch/model/gpt.py", "gptscratch/manual/gpt.py",
                   "gptscratch/cli/guided.py"):
        assert module in names
    assert not any(name.startswith("tests/") for name in names)
    with tarfile.open(sdists[0]) as sdist:
        assert f"gptscratch-{__version__}/tests/test_release.py" in sdist.getnames()

    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    bin_dir = venv / ("Scripts" if os.name == "nt" else "bin")
    pip = [bin_dir / "python", "-m", "pip", "install", "-q"]
    torch_version = torch.__version__.split("+")[0]
    index = ["--index-url", os.environ["TORCH_INDEX"]] if os.environ.get("TORCH_INDEX") else []
    run(*pip, f"torch=={torch_version}", *index, cwd=tmp_path)
    run(*pip, wheels[0], cwd=tmp_path)

    work = tmp_path / "scratch"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(GPTSCRATCH_HOME=str(tmp_path / "home"), GPTSCRATCH_DEVICE="cpu", COLUMNS="200")
    exe = bin_dir / "gptscratch"
    assert run(exe, "--version", cwd=work, env=env).stdout.strip() == f"gptscratch {__version__}"
    located = run(bin_dir / "python", "-c", "import gptscratch; print(gptscratch.__file__)", cwd=work, env=env)
    assert str(venv) in located.stdout  # the installed copy, not the checkout
    info = json.loads(run(exe, "info", "--json", cwd=work, env=env).stdout)
    assert info["versions"]["gptscratch"] == __version__ and info["versions"]["torch"].startswith(torch_version)
    assert info["paths"]["cache"] == str(tmp_path / "home")

    corpus = work / "corpus.txt"
    corpus.write_text("The quick brown fox jumps over the lazy dog. " * 200, encoding="utf-8")
    run(exe, "train", "--data", corpus, "--tokenizer", "byte", "--size", "tiny", "--context-length", "32",
        "--batch-size", "4", "--max-steps", "4", "--eval-every", "4", "--eval-batches", "1", "--out", "run",
        cwd=work, env=env)
    assert (work / "run" / "latest" / "model.safetensors").is_file()
    sample = json.loads(run(exe, "generate", "-c", "run", "--prompt", "The ", "--max-tokens", "16",
                            "--seed", "1", "--json", cwd=work, env=env).stdout)
    assert sample["completion_tokens"] > 0 and sample["prompt"] == "The "
