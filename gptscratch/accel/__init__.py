"""Speed, and nothing else: the code that makes gptscratch faster without changing what it computes.

Everything here exists only for speed, and all of it reaches the model through one seam — the kernel table of
gptscratch/model/kernels.py — so the model's own code (block.py's wiring, gpt.py's forward) is what runs in
every mode. Nothing in here uses anything but public PyTorch APIs.

    measure.py    time a candidate, and remember on disk what was measured (per machine and torch version)
    decoding.py   batch-1 decoding: the fastest one-row product per dtype (weight layouts), chosen by measurement
    attention.py  bf16 training on CPU: the fused attention kernel with an fp32 backward, where it pays
    precision.py  "auto" precision for training and for decoding, decided by timing both on this machine

The switch: `--no-accel` (a global option of every command) or GPTSCRATCH_ACCEL=0 turns all of it off: the
model computes with PyTorch's own kernels, "auto" precision is fp32 on CPU, and nothing is measured — so a
learner can step through the model in a debugger in every command and see exactly the code they read.
"""

from __future__ import annotations

import os

ENV_ACCEL = "GPTSCRATCH_ACCEL"
_OFF = ("0", "off", "false", "no")


def enabled() -> bool:
    """True unless GPTSCRATCH_ACCEL is 0/off/false/no (the CLI's --no-accel sets it)."""
    return os.environ.get(ENV_ACCEL, "1").strip().lower() not in _OFF
