"""The eight relation templates of RegionDial (docs/method.md section 3), each decided from geometry.

A later turn cites an earlier region by its box with one of: next to / above / below / to the left
of / to the right of / inside / overlapping with / touching. The paper gives only the phrases; the
builder must never write a relation that is false, so each one is defined here on the two boxes,
``target`` (the object asked for) and ``reference`` (the cited box), read as
"the target is <relation> the reference". Boxes are ``[x1, y1, x2, y2]``, continuous coordinates.

Definitions (``ox``/``oy``: length of the overlap of the two boxes' x / y projections, negative
when they are apart; ``gx``/``gy``: the gap between the projections, 0 when they overlap):

- ``above``: the target ends above the reference starts (``t.y2 <= r.y1``) and they share columns
  (``ox > 0``). ``below``, ``left_of`` (``t.x2 <= r.x1``, ``oy > 0``), ``right_of`` likewise.
- ``inside``: the target box lies within the reference box and is strictly smaller.
- ``overlapping``: the boxes overlap with positive area and neither contains the other.
- ``touching``: no overlapping area, and one side of the target lies on (within ``TOUCH_TOLERANCE``
  px of) a side of the reference along a shared stretch (``ox > 0`` or ``oy > 0``): sharing only a
  corner is not touching.
- ``next_to``: no overlapping area, and the distance between the boxes is at most ``NEAR_FRACTION``
  of the shorter side of the smaller box, so "next to" scales with the objects.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from regionreasoner.dialogs.geometry import Box, box_area, intersection_area

RELATIONS: dict[str, str] = {
    "next_to": "next to",
    "above": "above",
    "below": "below",
    "left_of": "to the left of",
    "right_of": "to the right of",
    "inside": "inside",
    "overlapping": "overlapping with",
    "touching": "touching",
}
"""Template key -> phrase, in the paper's order (docs/method.md section 3)."""

TOUCH_TOLERANCE = 1.0
"""Pixels two box sides may be apart and still touch (annotations are not pixel-exact)."""

NEAR_FRACTION = 0.5
"""``next_to`` holds up to this fraction of the smaller object's shorter side apart."""

REF_BOX = "{ref_box}"
"""Placeholder for the cited box in question templates (docs/data.md)."""


def _overlaps(t: Box, r: Box) -> tuple[float, float]:
    return min(t[2], r[2]) - max(t[0], r[0]), min(t[3], r[3]) - max(t[1], r[1])


def _contains(outer: Box, inner: Box) -> bool:
    return outer[0] <= inner[0] and outer[1] <= inner[1] and inner[2] <= outer[2] and inner[3] <= outer[3]


def _above(t: Box, r: Box) -> bool:
    return t[3] <= r[1] and _overlaps(t, r)[0] > 0


def _below(t: Box, r: Box) -> bool:
    return t[1] >= r[3] and _overlaps(t, r)[0] > 0


def _left_of(t: Box, r: Box) -> bool:
    return t[2] <= r[0] and _overlaps(t, r)[1] > 0


def _right_of(t: Box, r: Box) -> bool:
    return t[0] >= r[2] and _overlaps(t, r)[1] > 0


def _inside(t: Box, r: Box) -> bool:
    return _contains(r, t) and box_area(t) < box_area(r)


def _overlapping(t: Box, r: Box) -> bool:
    return intersection_area(t, r) > 0 and not _contains(r, t) and not _contains(t, r)


def _touching(t: Box, r: Box) -> bool:
    if intersection_area(t, r) > 0:
        return False
    ox, oy = _overlaps(t, r)
    return (oy > 0 and -TOUCH_TOLERANCE <= ox <= 0) or (ox > 0 and -TOUCH_TOLERANCE <= oy <= 0)


def _next_to(t: Box, r: Box) -> bool:
    if intersection_area(t, r) > 0:
        return False
    ox, oy = _overlaps(t, r)
    distance = math.hypot(max(0.0, -ox), max(0.0, -oy))
    shorter_side = min(t[2] - t[0], t[3] - t[1], r[2] - r[0], r[3] - r[1])
    return distance <= NEAR_FRACTION * shorter_side


_PREDICATES: dict[str, Callable[[Box, Box], bool]] = {
    "next_to": _next_to,
    "above": _above,
    "below": _below,
    "left_of": _left_of,
    "right_of": _right_of,
    "inside": _inside,
    "overlapping": _overlapping,
    "touching": _touching,
}


def check_relations(relations: Sequence[str] | None) -> list[str]:
    """The relation keys to use (all eight when ``None``); unknown keys raise, naming the allowed ones."""
    if relations is None:
        return list(RELATIONS)
    unknown = [key for key in relations if key not in RELATIONS]
    if unknown or not relations:
        raise ValueError(f"unknown relation(s) {unknown or relations}; allowed: {', '.join(RELATIONS)}")
    return [key for key in RELATIONS if key in relations]


def relation_holds(relation: str, target: Box, reference: Box) -> bool:
    """Whether "the target is <relation> the reference" is geometrically true."""
    return _PREDICATES[relation](target, reference)


def holding_relations(target: Box, reference: Box, relations: Sequence[str]) -> list[str]:
    """The relations among ``relations`` that hold, in the paper's order."""
    return [key for key in relations if _PREDICATES[key](target, reference)]


def is_unique(relation: str, target_ann: int, reference_ann: int, boxes: Mapping[int, Box]) -> bool:
    """Whether the target is the only annotated object of the image in ``relation`` to the reference.

    Then the question can say "the object <relation> bbox=[...]" and the cited box alone identifies
    the target; otherwise the target's own sentence is kept in the question.
    """
    reference = boxes[reference_ann]
    return all(
        ann == target_ann or not _PREDICATES[relation](box, reference)
        for ann, box in boxes.items()
        if ann != reference_ann
    )


@dataclass(frozen=True)
class Citation:
    """A chosen citation: which candidate reference, with which relation, and whether it is unique."""

    candidate: int
    relation: str
    unique: bool


def choose_citation(
    target_ann: int,
    candidates: Sequence[int],
    boxes: Mapping[int, Box],
    relations: Sequence[str],
    rng: random.Random,
) -> Citation | None:
    """Pick (seeded) a candidate reference object and a relation that truly holds, or ``None``.

    ``candidates`` are annotation ids the turn may cite (earlier turns' targets in the benchmark,
    other referred objects in training). Pairs whose relation identifies the target uniquely are
    preferred, so that the question depends on the cited region; otherwise any true pair is used.
    """
    target = boxes[target_ann]
    pairs = [
        (index, relation)
        for index, ann in enumerate(candidates)
        for relation in holding_relations(target, boxes[ann], relations)
    ]
    unique = [(i, rel) for i, rel in pairs if is_unique(rel, target_ann, candidates[i], boxes)]
    pool = unique or pairs
    if not pool:
        return None
    index, relation = rng.choice(pool)
    return Citation(candidate=index, relation=relation, unique=bool(unique))


def question_template(relation: str, sentence: str, unique: bool) -> str:
    """The question of a citing turn with the literal ``{ref_box}`` placeholder (docs/data.md)."""
    subject = "the object" if unique else sentence
    return f"{subject} {RELATIONS[relation]} {REF_BOX}"
