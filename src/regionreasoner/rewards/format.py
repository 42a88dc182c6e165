"""Format and non-repeat terms of R_base (docs/method.md section 5; VisionReasoner's base reward).

``format_reward`` = structure + answer validity, in [0, 3]:
  * structure (0 or 1): the completion is exactly ``<scene>..</scene><focus>..</focus>
    <think>..</think><answer>..</answer>`` in this order, separated only by whitespace (the output
    format of docs/method.md section 4; VisionReasoner's term checks ``<think>..</think><answer>..</answer>``);
  * answer validity (0 to 2): mean over the answer's objects of [bbox_2d is 4 finite numbers with
    x1 < x2, y1 < y2] + [point_2d is 2 finite numbers]; 0 when the answer is not a JSON list.
``non_repeat_reward`` (0 or 1): 0 when, splitting the completion at ".", two or more sentences
repeat an earlier one (VisionReasoner's definition), else 1.
"""

from __future__ import annotations

import re
from typing import Any

from regionreasoner.rewards.parsing import answer_of, completion_text

OUTPUT_TAGS = ("scene", "focus", "think", "answer")
_SPACE = re.compile(r"\s*")


def follows_output_format(text: str) -> bool:
    """True when ``text`` is the four tagged blocks in order with only whitespace around them."""
    position = 0
    for tag in OUTPUT_TAGS:
        position = _SPACE.match(text, position).end()  # type: ignore[union-attr]
        opening, closing = f"<{tag}>", f"</{tag}>"
        if not text.startswith(opening, position):
            return False
        end = text.find(closing, position + len(opening))
        if end < 0:
            return False
        position = end + len(closing)
    return _SPACE.match(text, position).end() == len(text)  # type: ignore[union-attr]


def answer_validity(text: str) -> float:
    """Mean of [valid box] + [valid point] over the answer objects, in [0, 2]."""
    answer = answer_of(text)
    if not answer.objects:
        return 0.0
    valid = sum((obj.box is not None) + (obj.point is not None) for obj in answer.objects)
    return valid / len(answer.objects)


def format_score(text: str) -> float:
    """Format term of one completion text, in [0, 3]."""
    return float(follows_output_format(text)) + answer_validity(text)


def non_repeat_score(text: str) -> float:
    """1.0 unless two or more "."-separated sentences repeat an earlier one (then 0.0)."""
    seen: set[str] = set()
    repeats = 0
    for sentence in text.split("."):
        sentence = sentence.strip()
        if not sentence:
            continue
        if sentence in seen:
            repeats += 1
            if repeats >= 2:
                return 0.0
        seen.add(sentence)
    return 1.0


def format_reward(completions: list[Any], **kwargs: Any) -> list[float]:
    """TRL reward: format term of R_base per completion, in [0, 3]."""
    return [format_score(completion_text(c)) for c in completions]


def non_repeat_reward(completions: list[Any], **kwargs: Any) -> list[float]:
    """TRL reward: non-repeat term of R_base per completion, 0 or 1."""
    return [non_repeat_score(completion_text(c)) for c in completions]
