"""gptscratch: a GPT-style decoder-only transformer written from scratch in PyTorch.

This module only carries the version: importing the package must stay cheap (no torch,
numpy, datasets or tiktoken) so that `gptscratch --help` starts instantly.
"""

__version__ = "0.1.0"
