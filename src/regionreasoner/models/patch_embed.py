"""Qwen2-VL's and Qwen2.5-VL's patch embedding computed as the matrix product it is.

Both vision towers embed each patch with a Conv3d whose kernel equals its stride and covers the
whole patch the processor already flattened, so the convolution is one dense projection of each
row. Torch runs it as a 3-D convolution all the same; on a CPU its weight gradient alone took 22 ms
of a 243 ms SFT step of the tiny model, against about 5 ms for the same product as a matmul
(docs/benchmarks.md). The weight stays the Conv3d's parameter, so checkpoints, optimizer state and
DeepSpeed's partitioning are unchanged; the outputs agree up to the order of floating-point sums.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from transformers.models.qwen2_5_vl import modeling_qwen2_5_vl
from transformers.models.qwen2_vl import modeling_qwen2_vl

PATCH_EMBEDS = (modeling_qwen2_5_vl.Qwen2_5_VisionPatchEmbed, modeling_qwen2_vl.PatchEmbed)


def _embed_by_matmul(self, hidden_states: torch.Tensor) -> torch.Tensor:
    weight = self.proj.weight
    return F.linear(hidden_states.reshape(-1, weight[0].numel()).to(weight.dtype), weight.flatten(1))


def embed_patches_by_matmul() -> None:
    """Make every Qwen2-VL / Qwen2.5-VL vision tower, loaded before or after, embed its patches by matmul."""
    for cls in PATCH_EMBEDS:
        cls.forward = _embed_by_matmul
