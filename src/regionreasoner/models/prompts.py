"""Prompt and target format of RegionReasoner (PAPER.md section 4).

The model answers in four tagged parts, ``<scene>``, ``<focus>``, ``<think>`` and ``<answer>``;
the rewards (section 5) read each part, so the SFT targets and the GRPO prompts must agree with
them exactly. Messages use the conversational format TRL's trainers and the Qwen2.5-VL chat
template expect.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from regionreasoner.dialogs.geometry import render_box

TAGS = ("scene", "focus", "think", "answer")


@dataclass(frozen=True)
class PromptConfig:
    """The prompt recipe; the paper's values live in config/paper.yaml."""

    system: str = "You are a helpful assistant."
    user: str = 'Please find "{question}" with bboxs and points.'
    instruction: str = ""

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> PromptConfig:
        return cls(**config["prompt"])


def user_text(question: str, prompt: PromptConfig) -> str:
    """The text that follows the image in the user turn (the query comes after the image)."""
    text = prompt.user.format(question=question)
    return f"{text} {prompt.instruction}".strip() if prompt.instruction else text


def build_messages(question: str, prompt: PromptConfig) -> list[dict[str, Any]]:
    """System + user(image, question) messages, in TRL's conversational format."""
    return [
        {"role": "system", "content": [{"type": "text", "text": prompt.system}]},
        {
            "role": "user",
            "content": [{"type": "image"}, {"type": "text", "text": user_text(question, prompt)}],
        },
    ]


def render_answer(boxes: Sequence[Sequence[float]], points: Sequence[Sequence[float]]) -> str:
    """The JSON list inside ``<answer>``: one ``bbox_2d`` and ``point_2d`` per object."""
    objects = [
        {"bbox_2d": [int(round(v)) for v in box], "point_2d": [int(round(v)) for v in point]}
        for box, point in zip(boxes, points, strict=True)
    ]
    return json.dumps(objects, separators=(",", ":"))


def render_target(turn: dict[str, Any]) -> str:
    """The SFT target of one training turn (section 4 layout), built from its annotations.

    The think step names the target and, when the turn cites an earlier region, cites that box
    with its relation, which is what the citation reward (R_ref) looks for.
    """
    solution = turn["solution"]
    references = turn.get("reference_boxes") or []
    think = f"find {turn['target']}"
    if references and turn.get("relation"):
        think += f" {turn['relation']} {render_box(references[0])}"
    answer = render_answer([o["bbox_2d"] for o in solution], [o["point_2d"] for o in solution])
    return (
        f"<scene>{turn['scene']}</scene><focus>{turn.get('focus') or ''}</focus>"
        f"<think>{think}.</think><answer>{answer}</answer>"
    )
