"""Every reward term and every reward variant, as data (docs/rewards.md).

A term is a plain TRL reward function ``f(completions, **columns) -> list[float]`` registered here
with the weight that multiplies it, its documented range and the config options it reads. A variant
is a list of terms, with keyword values fixed per term (the "+ consistency without the logic prior"
ablation is ``consistency_reward`` with ``w_l = 0``). The variant names the config schema accepts,
the functions and weights GRPO gets (``variants.reward_functions``), the ranges the property tests
check and the variants table of docs/rewards.md are all read from these two dicts, so adding a term
is a function plus an entry in ``TERMS`` (and in the ``VARIANTS`` that use it).

Functions are named by import path and imported when a variant is built: the config schema reads
this module before any job runs and must not pay for spaCy and SciPy to do so.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

RewardFunction = Callable[..., list[float]]

WEIGHT_KEYS = ("1", "alpha", "beta")
"""What a term's value is multiplied by: 1, or the variant's alpha (R_ref) or beta (R_cons) (Table 11)."""

OPTIONS = ("iou_threshold", "l1_threshold", "point_threshold", "spacy_model", "noun_lexicon")
"""The config's ``rewards`` settings a term may read (``variants.reward_options``)."""


@dataclass(frozen=True)
class Term:
    """One reward term: ``function`` is ``"module:name"`` under ``regionreasoner.rewards`` (imported
    when used) or the function itself; ``weight`` one of ``WEIGHT_KEYS``; ``low``/``high`` its range
    (``discrete``: only those two values); ``options`` the config settings it takes as keywords;
    ``grounding``: it scores the answer against the truth, the yardstick the other terms' direction
    is measured by during GRPO (``train.metrics.preferred_accuracy_gaps``)."""

    function: str | RewardFunction
    low: float
    high: float
    weight: str = "1"
    discrete: bool = False
    options: tuple[str, ...] = ()
    grounding: bool = False

    def __post_init__(self) -> None:
        if self.weight not in WEIGHT_KEYS:
            raise ValueError(f"term weight {self.weight!r} is not one of {WEIGHT_KEYS}")
        if unknown := set(self.options) - set(OPTIONS):
            raise ValueError(f"term options {sorted(unknown)} are not config rewards settings {OPTIONS}")

    def resolve(self) -> RewardFunction:
        if callable(self.function):
            return self.function
        module, name = self.function.split(":")
        return getattr(importlib.import_module(f"regionreasoner.rewards.{module}"), name)

    def weight_value(self, alpha: float, beta: float) -> float:
        """What this term is multiplied by in a variant weighted by ``alpha`` and ``beta``."""
        return {"1": 1.0, "alpha": float(alpha), "beta": float(beta)}[self.weight]

    def range_text(self) -> str:
        low, high = (f"{v:g}" for v in (self.low, self.high))
        return f"{{{low}, {high}}}" if self.discrete else f"[{low}, {high}]"


@dataclass(frozen=True)
class Variant:
    """A reward variant: its terms in summation order, keyword values fixed per term, and where the
    paper reports it (``table``); ``summary`` is its row in the docs table."""

    terms: tuple[str, ...]
    summary: str
    table: str
    fixed: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


TERMS: dict[str, Term] = {
    # The paper's terms (docs/method.md section 5): R_base = format + non_repeat + accuracy.
    "format_reward": Term("format:format_reward", 0.0, 3.0),
    "non_repeat_reward": Term("format:non_repeat_reward", 0.0, 1.0, discrete=True),
    "accuracy_reward": Term(
        "accuracy:accuracy_reward",
        0.0,
        3.0,
        options=("iou_threshold", "l1_threshold", "point_threshold"),
        grounding=True,
    ),
    "citation_reward": Term("citation:citation_reward", 0.0, 2.0, weight="alpha"),
    "consistency_reward": Term(
        "consistency:consistency_reward", 0.0, 2.0, weight="beta", options=("spacy_model", "noun_lexicon")
    ),
    # The released code's six summands, unweighted, in the released summation order (released_code.py):
    # ((tags + validity) + citation) + accuracy + non_repeat + consistency.
    "released_format_reward": Term("released_code:released_format_reward", 0.0, 2.3),
    "released_answer_format_reward": Term("released_code:released_answer_format_reward", 0.0, 2.0),
    "released_citation_reward": Term("released_code:released_citation_reward", 0.0, 2.0),
    "released_accuracy_reward": Term("released_code:released_accuracy_reward", 0.0, 3.0, grounding=True),
    "released_non_repeat_reward": Term("released_code:released_non_repeat_reward", 0.0, 1.0, discrete=True),
    "released_consistency_reward": Term("released_code:released_consistency_reward", 0.0, 2.08),
}

_BASE = ("format_reward", "non_repeat_reward", "accuracy_reward")
_PAPER = Variant(
    (*_BASE, "citation_reward", "consistency_reward"),
    "+ citation (α) + consistency with logic (β)",
    "3, 4 row 4; 11 for (α, β)",
)

VARIANTS: dict[str, Variant] = {
    "base_only": Variant(_BASE, "format, non_repeat, accuracy (1 each)", "3, 4 row 1"),
    "ref_cite": Variant((*_BASE, "citation_reward"), "+ citation (α)", "3, 4 row 2"),
    "ref_cite_consist": Variant(
        (*_BASE, "citation_reward", "consistency_reward"),
        "+ citation (α) + consistency with w_l = 0 (β)",
        "3, 4 row 3",
        fixed={"consistency_reward": {"w_l": 0.0}},
    ),
    "paper": _PAPER,
    "full": _PAPER,  # alias: the name the configs use
    "released_code": Variant(
        (
            "released_format_reward",
            "released_answer_format_reward",
            "released_citation_reward",
            "released_accuracy_reward",
            "released_non_repeat_reward",
            "released_consistency_reward",
        ),
        "the six released summands, weight 1, unclipped",
        "section 5, last bullet",
    ),
}


def variant_total_range(name: str, alpha: float = 1.0, beta: float = 1.0) -> tuple[float, float]:
    """Bounds of ``sum(weight * term)`` of a variant (non-negative weights), from its terms' ranges."""
    terms = [TERMS[t] for t in VARIANTS[name].terms]
    return (
        sum(t.weight_value(alpha, beta) * t.low for t in terms),
        sum(t.weight_value(alpha, beta) * t.high for t in terms),
    )


def variants_table() -> str:
    """The variants table of docs/rewards.md (aliases, i.e. the same entry, share a row)."""
    lines = ["| variant | terms (weight) | Table |", "|---|---|---|"]
    seen: dict[int, list[str]] = {}
    for name, variant in VARIANTS.items():
        seen.setdefault(id(variant), []).append(name)
    for names in seen.values():
        variant = VARIANTS[names[0]]
        lines.append(f"| {' = '.join(f'`{n}`' for n in names)} | {variant.summary} | {variant.table} |")
    return "\n".join(lines) + "\n"
