"""Training: the loop (trainer.py), its configuration and presets (config.py), the learning-rate schedule
(schedule.py), AdamW with decay groups (optimizer.py) and mixed precision (precision.py)."""

from .config import PRESETS, TrainConfig, parse_duration, preset_config
from .trainer import TrainingInterrupted, TrainResult, resume_config, train

__all__ = ["PRESETS", "TrainConfig", "TrainResult", "TrainingInterrupted", "parse_duration", "preset_config",
           "resume_config", "train"]
