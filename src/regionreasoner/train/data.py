"""Training turns as TRL datasets.

Images are loaded lazily and resized to the square frame the model sees (840x840 in the paper,
docs/method.md section 3), so box coordinates in questions and answers mean the same pixels in training,
in the rewards and at evaluation.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from datasets import Dataset

from regionreasoner.images import load_frame_image
from regionreasoner.io import TURN_KEYS, InputError, read_jsonl
from regionreasoner.models.prompts import PromptConfig, build_messages, render_target


def _with_images(frame: int, key: str):
    def transform(batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
        images = [load_frame_image(p, frame) for p in batch["image_path"]]
        batch[key] = [[img] for img in images] if key == "images" else images
        return batch

    return transform


SFT_KEYS = (*TURN_KEYS, "scene", "target")  # what the rendered SFT target reads besides the turn itself


def sft_dataset(turns_path: Path, prompt: PromptConfig, frame: int, target_style: str = "paper") -> Dataset:
    """Prompt/completion conversational rows with the rendered four-part target (section 4)."""
    rows = [
        {
            "prompt": build_messages(t["problem"], prompt),
            "completion": [
                {"role": "assistant", "content": [{"type": "text", "text": render_target(t, target_style)}]}
            ],
            "image_path": t["image_path"],
        }
        for t in read_jsonl(turns_path, SFT_KEYS, allow_empty=False)
    ]
    return Dataset.from_list(rows).with_transform(_with_images(frame, "images"))


def prompt_pool(turns: list[dict[str, Any]], size: int | None, seed: int) -> list[dict[str, Any]]:
    """A seeded sample of ``size`` turns (all turns when ``size`` is None), in file order.

    With a pool of prompts-per-step x steps/5 prompts, each fifth of a GRPO run is one pass over
    the same prompts, so the first and last fifths of the reward curve compare like with like
    (docs/benchmarks.md: on fresh prompts the step-to-step spread of prompt difficulty hides what
    a tiny model learns in 40 steps).
    """
    if size is None:
        return turns
    if size > len(turns):
        raise ValueError(
            f"grpo.prompts = {size} but the training file has only {len(turns)} turns; "
            "lower grpo.prompts or build more turns"
        )
    keep = sorted(random.Random(f"grpo-pool/{seed}").sample(range(len(turns)), size))
    return [turns[i] for i in keep]


def _pool(turns_path: Path, size: int | None, seed: int) -> list[dict[str, Any]]:
    try:
        return prompt_pool(read_jsonl(turns_path, TURN_KEYS, allow_empty=False), size, seed)
    except InputError:
        raise
    except ValueError as err:
        raise InputError(f"{turns_path}: {err}") from None


def grpo_dataset(turns_path: Path, prompt: PromptConfig, frame: int, pool: int | None = None, seed: int = 0) -> Dataset:
    """Prompt rows plus the columns the reward functions read (problem, solution, reference_boxes)."""
    rows = [
        {
            "prompt": build_messages(t["problem"], prompt),
            "image_path": t["image_path"],
            "problem": t["problem"],
            "solution": t["solution"],
            "reference_boxes": t.get("reference_boxes") or [],
        }
        for t in _pool(turns_path, pool, seed)
    ]
    return Dataset.from_list(rows).with_transform(_with_images(frame, "image"))
