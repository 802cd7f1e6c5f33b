"""EleutherAI's lm-evaluation-harness scoring a gptscratch checkpoint: the model `gptscratch` of `lm_eval`.

lm-eval (https://github.com/EleutherAI/lm-evaluation-harness) turns hundreds of benchmarks into three questions
it asks a model, each a list of requests; `GptScratchLM` answers them with a gptscratch checkpoint:

    loglikelihood(context, continuation)  → (log p(continuation | context), is_greedy)
        multiple choice (HellaSwag, ARC, ...): the choice with the highest log-probability is the answer.
        Encoded as lm-eval's own Hugging Face model does: trailing spaces of the context move to the
        continuation, ids(context + continuation) is split after len(ids(context)), an empty context is the
        start id (BOS, else end-of-text). One forward pass over context + continuation scores every
        continuation token, teacher-forced:  Σ_i log softmax(logits_{i−1})[c_i]. is_greedy: every c_i is the
        argmax at its position (over the tokenizer's real ids, as greedy generation chooses), i.e. greedy
        decoding would have written exactly this continuation. Batched: longest requests first, right-padded
        (the causal mask keeps padding after a row invisible to it); a pair longer than the context keeps its
        last context_length + 1 tokens.
    loglikelihood_rolling(text)           → log p(text), for perplexity / bits per byte tasks (wikitext)
        The text after the start id, cut into disjoint windows of the model's context; every token is scored
        exactly once, and the last window is right-aligned so it still sees a full context (lm-eval's
        get_rolling_token_windows + make_disjoint_window, as its HF model). Each window is one
        loglikelihood pair, so the same batched scorer runs. When the text's length is a multiple of the
        context this equals `gptscratch eval perplexity --stride CONTEXT` (whose last window is shorter).
    generate_until(context, {until, max_gen_toks, do_sample, temperature, ...}) → the generated text
        gptscratch's batched, KV-cached decoding engine (generation/completion.py): greedy unless
        do_sample (or temperature > 0), stopped by end-of-text, by max_gen_toks (default 256) or *before* the
        first `until` string. A prompt longer than the context keeps its last tokens; a generation that
        fills the context slides the window (engine.py) instead of failing.

Scores are log-probabilities over the model's whole output layer — the same numbers `eval perplexity` and
`eval hellaswag` compute (a padded vocabulary's never-used rows included, as lm-eval's HF model does). Weights are
loaded in fp32 by default so they equal those commands' numbers; `dtype=bf16|auto` trades that for speed.
(hellaswag.py's scorer answers one item's four endings with two argmins, not arbitrary (context, continuation)
requests, so the scorer here is its general form; tests/test_lm_eval.py checks both give the same log-likelihoods.
lm-eval's acc_norm divides by characters, `eval hellaswag`'s by tokens: see docs/evaluation.md.)

How `lm_eval` finds it: lm-eval 0.4.x reads no plugin entry points, so its own `lm_eval` command only knows the
models in its source tree. Importing this module registers `gptscratch` in lm-eval's public model registry
(a lazy "module:Class" entry), and `python -m gptscratch.evaluation.harness ARGS` is lm-eval's own command line
(`python -m lm_eval ARGS`, run with runpy) with that registration made first — every lm-eval flag works:

    python -m gptscratch.evaluation.harness --model gptscratch --model_args checkpoint=RUN --tasks hellaswag
    gptscratch eval harness --tasks hellaswag --checkpoint RUN          # the same, printed as gptscratch does

Model arguments: checkpoint (run folder, run name or converted pretrained name; default: the latest run),
device (auto-detected as everywhere in gptscratch), dtype (fp32, bf16 or auto), batch_size (an integer;
"auto" means 16). Nothing else in gptscratch imports this module: lm-eval is an optional extra.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import lm_eval.models  # noqa: F401  lm-eval's own model names first: its get_model() fills only an empty registry
import torch
from lm_eval.api.model import LM
from lm_eval.api.registry import model_registry
from lm_eval.utils import get_rolling_token_windows, make_disjoint_window

from gptscratch.errors import CheckpointNotFoundError, UsageError

MODEL_NAME = "gptscratch"
AUTO_BATCH_SIZE = 16          # what batch_size=auto means here (no search for the largest batch that fits)
DEFAULT_MAX_GEN_TOKS = 256    # lm-eval's default for a generate_until request that names no length
DTYPE_NAMES = {"fp32": "fp32", "float32": "fp32", "bf16": "bf16", "bfloat16": "bf16", "auto": "auto"}
GEN_KEYS = {"until", "max_gen_toks", "max_new_tokens", "max_tokens", "max_completion_tokens", "do_sample",
            "temperature", "top_k", "top_p", "repetition_penalty", "seed"}


class GptScratchLM(LM):
    """A gptscratch checkpoint answering lm-eval's requests (see the module docstring).

    `progress`, when given, receives {"completed", "total", "unit"} events as batches finish (the CLI draws a
    bar from them); lm-eval's own command passes none. Other keyword arguments are refused with their names."""

    def __init__(self, checkpoint=None, device: str | None = None, dtype: str = "fp32", batch_size=1,
                 max_batch_size: int | None = None, *, progress: Callable[[dict], None] | None = None,
                 **unknown):
        super().__init__()
        if unknown:
            raise UsageError(f"unknown gptscratch model argument(s) {', '.join(sorted(unknown))}; it takes "
                             "checkpoint, device, dtype and batch_size")
        self.batch_size = _batch_size(batch_size, max_batch_size)
        if str(dtype).lower() not in DTYPE_NAMES:
            raise UsageError(f"unknown dtype {dtype!r}; choose fp32, bf16 or auto")
        from gptscratch.generation.precision import load_for_inference

        self._device = _device(device)
        try:
            loaded, self.dtype = load_for_inference(None if checkpoint is None else str(checkpoint),
                                                    self._device, DTYPE_NAMES[str(dtype).lower()])
        except CheckpointNotFoundError as error:   # a pretrained name not downloaded yet: say how to get it
            from gptscratch.pretrained.registry import explain_missing_checkpoint

            raise explain_missing_checkpoint(error) from None
        self.checkpoint, self.model, self.tokenizer = loaded.path, loaded.model.eval(), loaded.tokenizer
        self.progress = progress

    # -- what lm-eval reads ------------------------------------------------------------------------------------
    @property
    def max_length(self) -> int:
        return self.model.config.context_length

    @property
    def prefix_token_id(self) -> int:
        """The id an empty context stands for: BOS where the model has one, else end-of-text."""
        return self.tokenizer.start_id

    @property
    def tokenizer_name(self) -> str:
        return self.tokenizer.name

    # -- loglikelihood -----------------------------------------------------------------------------------------
    def encode_pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        """(context ids, continuation ids) as lm-eval's TemplateLM encodes a pair for a causal model."""
        spaces = len(context) - len(context.rstrip())
        if spaces:                                   # " Paris" is one token, "… is " + "Paris" is not
            context, continuation = context[:-spaces], context[-spaces:] + continuation
        if not context:
            ids = self.tokenizer.encode(continuation)
            if ids and ids[0] == self.prefix_token_id:
                return ids[:1], ids[1:]
            return [self.prefix_token_id], ids
        context_ids = self.tokenizer.prompt_ids(context)        # BOS first where the model expects one
        return context_ids, self.tokenizer.prompt_ids(context + continuation)[len(context_ids):]

    def loglikelihood(self, requests) -> list[tuple[float, bool]]:
        pairs = [self.encode_pair(*request.args) for request in requests]
        results = self.score_pairs(pairs)
        for request, result in zip(requests, results):
            self.cache_hook.add_partial("loglikelihood", request.args, result)
        return results

    @torch.inference_mode()
    def score_pairs(self, pairs: list[tuple[list[int], list[int]]]) -> list[tuple[float, bool]]:
        """(Σ log p(continuation token), all tokens greedy) for each (context ids, continuation ids) pair."""
        window = self.max_length
        for context_ids, continuation_ids in pairs:
            if len(continuation_ids) > window:
                raise UsageError(f"a continuation of {len(continuation_ids)} tokens does not fit the model's "
                                 f"context of {window}; use a model with a longer context or a shorter task")
        order = sorted(range(len(pairs)), key=lambda i: -(len(pairs[i][0]) + len(pairs[i][1])))
        results: list[tuple[float, bool] | None] = [None] * len(pairs)
        device, real_vocab = self.model.tok_embed.weight.device, self.tokenizer.vocab_size
        for first in range(0, len(order), self.batch_size):
            batch = order[first: first + self.batch_size]
            rows = [(pairs[i][0] + pairs[i][1])[-(window + 1):][:-1] for i in batch]   # the last token is a target
            width = max(len(row) for row in rows)
            x = torch.tensor([row + [0] * (width - len(row)) for row in rows], device=device)   # (B, T) right-padded
            logits, _ = self.model(x)                                                          # (B, T, V)
            for row, i, row_logits in zip(rows, batch, logits):
                continuation = pairs[i][1]
                if not continuation:
                    results[i] = (0.0, True)
                    continue
                # Position t predicts token t + 1: the continuation's n tokens are predicted by the row's last n.
                scored = row_logits[len(row) - len(continuation): len(row)].float()        # (n, V)
                target = torch.tensor(continuation, device=device)
                log_probs = torch.log_softmax(scored, dim=-1).gather(1, target[:, None]).squeeze(1)
                greedy = bool((scored[:, :real_vocab].argmax(dim=-1) == target).all())
                results[i] = (float(log_probs.sum()), greedy)
            self._report(min(first + self.batch_size, len(order)), len(order), "requests")
        return results

    # -- loglikelihood_rolling ---------------------------------------------------------------------------------
    def rolling_windows(self, text: str) -> list[tuple[list[int], list[int]]]:
        """(context ids, scored ids) windows covering every token of `text` once, as lm-eval's HF model cuts."""
        windows = get_rolling_token_windows(token_list=self.tokenizer.encode(text),
                                            prefix_token=self.prefix_token_id, max_seq_len=self.max_length,
                                            context_len=1)
        return [make_disjoint_window(w) for w in windows]

    def loglikelihood_rolling(self, requests) -> list[float]:
        windows = [self.rolling_windows(request.args[0]) for request in requests]
        scores = iter(self.score_pairs([pair for text in windows for pair in text]))
        totals = [sum(next(scores)[0] for _ in text) for text in windows]
        for request, total in zip(requests, totals):
            self.cache_hook.add_partial("loglikelihood_rolling", request.args, total)
        return totals

    # -- generate_until ----------------------------------------------------------------------------------------
    def generate_until(self, requests) -> list[str]:
        from gptscratch.generation.completion import Completion, stream_completions

        groups: dict[str, list[int]] = {}    # one decoding run per distinct set of generation settings
        for i, request in enumerate(requests):
            groups.setdefault(json.dumps(request.args[1], sort_keys=True, default=str), []).append(i)
        outputs: list[str | None] = [None] * len(requests)
        done = 0
        for members in groups.values():
            settings = self.generation_settings(requests[members[0]].args[1])
            members = sorted(members, key=lambda i: -len(requests[i].args[0]))   # similar lengths share a batch
            prompts = [requests[i].args[0] for i in members]
            for event in stream_completions(self.model, self.tokenizer, prompts, settings):
                if isinstance(event, Completion):
                    outputs[members[event.index]] = event.completion
                    done += 1
                    self._report(done, len(requests), "generations")
        for request, text in zip(requests, outputs):
            self.cache_hook.add_partial("generate_until", request.args, text)
        return outputs

    def generation_settings(self, gen_kwargs: dict):
        """lm-eval's generation keywords → gptscratch's GenerationSettings (greedy unless asked to sample)."""
        from gptscratch.generation.completion import GenerationSettings
        from gptscratch.generation.sampling import SamplingConfig

        gen_kwargs = dict(gen_kwargs or {})
        unknown = set(gen_kwargs) - GEN_KEYS
        if unknown:
            raise UsageError(f"generation setting(s) {', '.join(sorted(unknown))} are not supported by the "
                             f"gptscratch model; it reads {', '.join(sorted(GEN_KEYS))}")
        until = gen_kwargs.get("until") or []
        until = [until] if isinstance(until, str) else list(until)
        length = next((gen_kwargs[k] for k in ("max_gen_toks", "max_new_tokens", "max_tokens",
                                               "max_completion_tokens") if gen_kwargs.get(k) is not None),
                      DEFAULT_MAX_GEN_TOKS)
        temperature = float(gen_kwargs.get("temperature") or 0.0)
        sample = gen_kwargs.get("do_sample")
        sample = temperature > 0 if sample is None else bool(sample)     # as lm-eval's normalize_gen_kwargs
        seed = gen_kwargs.get("seed")
        if sample and seed is None:   # from torch's generator, which lm-eval seeds: sampled runs repeat
            seed = int(torch.randint(0, 2**31 - 1, ()))
        try:
            sampling = SamplingConfig(temperature=(temperature or 1.0) if sample else 0.0,
                                      top_k=gen_kwargs.get("top_k") if sample else None,
                                      top_p=gen_kwargs.get("top_p") if sample else None,
                                      repetition_penalty=float(gen_kwargs.get("repetition_penalty") or 1.0))
            return GenerationSettings(max_new_tokens=int(length), sampling=sampling, seed=seed,
                                      stop_strings=tuple(s for s in until if s), batch_size=self.batch_size)
        except ValueError as exc:
            raise UsageError(f"invalid generation setting in the task: {exc}") from None

    def _report(self, completed: int, total: int, unit: str) -> None:
        if self.progress is not None:
            self.progress({"completed": completed, "total": total, "unit": unit})


