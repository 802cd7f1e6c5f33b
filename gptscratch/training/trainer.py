"""The training loop: batches in, a better model and its checkpoints out.

One optimizer step:
    for each of grad_accum micro-batches (B, T):
        loss = cross_entropy(model(x), y) / grad_accum      (dividing makes the sum a mean over micro-batches)
        loss.backward()                                      (gradients add up across micro-batches)
    clip the global gradient norm to grad_clip               (one bad batch cannot throw the weights far)
    set lr from the schedule; AdamW step; zero gradients

Every eval_every steps the validation loss is measured on the same fixed windows (so numbers are comparable
over the run), the run's `latest/` checkpoint is saved, and `best/` when validation improved. Every value the
loop needs to continue — weights, AdamW moments, RNG and sampler states, step, elapsed time — is in the
checkpoint, so `--resume` continues exactly: N steps in one go equal N/2 + resume N/2.

The loop never prints: it reports through `progress(event: dict)` and writes `metrics.jsonl` in the run folder.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

from .. import checkpoint as ckpt
from ..atomic import atomic_write_text
from ..errors import GptScratchError, TrainingError
from ..paths import runs_root
from .config import TrainConfig
from .schedule import learning_rate

METRICS_FILE = "metrics.jsonl"


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


def new_run_dir(label: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = runs_root() / f"{stamp}-{label}"
    suffix = 1
    while path.exists():
        suffix += 1
        path = runs_root() / f"{stamp}-{label}-{suffix}"
    return path


def resume_config(run: str) -> tuple[Path, TrainConfig]:
    """The checkpoint folder and saved TrainConfig of a run to resume."""
    path = ckpt.resolve_checkpoint(run)
    _, state = ckpt.load_trainer_state(path)
    return path, TrainConfig.from_dict(state["train_config"])


class Trainer:
    def __init__(self, config: TrainConfig, device: str = "cpu", run_dir: Path | None = None,
                 resume_from: Path | None = None, progress=None, label: str | None = None):
        import torch

        from ..data import WindowSampler, resolve_dataset
        from ..model import GPT, model_config, pad_vocab
        from .optimizer import build_optimizer, load_optimizer_state
        from .precision import resolve_precision

        self.config, self.device, self.emit = config, device, progress or (lambda event: None)
        self.precision = resolve_precision(config.precision, device)
        self.dataset = resolve_dataset(config.data, config.tokenizer, progress=self.emit)
        self.tokenizer = self.dataset.tokenizer
        try:
            self.model_config = model_config(config.size, pad_vocab(self.tokenizer.vocab_size), **config.model)
        except (KeyError, ValueError, TypeError) as exc:
            from ..errors import UsageError
            raise UsageError(f"invalid model settings: {exc.args[0] if exc.args else exc}") from None
        torch.manual_seed(config.seed)
        with torch.device(device):
            self.model = GPT(self.model_config)
        self.optimizer = build_optimizer(self.model, config.lr, config.weight_decay,
                                         (config.beta1, config.beta2), device)
        ctx = self.model_config.context_length
        self.sampler = WindowSampler(self.dataset, "train", config.batch_size, ctx, seed=config.seed)
        self.step, self.tokens, self.elapsed = 0, 0, 0.0
        self.best_val_loss: float | None = None
        self.run_dir = Path(run_dir) if run_dir else new_run_dir(label or config.size)
        if resume_from is not None:
            tensors, state = ckpt.load_trainer_state(resume_from)
            loaded = ckpt.load_checkpoint(resume_from, device=device)
            self.model.load_state_dict(loaded.model.state_dict())
            load_optimizer_state(self.optimizer, tensors, state["optimizer_param_groups"])
            self.sampler.load_state_dict(_unflatten(tensors, state, "sampler."))
            torch.set_rng_state(tensors["rng.torch"])
            self.step, self.tokens, self.elapsed = state["step"], state["tokens"], state["elapsed"]
            self.best_val_loss = state.get("best_val_loss")
            self.run_dir = Path(resume_from).parent
            self._truncate_metrics(self.step)

    # -- pieces ------------------------------------------------------------------------------------------
    def progress_fraction(self) -> float:
        c = self.config
        by_steps = self.step / c.max_steps if c.max_steps else 0.0
        by_time = self.elapsed / c.max_time if c.max_time else 0.0
        return max(by_steps, by_time)

    def evaluate(self) -> float:
        """Mean loss over eval_batches validation windows — the same evenly spaced windows every time."""
        import torch

        from ..data import eval_batches
        from .precision import autocast

        self.model.eval()
        losses = []
        with torch.no_grad():
            for x, y in eval_batches(self.dataset, "val", self.config.batch_size,
                                     self.model_config.context_length, self.config.eval_batches):
                with autocast(self.precision, self.device):
                    _, loss = self.model(x.to(self.device), y.to(self.device))
                losses.append(loss.item())
        self.model.train()
        return sum(losses) / len(losses)

    def save(self, name: str = "latest", val_loss: float | None = None) -> Path:
        import torch

        from .optimizer import optimizer_state_tensors

        tensors, param_groups = optimizer_state_tensors(self.optimizer)
        tensors["rng.torch"] = torch.get_rng_state()
        sampler_json = _flatten(self.sampler.state_dict(), "sampler.", tensors)
        training = {"step": self.step, "tokens": self.tokens, "val_loss": val_loss,
                    "best_val_loss": self.best_val_loss, "elapsed": round(self.elapsed, 3),
                    "data": self.dataset.name, "precision": self.precision}
        state = {**training, "train_config": self.config.to_dict(), "optimizer_param_groups": param_groups,
                 "sampler_json": sampler_json}
        path = ckpt.save_checkpoint(self.run_dir / name, self.model, self.tokenizer.spec(), training=training,
                                    state_tensors=tensors, state=state)
        self.emit({"event": "checkpoint", "path": str(path), "step": self.step})
        return path

    def _log(self, record: dict) -> None:
        with open(self.run_dir / METRICS_FILE, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    def _truncate_metrics(self, step: int) -> None:
        """On resume, drop log lines from steps after the checkpoint (they will be trained again)."""
        path = self.run_dir / METRICS_FILE
        if path.is_file():
            lines = [line for line in path.read_text(encoding="utf-8").splitlines()
                     if line.strip() and json.loads(line).get("step", 0) <= step]
            atomic_write_text(path, "".join(line + "\n" for line in lines))

    # -- the loop ------------------------------------------------------------------------------------------
    def train_step(self) -> float:
        import torch

        from .precision import autocast

        c = self.config
        lr = learning_rate(self.progress_fraction(), c.lr, c.warmup, c.min_lr_ratio)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        total = 0.0
        for _ in range(c.grad_accum):
            x, y = (t.to(self.device) for t in self.sampler.next_batch())
            with autocast(self.precision, self.device):
                _, loss = self.model(x, y)
            if not torch.isfinite(loss):
                raise TrainingError(f"loss became {loss.item()} at step {self.step + 1}; the last saved "
                                    f"checkpoint in {self.run_dir} is intact — lower --lr or check the data")
            (loss / c.grad_accum).backward()
            total += loss.item() / c.grad_accum
        if c.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), c.grad_clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        self.tokens += c.batch_size * self.model_config.context_length * c.grad_accum
        self.last_lr = lr
        return total

    def run(self) -> TrainResult:
        c = self.config
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.model.train()
        self.emit({"event": "start", "run_dir": str(self.run_dir), "parameters": self.model.num_parameters(),
                   "dataset": self.dataset.name, "tokenizer": self.tokenizer.name, "precision": self.precision,
                   "tokens_per_step": c.batch_size * self.model_config.context_length * c.grad_accum,
                   "step": self.step, "model": self.model_config.to_dict()})
        loss, val_loss, stop_reason = math.nan, None, "budget"
        tokens_at_start, train_time = self.tokens, 0.0
        save_every = c.save_every or c.eval_every
        try:
            while self.progress_fraction() < 1.0:
                started = time.perf_counter()
                loss = self.train_step()
                spent = time.perf_counter() - started
                train_time += spent
                self.elapsed += spent
                rate = (self.tokens - tokens_at_start) / max(train_time, 1e-9)
                if self.step % c.log_every == 0 or self.step == 1:
                    record = {"step": self.step, "loss": round(loss, 5), "lr": self.last_lr,
                              "tokens": self.tokens, "tokens_per_s": round(rate, 1),
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
            path = self.save("latest", val_loss)
            raise TrainingInterrupted(f"interrupted at step {self.step}; saved {path} — continue with "
                                      f"`gptscratch train --resume {self.run_dir}`") from None
        if self.step % c.eval_every != 0:
            val_loss = self._evaluate_and_log()
        self.save("latest", val_loss)
        rate = (self.tokens - tokens_at_start) / max(train_time, 1e-9)
        return TrainResult(self.run_dir, self.step, self.tokens, loss, val_loss, self.best_val_loss,
                           self.elapsed, rate, stop_reason)

    def _evaluate_and_log(self) -> float:
        val_loss = self.evaluate()
        record = {"step": self.step, "val_loss": round(val_loss, 5), "val_perplexity": round(math.exp(val_loss), 3)}
        self._log(record)
        self.emit({"event": "eval", **record})
        if self.best_val_loss is None or val_loss < self.best_val_loss:
            self.best_val_loss = val_loss
            self.save("best", val_loss)
        return val_loss


def _flatten(state: dict, prefix: str, tensors: dict) -> dict:
    """Put a state dict's tensors into `tensors` (prefixed) and return the JSON-able rest."""
    import torch

    rest = {}
    for key, value in state.items():
        if torch.is_tensor(value):
            tensors[prefix + key] = value
        else:
            rest[key] = value
    return rest


def _unflatten(tensors: dict, state: dict, prefix: str) -> dict:
    restored = dict(state.get("sampler_json", {}))
    restored.update({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
    return restored


def train(config: TrainConfig, device: str = "cpu", run_dir: Path | None = None, resume_from: Path | None = None,
          progress=None, label: str | None = None) -> TrainResult:
    """Train according to `config` (or continue the run at `resume_from`) and return a summary.

    label names a new run folder (`<time>-<label>`, default the model size) when run_dir is not given."""
    return Trainer(config, device, run_dir, resume_from, progress, label).run()
