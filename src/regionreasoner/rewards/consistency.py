"""Global-local consistency reward R_cons with its logic prior (docs/method.md section 5).

``Ov(X, Y) = |K(X) ∩ K(Y)| / max(|K(X)|, 1)`` with K(.) the key nouns (nouns.py), and
``R_cons = w_s * Ov(scene, think) + w_f * [B_ref nonempty] * Ov(focus, think) + w_l * logic(think)``
clipped to [0, 2], with the model's own ``<scene>``, ``<focus>`` and ``<think>`` texts (a missing tag
reads as empty). Paper weights: w_s = 1.0, w_f = 0.6, w_l = 0.4; ``w_l = 0`` switches the logic prior
off (ablation row "+ ref-cite + consistency", Tables 3 and 4).

``logic(h)`` is the capped prior on reasoning words: 0.5 for a spatial word, 0.3 for a comparison
word, 0.2 for a location word and 0.2 for a reference word (each class counted once), capped at 1,
so R_cons never exceeds 1.0 + 0.6 + 0.4 = 2. The word classes are those of the released code, matched
as whole words (with their common inflections) rather than as substrings.
"""

from __future__ import annotations

import re
from typing import Any

from regionreasoner.rewards.citation import rows_reference_boxes
from regionreasoner.rewards.nouns import key_nouns
from regionreasoner.rewards.parsing import completion_text, output_blocks

W_SCENE, W_FOCUS, W_LOGIC = 1.0, 0.6, 0.4
LOGIC_CAP = 1.0


def _words(*words: str) -> re.Pattern[str]:
    return re.compile(r"\b(?:" + "|".join(w.replace(" ", r"\s+") for w in words) + r")\b")


LOGIC_CLASSES: tuple[tuple[float, re.Pattern[str]], ...] = (
    (
        0.5,
        _words(
            "above",
            "below",
            "left",
            "right",
            "inside",
            "overlap",
            "overlaps",
            "overlapping",
            "near",
            "nearby",
            "touch",
            "touches",
            "touching",
            "next to",
            "beside",
            "under",
            "behind",
        ),
    ),
    (
        0.3,
        _words(
            "compare",
            "compared",
            "comparing",
            "comparison",
            "similar",
            "different",
            "difference",
            "match",
            "matches",
            "matching",
            "closest",
            "closer",
            "best",
            "choose",
            "chose",
            "select",
            "selected",
            "find",
            "found",
        ),
    ),
    (
        0.2,
        _words(
            "locate",
            "located",
            "location",
            "identify",
            "identified",
            "position",
            "area",
            "region",
            "corner",
            "center",
            "centre",
            "coordinates",
        ),
    ),
    (
        0.2,
        _words(
            "reference", "referenced", "refer", "refers", "referring", "bbox", "guidance", "based on", "according to"
        ),
    ),
)


def logic_prior(think: str) -> float:
    """Capped prior rewarding spatial / comparison / location / reference words, in [0, 1]."""
    text = think.lower()
    return min(LOGIC_CAP, sum(bonus for bonus, pattern in LOGIC_CLASSES if pattern.search(text)))


def overlap(source: frozenset[str], target: frozenset[str]) -> float:
    """Ov(X, Y) from K(X) = ``source`` and K(Y) = ``target``, in [0, 1]."""
    return len(source & target) / max(len(source), 1)


def consistency_reward(
    completions: list[Any],
    *,
    w_s: float = W_SCENE,
    w_f: float = W_FOCUS,
    w_l: float = W_LOGIC,
    spacy_model: str | None = None,
    noun_lexicon: list[str] | tuple[str, ...] | None = None,
    **kwargs: Any,
) -> list[float]:
    """TRL reward: R_cons per completion, in [0, 2]; key nouns of the batch go through one nlp.pipe."""
    references = rows_reference_boxes(len(completions), kwargs, "consistency_reward")
    texts = [completion_text(c) for c in completions]
    blocks = [output_blocks(t) for t in texts]
    parts = [[b.scene or "", b.focus or "", b.think or ""] for b in blocks]
    nouns = key_nouns([p for row in parts for p in row], spacy_model=spacy_model, noun_lexicon=noun_lexicon)
    rewards = []
    for index, ((_, _, think), refs) in enumerate(zip(parts, references)):
        scene_nouns, focus_nouns, think_nouns = nouns[3 * index : 3 * index + 3]
        score = w_s * overlap(scene_nouns, think_nouns)
        if refs:
            score += w_f * overlap(focus_nouns, think_nouns)
        if w_l:
            score += w_l * logic_prior(think)
        rewards.append(min(max(score, 0.0), 2.0))
    return rewards
