"""Reward variants by name: the paper's R(t) = R_base + alpha*R_ref + beta*R_cons, its ablations,
and the released code's total (docs/method.md section 5; Tables 3, 4 and 11).

``reward_functions`` returns TRL reward functions with the weights for ``GRPOConfig.reward_weights``;
each function's ``__name__`` is its term name, so TRL logs ``rewards/<name>/mean`` per term.

=================  ===========================================================================
variant            terms (weight)
=================  ===========================================================================
base_only          format (1), non_repeat (1), accuracy (1)
ref_cite           base_only + citation (alpha)
ref_cite_consist   ref_cite + consistency without the logic prior (beta; w_l = 0)
paper == full      ref_cite + consistency with the logic prior (beta)
released_code      the authors' six summands, weight 1 each, unclipped (released_code.py)
=================  ===========================================================================
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from regionreasoner.io import atomic_write_jsonl, read_jsonl
from regionreasoner.rewards.accuracy import (
    IOU_THRESHOLD,
    L1_THRESHOLD,
    POINT_THRESHOLD,
    accuracy_reward,
    ground_truth,
)
from regionreasoner.rewards.citation import citation_reward
from regionreasoner.rewards.consistency import W_LOGIC, consistency_reward
from regionreasoner.rewards.format import format_reward, non_repeat_reward
from regionreasoner.rewards.names import VARIANTS
from regionreasoner.rewards.released_code import RELEASED_TERMS

if TYPE_CHECKING:
    from regionreasoner.config import RewardsConfig

log = logging.getLogger(__name__)


RewardFunction = Callable[..., list[float]]


def _term(function: RewardFunction, **options: Any) -> RewardFunction:
    """``function`` with ``options`` bound; a picklable partial named like ``function``."""
    bound = functools.partial(function, **options)
    bound.__name__ = function.__name__  # type: ignore[attr-defined]
    return bound


def reward_functions(
    variant: str,
    alpha: float = 1.0,
    beta: float = 1.0,
    *,
    iou_threshold: float = IOU_THRESHOLD,
    l1_threshold: float = L1_THRESHOLD,
    point_threshold: float = POINT_THRESHOLD,
    noun_lexicon: list[str] | None = None,
    spacy_model: str | None = None,
) -> tuple[list[RewardFunction], list[float]]:
    """Reward functions of ``variant`` and their weights (``GRPOConfig.reward_weights``).

    ``alpha``/``beta`` weight R_ref/R_cons (Table 11); thresholds are in frame pixels (accuracy.py).
    ``released_code`` reproduces the authors' fixed, unweighted total and ignores these options.
    Unknown variants raise ValueError listing the allowed names.
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown reward variant {variant!r}; choose one of: {', '.join(VARIANTS)}")
    if variant == "released_code":
        if (alpha, beta) != (1.0, 1.0):
            log.warning("released_code is unweighted: alpha=%s, beta=%s are ignored", alpha, beta)
        return list(RELEASED_TERMS), [1.0] * len(RELEASED_TERMS)
    functions: list[RewardFunction] = [
        format_reward,
        non_repeat_reward,
        _term(accuracy_reward, iou_threshold=iou_threshold, l1_threshold=l1_threshold,
              point_threshold=point_threshold),
    ]
    weights = [1.0, 1.0, 1.0]
    if variant != "base_only":
        functions.append(citation_reward)
        weights.append(float(alpha))
    if variant in ("ref_cite_consist", "paper", "full"):
        w_l = 0.0 if variant == "ref_cite_consist" else W_LOGIC
        functions.append(_term(consistency_reward, w_l=w_l, spacy_model=spacy_model,
                               noun_lexicon=tuple(noun_lexicon or ())))
        weights.append(float(beta))
    return functions, weights


def reward_options(rewards: RewardsConfig) -> dict[str, Any]:
    """The config's thresholds and noun sources as ``reward_functions`` keywords, so GRPO and the
    reward probe score a completion alike."""
    return {
        "iou_threshold": rewards.iou_threshold,
        "l1_threshold": rewards.l1_threshold,
        "point_threshold": rewards.point_threshold,
        "spacy_model": rewards.spacy_model,
        "noun_lexicon": rewards.noun_lexicon or None,
    }


def score_completions(variant: str, rows: list[dict[str, Any]], **options: Any) -> list[dict[str, Any]]:
    """Score rows ``{"completion", "problem", "solution"[, "reference_boxes"]}`` with ``variant``.

    Returns one ``{"total": float, "terms": {name: float}}`` per row, in order, where total is
    ``sum(weight * term)`` accumulated in term order (for released_code: the released sum).
    """
    functions, weights = reward_functions(variant, **options)
    completions = [row.get("completion", "") for row in rows]
    columns: dict[str, list[Any]] = {
        "problem": [row.get("problem") for row in rows],
        "solution": [row.get("solution", []) for row in rows],
    }
    if any("reference_boxes" in row for row in rows):
        columns["reference_boxes"] = [row.get("reference_boxes") for row in rows]
    values = {function.__name__: function(completions, **columns) for function in functions}
    results = []
    for index in range(len(rows)):
        total = 0.0
        for function, weight in zip(functions, weights):
            total += weight * values[function.__name__][index]
        results.append({"total": total, "terms": {name: v[index] for name, v in values.items()}})
    return results


def reward_file(variant: str, input: Path, out: Path, **options: Any) -> list[dict[str, Any]]:
    """``regionreasoner reward``: score each JSONL line of ``input`` and write ``out`` in order.

    Each input line is ``{"completion": str | messages, "problem": str, "solution": [...]}``; each
    output line ``{"total": float, "terms": {...}}``. Malformed records raise ValueError naming the
    file and the record.
    """
    rows = read_jsonl(input, ("completion", "solution"))
    for number, row in enumerate(rows, start=1):
        try:
            ground_truth(row["solution"], number)
        except ValueError as err:
            raise ValueError(f"{input}: record {number}: {err}") from None
    results = score_completions(variant, rows, **options)
    atomic_write_jsonl(out, results)
    log.info("wrote %d reward rows (%s) to %s", len(results), variant, out)
    return results
