"""Qwen2-VL's and Qwen2.5-VL's patch embedding on a CPU, computed as the matrix product it is.

Both vision towers embed each patch with a Conv3d whose kernel equals its stride and covers the
whole patch the processor already flattened, so the convolution is one dense projection of each
row. Torch runs it as a 3-D convolution all the same: on a CPU, one thread, the forward and weight
gradient of an SFT step's 1,024 patches took 30 ms as a Conv3d and 7.6 ms as a matmul, of a step
of about 0.24 s (docs/benchmarks.md). The weight stays the Conv3d's parameter, so checkpoints and
optimizer state are unchanged; the outputs agree up to the order of floating-point sums. Inputs on
an accelerator keep the Conv3d: cuDNN runs it well, and DeepSpeed ZeRO-3 gathers a module's weight
only when that module itself runs, which reading ``proj.weight`` from the parent would bypass.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from transformers.models.qwen2_5_vl import modeling_qwen2_5_vl
from transformers.models.qwen2_vl import modeling_qwen2_vl

PATCH_EMBEDS = (modeling_qwen2_5_vl.Qwen2_5_VisionPatchEmbed, modeling_qwen2_vl.PatchEmbed)
_CONV_FORWARDS = {cls: cls.forward for cls in PATCH_EMBEDS}


def _conv_forward(module: torch.nn.Module):
    """transformers' own forward of ``module``'s patch-embedding class (or of the one it derives from)."""
    return next(forward for cls, forward in _CONV_FORWARDS.items() if isinstance(module, cls))


def _embed_by_matmul_on_cpu(self, hidden_states: torch.Tensor) -> torch.Tensor:
    """The patch embedding by matmul for inputs on a CPU, by the Conv3d module anywhere else."""
    if hidden_states.device.type != "cpu":
        return _conv_forward(self)(self, hidden_states)
    weight = self.proj.weight
    return F.linear(hidden_states.reshape(-1, weight[0].numel()).to(weight.dtype), weight.flatten(1))


def embed_patches_by_matmul() -> None:
    """Make every Qwen2-VL / Qwen2.5-VL vision tower, loaded before or after, embed its patches on
    a CPU by matmul."""
    for cls in PATCH_EMBEDS:
        cls.forward = _embed_by_matmul_on_cpu


def embed_patches_by_conv() -> None:
    """Undo ``embed_patches_by_matmul``: transformers' Conv3d everywhere (to measure what the matmul saves)."""
    for cls, forward in _CONV_FORWARDS.items():
        cls.forward = forward
