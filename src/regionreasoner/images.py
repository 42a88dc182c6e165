"""Images as the model sees them: RGB, resized to the square frame (docs/method.md sections 3-4)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from regionreasoner.io import InputError


def _unreadable(path: str, err: OSError) -> InputError:
    problem = "no such image" if isinstance(err, FileNotFoundError) else f"not a readable image ({err})"
    return InputError(f"{path}: {problem}; check the path, or download or rebuild the images")


def image_size(path: str | Path) -> tuple[int, int]:
    """Width and height of an image file (its header only)."""
    try:
        with Image.open(path) as image:
            return image.size
    except OSError as err:
        raise _unreadable(str(path), err) from None


@lru_cache(maxsize=4096)
def load_frame_image(path: str, frame: int) -> Image.Image:
    """The image at ``path`` as RGB, resized to ``frame`` x ``frame`` (aspect ratio not kept)."""
    try:
        with Image.open(path) as image:
            return image.convert("RGB").resize((frame, frame), Image.BILINEAR)
    except OSError as err:
        raise _unreadable(path, err) from None


@lru_cache(maxsize=256)
def load_rgb(path: str) -> Image.Image:
    """The image at ``path`` as RGB at its own size: models asked at native resolution (Qwen's own protocol)."""
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except OSError as err:
        raise _unreadable(path, err) from None


@lru_cache(maxsize=256)
def load_original(path: str) -> np.ndarray:
    """The image at ``path`` as an RGB array in original pixels (what the segmenter sees)."""
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except OSError as err:
        raise _unreadable(path, err) from None
