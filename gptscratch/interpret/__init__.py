"""Interpretability: look inside a trained GPT and check what you see by intervening.

    cache.py       ActivationCache, run_with_cache / run_with_hooks, hooks(): read and replace named activations
    logit_lens.py  what each layer would predict (final norm applied, as TransformerLens's accumulated_resid)
    heads.py       attention patterns, detection scores (TransformerLens's), head classification, entropy
    induction.py   induction heads on repeated random tokens, and the previous-token heads that feed them
    patching.py    activation patching over residual positions and heads, logit difference recovered; the foil
    tokens.py      prompts to token ids (end-of-text in front, fits the context), tokens to readable labels
    plots.py       heatmaps (matplotlib, optional)
    demos.py       built-in examples for `--demo`
    toy.py         train the textbook induction circuit (2-layer attention-only GPT, repeated segments)
    transformer_lens.py  our hook names ↔ TransformerLens's (HOOKS), and a model handed to TransformerLens

Everything here works on any gptscratch GPT (sequential or parallel blocks, with or without MLPs, any
positional scheme) through the model's hook points; nothing is estimated where it can be measured.
"""

from .cache import ActivationCache, hook_name, hooks, run_with_cache, run_with_hooks, select_names
from .heads import HeadProfile, analyse_heads, attention_patterns, detection_patterns, detection_score
from .induction import InductionReport, copy_length, find_induction_heads, repeated_random_tokens
from .logit_lens import LogitLens, logit_lens
from .patching import (PatchExample, PatchingResult, activation_patching, assess, choose_foil, custom_example,
                       logit_difference, patch_recovered)
from .tokens import check_context, encode_text, first_token, token_label
from .transformer_lens import HOOKS, to_transformer_bridge

__all__ = ["HOOKS", "ActivationCache", "HeadProfile", "InductionReport", "LogitLens", "PatchExample", "PatchingResult",
           "activation_patching", "analyse_heads", "assess", "attention_patterns", "check_context", "choose_foil",
           "copy_length", "custom_example", "detection_patterns", "detection_score", "encode_text",
           "find_induction_heads", "first_token", "hook_name", "hooks", "logit_difference", "logit_lens",
           "patch_recovered", "repeated_random_tokens", "run_with_cache", "run_with_hooks", "select_names",
           "to_transformer_bridge", "token_label"]
