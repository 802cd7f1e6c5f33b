"""gptscratch.accel: speed without changing the maths, decided by measurement, switched off by one flag.

- measure.py: answers are measured once per machine and question, stored, re-measured on request, forgotten;
  measuring never moves the caller's random stream; candidates are timed interleaved.
- decoding.py: every one-row product gives the logits of PyTorch's own kernels; batches fall back to them.
- attention.py: the fp32-backward kernel has the fused kernel's forward and gradients closer to exact.
- precision.py: "auto" is the measured faster precision, and fp32 when accel is off.
"""

import time

import pytest
import torch

from gptscratch import accel
from gptscratch.accel import decoding, measure
from gptscratch.accel.attention import CausalAttentionFp32Backward, fp32_backward_attention
from gptscratch.accel.precision import MARGIN, decoding_dtype, training_precision
from gptscratch.generation import Decoder, SamplingConfig, generate_ids
from gptscratch.generation.precision import resolve_inference_dtype
from gptscratch.model import ModelConfig, kernels
from gptscratch.training.precision import resolve_precision
from helpers import TINY_MODEL

torch.set_num_threads(1)
TINY = ModelConfig(**TINY_MODEL)     # the shape the precision questions are asked about


@pytest.fixture(autouse=True)
def own_measurements(tmp_path, monkeypatch):
    """These tests read what was measured: each starts from an empty store of its own."""
    monkeypatch.setenv(measure.ENV_FILE, str(tmp_path / "measurements.json"))


# -- measure.py -------------------------------------------------------------------------------------------------
def test_an_answer_is_measured_once_then_read_back_until_remeasured(monkeypatch):
    calls = []

    def measure_it():
        calls.append(1)
        return {"best": "b", "n": len(calls)}

    assert measure.measured("cpu", "q", measure_it) == {"best": "b", "n": 1}
    assert measure.measured("cpu", "q", measure_it) == {"best": "b", "n": 1} and len(calls) == 1
    monkeypatch.setenv(measure.ENV_REMEASURE, "1")
    assert measure.measured("cpu", "q", measure_it)["n"] == 2
    monkeypatch.delenv(measure.ENV_REMEASURE)
    stored = measure.stored()
    (machine,) = stored
    assert "torch" in machine and stored[machine]["q"]["n"] == 2
    assert measure.forget() and measure.stored() == {} and not measure.forget()


def test_measuring_does_not_move_the_global_random_stream():
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    measure.measured("cpu", "rng", lambda: {"x": float(torch.randn(100).sum())})
    assert torch.equal(torch.rand(3), expected)


def test_a_far_slower_candidate_is_dropped_after_one_timed_call():
    calls = {"fast": 0, "slow": 0}

    def run(name, seconds):
        def call():
            calls[name] += 1
            time.sleep(seconds)
        return call

    seconds = measure.time_candidates({"fast": run("fast", 0.001), "slow": run("slow", 0.02)}, budget=0.05,
                                      max_rounds=5)
    assert calls["slow"] == 2 and calls["fast"] >= 3    # the slow one: warm-up + one timed call; no more rounds
    assert seconds["slow"] > measure.SLOWER_BY * seconds["fast"]


def test_candidates_are_timed_against_each_other():
    seconds = measure.time_candidates({"fast": lambda: None, "slow": lambda: time.sleep(0.01)}, budget=0.05)
    assert set(seconds) == {"fast", "slow"} and seconds["slow"] > 0.009 > seconds["fast"]


# -- decoding.py ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("product", decoding.PRODUCTS)
def test_one_row_products_give_the_default_kernels_logits(dtype, product, tiny_model):
    model = tiny_model(dtype=dtype, positional="rope", tie_weights=False, lm_head_bias=True)
    table = decoding.decoding_kernels(model, product)
    assert (table is None) == (product == "linear")      # F.linear is PyTorch's default: nothing to swap
    ids = torch.randint(0, model.config.vocab_size, (1, 12))
    reference_cache, cache = model.new_kv_cache(1), model.new_kv_cache(1)
    with torch.inference_mode():
        model(ids[:, :4], kv_cache=reference_cache)
        model(ids[:, :4], kv_cache=cache)
        for t in range(4, 12):
            expected, _ = model(ids[:, t:t + 1], kv_cache=reference_cache)
            with kernels.use(table or kernels.DEFAULT):
                got, _ = model(ids[:, t:t + 1], kv_cache=cache)
            tolerance = 1e-5 if dtype == torch.float32 else 0.1
            torch.testing.assert_close(got, expected, atol=tolerance, rtol=0)


def test_decoding_kernels_leave_batches_to_the_default_and_turn_off_with_accel(monkeypatch, tiny_model):
    model = tiny_model()
    table = decoding.decoding_kernels(model, "column-major")
    ids = torch.randint(0, model.config.vocab_size, (3, 8))
    with torch.inference_mode():
        expected, _ = model(ids)
        with kernels.use(table):
            got, _ = model(ids)                      # many rows: F.linear, bit for bit
    assert torch.equal(got, expected)
    monkeypatch.setenv(accel.ENV_ACCEL, "0")
    assert not accel.enabled() and decoding.decoding_kernels(model, "column-major") is None


