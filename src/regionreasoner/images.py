"""Images as the model sees them: RGB, resized to the square frame (docs/method.md sections 3-4)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image


@lru_cache(maxsize=4096)
def load_frame_image(path: str, frame: int) -> Image.Image:
    """The image at ``path`` as RGB, resized to ``frame`` x ``frame`` (aspect ratio not kept)."""
    try:
        with Image.open(path) as image:
            return image.convert("RGB").resize((frame, frame), Image.BILINEAR)
    except OSError as err:
        raise FileNotFoundError(f"{path}: cannot read image ({err})") from None


@lru_cache(maxsize=256)
def load_rgb(path: str) -> Image.Image:
    """The image at ``path`` as RGB at its own size: models asked at native resolution (Qwen's own protocol)."""
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except OSError as err:
        raise FileNotFoundError(f"{path}: cannot read image ({err})") from None


@lru_cache(maxsize=256)
def load_original(path: str) -> np.ndarray:
    """The image at ``path`` as an RGB array in original pixels (what the segmenter sees)."""
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except OSError as err:
        raise FileNotFoundError(f"{path}: cannot read image ({err})") from None
