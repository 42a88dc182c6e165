"""Parsing of model output (docs/method.md section 4) shared by the rewards and the evaluator.

The model answers ``<scene>..</scene><focus>..</focus><think>..</think><answer>[...]</answer>``.
Every function here runs in time linear in the input and never raises: a completion is hostile
input produced during a multi-day GPU run, and a crash or a catastrophic regular expression there
would cost the run. Tags are located with ``str.find`` rather than lazy regular
expressions, which are quadratic on unclosed or repeated tags.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, TypeVar

T = TypeVar("T")

MAX_OBJECTS = 100
"""Objects read from one answer; a longer list is truncated (the rest still counts as predicted)."""

_CACHE_MAX_CHARS = 65_536
"""Texts longer than this go to a cache of only a few entries, so it cannot pin much memory."""

# Integer or decimal coordinate; ASCII digits only. Each alternative consumes distinct characters,
# so a failed attempt is linear in the span it read and attempts start only at "bbox".
_NUMBER = r"([+-]?[0-9]+(?:\.[0-9]*)?)"
# ``\s*(?:=\s*)?`` accepts what ``\s*=?\s*`` accepts without two adjacent ``\s*`` (quadratic).
_CITED_BOX = re.compile(r"bbox\s*(?:=\s*)?\[\s*" + r"\s*,\s*".join([_NUMBER] * 4) + r"\s*\]", re.IGNORECASE)
_MAX_COORD = 1e9


def memoize_text(function: Callable[[str], T]) -> Callable[[str], T]:
    """Cache ``function`` of one string: every reward term of a batch reads the same completion.

    Short texts share a 4,096-entry LRU; long ones (up to 1 MB of hostile output) an 8-entry one.
    Results must be treated as read-only.
    """
    small = lru_cache(maxsize=4096)(function)
    large = lru_cache(maxsize=8)(function)

    def cached(text: str) -> T:
        return small(text) if len(text) <= _CACHE_MAX_CHARS else large(text)

    cached.__doc__ = function.__doc__
    return cached


def completion_text(completion: Any) -> str:
    """The text of one TRL completion: a string, or a conversational list of messages.

    A message's ``content`` may be a string or a list of ``{"type": "text", "text": ...}`` parts;
    the text of every non-user message is concatenated in order. Anything else yields ``""``.
    """
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        completion = [completion]
    if not isinstance(completion, (list, tuple)):
        return ""
    pieces: list[str] = []
    for message in completion:
        if not isinstance(message, dict) or message.get("role") in ("user", "system"):
            continue
        content = message.get("content")
        if isinstance(content, str):
            pieces.append(content)
        elif isinstance(content, (list, tuple)):
            for part in content:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    pieces.append(part["text"])
                elif isinstance(part, str):
                    pieces.append(part)
    return "".join(pieces)


def extract_tag(text: str, tag: str) -> str | None:
    """Content of the first ``<tag>`` up to the first ``</tag>`` after it, stripped; None if absent.

    Equivalent to ``re.search(r"<tag>\\s*(.*?)\\s*</tag>", text, re.DOTALL).group(1)`` (the
    released code's pattern) but linear: nested tags therefore end at the first closing tag.
    """
    if not isinstance(text, str):
        return None
    opening, closing = f"<{tag}>", f"</{tag}>"
    start = text.find(opening)
    if start < 0:
        return None
    start += len(opening)
    end = text.find(closing, start)
    if end < 0:
        return None
    return text[start:end].strip()


@dataclass(frozen=True)
class Blocks:
    """The stripped contents of the four output blocks of a completion; None where a block is absent."""

    scene: str | None
    focus: str | None
    think: str | None
    answer: str | None


@memoize_text
def _blocks(text: str) -> Blocks:
    return Blocks(*(extract_tag(text, tag) for tag in ("scene", "focus", "think", "answer")))


def output_blocks(text: str) -> Blocks:
    """``extract_tag`` of scene, focus, think and answer (cached)."""
    if not isinstance(text, str):
        return Blocks(None, None, None, None)
    return _blocks(text)


def _finite_number(value: Any) -> float | None:
    """A JSON number as a finite float; booleans, strings and non-finite values are rejected."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:  # an integer beyond the float range
        return None
    return number if math.isfinite(number) else None


def _numbers(value: Any, count: int) -> tuple[float, ...] | None:
    if not isinstance(value, list) or len(value) != count:
        return None
    numbers = tuple(_finite_number(v) for v in value)
    return None if any(n is None for n in numbers) else numbers  # type: ignore[return-value]


def valid_box(value: Any) -> tuple[float, float, float, float] | None:
    """``[x1, y1, x2, y2]`` of finite numbers with x1 < x2 and y1 < y2, else None."""
    box = _numbers(value, 4)
    if box is None or not (box[0] < box[2] and box[1] < box[3]):
        return None
    return box  # type: ignore[return-value]


def valid_point(value: Any) -> tuple[float, float] | None:
    """``[x, y]`` of finite numbers, else None."""
    return _numbers(value, 2)  # type: ignore[return-value]


@dataclass(frozen=True)
class AnswerObject:
    """One item of the answer list; ``box``/``point`` are None when that field is invalid."""

    box: tuple[float, float, float, float] | None
    point: tuple[float, float] | None


@dataclass(frozen=True)
class Answer:
    """What ``<answer>`` holds: ``is_list`` is False when absent, not JSON, or not a JSON list.

    ``item_count`` counts every item of the list; ``objects`` holds the first MAX_OBJECTS items,
    with an all-None AnswerObject for an item that is not a JSON object.
    """

    is_list: bool
    item_count: int
    objects: tuple[AnswerObject, ...]


_NO_ANSWER = Answer(is_list=False, item_count=0, objects=())


def _load_json(payload: str) -> Any:
    try:
        return json.loads(payload)
    except Exception:  # JSONDecodeError, RecursionError on deep nesting, int digit limit
        pass
    if payload.startswith("```") and payload.endswith("```") and len(payload) >= 6:
        # a ```json fenced answer of a chat model: drop the fence line and the closing fence
        body = payload[3:-3]
        newline = body.find("\n")
        try:
            return json.loads(body[newline + 1 :] if newline >= 0 else body)
        except Exception:
            pass
    return None


@memoize_text
def _parse_answer(text: str) -> Answer:
    payload = output_blocks(text).answer
    if payload is None:
        return _NO_ANSWER
    data = _load_json(payload)
    if not isinstance(data, list):
        return _NO_ANSWER
    objects = []
    for item in data[:MAX_OBJECTS]:
        if isinstance(item, dict):
            objects.append(AnswerObject(valid_box(item.get("bbox_2d")), valid_point(item.get("point_2d"))))
        else:
            objects.append(AnswerObject(None, None))
    return Answer(is_list=True, item_count=len(data), objects=tuple(objects))


def answer_of(text: str) -> Answer:
    """The parsed ``<answer>`` of ``text`` (cached)."""
    if not isinstance(text, str):
        return _NO_ANSWER
    return _parse_answer(text)


def parse_answer(text: str) -> list[dict]:
    """Objects of ``<answer>[...]</answer>`` as ``[{"bbox_2d": [4 floats], "point_2d": [2 floats] | None}]``.

    Items whose box is missing, non-finite or inverted are dropped; at most MAX_OBJECTS items are
    read. No answer tag, invalid JSON or JSON that is not a list gives ``[]``. Never raises.
    """
    return [
        {"bbox_2d": list(obj.box), "point_2d": list(obj.point) if obj.point is not None else None}
        for obj in answer_of(text).objects
        if obj.box is not None
    ]


def _coordinate(token: str) -> int | None:
    value = float(token)  # linear in the token; a long digit run becomes inf, never raises
    if not math.isfinite(value) or abs(value) > _MAX_COORD:
        return None
    return int(round(value))


def cited_boxes(text: str) -> list[tuple[int, int, int, int]]:
    """Boxes cited as ``bbox=[x1,y1,x2,y2]`` or ``bbox [..]`` (any case), in order of appearance.

    Coordinates are rounded to integers so that citations compare as integer tuples
    (docs/method.md section 5, R_ref); coordinates beyond 1e9 in magnitude are ignored.
    """
    if not isinstance(text, str):
        return []
    boxes = []
    for match in _CITED_BOX.finditer(text):
        coords = [_coordinate(group) for group in match.groups()]
        if all(c is not None for c in coords):
            boxes.append(tuple(coords))
    return boxes  # type: ignore[return-value]


def column(kwargs: dict[str, Any], name: str, count: int) -> list[Any]:
    """Dataset column ``name`` from a TRL reward call's kwargs, or ``count`` Nones if absent."""
    values = kwargs.get(name)
    if values is None:
        return [None] * count
    values = list(values)
    if len(values) != count:
        raise ValueError(f"reward column {name!r} has {len(values)} values for {count} completions")
    return values
