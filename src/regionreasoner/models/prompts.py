"""Prompt and target format of RegionReasoner (docs/method.md section 4).

The model answers in four tagged parts, ``<scene>``, ``<focus>``, ``<think>`` and ``<answer>``;
the rewards (section 5) read each part, so the SFT targets and the GRPO prompts must agree with
them exactly. Messages use the conversational format TRL's trainers and the Qwen2.5-VL chat
template expect.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from regionreasoner.dialogs.geometry import int_box, render_box
from regionreasoner.dialogs.relations import RELATIONS

if TYPE_CHECKING:
    from regionreasoner.config import PipelineConfig

TAGS = ("scene", "focus", "think", "answer")


@dataclass(frozen=True)
class PromptConfig:
    """The prompt recipe; the paper's values live in config/paper.yaml."""

    system: str = "You are a helpful assistant."
    user: str = 'Please find "{question}" with bboxs and points.'
    instruction: str = ""

    @classmethod
    def from_config(cls, cfg: PipelineConfig) -> PromptConfig:
        """The validated ``prompt`` section: the one way every stage builds its prompt."""
        return cls(**cfg.prompt.model_dump())


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
        {"bbox_2d": int_box(box), "point_2d": int_box(point)}
        for box, point in zip(boxes, points, strict=True)
    ]
    return json.dumps(objects, separators=(",", ":"))


TARGET_STYLES = ("paper", "compact")


def render_target(turn: dict[str, Any], style: str = "paper") -> str:
    """The SFT target of one training turn (section 4 layout), built from its annotations.

    ``paper``: the scene is the image caption, the focus names the cited object and the think step
    names the target and cites the reference box with its relation (what R_ref and R_cons read).
    ``compact``: the same four parts with an empty scene and a think step that only cites the
    reference box, so that the answer follows the query closely. A tiny model trained for minutes
    localises with it and not with the long form (docs/benchmarks.md); GRPO then rewards the model
    for filling in the scene.
    """
    if style not in TARGET_STYLES:
        raise ValueError(f"unknown target style {style!r}; choose one of {TARGET_STYLES}")
    solution = turn["solution"]
    references = turn.get("reference_boxes") or []
    relation = RELATIONS.get(turn.get("relation") or "", turn.get("relation"))
    cited = f"{relation} {render_box(references[0])}" if references and relation else ""
    if style == "paper":
        scene, think = turn["scene"], f"find {turn['target']}" + (f" {cited}" if cited else "") + "."
    else:
        scene, think = "", cited
    answer = render_answer([o["bbox_2d"] for o in solution], [o["point_2d"] for o in solution])
    return (
        f"<scene>{scene}</scene><focus>{turn.get('focus') or ''}</focus>"
        f"<think>{think}</think><answer>{answer}</answer>"
    )