def _batch_size(value, cap: int | None) -> int:
    """An integer ≥ 1 from lm-eval's batch_size (an int, "8", "auto" or "auto:N")."""
    text = str(value).strip().lower()
    if text.startswith("auto"):
        return max(1, min(AUTO_BATCH_SIZE, cap or AUTO_BATCH_SIZE))
    try:
        size = int(text)
    except ValueError:
        size = 0
    if size < 1:
        raise UsageError(f"batch size must be an integer ≥ 1 or auto (got {value!r})")
    return size


def _device(requested: str | None) -> str:
    """gptscratch's device choice. lm-eval's command passes --device cuda:0 when none is given, so a CUDA device
    this machine lacks falls back to auto-detection (as lm-eval's HF model does) instead of failing."""
    from gptscratch.device import resolve_device

    try:
        return resolve_device(requested)
    except UsageError:
        if not str(requested).lower().startswith("cuda"):
            raise
        return resolve_device(None)


def register() -> None:
    """Make `--model gptscratch` known to lm-eval (idempotent). Registered lazily by name, so a second copy of
    this module (`python -m` runs one as __main__) registers the same thing, not a clashing second class."""
    if MODEL_NAME not in model_registry:
        model_registry.register(MODEL_NAME, target="gptscratch.evaluation.harness:GptScratchLM")


