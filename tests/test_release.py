"""Release check: build the wheel and sdist, install the wheel the way the README tells users to, use it.

What a user gets from `pipx install gptscratch` is the wheel, not this checkout: a module left out of the
package, a missing dependency or a broken entry point only shows up here. Two install routes share one set of
checks (`--version`, `info --json`, a tiny `train`, `generate`, run through the installed `gptscratch`
executable from a scratch folder, so the checkout's `gptscratch/` cannot shadow the installed package):

  pipx  `pipx install --preinstall torch==X wheel` into a PIPX_HOME / PIPX_BIN_DIR / PIPX_MAN_DIR under
        tmp_path (never the user's), the command the README gives. Runs when pipx ≥ 1.3 (the first with
        `--preinstall`) is importable by this interpreter or on PATH; the `test` extra installs it.
  venv  `python -m venv` + `pip install torch==X` + `pip install wheel`: the fallback where pipx is absent.
        Skipped when the pipx route runs (each install + checks takes ≈ 45 s on 2 shared cores with torch's
        CPU wheel cached locally, and the slow suite has a time budget); GPTSCRATCH_RELEASE_ALL_ROUTES=1 runs both.

torch is installed first and pinned to the version running these tests, so pip never pulls a multi-GB CUDA
build; set TORCH_INDEX (e.g. https://download.pytorch.org/whl/cpu) where no local CPU wheel exists. pipx is
told to use its pip backend, so pip's own configuration (find-links, constraints) applies as in the venv route.
Marked slow: `pytest -m slow tests/test_release.py`.
"""

import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from gptscratch import __version__

REPO = Path(__file__).resolve().parent.parent
BIN = "Scripts" if os.name == "nt" else "bin"
pytestmark = pytest.mark.slow


def run(*args, cwd, env=None, timeout=900):
    result = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, f"{args} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    return result


def pipx_command() -> list[str] | None:
    """How to run a pipx that can pin torch before the wheel (`install --preinstall`), or None.

    The running interpreter's pipx comes first (the `test` extra's, so its version is the one pyproject asks
    for); a pipx on PATH is the fallback. An older pipx without --preinstall counts as absent: installing
    through it would let pip choose torch.
    """
    candidates = [[sys.executable, "-m", "pipx"]]
    if on_path := shutil.which("pipx"):
        candidates.append([on_path])
    for command in candidates:
        try:
            help_text = subprocess.run([*command, "install", "--help"], capture_output=True, text=True,
                                       timeout=120)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if help_text.returncode == 0 and "--preinstall" in help_text.stdout:
            return command
    return None


def torch_pin() -> tuple[str, str | None]:
    """("torch==<version running these tests>", TORCH_INDEX or None)."""
    import torch

    return f"torch=={torch.__version__.split('+')[0]}", os.environ.get("TORCH_INDEX") or None


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(extra)
    return env


def install_with_venv(wheel: Path, tmp_path: Path) -> tuple[Path, Path, Path]:
    """Plain venv + pip; returns (gptscratch executable, the environment's python, the environment's root)."""
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    pip = [venv / BIN / "python", "-m", "pip", "install", "-q"]
    torch_spec, index = torch_pin()
    run(*pip, torch_spec, *(["--index-url", index] if index else []), cwd=tmp_path, env=clean_env())
    run(*pip, wheel, cwd=tmp_path, env=clean_env())
    return venv / BIN / "gptscratch", venv / BIN / "python", venv