def test_the_measured_product_is_stored_and_used(tiny_model):
    model = tiny_model()
    best = decoding.best_product(model)
    (answers,) = measure.stored().values()
    (question,) = [q for q in answers if q.startswith("decode product float32")]
    assert best in decoding.PRODUCTS and answers[question]["best"] == best
    seconds = answers[question]["seconds_per_token"]
    assert best == min(seconds, key=seconds.get)
    table = decoding.decoding_kernels(model)          # no product named: the stored answer decides
    assert table is None if best == "linear" else table.name == f"decode ({best})"


@pytest.mark.parametrize("product", [p for p in decoding.PRODUCTS if p != "linear"])
def test_generation_is_the_same_with_accel_on_and_off(monkeypatch, tiny_model, product):
    """Each product the measurement can pick, forced (whichever wins on this machine, "linear" would make both
    runs the same code). fp32 products differ in the last bits only, far below any gap between two logits."""
    model = tiny_model(positional="rope")
    sampling = SamplingConfig(temperature=0.0)
    monkeypatch.setattr(decoding, "best_product", lambda model: product)
    assert Decoder(model, [[1, 2, 3]], sampling).step_kernels.name == f"decode ({product})"   # accel is in use
    fast = list(generate_ids(model, [1, 2, 3], 20, sampling))
    monkeypatch.setenv(accel.ENV_ACCEL, "0")
    plain = list(generate_ids(model, [1, 2, 3], 20, sampling))
    assert fast == plain


# -- attention.py -----------------------------------------------------------------------------------------------
def test_fp32_backward_attention_keeps_the_forward_and_improves_the_gradients():
    generator = torch.Generator().manual_seed(0)
    q64, k64, v64 = (torch.randn(2, 2, 16, 8, generator=generator, dtype=torch.float64).requires_grad_()
                     for _ in range(3))
    weights = torch.randn(2, 2, 16, 8, generator=generator, dtype=torch.float64)
    exact = torch.autograd.grad((torch.nn.functional.scaled_dot_product_attention(
        q64, k64, v64, is_causal=True) * weights).sum(), (q64, k64, v64))

    def grads(attention):
        q, k, v = (t.detach().bfloat16().requires_grad_() for t in (q64, k64, v64))
        out = attention(q, k, v)
        return out, torch.autograd.grad((out.double() * weights).sum(), (q, k, v))

    ours, ours_grads = grads(CausalAttentionFp32Backward.apply)
    theirs, theirs_grads = grads(lambda q, k, v: torch.nn.functional.scaled_dot_product_attention(
        q, k, v, is_causal=True))
    assert torch.equal(ours, theirs)                                    # the forward is the standard one
    for e, a, b in zip(exact, ours_grads, theirs_grads):
        assert (a.double() - e).abs().max() <= (b.double() - e).abs().max() + 1e-2
    q = torch.randn(1, 1, 4, 8)                                         # fp32, no grad: the default kernel
    assert torch.equal(fp32_backward_attention(q, q, q, None, 0.0, True),
                       kernels.DEFAULT.attention(q, q, q, None, 0.0, True))


# -- precision.py -----------------------------------------------------------------------------------------------
def test_auto_training_precision_is_the_measured_faster_one():
    chosen = training_precision(TINY, batch_size=4)
    (answers,) = measure.stored().values()
    (answer,) = [a for q, a in answers.items() if q.startswith("train precision")]
    seconds = answer["seconds"]
    assert chosen == answer["best"] == ("bf16" if seconds["bf16"] < MARGIN * seconds["fp32"] else "fp32")
    assert resolve_precision("auto", "cpu", TINY, 4) == chosen           # remembered, not re-measured
    assert resolve_precision("bf16", "cpu", TINY) == "bf16"              # an explicit choice always wins


def test_auto_decoding_dtype_is_the_measured_faster_one():
    chosen = decoding_dtype(TINY)
    (answers,) = measure.stored().values()
    (answer,) = [a for q, a in answers.items() if q.startswith("decode dtype")]
    assert chosen == answer["best"] and resolve_inference_dtype("auto", "cpu", TINY) == chosen


def test_without_accel_auto_is_fp32_and_nothing_is_measured(monkeypatch):
    monkeypatch.setenv(accel.ENV_ACCEL, "0")
    assert resolve_precision("auto", "cpu", TINY, 4) == "fp32"
    assert resolve_inference_dtype("auto", "cpu", TINY) == "fp32"
    assert measure.stored() == {}


def test_kernels_come_back_after_an_error():
    with pytest.raises(RuntimeError), kernels.use(kernels.DEFAULT.replace(name="other")):
        assert kernels.active().name == "other"
        raise RuntimeError("boom")
    assert kernels.active() is kernels.DEFAULT
