"""Qwen2.5-VL processing without the video processor.

The stock ``Qwen2_5_VLProcessor`` insists on a video processor, which needs torchvision; PyPI's
torchvision does not load beside the CPU torch wheel. RegionReasoner uses still images
only, so this subclass keeps Qwen2.5-VL's image path and chat template and drops video. The
image processor is the PIL backend, which needs no torchvision either. Paper-scale checkpoints load
their own image processor and tokenizer into the same class.
"""

from __future__ import annotations

from pathlib import Path

from transformers import AutoTokenizer, ProcessorMixin
from transformers.models.qwen2_5_vl.processing_qwen2_5_vl import Qwen2_5_VLProcessor
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

from regionreasoner.models.registry import check_model_folder

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' or 'image' in part %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


class RegionProcessor(Qwen2_5_VLProcessor):
    """Qwen2.5-VL processor for images only (no video processor, hence no torchvision)."""

    attributes = ["image_processor", "tokenizer"]

    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
        self.image_token = getattr(tokenizer, "image_token", None) or "<|image_pad|>"
        self.image_token_id = tokenizer.convert_tokens_to_ids(self.image_token)
        self.video_token = "<|video_pad|>"
        self.video_token_id = -1
        ProcessorMixin.__init__(self, image_processor, tokenizer, chat_template=chat_template)


NATIVE_PIXELS = (4 * 28 * 28, 16384 * 28 * 28)
"""Pixel limits of an image at its own resolution: qwen_vl_utils' defaults, which the authors'
Qwen evaluation (``process_vision_info``) applies."""


def make_image_processor(frame: int | None) -> Qwen2VLImageProcessorPil:
    """An image processor that keeps a ``frame`` x ``frame`` image at exactly that size.

    ``None``: the image keeps its own resolution within ``NATIVE_PIXELS`` (rounded to 28-pixel patches).
    """
    low, high = NATIVE_PIXELS if frame is None else (frame * frame, frame * frame)
    return Qwen2VLImageProcessorPil(min_pixels=low, max_pixels=high)


def load_processor(path: str | Path, frame: int | None) -> RegionProcessor:
    """Load tokenizer + image processor from a model folder into a RegionProcessor."""
    check_model_folder(Path(path))
    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.padding_side = "left"
    template = tokenizer.chat_template or CHAT_TEMPLATE
    return RegionProcessor(make_image_processor(frame), tokenizer, template)
