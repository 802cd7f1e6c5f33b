"""Training: the loop (trainer.py), its configuration and presets (config.py), the learning-rate schedule
(schedule.py), the optimizer: AdamW, or Muon + AdamW (optimizer.py, muon.py), mixed precision (precision.py),
data parallelism under torchrun (distributed.py), resume state (state.py), the metrics log (metrics.py), pre-run
estimates and checks (estimate.py, preflight.py), what --resume may change (resume.py), type checks of recipe
values (value_types.py), building the model and data (setup.py), NaN hunting (debug.py), starting from existing
weights (init_from.py), and looking at finished runs (runs.py)."""

from .config import PRESETS, TrainConfig, load_config_file, parse_count, parse_duration, plan_new_run, preset_config
from .resume import plan_resume, resume_config
from .trainer import TrainingInterrupted, TrainResult, train

__all__ = ["PRESETS", "TrainConfig", "TrainResult", "TrainingInterrupted", "load_config_file", "parse_count",
           "parse_duration", "plan_new_run", "plan_resume", "preset_config", "resume_config", "train"]