register()


def evaluate_tasks(tasks: list[str], *, checkpoint=None, device: str | None = None, dtype: str = "fp32",
                   batch_size: int = AUTO_BATCH_SIZE, limit: int | None = None, num_fewshot: int | None = None,
                   include_path: str | Path | None = None, log_samples: bool = False,
                   progress: Callable[[dict], None] | None = None) -> dict:
    """Run lm-eval's `simple_evaluate` on `tasks` with the checkpoint → {checkpoint, tasks: {task: {metric: value}},
    samples (items per task), [records: lm-eval's per-item records when log_samples]}.

    Built-in tasks are indexed (≈ 8 s: lm-eval reads thousands of YAML files) only when a task is not found in
    `include_path` alone. An unknown task is a UsageError naming it."""
    from lm_eval import simple_evaluate

    manager = _task_manager(tasks, include_path)
    matched = {task: manager.match_tasks([task]) for task in tasks}     # names and glob patterns ("arc_*")
    unknown = [task for task, names in matched.items() if not names]
    if unknown:
        raise UsageError(f"unknown lm-eval task(s) {', '.join(unknown)}; list them with `lm_eval ls tasks`"
                         + ("" if include_path else ", or pass --include-path DIR for your own task files"))
    import datasets

    datasets.disable_progress_bars()     # datasets' bars are not ours to draw
    model = GptScratchLM(checkpoint, device=device, dtype=dtype, batch_size=batch_size, progress=progress)
    names = list(dict.fromkeys(name for names in matched.values() for name in names))
    results = simple_evaluate(model=model, tasks=names, num_fewshot=num_fewshot, limit=limit,
                              task_manager=manager, log_samples=log_samples)
    summary = {task: {_metric_name(key): value for key, value in metrics.items() if "," in key}   # metric,filter
               for task, metrics in results["results"].items()}
    report = {"checkpoint": str(model.checkpoint), "dtype": model.dtype, "tasks": summary,
              "samples": {task: counts.get("effective") for task, counts in results.get("n-samples", {}).items()},
              "num_fewshot": results.get("n-shot", {})}
    if log_samples:
        report["records"] = results.get("samples", {})
    return report


def _task_manager(tasks: list[str], include_path):
    from lm_eval.tasks import TaskManager

    if include_path is not None:
        local = TaskManager(include_path=str(include_path), include_defaults=False)
        if all(local.match_tasks([t]) for t in tasks):
            return local
    return TaskManager(include_path=str(include_path) if include_path is not None else None)


def _metric_name(key: str) -> str:
    """lm-eval's "acc,none" (metric,filter) → "acc"; a real filter stays: "exact_match,strict-match"."""
    metric, _, filter_name = key.partition(",")
    return metric if filter_name in ("", "none") else key


def main() -> None:
    """`python -m gptscratch.evaluation.harness ARGS`: lm-eval's own command line (`python -m lm_eval ARGS`, the
    same sys.argv) with `--model gptscratch` registered by importing this module."""
    import runpy

    runpy.run_module("lm_eval", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
