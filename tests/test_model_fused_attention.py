"""fused_attention: the standard fused kernel, except that on CPU under bf16 its backward runs in fp32."""

import pytest
import torch
import torch.nn.functional as F

import gptscratch.model.fused_attention as fa
from gptscratch.model import GPT, ModelConfig


def _forward_and_grads(fn, q, k, v, grad, dtype):
    leaves = [t.to(dtype).requires_grad_() for t in (q, k, v)]
    out = fn(*leaves)
    out.backward(grad.to(dtype))
    return [out.double()] + [t.grad.double() for t in leaves]


def _causal_sdpa(q, k, v):
    return F.scaled_dot_product_attention(q, k, v, is_causal=True)


def _fused(q, k, v):
    return fa.fused_attention(q, k, v, is_causal=True)


@pytest.mark.parametrize("shape", [(2, 4, 40, 32), (1, 2, 7, 16)])
def test_bf16_forward_is_the_standard_kernel_and_grads_are_at_least_as_accurate(shape):
    torch.manual_seed(0)
    q, k, v, grad = (torch.randn(shape) for _ in range(4))
    exact = _forward_and_grads(_causal_sdpa, q, k, v, grad, torch.float64)
    standard = _forward_and_grads(_causal_sdpa, q, k, v, grad, torch.bfloat16)
    ours = _forward_and_grads(_fused, q, k, v, grad, torch.bfloat16)
    assert torch.equal(ours[0], standard[0])  # forward: bit for bit the bf16 kernel
    for name, o, s, e in zip(("dq", "dk", "dv"), ours[1:], standard[1:], exact[1:]):
        our_error, standard_error = (o - e).abs().max().item(), (s - e).abs().max().item()
        assert our_error < 0.05, name
        assert our_error <= standard_error * 1.05 + 1e-3, name


def test_the_fp32_backward_is_used_only_where_it_applies():
    q = torch.randn(1, 2, 5, 8, dtype=torch.bfloat16, requires_grad=True)
    mask = torch.ones(5, 5, dtype=torch.bool).tril()
    assert fa._use_fp32_backward(q, q, q, None, 0.0, True) is (fa._CPU_FORWARD is not None)
    assert not fa._use_fp32_backward(q, q, q, mask, 0.0, False)              # explicit mask
    assert not fa._use_fp32_backward(q, q, q, None, 0.1, True)               # dropout
    assert not fa._use_fp32_backward(q.float(), q.float(), q.float(), None, 0.0, True)  # fp32 already
    assert not fa._use_fp32_backward(q, q[:, :, :3], q[:, :, :3], None, 0.0, True)     # cached keys
    with torch.no_grad():
        assert not fa._use_fp32_backward(q, q, q, None, 0.0, True)          # inference


def test_fp32_and_fallback_are_exactly_scaled_dot_product_attention(monkeypatch):
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 2, 9, 8) for _ in range(3))
    assert torch.equal(_fused(q, k, v), _causal_sdpa(q, k, v))
    monkeypatch.setattr(fa, "_CPU_FORWARD", None)  # a PyTorch without the private CPU ops
    qb, kb, vb = (t.bfloat16().requires_grad_() for t in (q, k, v))
    assert torch.equal(_fused(qb, kb, vb), _causal_sdpa(qb, kb, vb))


def test_bf16_autocast_training_step_matches_fp32_gradients():
    torch.manual_seed(0)
    config = ModelConfig(vocab_size=64, context_length=32, n_layer=2, n_head=2, d_model=64)
    model = GPT(config)
    idx = torch.randint(0, 64, (2, 32))
    targets = torch.roll(idx, -1, dims=1)
    _, loss = model(idx, targets)
    loss.backward()
    fp32_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        _, bf16_loss = model(idx, targets)
    bf16_loss.backward()
    assert abs(bf16_loss.item() - loss.item()) < 0.02
    for reference, param in zip(fp32_grads, model.parameters()):
        assert param.grad.dtype == torch.float32
        cosine = F.cosine_similarity(reference.flatten(), param.grad.flatten(), dim=0)
        assert cosine > 0.99
