"""Reward variants by name: the paper's R(t) = R_base + alpha*R_ref + beta*R_cons, its ablations,
and the released code's total (docs/method.md section 5; Tables 3, 4 and 11).

The terms and variants are data in ``registry``. ``reward_functions`` returns TRL reward functions
with the weights for ``GRPOConfig.reward_weights``; each function's ``__name__`` is its term name,
so TRL logs ``rewards/<name>/mean`` per term.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from regionreasoner.io import atomic_write_jsonl, read_jsonl
from regionreasoner.rewards.accuracy import ground_truth
from regionreasoner.rewards.registry import OPTIONS, TERMS, VARIANTS, RewardFunction

if TYPE_CHECKING:
    from regionreasoner.config import RewardsConfig

log = logging.getLogger(__name__)


def _term(function: RewardFunction, **options: Any) -> RewardFunction:
    """``function`` with ``options`` bound; a picklable partial named like ``function``."""
    if not options:
        return function
    bound = functools.partial(function, **options)
    bound.__name__ = function.__name__  # type: ignore[attr-defined]
    return bound


def reward_functions(
    variant: str, alpha: float = 1.0, beta: float = 1.0, **options: Any
) -> tuple[list[RewardFunction], list[float]]:
    """Reward functions of ``variant`` and their weights (``GRPOConfig.reward_weights``).

    ``alpha``/``beta`` weight the terms registered with those weight keys (Table 11); ``options``
    are config ``rewards`` settings (``registry.OPTIONS``; thresholds in frame pixels), each bound
    only to the terms that read it, so the released terms ignore them. Unknown variants raise
    ValueError listing the allowed names.
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown reward variant {variant!r}; choose one of: {', '.join(VARIANTS)}")
    if unknown := set(options) - set(OPTIONS):
        raise TypeError(f"unknown reward options {sorted(unknown)}; allowed: {', '.join(OPTIONS)}")
    spec = VARIANTS[variant]
    terms = [TERMS[name] for name in spec.terms]
    used = {term.weight for term in terms}
    unused = [f"{key}={value}" for key, value in (("alpha", alpha), ("beta", beta)) if value != 1.0 and key not in used]
    if unused:
        log.warning("reward variant %s has no term they weight: %s ignored", variant, ", ".join(unused))
    functions = [
        _term(term.resolve(), **{k: options[k] for k in term.options if k in options}, **spec.fixed.get(name, {}))
        for name, term in zip(spec.terms, terms)
    ]
    return functions, [term.weight_value(alpha, beta) for term in terms]


def reward_options(rewards: RewardsConfig) -> dict[str, Any]:
    """The config's thresholds and noun sources as ``reward_functions`` keywords, so GRPO and the
    reward probe score a completion alike."""
    return {key: getattr(rewards, key) for key in OPTIONS}


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