def install_with_pipx(pipx: list[str], wheel: Path, tmp_path: Path) -> tuple[Path, Path, Path]:
    """`pipx install` into folders under tmp_path; returns what install_with_venv returns.

    --preinstall installs torch alone, pinned, before the wheel, so resolving the wheel's `torch>=2.4` finds
    it satisfied. pipx hands the same pip arguments to both installs, so TORCH_INDEX goes in as an *extra*
    index here (the venv route can replace the index for torch alone): the CPU index's `X+cpu` sorts above
    PyPI's `X` (a local version label ranks higher), so pip still takes the CPU build.
    """
    pipx_home, bin_dir = tmp_path / "pipx-home", tmp_path / "pipx-bin"
    env = clean_env(PIPX_HOME=str(pipx_home), PIPX_BIN_DIR=str(bin_dir), PIPX_MAN_DIR=str(tmp_path / "pipx-man"),
                    PIPX_DEFAULT_BACKEND="pip",  # a uv backend would ignore pip's find-links/constraints
                    USE_EMOJI="0")
    torch_spec, index = torch_pin()
    pip_args = [f"--pip-args=--extra-index-url {index}"] if index else []
    run(*pipx, "install", "--python", sys.executable, "--preinstall", torch_spec, *pip_args, wheel,
        cwd=tmp_path, env=env)
    listed = run(*pipx, "list", "--short", cwd=tmp_path, env=env).stdout.split()
    assert listed[:2] == ["gptscratch", __version__], f"pipx list --short: {listed}"
    venv = pipx_home / "venvs" / "gptscratch"
    return bin_dir / ("gptscratch.exe" if os.name == "nt" else "gptscratch"), venv / BIN / "python", venv


def check_installed_app(route: str, exe: Path, python: Path, prefix: Path, tmp_path: Path) -> None:
    """The checks both routes share: the installed executable answers, reports itself, trains and generates."""
    _, torch_version = torch_pin()[0].split("==")
    work = tmp_path / "scratch"
    work.mkdir()
    env = clean_env(GPTSCRATCH_HOME=str(tmp_path / "home"), GPTSCRATCH_DEVICE="cpu", COLUMNS="200")
    version = run(exe, "--version", cwd=work, env=env).stdout.strip()
    assert version == f"gptscratch {__version__}", f"{route}: {exe} --version printed {version!r}"
    located = run(python, "-c", "import gptscratch; print(gptscratch.__file__)", cwd=work, env=env).stdout
    assert str(prefix) in located, f"{route}: imported {located.strip()}, not the copy installed in {prefix}"
    info = json.loads(run(exe, "info", "--json", cwd=work, env=env).stdout)
    assert info["versions"]["gptscratch"] == __version__, f"{route}: {info['versions']}"
    assert info["versions"]["torch"].startswith(torch_version), f"{route}: torch not pinned: {info['versions']}"
    assert info["paths"]["cache"] == str(tmp_path / "home"), f"{route}: {info['paths']}"

    corpus = work / "corpus.txt"
    corpus.write_text("The quick brown fox jumps over the lazy dog. " * 200, encoding="utf-8")
    run(exe, "train", "--data", corpus, "--tokenizer", "byte", "--size", "tiny", "--context-length", "32",
        "--batch-size", "4", "--max-steps", "4", "--eval-every", "4", "--eval-batches", "1", "--out", "run",
        cwd=work, env=env)
    assert (work / "run" / "latest" / "model.safetensors").is_file(), f"{route}: train wrote no checkpoint"
    sample = json.loads(run(exe, "generate", "-c", "run", "--prompt", "The ", "--max-tokens", "16",
                            "--seed", "1", "--json", cwd=work, env=env).stdout)
    assert sample["completion_tokens"] > 0 and sample["prompt"] == "The ", f"{route}: {sample}"


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    """`python -m build` of this checkout, once for the module: the folder holding the wheel and the sdist."""
    pytest.importorskip("build")
    out = tmp_path_factory.mktemp("dist")
    run(sys.executable, "-m", "build", "--outdir", out, REPO, cwd=out)
    return out


def test_wheel_and_sdist_hold_the_package_and_only_the_package(dist):
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


@pytest.mark.parametrize("route", ["pipx", "venv"])
def test_installed_wheel_runs_trains_and_generates(route, dist, tmp_path):
    pipx = pipx_command()
    if route == "pipx" and pipx is None:
        pytest.skip("no pipx with `install --preinstall` (pipx >= 1.3): `pip install pipx` or `.[test]`")
    if route == "venv" and pipx is not None and not os.environ.get("GPTSCRATCH_RELEASE_ALL_ROUTES"):
        pytest.skip("pipx is available, so its route covers the install; GPTSCRATCH_RELEASE_ALL_ROUTES=1 runs both")
    wheel = next(dist.glob("*.whl"))
    if route == "pipx":
        installed = install_with_pipx(pipx, wheel, tmp_path)
    else:
        installed = install_with_venv(wheel, tmp_path)
    check_installed_app(route, *installed, tmp_path)
