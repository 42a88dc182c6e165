"""Prompt and target format of RegionReasoner (docs/method.md section 4).

The model answers in four tagged parts, ``<scene>``, ``<focus>``, ``<think>`` and ``<answer>``;
the rewards (section 5) read each part, so the SFT targets and the GRPO prompts must agree with
them exactly. Messages use the conversational format TRL's trainers and the Qwen2.5-VL chat
template expect.
"""

from __future__ import annotations

import fnmatch
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from regionreasoner.dialogs.geometry import int_box, render_box
from regionreasoner.dialogs.relations import RELATIONS
from regionreasoner.dialogs.released import PLACEHOLDER, released_box_text

if TYPE_CHECKING:
    from regionreasoner.config import ModelPrompt, PipelineConfig

TAGS = ("scene", "focus", "think", "answer")


IMAGE_MARKER = "<image>"
"""A verbatim template starting with this marker puts the image there (the authors' training prompt)."""


@dataclass(frozen=True)
class PromptConfig:
    """The prompt recipe; the paper's values live in config/paper.yaml.

    The embedded default asks ``user`` + ``instruction``. A model's own prompt (``template``, from
    config ``prompt.models`` / ``prompt.train``) is a verbatim template whose ``question_field``
    takes the question, lower-cased and stripped as the code it comes from does; ``system=None``
    sends no system message, as the authors' evaluation does (the chat template adds its default).
    """

    system: str | None = "You are a helpful assistant."
    user: str = 'Please find "{question}" with bboxs and points.'
    instruction: str = ""
    template: str | None = None
    question_field: str = "Question"
    fill: tuple[tuple[str, str], ...] = ()
    lowercase: bool = False
    strip: str = ""
    source: str = ""
    answer_format: str = "tagged_json"

    @classmethod
    def from_config(cls, cfg: PipelineConfig) -> PromptConfig:
        """The default prompt of a validated config (``prompt.system``, ``user``, ``instruction``)."""
        p = cfg.prompt
        return cls(system=p.system, user=p.user, instruction=p.instruction or "")

    @classmethod
    def from_model_prompt(cls, section: ModelPrompt) -> PromptConfig:
        """A verbatim model prompt (one entry of ``prompt.models`` or ``prompt.train``)."""
        return cls(
            system=section.system,
            template=section.template,
            question_field=section.question_field,
            fill=tuple(sorted(section.fill.items())),
            lowercase=section.lowercase,
            strip=section.strip,
            source=section.source,
            answer_format=section.answer_format,
        )


def model_prompt_section(cfg: PipelineConfig, model_id: str) -> ModelPrompt | None:
    """The ``prompt.models`` entry for ``model_id``: its exact id, else the first matching pattern."""
    models = cfg.prompt.models or {}
    if model_id in models:
        return models[model_id]
    return next((section for pattern, section in models.items() if fnmatch.fnmatchcase(model_id, pattern)), None)


def max_new_tokens_for(cfg: PipelineConfig, model_id: str) -> int:
    """The generation limit of ``model_id``: its prompt's own, else ``evaluate.max_new_tokens``."""
    section = model_prompt_section(cfg, model_id)
    return (section.max_new_tokens if section else None) or cfg.evaluate.max_new_tokens


def prompt_for_model(cfg: PipelineConfig, model_id: str) -> PromptConfig:
    """The prompt model ``model_id`` is evaluated with: its own template, else the default."""
    section = model_prompt_section(cfg, model_id)
    return PromptConfig.from_model_prompt(section) if section else PromptConfig.from_config(cfg)


def training_prompt(cfg: PipelineConfig) -> PromptConfig:
    """The GRPO training prompt: ``prompt.train`` when set (paper scale), else the default."""
    section = cfg.prompt.train
    return PromptConfig.from_model_prompt(section) if section else PromptConfig.from_config(cfg)


def user_text(question: str, prompt: PromptConfig) -> str:
    """The text that follows the image in the user turn (the query comes after the image)."""
    if prompt.template is not None:
        if prompt.lowercase:
            question = question.lower()
        text = prompt.template.format(**{prompt.question_field: question.strip(prompt.strip)}, **dict(prompt.fill))
        return text.removeprefix(IMAGE_MARKER)
    text = prompt.user.format(question=question)
    return f"{text} {prompt.instruction}".strip() if prompt.instruction else text


