"""Exercise 15 — LoRA, fine-tuning through a low-rank adapter (docs/lessons/15-post-training.md): a solution.

Write a LoRA layer's forward pass and the merge that folds the adapter back into the weight; then run
`gptscratch learn check 15` (`gptscratch learn hint 15` if stuck).
Shapes: in / out the layer's widths, r the rank (r ≪ in, out).
"""

import torch  # noqa: F401 - not needed by this solution, but the stub made from it offers it to the learner


def lora_linear(x, weight, bias, lora_A, lora_B, alpha):
    """A frozen Linear layer plus a trainable low-rank change (Hu et al. 2021):

        y = x Wᵀ + b + (α / r) · (x Aᵀ) Bᵀ            r = lora_A.shape[0]

    x (..., in); weight W (out, in) and bias b (out,) or None: the pretrained layer, frozen; lora_A (r, in);
    lora_B (out, r); alpha α: a float. With B = 0 (how training starts) y is exactly the pretrained layer's
    output. Gradients must reach lora_A and lora_B. Returns (..., out).
    Reference: gptscratch/model/lora.py, `LoRALinear.forward`.
    """
    y = x @ weight.T
    if bias is not None:
        y = y + bias
    return y + (alpha / lora_A.shape[0]) * (x @ lora_A.T) @ lora_B.T


def merge_lora(weight, lora_A, lora_B, alpha):
    """Fold the adapter into the weight after training, so the layer is a plain Linear again:

        W' = W + (α / r) · B A                          (out, in)

    Returns W'. Reference: gptscratch/model/lora.py, `fold` (used by `LoRALinear.merged` and `merge_lora`).
    """
    return weight + (alpha / lora_A.shape[0]) * (lora_B @ lora_A)
