"""Reference-citation reward R_ref (docs/method.md section 5).

For a turn whose question cites reference boxes B_ref, with h the ``<think>`` text:
``R_ref = lambda * kw(h) + mu * |S(h) ∩ B_ref| / max(|S(h)|, 1)``, multiplied by eta when some
cited box is not a reference box, clipped to [0, 2]; ``R_ref = 1`` when the turn cites nothing.
S(h) is the set of boxes cited in h as ``bbox=[..]`` / ``bbox [..]``, compared as integer tuples;
kw(h) is 1 when h mentions a box word (bbox, bounding box, coordinates; any case).
lambda = mu = 1 and eta = 0.5 in the paper.
"""

from __future__ import annotations

from typing import Any

from regionreasoner.rewards.parsing import cited_boxes, column, completion_text, output_blocks

BOX_WORDS = ("bbox", "bounding box", "coordinates")
LAMBDA, MU, ETA = 1.0, 1.0, 0.5

IntBox = tuple[int, int, int, int]


def reference_boxes_of(problem: Any, reference_boxes: Any) -> frozenset[IntBox]:
    """B_ref of one row: the ``reference_boxes`` column when given, else the boxes cited in ``problem``."""
    if reference_boxes is not None:
        return frozenset(tuple(int(round(float(v))) for v in box) for box in reference_boxes)  # type: ignore[misc]
    return frozenset(cited_boxes(problem if isinstance(problem, str) else ""))


def rows_reference_boxes(count: int, kwargs: dict[str, Any], term: str) -> list[frozenset[IntBox]]:
    """B_ref for every row of a reward call; needs ``reference_boxes`` or ``problem``."""
    if kwargs.get("reference_boxes") is None and kwargs.get("problem") is None:
        raise ValueError(f"{term} needs the dataset column 'reference_boxes' or 'problem'")
    problems = column(kwargs, "problem", count)
    references = column(kwargs, "reference_boxes", count)
    return [reference_boxes_of(p, r) for p, r in zip(problems, references)]


def citation_score(
    text: str, references: frozenset[IntBox], *, lam: float = LAMBDA, mu: float = MU, eta: float = ETA
) -> float:
    """R_ref of one completion text, in [0, 2]."""
    if not references:
        return 1.0
    think = output_blocks(text).think or ""
    mentions = think.lower()
    keyword = float(any(word in mentions for word in BOX_WORDS))
    cited = set(cited_boxes(think))
    score = lam * keyword + mu * len(cited & references) / max(len(cited), 1)
    if cited - references:
        score *= eta
    return min(max(score, 0.0), 2.0)


def citation_reward(completions: list[Any], **kwargs: Any) -> list[float]:
    """TRL reward: R_ref per completion, in [0, 2] (1 on turns without a reference box)."""
    references = rows_reference_boxes(len(completions), kwargs, "citation_reward")
    return [citation_score(completion_text(c), r) for c, r in zip(completions, references)]