def build_messages(question: str, prompt: PromptConfig) -> list[dict[str, Any]]:
    """System + user(image, question) messages, in TRL's conversational format."""
    user = {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": user_text(question, prompt)}]}
    if prompt.system is None:
        return [user]
    return [{"role": "system", "content": [{"type": "text", "text": prompt.system}]}, user]


def render_answer(boxes: Sequence[Sequence[float]], points: Sequence[Sequence[float]]) -> str:
    """The JSON list inside ``<answer>``: one ``bbox_2d`` and ``point_2d`` per object."""
    objects = [{"bbox_2d": int_box(box), "point_2d": int_box(point)} for box, point in zip(boxes, points, strict=True)]
    return json.dumps(objects, separators=(",", ":"))


TARGET_STYLES = ("paper", "compact", "varied")


def _varied_think(turn: dict[str, Any], relation: str, box: str) -> str:
    """The think step of the ``varied`` target: the ``compact`` think with optional parts, each present
    by a draw seeded by the turn id, so the SFT model writes each with some probability and the
    completions of a GRPO group differ in what R_ref and R_cons read.

    Uncited turn: ``find <target>`` (the question restated: a comparison word for the logic prior) or
    nothing. Cited turn: the relation, then the cited object's name (the focus nouns R_cons compares)
    and the cited box (what R_ref scores), each half the time. The answer is never part of a draw.
    """
    rng = random.Random(f"target/{turn['id']}")
    if not box:
        return f"find {turn['target']}" if rng.random() < 0.5 else ""
    with_focus, with_box = rng.random() < 0.5, rng.random() < 0.5
    parts = [relation, turn.get("focus") or "" if with_focus else "", box if with_box else ""]
    return " ".join(part for part in parts if part)


def render_target(turn: dict[str, Any], style: str = "paper") -> str:
    """The SFT target of one training turn (section 4 layout), built from its annotations.

    ``paper``: the scene is the image caption, the focus names the cited object and the think step
    names the target and cites the reference box with its relation (what R_ref and R_cons read).
    ``compact``: the same four parts with an empty scene and a think step that only cites the
    reference box, so that the answer follows the query closely. A tiny model trained for minutes
    localises with it and not with the long form (docs/benchmarks.md).
    ``varied``: the ``compact`` layout with a think whose parts are each present in about half the
    turns (``_varied_think``): the reward terms then have something to tell apart within a GRPO
    group. With ``compact`` every sampled completion cites alike and no think shares a noun with the
    focus, so R_ref and R_cons rank no completion of a group above another (docs/benchmarks.md).
    """
    if style not in TARGET_STYLES:
        raise ValueError(f"unknown target style {style!r}; choose one of {TARGET_STYLES}")
    solution = turn["solution"]
    references = turn.get("reference_boxes") or []
    relation = RELATIONS.get(turn.get("relation") or "", turn.get("relation"))
    box = render_box(references[0]) if references and relation else ""
    cited = f"{relation} {box}" if box else ""
    if style == "paper":
        scene, think = turn["scene"], f"find {turn['target']}" + (f" {cited}" if cited else "") + "."
    elif style == "varied":
        scene, think = "", _varied_think(turn, relation, box)
    else:
        scene, think = "", cited
    answer = render_answer([o["bbox_2d"] for o in solution], [o["point_2d"] for o in solution])
    return (
        f"<scene>{scene}</scene><focus>{turn.get('focus') or ''}</focus><think>{think}</think><answer>{answer}</answer>"
    )


def fill_cited_box(question: str, box: Sequence[float]) -> str:
    """Write ``box`` into the question's cited-box placeholder, in the format its bench uses.

    Released questions hold ``<box>{context_bbox}</box>`` (filled as the authors' evaluation does);
    built ones hold ``{ref_box}`` (filled as ``bbox=[x1,y1,x2,y2]``). A question without either is
    returned as written.
    """
    if PLACEHOLDER in question:
        return question.replace(PLACEHOLDER, released_box_text(list(box)))
    return question.replace("{ref_box}", render_box(box))


def show_prompt(cfg: PipelineConfig, model_id: str, question: str, cited_box: Sequence[float] | None = None) -> str:
    """The messages ``model_id`` receives for one turn, as JSON with the image as a marker.

    A header names where the prompt comes from, so a user can check it against its source without
    loading any weights.
    """
    if cited_box is not None:
        question = fill_cited_box(question, cited_box)
    from regionreasoner.evaluate.answers import answer_format

    prompt = prompt_for_model(cfg, model_id)
    frame = cfg.model.frame
    answers = answer_format(prompt.answer_format)
    image = (
        "image at its own resolution (Qwen's pixel limits)"
        if answers.native_image
        else f"image resized to {frame}x{frame} (bilinear)"
    )
    lines = [
        f"# {model_id}: {prompt.source or 'default prompt (prompt.system, prompt.user, prompt.instruction)'}",
        f"# {image}; greedy decoding, at most {max_new_tokens_for(cfg, model_id)} new tokens",
        f"# answer read as {answers.name} (boxes in {answers.coordinates})",
    ]
    if prompt.system is None:
        lines.append(
            "# no system message is sent; the Qwen2.5-VL chat template then adds 'You are a helpful assistant.'"
        )
    lines.append(json.dumps(build_messages(question, prompt), indent=1, ensure_ascii=False))
    return "\n".join(lines)
