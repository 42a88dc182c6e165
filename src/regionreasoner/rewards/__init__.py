"""Reward functions of RegionReasoner (docs/method.md section 5), one plain TRL function per term.

Paper terms: ``format_reward``, ``non_repeat_reward``, ``accuracy_reward`` (R_base),
``citation_reward`` (R_ref), ``consistency_reward`` (R_cons with the logic prior); the released
code's terms live in ``released_code``. Every term and variant is an entry of ``registry``;
``reward_functions`` in ``variants`` builds a variant's functions and weights.
"""

from __future__ import annotations

import importlib
from typing import Any

# Public name -> submodule. Loaded on first access (PEP 562), so that importing a light submodule
# such as ``rewards.registry`` (the config schema does) does not load spaCy and SciPy.
_EXPORTS = {
    "TERMS": "registry",
    "VARIANTS": "registry",
    "accuracy_reward": "accuracy",
    "cited_boxes": "parsing",
    "citation_reward": "citation",
    "consistency_reward": "consistency",
    "extract_tag": "parsing",
    "format_reward": "format",
    "key_nouns": "nouns",
    "non_repeat_reward": "format",
    "parse_answer": "parsing",
    "reward_file": "variants",
    "reward_functions": "variants",
    "score_completions": "variants",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
