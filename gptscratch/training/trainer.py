"""The training loop: batches in, a better model and its checkpoints out.

One optimizer step (M = grad_accum micro-batches in total, M / N on each of N ranks; see distributed.py):
    for each of this rank's micro-batches (B, T):
        loss = cross_entropy(model(x), y) / (M / N)   (dividing makes the sum a mean over micro-batches)
        loss.backward()                               (gradients add up; DDP averages across ranks on the last)
    clip the global gradient norm to grad_clip        (one bad batch cannot throw the weights far)
    set lr from the schedule; optimizer step (AdamW, or Muon + AdamW: optimizer.py); zero gradients

Every eval_every steps the validation loss is measured on the same fixed windows (so numbers are comparable
over the run) and a short sample is generated; `latest/` is saved every save_every steps and `best/` when
validation improved. Every value the loop needs to continue — weights, optimizer state, RNG and sampler states,
step, elapsed time — is in the checkpoint, so `--resume` continues exactly: N steps in one go equal
N/2 + resume N/2.

The loop never prints: it reports through `progress(event: dict)` and writes metrics.jsonl in the run folder.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import GptScratchError, TrainingError
from . import distributed, metrics
from .config import TrainConfig
from .lora import attach_adapters, train_new_rows
from .runs import new_run_dir
from .schedule import learning_rate
from .setup import choose_precision, initial_weights, resolve_data, training_sampler, wrap_model
from .state import restore_state, write_checkpoint

METRICS_FILE = metrics.METRICS_FILE


class TrainingInterrupted(GptScratchError):
    """Ctrl-C during training: the latest checkpoint was saved first."""

    exit_code = 130


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    tokens: int
    train_loss: float
    val_loss: float | None
    best_val_loss: float | None
    elapsed: float
    tokens_per_second: float
    stop_reason: str

    def to_dict(self) -> dict:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in self.__dict__.items()}


class Trainer:
    """One training run: `run()` loops `train_step()` until the budget is spent, evaluating and saving on the way.
    Construction (`__init__`, at the end of the class) prepares the data, the model, the optimizer and, with
    `resume_from`, every state a checkpoint recorded."""

    # -- one optimizer step: what training is -----------------------------------------------------------
    def train_step(self, monitor=None) -> tuple[float, float]:
        """One optimizer step; returns (mean micro-batch loss on this rank, gradient norm before clipping)."""
        import torch

        from .precision import autocast

        c = self.config
        progress = self.progress_fraction()
        lr = learning_rate(progress, c.lr, c.warmup, c.min_lr_ratio)
        for group in self.optimizer.param_groups:  # each group's own peak (--lr; Muon's: --muon-lr), one curve
            group["lr"] = learning_rate(progress, group["peak_lr"], c.warmup, c.min_lr_ratio)
        total, positions = 0.0, 0
        for micro in range(self.micro_steps):
            x, y = (t.to(self.device) for t in self.sampler.next_batch())
            positions += x.numel()
            # DDP all-reduces gradients during backward (FSDP reduce-scatters); skip it until the last micro-batch.
            last = micro == self.micro_steps - 1
            if c.fsdp:  # FSDP's no_sync: until then the gradients are accumulated whole, unreduced (fsdp.py)
                self.model.set_requires_gradient_sync(last)
            skip = self.dist.enabled and not (last or c.fsdp)
            sync = self.forward_model.no_sync() if skip else contextlib.nullcontext()
            with sync:
                with autocast(self.precision, self.device), self.kernels_in_use():
                    if c.manual_backward:
                        from ..manual import loss as manual_loss

                        loss = manual_loss(self.model, x, y)
                    else:
                        _, loss = self.forward_model(x, y)
                if not torch.isfinite(loss):
                    where = f" ({monitor.diagnosis()})" if monitor else " (rerun with --debug to see where)"
                    raise TrainingError(f"loss became {loss.item()} at step {self.step + 1}{where}; the last saved "
                                        f"checkpoint in {self.run_dir} is intact — lower --lr or check the data")
                (loss / self.micro_steps).backward()
            total += loss.item() / self.micro_steps
        debug = monitor.step_stats() if monitor else None
        norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), c.grad_clip if c.grad_clip > 0 else math.inf)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        # Positions processed, summed over the ranks (pretraining: batch × context × grad_accum; sft: padded
        # lengths, which differ by rank — every rank must count the same, or their schedules would drift apart).
        self.tokens += round(distributed.reduce_sum(positions, self.dist, self.device))
        self.last_lr = lr
        if debug is not None:
            self._log({"step": self.step, "debug": debug})
            self.emit({"event": "debug", "step": self.step, **debug})
        return total, float(norm)

    def run(self) -> TrainResult:
        c = self.config
        if c.debug:
            from .debug import DebugMonitor
            monitor = DebugMonitor(self.model)
        else:
            monitor = None
        self.model.train()
        self.emit({"event": "start", "run_dir": str(self.run_dir), "parameters": self.model.num_parameters(),
                   "dataset": self.dataset.name, "tokenizer": self.tokenizer.name, "precision": self.precision,
                   "tokens_per_step": self.estimate.tokens_per_step, "step": self.step,
                   "world_size": self.dist.world_size, "compile": self.compiled, "model": self.model_config.to_dict()})
        loss, val_loss = math.nan, None
        tokens_at_start, train_time = self.tokens, 0.0
        save_every = c.save_every or c.eval_every
        try:
            while self.progress_fraction() < 1.0:
                started = time.perf_counter()
                loss, norm = self.train_step(monitor)
                spent = time.perf_counter() - started
                train_time += spent
                self.elapsed += spent
                if self.dist.enabled and c.max_time:  # all ranks must agree on the schedule and on stopping
                    self.elapsed = distributed.reduce_max(self.elapsed, self.dist, self.device)
                if self.step % c.log_every == 0 or self.step == 1:
                    loss = distributed.reduce_mean(loss, self.dist, self.device)
                    rate = (self.tokens - tokens_at_start) / max(train_time, 1e-9)
                    record = {"step": self.step, "loss": round(loss, 5), "lr": self.last_lr,
                              "grad_norm": round(norm, 4), "tokens": self.tokens, "tokens_per_s": round(rate, 1),
                              "elapsed": round(self.elapsed, 2)}
                    self._log(record)
                    self.emit({"event": "step", "progress": self.progress_fraction(), **record})
                boundary = time.perf_counter()
                if self.step % c.eval_every == 0:
                    val_loss = self._evaluate_and_log()
                if self.step % save_every == 0:
                    self.save("latest", val_loss)
                self.elapsed += time.perf_counter() - boundary
        except KeyboardInterrupt:
            path = self.save("latest", val_loss, collective=False)
            where = f"saved {path}" if path else "rank 0 saved the checkpoint"
            raise TrainingInterrupted(f"interrupted at step {self.step}; {where} — continue with "
                                      f"`gptscratch train --resume {self.run_dir}`") from None
        finally:
            if monitor is not None:
                monitor.close()
        loss = distributed.reduce_mean(loss, self.dist, self.device)
        if self.step % c.eval_every != 0:
            val_loss = self._evaluate_and_log()
        self.save("latest", val_loss)
        rate = (self.tokens - tokens_at_start) / max(train_time, 1e-9)
        return TrainResult(self.run_dir, self.step, self.tokens, loss, val_loss, self.best_val_loss,
                           self.elapsed, rate, self.stop_reason())

    def _evaluate_and_log(self) -> float:
        val_loss = self.evaluate()
        record = {"step": self.step, "val_loss": round(val_loss, 5), "val_perplexity": round(math.exp(val_loss), 3)}
        sample = self.sample()
        if sample is not None:
            record["sample"] = sample
        self._log(record)
        self.emit({"event": "eval", **record})
        if self.best_val_loss is None or val_loss < self.best_val_loss:
            self.best_val_loss = val_loss
            self.save("best", val_loss)
        return val_loss

    # -- the pieces the loop uses ------------------------------------------------------------------------------------------
    def budget_spent(self) -> dict[str, float]:
        """The fraction of each budget spent so far (0 for a budget not set)."""
        c = self.config
        return {"max_steps": self.step / c.max_steps if c.max_steps else 0.0,
                "max_time": self.elapsed / c.max_time if c.max_time else 0.0,
                "max_tokens": self.tokens / c.max_tokens if c.max_tokens else 0.0}

    def progress_fraction(self) -> float:
        return max(self.budget_spent().values())

    def stop_reason(self) -> str:
        spent = self.budget_spent()
        return max(spent, key=spent.get)

    def evaluate(self) -> float:
        """Mean loss over eval_batches validation windows — the same evenly spaced windows every time."""
        import torch

        from .precision import autocast
        from .setup import validation_batches

        # Under torchrun the ranks share out the *same* batches one process would use (batch i on rank i mod N);
        # under FSDP (collective forwards: equal counts) only if they divide evenly, else every rank runs all.
        self.model.eval()
        total = 0.0
        with torch.no_grad():
            batches = list(validation_batches(self.config, self.dataset, self.model_config.context_length))
            shared = not self.config.fsdp or len(batches) % self.dist.world_size == 0
            for index, (x, y) in enumerate(batches):
                if shared and index % self.dist.world_size != self.dist.rank:
                    continue
                with autocast(self.precision, self.device):
                    _, loss = self.model(x.to(self.device), y.to(self.device))
                total += loss.item()
        self.model.train()
        total = distributed.reduce_mean(total, self.dist, self.device) * (self.dist.world_size if shared else 1)
        return total / self.config.eval_batches

    def sample(self) -> str | None:
        """A short generation from the end-of-text token (fixed seed; under FSDP every rank in lockstep: fsdp.py)."""
        if not self.config.sample_tokens or not (self.dist.is_main or self.config.fsdp):
            return None
        eot = self.tokenizer.eot_id
        # sft: the reply to the first validation conversation's question; pretraining: text after end-of-text.
        prompt, stop = getattr(self.dataset, "sample_prompt", None) or ([eot], (eot,))
        try:
            from ..generation.engine import generate_ids
            from ..generation.sampling import SamplingConfig

            ids = list(generate_ids(self.model, prompt, self.config.sample_tokens, SamplingConfig(temperature=0.8),
                                    seed=self.config.seed, stop_ids=() if self.config.fsdp else stop,
                                    vocab_limit=self.tokenizer.vocab_size, use_cache=not self.config.fsdp))
            ends = [i for i, token in enumerate(ids) if token in stop]
            return self.tokenizer.decode(ids[:ends[0]] if ends else ids) if self.dist.is_main else None
        except Exception as exc:  # noqa: BLE001 - a sample is a courtesy; it must never end hours of training
            self.emit({"event": "warning", "message": f"sample generation failed ({type(exc).__name__}: {exc})"})
            return None
        finally:
            self.model.train()

    def save(self, name: str = "latest", val_loss: float | None = None, collective: bool = True) -> Path | None:
        """Write a checkpoint (rank 0; with `collective` every rank must call it: RNG states, FSDP's shards)."""
        if self.config.fsdp and not collective:  # Ctrl-C: the ranks stopped at different points, no gather
            raise TrainingInterrupted(f"interrupted at step {self.step}; under --fsdp a save takes every process, so "
                                      f"none was written — `gptscratch train --resume {self.run_dir}` continues "
                                      "from the last checkpoint saved")
        path = write_checkpoint(self, self.run_dir / name, val_loss, collective)  # state.py; None on other ranks
        if path is not None:
            self.emit({"event": "checkpoint", "path": str(path), "step": self.step})
        return path

    def _log(self, record: dict) -> None:
        if not self.dist.is_main:
            return
        try:
            metrics.append(self.run_dir, record)
        except OSError as exc:
            raise TrainingError(f"could not append to {self.run_dir / METRICS_FILE} ({exc.strerror or exc}); "
                                "free disk space, then resume the run with --resume") from None

    def kernels_in_use(self):
        """The kernels the training forward runs with (accel's measured choice, or PyTorch's own)."""
        from ..model import kernels

        return kernels.use(self.kernels) if self.kernels is not None else contextlib.nullcontext()

    # -- construction -----------------------------------------------------------------------------------
    def __init__(self, config: TrainConfig, device: str = "cpu", run_dir: Path | None = None,
                 resume_from: Path | None = None, progress=None, label: str | None = None):
        import torch

        from ..model import GPT
        from .estimate import estimate_run
        from .optimizer import build_optimizer
        from .preflight import check_new_run_dir, check_run_dir

        self.dist, device = distributed.init(device)
        if run_dir is not None and resume_from is None:  # before the data is prepared or anything written
            check_new_run_dir(run_dir)
        self.config, self.device = config, device
        self.emit = (progress or _ignore) if self.dist.is_main else _ignore
        self.dataset = resolve_data(config, self.dist, self.emit, resume_from)
        self.tokenizer = self.dataset.tokenizer
        accumulation = distributed.shared_accumulation(config.grad_accum, self.dist, resume_from is not None)
        if accumulation != config.grad_accum:
            config = self.config = config.replace(grad_accum=accumulation)
            self.emit({"event": "warning", "message": f"--grad-accum rounded up to {accumulation} so that "
                                                      f"{self.dist.world_size} processes share each step evenly"})
        self.micro_steps = accumulation // self.dist.world_size
        torch.manual_seed(config.seed)
        self.model_config, initial_state, trainer_state = initial_weights(config, self.tokenizer, device,
                                                                          resume_from)
        if config.manual_backward:
            from ..errors import UsageError
            from ..manual import check_supported

            check_supported(self.model_config)  # UsageError naming the fix (e.g. dropout > 0)
            if self.dist.enabled:  # the manual loss bypasses DDP, so gradients would not be averaged across ranks
                raise UsageError("--manual-backward trains in one process; run it without torchrun")
        self.precision, self.kernels = choose_precision(config, self.model_config, device, self.dist)
        with torch.device(device):
            self.model = GPT(self.model_config)
        if initial_state is not None:
            self.model.load_state_dict(initial_state)
        self.lora_layers = attach_adapters(self.model, config, resume_from)  # --lora-rank > 0: lora.py
        rows = train_new_rows(self.model, self.dataset, config) if self.lora_layers else []  # sft's new tokens
        self.optimizer = build_optimizer(self.model, config.lr, config.weight_decay, (config.beta1, config.beta2),
                                         device, kind=config.optimizer, muon_lr=config.muon_lr, undecayed=rows)
        self.sampler = training_sampler(config, self.dataset, self.model_config.context_length, self.dist)
        self.step, self.tokens, self.elapsed, self.last_lr = 0, 0, 0.0, 0.0
        self.best_val_loss: float | None = None
        self.run_dir = Path(run_dir) if run_dir else new_run_dir(label or config.size)
        if self.dist.rank > 0:  # different dropout masks per rank; rank 0 continues exactly as one process
            torch.manual_seed(config.seed + self.dist.rank)
        if trainer_state is not None:
            state = restore_state(self, *trainer_state)
            self.step, self.tokens, self.elapsed = state["step"], state["tokens"], state["elapsed"]
            self.best_val_loss = state.get("best_val_loss")
            self.run_dir = Path(resume_from).parent
        self.estimate = estimate_run(self.model_config, config.batch_size, config.grad_accum, self.precision,
                                     config.optimizer)
        if self.dist.is_main:
            check_run_dir(self.run_dir, self.estimate.checkpoint_bytes, resuming=resume_from is not None)
            if resume_from is not None:
                metrics.truncate_after(self.run_dir, self.step)
        self.forward_model, self.compiled = wrap_model(self.model, config, device, self.dist, self.optimizer)


def train(config: TrainConfig, device: str = "cpu", run_dir: Path | None = None, resume_from: Path | None = None,
          progress=None, label: str | None = None) -> TrainResult:
    """Train according to `config` (or continue the run at `resume_from`) and return a summary.

    label names a new run folder (`<time>-<label>`, default the model size) when run_dir is not given.
    Under torchrun every rank calls this; each returns the same summary (only rank 0 wrote anything)."""
    finished = False
    try:
        result = Trainer(config, device, run_dir, resume_from, progress, label).run()
        finished = True
        return result
    finally:
        distributed.teardown(distributed.from_environment(), clean=finished)


def _ignore(event: dict) -> None:
    pass


