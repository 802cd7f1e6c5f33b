"""Manual mode: every layer's backward pass written out by hand, as torch.autograd.Functions.

Autograd is the reason a GPT fits in a few hundred lines — but it hides the part of deep learning that is
easiest to get wrong on paper. Each module here is one layer with its forward, its backward and, in the
docstring, the derivation of the gradient with shapes:

    linear.py         y = x Wᵀ + b                       ∂x = g W, ∂W = gᵀ x, ∂b = Σ g
    layernorm.py      y = x̂ γ + β                        ∂x = r (ĝ − mean ĝ − x̂ mean(ĝ x̂))   (RMSNorm too)
    activations.py    GELU, ReLU, SiLU, ReLU²; gated      ∂x = g ⊙ f'(x); ∂gate = g ⊙ up ⊙ f', ∂up = g ⊙ f
    attention.py      softmax(QKᵀ/√hs + mask) V           ∂S = P ⊙ (∂P − Σ ∂P ⊙ P)
    rotary.py         RoPE rotation of q and k            ∂x = R(−a) g
    embedding.py      W[idx]                              ∂W = scatter-add of g
    cross_entropy.py  −log softmax(z)[t]; c·tanh(z/c)      ∂z = softmax(z) − onehot(t); g ⊙ (1 − tanh²)
    gpt.py            MANUAL: the model's kernels swapped for these; forward(model, idx, targets), loss(...)

tests/test_manual.py checks each Function with torch.autograd.gradcheck in float64 and one full training
step (gradients and AdamW update) against autograd. `gptscratch train --manual-backward` trains with it.
"""

from .activations import ActivationFunction, GatedActivationFunction, activation, gated
from .attention import CausalAttentionFunction, causal_attention
from .cross_entropy import CrossEntropyFunction, SoftcapFunction, cross_entropy, softcap
from .embedding import EmbeddingFunction, embedding
from .gpt import MANUAL, check_supported, forward, loss
from .layernorm import LayerNormFunction, RMSNormFunction, layer_norm, rms_norm
from .linear import LinearFunction, linear
from .rotary import RotaryFunction, apply_rotary

__all__ = ["MANUAL", "ActivationFunction", "CausalAttentionFunction", "CrossEntropyFunction", "EmbeddingFunction",
           "GatedActivationFunction", "LayerNormFunction", "LinearFunction", "RMSNormFunction", "RotaryFunction",
           "SoftcapFunction", "activation", "gated", "rms_norm", "softcap",
           "causal_attention", "check_supported", "cross_entropy", "embedding", "forward", "layer_norm",
           "linear", "loss", "apply_rotary"]
