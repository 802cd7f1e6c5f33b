"""The CUDA paths: the same claims the CPU tests make, checked on a GPU (skipped where there is none).

CI has no GPU, so these run when a developer has one (`pytest tests/test_cuda.py`): the fused attention kernel
equals the written-out math on the device, the KV cache decodes exactly what a full forward computes, bf16
autocast and fused AdamW train, `--compile` runs, a checkpoint written on the GPU loads on the CPU, and the CLI
picks CUDA by itself (CUDA > MPS > CPU).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gptscratch.model import attention_explicit
from helpers import write_corpus

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("dtype,atol", [(torch.float32, 1e-5), (torch.bfloat16, 2e-2)])
def test_fused_attention_equals_written_out_math_on_cuda(dtype, atol):
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 4, 48, 16, device="cuda", dtype=dtype) for _ in range(3))
    reference, _ = attention_explicit(q.double(), k.double(), v.double(), mask=None)
    fused = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    explicit, _ = attention_explicit(q, k, v, mask=None)
    torch.testing.assert_close(fused.double(), reference, atol=atol, rtol=0)
    torch.testing.assert_close(explicit.double(), reference, atol=atol, rtol=0)


@pytest.mark.parametrize("positional", ["learned", "rope"])
def test_kv_cache_matches_full_forward_on_cuda(positional, tiny_model):
    model = tiny_model(positional=positional, context_length=64, device="cuda")     # 40 tokens fit
    idx = torch.randint(0, model.config.vocab_size, (2, 40), device="cuda")
    with torch.no_grad():
        full, _ = model(idx)
        cache = model.new_kv_cache(batch=2)
        pieces = [model(idx[:, :7], kv_cache=cache)[0]]
        pieces += [model(idx[:, t:t + 1], kv_cache=cache)[0] for t in range(7, 40)]
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, atol=1e-4, rtol=0)


def test_cuda_and_cpu_forward_agree(tiny_model):
    model = tiny_model(device="cuda")
    idx = torch.randint(0, model.config.vocab_size, (2, 32))
    with torch.no_grad():
        on_gpu = model(idx.cuda())[0].cpu()
        on_cpu = model.cpu()(idx)[0]
    torch.testing.assert_close(on_gpu, on_cpu, atol=1e-4, rtol=0)


def run_cli(*args, env_extra=None):
    env = dict(os.environ, PYTHONPATH=str(REPO), **(env_extra or {}))
    env.pop("GPTSCRATCH_DEVICE", None)
    return subprocess.run([sys.executable, "-m", "gptscratch", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=600)


@pytest.mark.parametrize("extra", [["--no-compile"], ["--compile"]], ids=["eager", "compile"])
def test_train_on_cuda_bf16_then_generate_and_load_on_cpu(tmp_path, extra):
    data = str(write_corpus(tmp_path / "corpus"))
    home = {"GPTSCRATCH_HOME": str(tmp_path / "home")}
    trained = run_cli("train", "--data", data, "--tokenizer", "byte", "--size", "tiny", "--context-length", "64",
                      "--batch-size", "16", "--max-steps", "40", "--eval-every", "20", "--eval-batches", "2",
                      "--lr", "3e-3", "--out", str(tmp_path / "run"), "--json", *extra, env_extra=home)
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert "device: cuda" in trained.stderr  # auto-detected: CUDA > MPS > CPU
    assert "bf16" in trained.stderr  # auto precision on CUDA
    summary = json.loads(trained.stdout)
    assert summary["step"] == 40 and summary["val_loss"] < 4.5  # ln(257) = 5.55 at the start

    generated = run_cli("generate", "--checkpoint", str(tmp_path / "run"), "--prompt", "The ", "--max-tokens", "20",
                        "--seed", "1", "--json", env_extra=home)
    assert generated.returncode == 0, generated.stderr[-2000:]
    assert "device: cuda" in generated.stderr
    assert json.loads(generated.stdout.splitlines()[-1])["completion_tokens"] == 20
    on_cpu = run_cli("--device", "cpu", "generate", "--checkpoint", str(tmp_path / "run"), "--prompt", "The ",
                     "--max-tokens", "20", "--seed", "1", "--json", env_extra=home)
    assert on_cpu.returncode == 0, on_cpu.stderr[-2000:]
    assert json.loads(on_cpu.stdout.splitlines()[-1])["completion_tokens"] == 20
